#!/usr/bin/env bash
# A small cluster made of network namespaces posing as pods on one node,
# for the bundled demo and the daemon's end-to-end test.
#
#   scenario.sh up          namespaces, a bridge, servers, a DNS server
#   scenario.sh traffic     the clients' connections (DNS lookups first)
#   scenario.sh connect FROM IP PORT SECONDS
#                           one TCP connection; exit 1 if it did not complete
#   scenario.sh down        removes everything (idempotent)
#   scenario.sh generate    up, tcpdump on the bridge, traffic, down: writes
#                           demo/cluster/capture.pcap and objects.json
#
# The node is namespace ewcl-node with bridge ewcl-br0; each pod is a
# namespace ewcl-POD with eth0 (10.42.1.x/24) whose peer ewh-POD is a port
# of the bridge (the host side a node agent observes). A "partner" host on
# the internet, 203.0.113.7 (a documentation range), hangs off the same
# bridge. DNS: dnsmasq in ewcl-coredns (10.42.1.53), answering the
# cluster's names and api.partner.example.
#
# Needs root, iproute2, python3, dnsmasq (and tcpdump for generate).
# Traffic stays between the namespaces this script creates.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# pod namespace  address  k8s namespace  workload kind  workload  labels(app)
pods=(
  "frontend 10.42.1.10 shop Deployment frontend"
  "checkout 10.42.1.11 shop Deployment checkout"
  "postgres 10.42.1.12 shop StatefulSet postgres"
  "telegraf 10.42.1.20 analytics DaemonSet telegraf"
  "influxdb 10.42.1.159 analytics StatefulSet influxdb"
  "coredns 10.42.1.53 kube-system Deployment coredns"
)
partner=203.0.113.7

in_ns() { ip netns exec "ewcl-$1" "${@:2}"; }

down() {
  for ns in $(ip netns list | awk '/^ewcl-/ {print $1}'); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}

# Servers: HTTP on 8080 and 8086, an SSH banner on 2222, a PostgreSQL-like
# listener on 5432, TLS-like on 443; each answers and closes.
SERVER='
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept(); c.settimeout(2)
        try:
            if port == 2222:
                c.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            c.recv(512)
            if port in (8080, 8086):
                c.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        except OSError:
            pass
        c.close()
for port in map(int, sys.argv[1:]):
    threading.Thread(target=serve, args=(port,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
'

up() {
  down
  ip netns add ewcl-node
  in_ns node sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  in_ns node ip link set lo up
  in_ns node ip link add ewcl-br0 type bridge
  in_ns node ip link set ewcl-br0 up
  for pod in "${pods[@]}" "partner $partner"; do
    set -- $pod
    ip netns add "ewcl-$1"
    ip link add "ewh-$1" netns ewcl-node type veth peer name eth0 netns "ewcl-$1"
    in_ns node ip link set "ewh-$1" master ewcl-br0 up
    in_ns "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    in_ns "$1" ip link set lo up
    in_ns "$1" ip link set eth0 up
    if [ "$1" = partner ]; then
      in_ns "$1" ip addr add "$2/24" dev eth0
      in_ns "$1" ip route add 10.42.1.0/24 dev eth0
    else
      in_ns "$1" ip addr add "$2/24" dev eth0
      in_ns "$1" ip route add 203.0.113.0/24 dev eth0
    fi
  done
  in_ns coredns dnsmasq --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
    --listen-address=10.42.1.53 --user=root --pid-file= --local-ttl=30 \
    --host-record=checkout.shop.svc.cluster.local,10.42.1.11 \
    --host-record=postgres.shop.svc.cluster.local,10.42.1.12 \
    --host-record=influxdb.analytics.svc.cluster.local,10.42.1.159 \
    --host-record=api.partner.example,$partner
  for server in "checkout 8080 2222" "postgres 5432" "influxdb 8086" "partner 443"; do
    set -- $server
    in_ns "$1" python3 -c "$SERVER" "${@:2}" > "/tmp/ewcl-$1.ready" 2>/dev/null < /dev/null &
  done
  for server in checkout postgres influxdb partner; do
    for _ in $(seq 100); do grep -q ready "/tmp/ewcl-$server.ready" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "/tmp/ewcl-$server.ready" 2>/dev/null || { echo "scenario: $server did not start" >&2; exit 1; }
    rm -f "/tmp/ewcl-$server.ready"
  done
}

# A client: resolves NAME through the cluster's DNS (unless it is an
# address), connects to PORT, sends PAYLOAD (hex), reads the answer.
CLIENT='
import random, socket, struct, sys
name, port, payload, seconds = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3]), float(sys.argv[4])
try:
    socket.inet_aton(name); address = name
except OSError:
    q = struct.pack(">HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(1)
    for _ in range(5):
        u.sendto(q, ("10.42.1.53", 53))
        try:
            answer = u.recv(4096); break
        except socket.timeout:
            pass
    address = socket.inet_ntoa(answer[-4:])
s = socket.socket(); s.settimeout(seconds)
try:
    s.connect((address, port))
except OSError as e:
    print("client: %s:%d: %s" % (address, port, e), file=sys.stderr)
    sys.exit(1)
if payload:
    s.sendall(payload)
try:
    s.recv(512)
except OSError:
    pass
s.close()
'

client() { # pod name port payload-hex [seconds]
  in_ns "$1" python3 -c "$CLIENT" "$2" "$3" "$4" "${5:-3}"
}

http_get=$(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' | od -An -tx1 | tr -d ' \n')
http_post=$(printf 'POST /write?db=metrics HTTP/1.1\r\nHost: x\r\n\r\n' | od -An -tx1 | tr -d ' \n')
# A PostgreSQL startup message (protocol 3.0) and the start of a TLS
# ClientHello.
pg_startup=0000001c00030000757365720061707000646174616261736500617070000000
tls_hello=16030100a5010000a10303

traffic() {
  client frontend checkout.shop.svc.cluster.local 8080 "$http_get"
  client frontend 10.42.1.11 2222 ""
  client checkout postgres.shop.svc.cluster.local 5432 "$pg_startup"
  client telegraf influxdb.analytics.svc.cluster.local 8086 "$http_post"
  # The edge no NetworkPolicy allows: under the demo's drop rule, its own
  # connection is cut if its first SYN has to be sent again after the ban
  # landed, so its failure does not fail the traffic.
  client frontend postgres.shop.svc.cluster.local 5432 "$pg_startup" || true
  client frontend api.partner.example 443 "$tls_hello"
}

# The Kubernetes objects of the pods above (what `kubectl get pods,
# namespaces -A -o json` would give).
objects() {
  python3 - "${pods[@]}" <<'PY'
import json, sys
items, namespaces = [], set()
for n, line in enumerate(sys.argv[1:]):
    pod, ip, ns, kind, workload = line.split()
    namespaces.add(ns)
    owner_kind, owner = (("ReplicaSet", workload + "-7d9f8c6b5") if kind == "Deployment" else (kind, workload))
    name = {"Deployment": workload + "-7d9f8c6b5-x" + str(n), "StatefulSet": workload + "-0", "DaemonSet": workload + "-n" + str(n)}[kind]
    items.append({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": "0000-%04d" % n,
                     "labels": {"app": workload},
                     "creationTimestamp": "2026-11-23T10:00:00Z",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner, "controller": True}]},
        "spec": {"nodeName": "demo-node", "serviceAccountName": workload,
                 "containers": [{"name": workload}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "startTime": "2026-11-23T10:00:00Z",
                   "conditions": [{"type": "Ready", "status": "True"}]},
    })
for ns in sorted(namespaces):
    items.append({"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}})
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=1))
PY
}

generate() {
  trap down EXIT
  up
  ip netns exec ewcl-node tcpdump --immediate-mode -U -n -i ewcl-br0 -w "$here/capture.pcap" 2>/dev/null &
  dump_pid=$!
  sleep 1
  traffic
  sleep 0.5
  kill -INT "$dump_pid"; wait "$dump_pid" || true
  objects > "$here/objects.json"
  echo "wrote $here/capture.pcap ($(stat -c %s "$here/capture.pcap") bytes) and $here/objects.json"
}

case "${1:-}" in
  up) up ;;
  traffic) traffic ;;
  connect) client "$2" "$3" "$4" "" "$5" ;;
  down) down ;;
  objects) objects ;;
  generate) generate ;;
  *) echo "usage: $0 up|traffic|connect FROM IP PORT SECONDS|down|objects|generate" >&2; exit 2 ;;
esac
