#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30) on the nightly
# toolchain, from the committed seed corpus (new inputs go to a temporary
# folder, so the repository is not changed). Installs cargo-fuzz when it
# is missing. Under CI=true a missing nightly toolchain is a failure.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-30}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain (rustup toolchain install nightly)"
  if [ "${CI:-}" = true ]; then exit 1; fi
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

targets=$(cargo +nightly fuzz list)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cargo +nightly fuzz build >"$scratch/build.log" 2>&1 || { tail -40 "$scratch/build.log"; exit 1; }
for target in $targets; do
  mkdir -p "$scratch/$target"
  echo "fuzz: $target for ${seconds}s"
  status=0
  cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
    >"$scratch/$target.log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY)" "$scratch/$target.log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$scratch/$target.log"
    echo "fuzz: $target failed (exit $status)"
    exit 1
  fi
done
echo "fuzz: every target ran ${seconds}s without a crash"
