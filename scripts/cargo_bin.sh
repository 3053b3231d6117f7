#!/usr/bin/env bash
# Builds one binary with cargo and prints the path of the executable cargo wrote, read from
# cargo's own build messages: right wherever CARGO_TARGET_DIR or a config puts the target
# directory, and never a stale binary left elsewhere.
#
#   bash scripts/cargo_bin.sh -p roomcast-server --bin roomcast   (any `cargo build` arguments)
set -euo pipefail
cargo build --locked --message-format=json-render-diagnostics "$@" \
  | python3 -c '
import json, sys
paths = [m["executable"] for m in map(json.loads, sys.stdin)
         if m.get("reason") == "compiler-artifact" and m.get("executable")]
if len(paths) != 1:
    sys.exit("expected one executable from cargo, got %r" % paths)
print(paths[0])
'
