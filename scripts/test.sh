#!/usr/bin/env bash
# The whole test suite of roomcast: the README's test command, and what CI runs.
#
#   bash scripts/test.sh
#
# It installs what it needs (chromium, redis-server, cargo-fuzz, the Autobahn testsuite from
# PyPI into target/) or stops with a clear message. Nothing is skipped silently. FUZZ_SECONDS (default 20) bounds each fuzz target's run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says when it began (seconds since the start): docs/testing.md quotes them.
step() { printf '\n=== [%ss] %s\n' "$SECONDS" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is required (https://rustup.rs)"

# A clean run builds about 7 GB (the workspace in debug, the server in release, the fuzz targets
# with AddressSanitizer); a full disk shows up late, as a build that fails without a test failing.
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ -n "$free_kb" ] && [ "$free_kb" -lt $((8 * 1024 * 1024)) ]; then
  printf 'warning: only %s MB free here; a clean run needs about 7 GB (cargo clean frees target/)\n' \
    "$((free_kb / 1024))" >&2
fi

# Debian packages the tests use: Chromium (the browser test), redis-server and redis-cli (the
# multi-instance tests start their own servers on free loopback ports).
missing=()
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if [ "${#missing[@]}" -gt 0 ]; then
  step "installing ${missing[*]} (Debian packages)"
  command -v apt-get >/dev/null || die "missing ${missing[*]} and apt-get is not available: install them (set CHROMIUM=/path/to/chromium for the browser)"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null || die "could not install ${missing[*]}"
fi

step "the declared minimum Rust version holds for every locked dependency"
cargo metadata --format-version 1 --locked | python3 scripts/msrv_check.py

step "formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (unit, property, simulation, corpus replay, end-to-end, doc)"
cargo test --workspace --locked

step "API docs of every crate render without a broken link (cargo doc)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "the JavaScript client (clients/js): its committed build is current, its tests pass against the server"
command -v npm >/dev/null || die "npm (Node 20+) is required for the JavaScript client's tests"
(cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
if command -v git >/dev/null && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git diff --quiet -- clients/js/dist || die "clients/js/dist differs from its source: run (cd clients/js && npm run build) and commit it"
fi
roomcast_bin=$(bash scripts/cargo_bin.sh -p roomcast-server --bin roomcast) || die "could not build roomcast"
# On the Node this machine has (the oldest `engines` allows is 20), and on a current Node from
# the npm registry (the `node` package), kept in target/.
node_current=target/node-current
if [ ! -x "$node_current/node_modules/.bin/node" ]; then
  echo "installing a current Node (npm package node@${NODE_CURRENT:-24}) into $node_current"
  mkdir -p "$node_current"
  (cd "$node_current" && npm install --no-audit --no-fund --loglevel=error --no-save "node@${NODE_CURRENT:-24}" >/dev/null) \
    || die "could not install node@${NODE_CURRENT:-24} from the npm registry"
fi
current_node_dir=$(cd "$node_current/node_modules/.bin" && pwd)
for node_dir in "" "$current_node_dir"; do
  if [ -n "$node_dir" ]; then path="$node_dir:$PATH"; else path="$PATH"; fi
  echo "JavaScript client tests on Node $(PATH="$path" node --version)"
  (cd clients/js && PATH="$path" ROOMCAST_BIN="$roomcast_bin" npm test --silent)
done

step "WebSocket conformance: the Autobahn testsuite on both transports (scripts/autobahn.sh)"
bash scripts/autobahn.sh

step "benches compile and run once in test mode"
cargo test -p roomcast-benches --benches --locked

step "fuzz smoke: every target runs ${FUZZ_SECONDS:-20}s on nightly"
cargo +nightly --version >/dev/null 2>&1 || die "the nightly toolchain is required for cargo-fuzz (rustup toolchain install nightly)"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in client_frame bus_envelope hub_inputs websocket_frames; do
  mkdir -p "$scratch/$target" "$scratch/artifacts/$target"
  # New finds go to the scratch corpus (first directory); the committed corpus and the
  # hand-written seeds are only read.
  if (cd fuzz && cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="${FUZZ_SECONDS:-20}" -rss_limit_mb=4096 -print_final_stats=0 \
    -artifact_prefix="$scratch/artifacts/$target/" >"$scratch/$target.log" 2>&1); then
    tail -n 1 "$scratch/$target.log"
  else
    # A find must be reproducible from CI's log alone: the fuzzer's report and the input.
    { grep -v -E '^#[0-9]+ ' "$scratch/$target.log" || true; } | tail -n 80
    for artifact in "$scratch/artifacts/$target"/*; do
      [ -f "$artifact" ] || continue
      echo "input $(basename "$artifact") ($(wc -c <"$artifact") bytes), base64 (save it to a file and run: cd fuzz && cargo +nightly fuzz run $target FILE):"
      head -c 65536 "$artifact" | base64
    done
    die "fuzz target $target failed (its report and input are above)"
  fi
done

echo
echo "all checks passed in ${SECONDS}s"
