#!/usr/bin/env bash
# Checks the declared minimum Rust version (`rust-version` in Cargo.toml)
# with what this machine has, the one toolchain it can install:
# 1. no dependency of a published crate (normal and build dependencies, on
#    Linux, all features) declares a rust-version above ours;
# 2. clippy's `incompatible_msrv` lint, which reads our rust-version, finds
#    no standard-library item stabilised after it (run by `.ci/run`'s
#    clippy step with -D warnings, and here for the library crates alone).
# What it cannot check: language features newer than the MSRV, which only
# a build with that toolchain (`cargo +1.89 check`) would catch.
set -euo pipefail
cd "$(dirname "$0")/.."

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
echo "== declared MSRV: $msrv"
meta=$(mktemp)
trap 'rm -f "$meta" "$meta".tree' EXIT
cargo metadata --format-version 1 --locked > "$meta"
published=$(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
members = set(m["workspace_members"])
for p in m["packages"]:
    if p["id"] in members and p.get("publish") != []:
        print(p["name"])' "$meta")
for crate in $published; do
  cargo tree --quiet --locked -e normal,build --target x86_64-unknown-linux-gnu \
    --all-features -p "$crate" --prefix none
done | awk '{print $1, $2}' | sort -u > "$meta".tree
python3 - "$meta" "$meta".tree "$msrv" <<'PY'
import json, sys
meta, tree, msrv = sys.argv[1:4]
def version(text):
    parts = [int(x) for x in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))
declared = {(p["name"], "v" + p["version"]): p.get("rust_version")
            for p in json.load(open(meta))["packages"]}
newest, above = (0, 0, 0), []
for line in open(tree):
    name, ver = line.split()[:2]
    needed = declared.get((name, ver))
    if not needed or name.startswith("edgewise-"):
        continue
    newest = max(newest, version(needed))
    if version(needed) > version(msrv):
        above.append(f"{name} {ver} needs {needed}")
print(f"dependencies need at most Rust {'.'.join(map(str, newest))}")
if above:
    print("above the declared MSRV:\n  " + "\n  ".join(sorted(above)))
    sys.exit(1)
PY
echo "== clippy's incompatible_msrv on the library crates"
args=()
for crate in $published; do args+=(-p "$crate"); done
cargo clippy --quiet --locked "${args[@]}" --all-features -- -D clippy::incompatible_msrv
echo "ok"
