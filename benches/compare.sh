#!/usr/bin/env bash
# roomcast vs Bun's pub/sub vs Node `ws`, side by side on this machine, in one run.
#
#   bash benches/compare.sh [rates...]      (default: 100, 200, 500, then 1000 to 12000 messages/s in steps of 500)
#   SERVERS="roomcast bun" bash benches/compare.sh     (a subset of roomcast, bun, node-ws)
#   SCENARIOS="fanout rooms" bash benches/compare.sh   (a subset of fanout, rooms, churn, idle, cross)
#   IDLE_MODES=storm IDLE_ROOMS=1 SCENARIOS=idle bash benches/compare.sh   (idle: paced, storm; 0 1 10 rooms)
#   FANOUT_SIZES="1000" bash benches/compare.sh         (room sizes of the fan-out sweep)
#   ROOMS_RATES="20000 40000" bash benches/compare.sh   (rates of the many-rooms scenario, to saturation)
#   ROOMS_COALESCE_MS=0 bash benches/compare.sh         (many rooms: one write per message; default 5 ms)
#   CROSS_RATES="500 1000 2000" bash benches/compare.sh (messages/s of the cross-instance sweep)
#   SERVER_CPUS=0,1 LOAD_CPUS=1 bash benches/compare.sh (cores for the servers and the load; default 0 and 1)
#   ROOMCAST_ARGS="--write-threads 2" bash benches/compare.sh  (more flags for the one-instance roomcast)
#
# Fan-out rates are given per 1,000 subscribers: at N subscribers, rate R means R × 1000 / N
# messages/s, so the sweep at every room size covers the same deliveries per second.
#
# Installs the rivals from the npm registry (benches/rivals/*/node_modules), builds roomcast in
# release, pins each server to core 0 and the load generator to core 1 (where there are two;
# SERVER_CPUS and LOAD_CPUS change that),
# and prints, per server: the fan-out sweeps (1,000, 100 and 10,000 subscribers, 5 s per rate;
# a sweep stops after two failing rates) with the highest rate with zero loss and p99 < 100 ms,
# many rooms (10,000 rooms of 10) at a few rates, connection churn, and resident memory per idle
# connection at 15,000 connections. Then across instances ("cross"): two roomcast instances, then
# two socket.io instances with its Redis adapter (@socket.io/redis-adapter), each pair on its own
# redis-server (all three processes on core 0), the publisher on instance A and 1,000 subscribers
# alternating between A and B. Every delivery line carries the load generator's own CPU (near
# 100% means it, not the server, may have limited that run) and the server's (instance A's in
# "cross"). Bounded: about 40 minutes. Everything stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
rates=("${@:-100 200 500 $(seq -s ' ' 1000 500 12000)}")
read -r -a rates <<< "${rates[*]}"
command -v node >/dev/null || { echo "node is required for the rivals" >&2; exit 1; }
for rival in bun node-ws socketio; do
  [ -d "benches/rivals/$rival/node_modules" ] || (cd "benches/rivals/$rival" && npm install --no-audit --no-fund --silent)
done
cargo build --release -q -p roomcast-server --bin roomcast -p roomcast-benches --bin roomcast-load
pin_server=""; pin_load=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  pin_server="taskset -c ${SERVER_CPUS:-0}"; pin_load="taskset -c ${LOAD_CPUS:-1}"
fi
read -r -a roomcast_args <<< "${ROOMCAST_ARGS:-}"
load="$pin_load target/release/roomcast-load"
port=18200

start() { # name [extra roomcast flags...]: starts the server on a fresh port, sets server_pid
  local name=$1; shift
  port=$((port + 1))
  local log="/tmp/compare-$name.log"
  # Each server is started directly (not in a subshell), so that $! is its own pid.
  case $name in
    roomcast) $pin_server target/release/roomcast serve --listen "127.0.0.1:$port" "$@" "${roomcast_args[@]}" > "$log" 2>&1 & ;;
    bun) $pin_server benches/rivals/bun/node_modules/.bin/bun benches/rivals/bun/server.js "$port" > "$log" 2>&1 & ;;
    node-ws) $pin_server node benches/rivals/node-ws/server.js "$port" > "$log" 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
}

scenarios=" ${SCENARIOS:-fanout rooms churn idle} "
runs() { [[ $scenarios == *" $1 "* ]]; }

sweep() { # name url subscribers [roomcast-load fanout flags...]: the fan-out sweep at one room size
  local name=$1 url=$2 n=$3 best=0 failed=0 rate line
  shift 3
  for per_thousand in "${sweep_rates[@]}"; do
    rate=$((per_thousand * 1000 / n))
    line=$(timeout 180 $load fanout --url "$url" --pid "$server_pid" --subscribers "$n" --rate "$rate" --seconds 5 "$@" || echo '{}')
    echo "$name fanout subscribers=$n rate=$rate $line"
    if python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1] or "{}")
sys.exit(0 if r.get("loss", 1) == 0 and r.get("p99_ms", 1e9) < 100 else 1)
PY
    then best=$rate; failed=0; else failed=$((failed + 1)); [ "$failed" -ge 2 ] && break; fi
  done
  echo "$name best at $n subscribers: highest sustained rate $best msg/s = $((best * n)) deliveries/s (zero loss, p99 < 100 ms)"
}

start_pair() { # name redis_port: two instances of roomcast or socket.io on one fresh redis-server
  local name=$1 redis=$2 instance
  $pin_server redis-server --port "$redis" --bind 127.0.0.1 --save '' --appendonly no > "/tmp/compare-redis.log" 2>&1 &
  pair_pids=($!)
  for _ in $(seq 100); do redis-cli -p "$redis" ping >/dev/null 2>&1 && break; sleep 0.1; done
  pair_urls=()
  for instance in a b; do
    port=$((port + 1))
    case $name in
      roomcast) $pin_server target/release/roomcast serve --listen "127.0.0.1:$port" --redis "redis://127.0.0.1:$redis" \
                  --rate-limit 0 --queue-frames 65536 > "/tmp/compare-cross-$instance.log" 2>&1 &
                pair_urls+=("ws://127.0.0.1:$port/ws") ;;
      socketio) $pin_server node benches/rivals/socketio/server.js "$port" "redis://127.0.0.1:$redis" > "/tmp/compare-cross-$instance.log" 2>&1 &
                pair_urls+=("ws://127.0.0.1:$port/socket.io/?EIO=4&transport=websocket") ;;
    esac
    pair_pids+=($!)
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  done
  server_pid=${pair_pids[1]}
}

sweep_rates=("${rates[@]}")
for name in ${SERVERS:-roomcast bun node-ws}; do
  runs fanout || runs rooms || runs churn || runs idle || break
  start "$name" --rate-limit 0 --queue-frames 65536
  url="ws://127.0.0.1:$port/ws"
  runs fanout && for n in ${FANOUT_SIZES:-1000 100 10000}; do sweep "$name" "$url" "$n"; done
  runs rooms && for rate in ${ROOMS_RATES:-2500 5000 10000 20000 40000 80000}; do
    echo "$name rooms rate=$rate $(timeout 180 $load rooms --url "$url" --pid "$server_pid" --rate "$rate" --seconds 5 --coalesce-ms "${ROOMS_COALESCE_MS:-5}" || echo '{}')"
  done
  runs churn && echo "$name churn $(timeout 120 $load churn --url "$url" --concurrency 64 --seconds 5 || echo '{}')"
  kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true
  runs idle || continue
  # Opened 256 at a time, then all at once (a storm: every client of a dropped deploy
  # reconnecting together); each line also says how much memory came back once they left.
  for mode in ${IDLE_MODES:-paced storm}; do
    storm=""; [ "$mode" = storm ] && storm="--storm"
    for rooms in ${IDLE_ROOMS:-0 1 10}; do
      start "$name"
      echo "$name idle $mode rooms=$rooms $(timeout 150 $load idle --url "ws://127.0.0.1:$port/ws" --conns 15000 --rooms "$rooms" --pid "$server_pid" --hold 30 $storm || echo failed)"
      kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true
    done
  done
done

# Across instances: roomcast and socket.io (with its Redis adapter), two instances each.
if runs cross; then
  command -v redis-server >/dev/null || { echo "redis-server is required for the cross scenario (apt-get install -y redis-server)" >&2; exit 1; }
  read -r -a sweep_rates <<< "${CROSS_RATES:-10 25 50 100 250 500 1000 2000 3000 4000 5000 6000}"
  for name in ${CROSS_SERVERS:-roomcast socketio}; do
    protocol=roomcast; [ "$name" = socketio ] && protocol=socketio
    start_pair "$name" $((port + 10))
    sweep "$name-cross" "${pair_urls[0]}" 1000 --protocol "$protocol" --sub-url "${pair_urls[0]}" --sub-url "${pair_urls[1]}"
    kill "${pair_pids[@]}" 2>/dev/null; wait "${pair_pids[@]}" 2>/dev/null || true
  done
fi
