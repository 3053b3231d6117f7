#!/usr/bin/env bash
# What one round of the hub task costs, from roomcast's own metrics: in the many-rooms scenario
# (10,000 rooms of 10) at RATE messages/s, the hub's time per client message outside the writes
# (reading, parsing, fan-out: "apply"), its time per socket write, and how many frames each
# write carries. Unlike latency, these hold still between runs on a busy machine, so two builds
# can be compared at saturation, where the p99 is too noisy to tell 10% apart:
#
#   bash benches/rounds.sh                                   (this tree's release build)
#   BINS="/tmp/old/roomcast target/release/roomcast" RUNS=3 RATE=80000 bash benches/rounds.sh
#   COALESCE_MS=0 bash benches/rounds.sh                     (publishers: one write per message)
#
# Each binary in turn on core 0, the load generator on core 1; the metrics are read 3 s and
# 9 s after the load starts (after the joins, inside the 10 s of publishing). About 15 s per
# binary and run.
set -eu
cd "$(dirname "$0")/.."
cargo build --release -q -p roomcast-server --bin roomcast -p roomcast-benches --bin roomcast-load
command -v curl >/dev/null || { echo "curl is required to read /metrics" >&2; exit 1; }
bins=${BINS:-target/release/roomcast}
port=19400
scrape() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^roomcast_(frames_in|deliveries|hub_[a-z_]+)_total /{print $1"="$2}' | tr '\n' ' '; }
for run in $(seq "${RUNS:-1}"); do
  for bin in $bins; do
    port=$((port + 1))
    taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --rate-limit 0 --queue-frames 65536 > /tmp/rounds-server.log 2>&1 &
    pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    taskset -c 1 target/release/roomcast-load rooms --url "ws://127.0.0.1:$port/ws" --pid "$pid" \
      --rate "${RATE:-80000}" --seconds 10 --coalesce-ms "${COALESCE_MS:-5}" > /tmp/rounds-load.json &
    load=$!
    sleep 3; first=$(scrape "$port"); sleep 6; second=$(scrape "$port")
    wait "$load"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$bin" "$run" "$first" "$second" /tmp/rounds-load.json <<'PY'
import json, sys
bin_, run, first, second, load = sys.argv[1:]
parse = lambda s: {k: float(v) for k, v in (kv.split("=") for kv in s.split())}
a, b = parse(first), parse(second)
d = {k: b[k] - a[k] for k in a}
m = d["roomcast_frames_in_total"]
writes = d["roomcast_hub_socket_writes_total"]
busy, writing = d["roomcast_hub_busy_seconds_total"], d["roomcast_hub_write_seconds_total"]
r = json.load(open(load))
print(f"{bin_} run={run} msgs/s={m / 6:.0f} busy={busy / 6:.2f} "
      f"apply_us_per_msg={(busy - writing) / m * 1e6:.2f} write_us_per_socket={writing / writes * 1e6:.2f} "
      f"frames_per_write={d['roomcast_deliveries_total'] / writes:.1f} rounds/s={d['roomcast_hub_rounds_total'] / 6:.0f} "
      f"p50_ms={r.get('p50_ms')} p99_ms={r.get('p99_ms')} loss={r.get('loss')} load_cpu={r.get('load_cpu_percent')}")
PY
  done
done
