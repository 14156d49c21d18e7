#!/usr/bin/env bash
# Runs each library crate's examples as a new user would, on the bundled
# demo's files, and checks what they print. capture's example attaches to a
# veth between network namespaces this script makes (root); without root it
# says why it skips, and under CI=true that skip is a failure.
# Called by scripts/test.sh after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --locked --examples \
  -p edgewise-time -p edgewise-packet -p edgewise-ja4 -p edgewise-fqdn-store -p edgewise-ip-index \
  -p edgewise-edge-set -p edgewise-identity -p edgewise-capture -p edgewise-trail \
  -p edgewise-http-server -p edgewise-advise -p edgewise-service-probes -p edgewise-k8s
# The daemon makes the graph file advise's example reads.
cargo build --quiet --locked -p edgewise-observer --bin edgewise
bin=target/debug/examples
failures=0
scratch=$(mktemp -d /tmp/edgewise-examples.XXXXXX)

# expect NAME PATTERN COMMAND...: the command's output must hold a line
# matching PATTERN (an extended regular expression).
expect() {
  local name=$1 pattern=$2
  shift 2
  local output
  if ! output=$("$@" 2>&1); then
    echo "example $name: FAILED (exit status)"; echo "$output" | tail -n 5
    failures=$((failures + 1)); return
  fi
  if grep -qE -- "$pattern" <<<"$output"; then
    echo "example $name: ok"
  else
    echo "example $name: FAILED (no line matches $pattern)"; echo "$output" | tail -n 5
    failures=$((failures + 1))
  fi
}

expect "time convert" \
  '^3602500000000 monotonic -> 1700000002500000000 unix \(2\.500 s after the reading\)$' \
  "$bin/convert" 1700000000000000000 3600000000000 3602500000000
expect "packet flows" \
  '^[0-9]+ 10\.42\.1\.17:34640 > 10\.42\.1\.159:8086 tcp \[S\] 0 bytes$' \
  "$bin/flows" demo/handshakes.pcap
expect "ja4 fingerprint_pcap" \
  '^frame 2 10\.42\.1\.159:8086 > 10\.42\.1\.17:34640 JA4TS 65160_2-4-8-1-3_1460_10$' \
  "$bin/fingerprint_pcap" demo/handshakes.pcap
expect "fqdn-store names_from_pcap" \
  '^bank\.example\.com -> 192\.0\.2\.80 \(ttl 60\)$' \
  "$bin/names_from_pcap" demo/dns.pcap
expect "ip-index resolve" \
  '^analytics/influxdb-0:8086 \(10\.42\.1\.159\)$' \
  "$bin/resolve" demo/cluster/objects.json 10.42.1.159:8086
expect "identity baseline_and_deltas" \
  '^10\.250\.0\.9 -> demo/newcomer$' \
  "$bin/baseline_and_deltas" demo/cluster/objects.json 10.42.1.159
expect "k8s watch_cluster (the fake API server)" \
  '^10\.42\.1\.159 analytics/influxdb-0$' \
  "$bin/watch_cluster" --fake demo/cluster/objects.json
expect "edge-set verdicts" \
  '^shop/frontend-7d9f8c6b5-x0 -> shop/postgres-0:5432 violation \(shop/postgres-ingress\)$' \
  "$bin/verdicts" demo/cluster/objects.json demo/cluster/policies.json \
  10.42.1.10 10.42.1.12 5432

expect "trail sqlite_trail" \
  '^shop/Deployment/frontend +shop/StatefulSet/postgres +5432 +tcp +shop/postgres-ingress ' \
  "$bin/sqlite_trail" "$scratch/trail.db" demo/cluster/objects.json demo/cluster/policies.json \
  10.42.1.10 10.42.1.12 5432 10.42.1.11 10.42.1.12 5432
target/debug/edgewise replay --graph-out "$scratch/graph" > /dev/null 2>&1
expect "advise allowlists" \
  '^shop tier A \(pilot\): ' \
  "$bin/allowlists" "$scratch/graph/graph.json"

probes=/usr/share/nmap/nmap-service-probes
if [ -f "$probes" ]; then
  expect "service-probes identify" \
    '^ssh product=OpenSSH version=9\.2p1 Debian 2\+deb12u3 info=protocol 2\.0 ' \
    "$bin/identify" "$probes" 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n'
else
  echo "example service-probes identify: skipped (no $probes: apt-get install nmap)"
  [ "${CI:-}" != true ] || failures=$((failures + 1))
fi

# http-server's echo: serves for 4 s on a free loopback port; asked by a
# client here (a body within the limit echoed, one past it refused unread).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin/echo" "127.0.0.1:$port" 4 2>/dev/null &
server=$!
expect "http-server echo" '^ok hello 413$' python3 -c '
import sys, time, urllib.request, urllib.error
base = "http://127.0.0.1:" + sys.argv[1]
for _ in range(50):
    try:
        health = urllib.request.urlopen(base + "/healthz").read().decode().strip()
        break
    except OSError:
        time.sleep(0.1)
echo = urllib.request.urlopen(base + "/echo", data=b"hello").read().decode()
try:
    urllib.request.urlopen(base + "/echo", data=b"x" * 2000)
    big = "accepted"
except urllib.error.HTTPError as e:
    big = str(e.code)
print(health, echo, big)' "$port"
wait "$server" || true
rm -rf "$scratch"

if [ "$(id -u)" != 0 ]; then
  echo "example capture print_events: skipped (needs root to attach programs)"
  [ "${CI:-}" != true ] || failures=$((failures + 1))
else
  # Two namespaces joined by a veth; the example watches the client's end
  # while the client connects to a listener in the server's namespace.
  client=ew-example-c server=ew-example-s
  cleanup() { ip netns del "$client" 2>/dev/null || true; ip netns del "$server" 2>/dev/null || true; }
  cleanup
  trap cleanup EXIT
  ip netns add "$client"
  ip netns add "$server"
  ip -n "$client" link add ewex0 type veth peer name ewex1 netns "$server"
  ip -n "$client" addr add 10.198.0.1/24 dev ewex0
  ip -n "$server" addr add 10.198.0.2/24 dev ewex1
  ip -n "$client" link set ewex0 up
  ip -n "$server" link set ewex1 up
  ip netns exec "$server" python3 -c '
import socket, time
s = socket.socket(); s.bind(("10.198.0.2", 8086)); s.listen()
time.sleep(8)' &
  listener=$!
  ip netns exec "$client" "$bin/print_events" ewex0 4 > /tmp/edgewise-example-events 2>&1 &
  example=$!
  sleep 1.5
  ip netns exec "$client" python3 -c '
import socket
socket.create_connection(("10.198.0.2", 8086), timeout=2).sendall(b"hello")'
  wait "$example" || true
  kill "$listener" 2>/dev/null || true
  expect "capture print_events" \
    '^Syn Egress 10\.198\.0\.1:[0-9]+ > 10\.198\.0\.2:8086 40 bytes$' \
    cat /tmp/edgewise-example-events
  if ! grep -qE '^SynAck Ingress 10\.198\.0\.2:8086 > ' /tmp/edgewise-example-events; then
    echo "example capture print_events: FAILED (no SYN-ACK on ingress)"
    failures=$((failures + 1))
  fi
  rm -f /tmp/edgewise-example-events
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures example check(s) failed"
  exit 1
fi
