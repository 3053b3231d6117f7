"""Checks the workspace's declared minimum Rust version against what the locked dependencies
declare: fails, naming them, if any needs a newer Rust than `rust-version` in Cargo.toml says.
(Our own code is held to it by clippy's incompatible_msrv lint, which reads the same field.)

    cargo metadata --format-version 1 --locked | python3 scripts/msrv_check.py
"""
import json
import sys


def version(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    metadata = json.load(sys.stdin)
    members = set(metadata["workspace_members"])
    declared = {p["rust_version"] for p in metadata["packages"] if p["id"] in members}
    if len(declared) != 1 or None in declared:
        sys.exit("every workspace member must inherit one rust-version, found %s" % sorted(declared))
    msrv = declared.pop()
    too_new = sorted(
        (p["name"], p["version"], p["rust_version"])
        for p in metadata["packages"]
        if p["id"] not in members and p.get("rust_version")
        and version(p["rust_version"]) > version(msrv)
    )
    if too_new:
        for name, ver, needs in too_new:
            print("%s %s needs Rust %s, above the declared %s" % (name, ver, needs, msrv))
        sys.exit(1)
    print("every locked dependency builds with the declared Rust %s" % msrv)


if __name__ == "__main__":
    main()
