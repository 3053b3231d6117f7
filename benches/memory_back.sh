#!/usr/bin/env bash
# Does memory come back? Each scenario against a fresh `roomcast serve` (release build): the
# server's resident memory before the clients, then 6 s after the last of them left, and the
# ratio (the target: within 1.2 of the start). Scenarios: a storm (15,000 connections at once,
# one room each, 30 s idle), a fan-out burst (1,000 subscribers, 6,000 msg/s for 5 s), slow
# readers (100 subscribers that read and 200 that never do, 4 KB messages at 1,000/s for 5 s:
# the server closes the 200 with 4005 as their queues overflow), many small rooms (10,000 rooms
# of 10, 20,000 msg/s for 5 s) and churn (64 at a time for 5 s).
#
#   bash benches/memory_back.sh
#   ROOMCAST=/path/to/other/roomcast bash benches/memory_back.sh     (another build)
#   ROOMCAST_ENV="MIMALLOC_PURGE_DELAY=0" bash benches/memory_back.sh   (its environment)
#
# Server on core 0, load generator on core 1. About 3 minutes; everything on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p roomcast-server --bin roomcast -p roomcast-benches --bin roomcast-load
bin=${ROOMCAST:-target/release/roomcast}
read -r -a server_env <<< "${ROOMCAST_ENV:-}"
load="taskset -c 1 target/release/roomcast-load"
port=19500
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

scenario() { # name, then the load generator's arguments (the url is added; PID becomes the server's)
  local name=$1; shift
  port=$((port + 1))
  env "${server_env[@]}" taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --rate-limit 0 --queue-frames 65536 \
    > "/tmp/memory_back-$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  sleep 1
  local before; before=$(rss "$pid")
  local args=("${@//PID/$pid}")
  timeout 180 $load "${args[@]}" --url "ws://127.0.0.1:$port/ws" > "/tmp/memory_back-$name.json" \
    || echo "$name: the load generator failed (/tmp/memory_back-$name.json)" >&2
  sleep 6
  local after; after=$(rss "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk -v n="$name" -v b="$before" -v a="$after" \
    'BEGIN { printf "%-12s before %7d KiB  after the clients left %7d KiB  ratio %.2f\n", n, b, a, a / b }'
}

scenario storm idle --pid PID --conns 15000 --rooms 1 --hold 30 --linger 0 --storm
scenario fanout fanout --pid PID --subscribers 1000 --rate 6000 --seconds 5
scenario slow fanout --pid PID --subscribers 100 --stalled 200 --payload 4096 --rate 1000 --seconds 5
scenario rooms rooms --pid PID --rate 20000 --seconds 5 --coalesce-ms 5
scenario churn churn --concurrency 64 --seconds 5
