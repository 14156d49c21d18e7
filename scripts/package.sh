#!/usr/bin/env bash
# Packages every published crate (`cargo package`), unpacks the .crate files
# into a workspace of their own, and builds and tests them there as a user
# who took them from crates.io would: nothing from this repository but what
# the packages hold. Each edgewise-* dependency resolves to its unpacked
# package through [patch.crates-io]; third-party versions are kept at this
# repository's Cargo.lock.
#
# Run from anywhere; CI runs it after the tests (`.ci/run`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Not published: the daemon (shipped as a binary and container image with its
# demo and deployment files), the cross-crate benches and the test helpers.
unpublished=(edgewise-observer edgewise-benches edgewise-test-support)
excludes=()
for name in "${unpublished[@]}"; do excludes+=(--exclude "$name"); done

echo "== cargo package (every published crate)"
# Tests that need the workspace are left out of the packages on purpose;
# cargo says so for each ("ignoring test ..."), which is expected.
# (--allow-dirty: so that a change can be checked before it is committed.)
rm -f target/package/*.crate
log=$(mktemp)
if ! cargo package --workspace "${excludes[@]}" --locked --no-verify --allow-dirty --quiet 2>"$log"; then
  cat "$log"
  exit 1
fi
grep -v "^warning: ignoring test" "$log" || true
rm -f "$log"

dir=$(mktemp -d /tmp/edgewise-packaged.XXXXXX)
trap 'rm -rf "$dir"' EXIT
members=()
patches=()
for crate in target/package/*.crate; do
  tar -xzf "$crate" -C "$dir"
  base=$(basename "$crate" .crate)
  name=${base%-*}
  members+=("\"$base\"")
  patches+=("$name = { path = \"$base\" }")
done
{
  echo "[workspace]"
  echo "resolver = \"2\""
  echo "members = [$(IFS=,; echo "${members[*]}")]"
  echo
  echo "[patch.crates-io]"
  printf '%s\n' "${patches[@]}"
} > "$dir/Cargo.toml"
cp Cargo.lock "$dir/Cargo.lock"
# Packages carry fixed file times, and cargo names a workspace member's
# artifacts by its path inside the workspace, the same at every run: without
# fresh times, a run would take an earlier run's build of a changed crate.
find "$dir" -type f -exec touch {} +

echo "== the packaged crates, built and tested on their own ($dir)"
cd "$dir"
# The repository's target folder, so that third-party crates built for its
# tests are not built again (the packaged edgewise crates are other packages
# to cargo, with artifacts of their own).
export CARGO_TARGET_DIR="$root/target"
cargo test --workspace --all-features
# Each crate alone with its default features, as a user adding only it
# gets it (a workspace-wide build unifies features and would hide a
# missing one).
for base in "${members[@]}"; do
  base=${base//\"/}
  cargo check --quiet --package "${base%-*}"
done
