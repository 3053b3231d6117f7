#!/usr/bin/env bash
# WebSocket conformance: the Autobahn|Testsuite (wstest -m fuzzingclient, autobahntestsuite
# 0.8.2 on Python 2.7) against the autobahn-echo binary on both of the server's transports:
# roomcast's own framing (fast) and tungstenite's (under axum::serve). Cases 1-7, 9 and 10 in
# full (section 9's 16 MiB messages included) on both; 12 and 13 (permessage-deflate) on the fast
# transport, the one that negotiates compression, with messages up to 64 KiB: the 128 KiB cases
# (x.y.10 and x.y.15-18, a thousand messages each) take wstest's Python five more minutes and
# test nothing the 64 KiB ones (twice the 32 KiB window) do not. Fails naming every case whose
# behaviour is not OK, NON-STRICT or INFORMATIONAL.
#
#   bash scripts/autobahn.sh            (part of scripts/test.sh)
#
# Installs autobahntestsuite into target/autobahn-venv from PyPI on the first run. Needs a
# Python 2.7 (pyenv's 2.7.18 where there is one, else python2.7 on the PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if PYENV_VERSION=2.7.18 python --version 2>&1 | grep -q '^Python 2\.7'; then
  py2=(env PYENV_VERSION=2.7.18 python)
elif command -v python2.7 >/dev/null; then
  py2=(python2.7)
else
  die "Python 2.7 is needed for the Autobahn testsuite (pyenv install 2.7.18, or a python2.7 on the PATH)"
fi

venv=target/autobahn-venv
if [ ! -x "$venv/bin/wstest" ]; then
  echo "installing autobahntestsuite 0.8.2 into $venv"
  "${py2[@]}" -m virtualenv --version >/dev/null 2>&1 \
    || "${py2[@]}" -m pip install -q --user 'virtualenv<20.22' 2>&1 | grep -v DEPRECATION || true
  "${py2[@]}" -m virtualenv -q "$venv" || die "could not create $venv"
  "$venv/bin/pip" install -q 'autobahntestsuite==0.8.2' 2>&1 | grep -v DEPRECATION || true
  [ -x "$venv/bin/wstest" ] || die "autobahntestsuite did not install"
fi

# The binary cargo built, wherever CARGO_TARGET_DIR puts it (never a stale one from elsewhere).
echo_bin=$(bash scripts/cargo_bin.sh -p roomcast-server --bin autobahn-echo) \
  || die "could not build autobahn-echo"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fast=$(free_port); tung=$(free_port)
"$echo_bin" --listen "127.0.0.1:$fast" --transport fast --compression > target/autobahn-fast.log 2>&1 &
fast_pid=$!
"$echo_bin" --listen "127.0.0.1:$tung" --transport tungstenite > target/autobahn-tungstenite.log 2>&1 &
tung_pid=$!
trap 'kill $fast_pid $tung_pid 2>/dev/null || true' EXIT
for port in "$fast" "$tung"; do
  up=""
  for _ in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
    sleep 0.1
  done
  [ -n "$up" ] || die "autobahn-echo never listened on port $port (target/autobahn-*.log)"
done

report=target/autobahn-report
rm -rf "$report"; mkdir -p "$report"
cat > "$report/spec.json" <<JSON
{"outdir": "$PWD/$report",
 "servers": [{"agent": "roomcast-fast", "url": "ws://127.0.0.1:$fast"},
             {"agent": "roomcast-tungstenite", "url": "ws://127.0.0.1:$tung"}],
 "cases": ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*", "12.*", "13.*"],
 "exclude-cases": ["12.*.10", "12.*.15", "12.*.16", "12.*.17", "12.*.18",
                   "13.*.10", "13.*.15", "13.*.16", "13.*.17", "13.*.18"], "exclude-agent-cases": {"roomcast-tungstenite": ["12.*", "13.*"]}}
JSON
(cd "$report" && timeout 1200 "$PWD/../autobahn-venv/bin/wstest" -m fuzzingclient -s spec.json > wstest.log 2>&1) \
  || die "wstest failed or timed out; see $report/wstest.log"
# Every agent, with every case of the spec: 301 in 1-10; the fast transport also runs the 156
# permessage-deflate cases of 12 and 13 that the spec keeps.
python3 scripts/autobahn_check.py "$report/index.json" roomcast-fast=457 roomcast-tungstenite=301
