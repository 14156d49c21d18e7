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
  # The trail's store tests: a throwaway Postgres cluster (below).
  { command -v psql && ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 || missing+=(postgresql)
  # nmap's service database, for the service-probes engine's tests, and
  # nmap itself with real servers, for the conformance test against nmap -sV
  # (each started by the test in a network namespace of its own).
  [ -f /usr/share/nmap/nmap-service-probes ] || missing+=(nmap)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
  [ -x /usr/sbin/vsftpd ] || missing+=(vsftpd)
  # The web view's browser test: headless Chromium through WebDriver.
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    # The servers are started by the tests, never by the install.
    policy=/usr/sbin/policy-rc.d
    own_policy=
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    [ -z "$own_policy" ] || rm -f "$policy"
  fi
  # ...driven by Selenium's Python client (pinned), from PyPI.
  if ! python3 -c 'import selenium' >/dev/null 2>&1; then
    echo "installing: selenium (PyPI)"
    python3 -m pip install -q --root-user-action=ignore 'selenium==4.51.0'
  fi
else
  echo "note: not root: the network-namespace tests will skip (and fail under CI=true)"
  echo "note: the DNS server tests need dnsmasq and unbound (apt-get install dnsmasq-base unbound)"
  echo "note: the identity MMDB cross-check needs mmdblookup (apt-get install mmdb-bin)"
  echo "note: the eBPF object check needs clang-19 and libbpf-dev"
  echo "note: the trail's store tests need Postgres (apt-get install postgresql)"
  echo "note: the service-probes tests need nmap's database (apt-get install nmap)"
  echo "note: the nmap -sV conformance test needs openssh-server nginx-light redis-server mariadb-server vsftpd"
  echo "note: the web view's browser test needs chromium, chromium-driver and python3 -m pip install selenium"
fi

# `--install-only`: CI installs first, so that build scripts (capture's
# clang-19 build) already see the tools when clippy compiles the workspace.
if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi

# A throwaway Postgres cluster for the trail's tests: a temporary folder,
# a free loopback port, trust authentication, stopped and removed at the
# end. Each test makes a database of its own on it; the fault tests that
# restart the server start clusters of their own the same way.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -n "$pg_bin" ] && [ -z "${EDGEWISE_TEST_POSTGRES:-}" ]; then
  pg_dir=$(mktemp -d /tmp/edgewise-pg.XXXXXX)
  as_postgres=()
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses root.
    chown postgres:postgres "$pg_dir"
    as_postgres=(runuser -u postgres --)
  fi
  pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${as_postgres[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres --no-sync -E UTF8 >/dev/null
  "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w start \
    -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$pg_dir -c fsync=off" >/dev/null
  stop_postgres() {
    "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  }
  trap stop_postgres EXIT
  export EDGEWISE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pg_port/postgres"
fi

cargo test --workspace --locked

# Each library crate's examples, run on the demo's files (capture's as root).
bash scripts/examples.sh
