#!/usr/bin/env bash
# Two builds of roomcast side by side in one run, alternating, 3 runs each: fan-out to 1,000
# subscribers at 3,000 and 6,000 messages/s, 10,000 rooms of 10 at 10,000 and 20,000
# messages/s, and connection churn (64 workers connecting, joining and closing; 5 s each).
# For checking that a change costs no speed:
#
#   BEFORE=/path/to/old/roomcast AFTER=target/release/roomcast bash benches/before_after.sh
#   RUNS=5 FANOUT_RATES="6000" ROOMS_RATES="40000 80000 100000" BEFORE=... bash benches/before_after.sh
#   COALESCE_MS=0 BEFORE=... bash benches/before_after.sh     (rooms publishers: one write per message)
#   CHURN= BEFORE=... bash benches/before_after.sh            (no churn)
#   AFTER_ARGS="--config benches/room_rules.toml" BEFORE=... bash benches/before_after.sh
#                                                   (flags for the new build only: room policies)
#
# The server runs on core 0, the load generator (this tree's, release) on core 1. About 4 minutes.
set -eu
cd "$(dirname "$0")/.."
: "${BEFORE:?BEFORE=path of the old roomcast binary}" "${AFTER:=target/release/roomcast}"
cargo build --release -q -p roomcast-benches --bin roomcast-load
load="taskset -c 1 target/release/roomcast-load"
port=19300
for run in $(seq "${RUNS:-3}"); do
  for which in before after; do
    port=$((port+1))
    if [ "$which" = before ]; then bin=$BEFORE; extra=""; else bin=$AFTER; extra=${AFTER_ARGS:-}; fi
    # shellcheck disable=SC2086 # extra: several flags
    taskset -c 0 "$bin" serve --listen 127.0.0.1:$port --rate-limit 0 --queue-frames 65536 $extra >"/tmp/before_after-$which.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    url=ws://127.0.0.1:$port/ws
    for rate in ${FANOUT_RATES:-3000 6000}; do
      echo "$which run=$run fanout subs=1000 rate=$rate $(timeout 120 $load fanout --url $url --pid $pid --subscribers 1000 --rate $rate --seconds 5 || echo '{}')"
    done
    for rate in ${ROOMS_RATES:-10000 20000}; do
      echo "$which run=$run rooms rate=$rate $(timeout 120 $load rooms --url $url --pid $pid --rate $rate --seconds 5 --coalesce-ms "${COALESCE_MS:-5}" || echo '{}')"
    done
    if [ -n "${CHURN:-64}" ]; then
      echo "$which run=$run churn concurrency=${CHURN:-64} $(timeout 120 $load churn --url $url --concurrency "${CHURN:-64}" --seconds 5 || echo '{}')"
    fi
    kill $pid; wait $pid 2>/dev/null || true
  done
done
