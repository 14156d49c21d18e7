#!/usr/bin/env bash
# The test command of the README: installs what the tests need on a fresh
# Debian machine (when run as root), then runs every test of the workspace
# (`--install-only` stops after installing).
#
# Tests that need root or a tool print why they skip; under CI=true a skip is
# a failure, so run this as root in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
  missing=()
  command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  # sysctl and kill, for the demo cluster's scenario and the daemon's test.
  { command -v sysctl && { [ -x /bin/kill ] || [ -x /usr/bin/kill ]; }; } >/dev/null 2>&1 || missing+=(procps)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  command -v dnsmasq >/dev/null 2>&1 || missing+=(dnsmasq-base)
  command -v unbound >/dev/null 2>&1 || missing+=(unbound)
  command -v mmdblookup >/dev/null 2>&1 || missing+=(mmdb-bin)
  command -v clang-19 >/dev/null 2>&1 || missing+=(clang-19)
  [ -f /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
else
  echo "note: not root: the network-namespace tests will skip (and fail under CI=true)"
  echo "note: the DNS server tests need dnsmasq and unbound (apt-get install dnsmasq-base unbound)"
  echo "note: the identity MMDB cross-check needs mmdblookup (apt-get install mmdb-bin)"
  echo "note: the eBPF object check needs clang-19 and libbpf-dev"
fi

# `--install-only`: CI installs first, so that build scripts (capture's
# clang-19 build) already see the tools when clippy compiles the workspace.
if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi

cargo test --workspace --locked
