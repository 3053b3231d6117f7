#!/usr/bin/env bash
# Across instances: two `roomcast serve` processes on one redis-server (all on this machine),
# the publisher on instance A, the subscribers split between A and B, so that half of every
# fan-out crosses Redis.
#
#   bash benches/cross.sh [rates...]     (default rates: 250 500 1000 2000 4000)
#
# Not pinned (the instances, Redis and the load generator share the cores): the quick check.
# The side-by-side run against socket.io with its Redis adapter, pinned, is
# `SCENARIOS=cross bash benches/compare.sh`. Starts and stops its own redis-server on a free
# loopback port. Bounded: about 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
rates=("${@:-250 500 1000 2000 4000}")
read -r -a rates <<< "${rates[*]}"
command -v redis-server >/dev/null || { echo "redis-server is required (apt-get install -y redis-server)" >&2; exit 1; }
cargo build --release -q -p roomcast-server --bin roomcast -p roomcast-benches --bin roomcast-load
redis_port=18490; a=18491; b=18492
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no > /tmp/cross-redis.log 2>&1 &
redis_pid=$!
pids=()
cleanup() { kill "${pids[@]}" "$redis_pid" 2>/dev/null || true; }
trap cleanup EXIT
sleep 0.5
for port in $a $b; do
  target/release/roomcast serve --listen "127.0.0.1:$port" --redis "redis://127.0.0.1:$redis_port" \
    --rate-limit 0 --queue-frames 65536 > "/tmp/cross-$port.log" 2>&1 &
  pids+=($!)
done
for port in $a $b; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
for rate in "${rates[@]}"; do
  echo "cross fanout rate=$rate $(timeout 120 target/release/roomcast-load fanout --url "ws://127.0.0.1:$a/ws" \
    --sub-url "ws://127.0.0.1:$a/ws" --sub-url "ws://127.0.0.1:$b/ws" --subscribers 1000 --rate "$rate" --seconds 5 || echo '{}')"
done
