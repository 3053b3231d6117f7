#!/usr/bin/env bash
# permessage-deflate's cost and gain: fan-out to 1,000 subscribers of 1 KiB JSON messages (text
# padding that compresses as chat does), with subscribers that negotiate compression and with
# subscribers that do not, on one `roomcast serve --compression`, alternating, 3 runs each:
#
#   bash benches/compression.sh [rates...]     (default: 200 1000 2000 3000 messages/s)
#
# Prints one JSON line per run: deliveries/s, p99, the server's and the load generator's CPU,
# and wire_bytes_per_delivery (what the subscribers read from their sockets, frame headers
# included, divided by the messages they got). The server runs on core 0, the load generator on
# core 1. About 6 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
rates=("${@:-200 1000 2000 3000}")
read -r -a rates <<< "${rates[*]}"
cargo build --release -q -p roomcast-server --bin roomcast -p roomcast-benches --bin roomcast-load
pin_server=""; pin_load=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then pin_server="taskset -c 0"; pin_load="taskset -c 1"; fi
load="$pin_load target/release/roomcast-load"
port=18400
for run in 1 2 3; do
  port=$((port + 1))
  $pin_server target/release/roomcast serve --listen "127.0.0.1:$port" --compression \
    --rate-limit 0 --queue-frames 65536 > /tmp/compression-roomcast.log 2>&1 &
  pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  for rate in "${rates[@]}"; do
    for mode in plain deflate; do
      flag=""; [ "$mode" = deflate ] && flag="--compression"
      line=$(timeout 120 $load fanout --url "ws://127.0.0.1:$port/ws" --pid "$pid" --subscribers 1000 \
        --rate "$rate" --seconds 5 --payload 1024 --words $flag || echo '{}')
      echo "run=$run $mode rate=$rate $line"
    done
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
