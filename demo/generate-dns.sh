#!/usr/bin/env bash
# Regenerates demo/dns.pcap: real DNS traffic between network namespaces that
# pose as a pod (10.42.1.17, fd00:42::17) and the cluster DNS (dnsmasq on
# 10.42.0.10 and fd00:42::10): A through a three-hop CNAME chain, AAAA over
# IPv6, NXDOMAIN, TXT / MX / SRV, mixed case, a 60-address answer that is
# truncated over UDP and retried over TCP. A second "server" (10.42.0.66,
# Python) answers with hostile shapes: an unrelated record in the answer
# section, a forward compression pointer, and over TCP two messages in one
# segment and one message split across two segments.
#
# Needs root, iproute2, tcpdump, dnsmasq and python3. Traffic stays between
# the namespaces this script creates; they are deleted on exit.
# Usage: sudo demo/generate-dns.sh [OUT.pcap]
set -euo pipefail
out=$(realpath -m "${1:-$(dirname "$0")/dns.pcap}")
ns_c=ewdns-client ns_s=ewdns-server
work=
cleanup() {
  [ -n "${dump_pid:-}" ] && kill "$dump_pid" 2>/dev/null && wait "$dump_pid" 2>/dev/null || true
  ip netns pids "$ns_s" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$ns_c" 2>/dev/null || true
  ip netns del "$ns_s" 2>/dev/null || true
  [ -n "$work" ] && rm -rf "$work"
  return 0
}
trap cleanup EXIT
cleanup
work=$(mktemp -d)

ip netns add "$ns_c"
ip netns add "$ns_s"
ip link add ewdns-c netns "$ns_c" type veth peer name ewdns-s netns "$ns_s"
ip -n "$ns_c" addr add 10.42.1.17/16 dev ewdns-c
ip -n "$ns_s" addr add 10.42.0.10/16 dev ewdns-s
ip -n "$ns_s" addr add 10.42.0.66/16 dev ewdns-s
ip -n "$ns_c" -6 addr add fd00:42::17/64 dev ewdns-c nodad
ip -n "$ns_s" -6 addr add fd00:42::10/64 dev ewdns-s nodad
for ns in "$ns_c" "$ns_s"; do ip -n "$ns" link set lo up; done
ip -n "$ns_c" link set ewdns-c up
ip -n "$ns_s" link set ewdns-s up

for n in $(seq 1 60); do echo "10.99.0.$n many.analytics.svc.cluster.local"; done > "$work/hosts"
ip netns exec "$ns_s" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --bind-interfaces --listen-address=10.42.0.10,fd00:42::10 --user=root --local-ttl=30 --pid-file="$work/pid" \
  --addn-hosts="$work/hosts" --local=/cluster.local/ --local=/example.com/ \
  --host-record=influxdb.analytics.svc.cluster.local,10.42.1.159,fd00:42::159 \
  --host-record=api.example.com,192.0.2.10 \
  --cname=edge.cdn.example.com,api.example.com \
  --cname=www.example.com,edge.cdn.example.com \
  --txt-record=example.com,"v=spf1 -all" \
  --mx-host=example.com,mail.example.com,10 \
  --srv-host=_http._tcp.influxdb.analytics.svc.cluster.local,influxdb.analytics.svc.cluster.local,8086 &

ip netns exec "$ns_s" python3 - <<'PY' &
# The hostile server: crafted responses, UDP and TCP on 10.42.0.66:53.
import socket, struct, threading, time
def name(n): return b''.join(bytes([len(l)]) + l.encode() for l in n.split('.')) + b'\0'
def response(query, answers, ancount):
    qid = query[:2]; q = query[12:query.index(b'\0', 12) + 5]
    return qid + b'\x81\x80' + struct.pack('>HHHH', 1, ancount, 0, 0) + q + answers
def a(owner, ip, ttl=60):
    return owner + struct.pack('>HHIH', 1, 1, ttl, 4) + socket.inet_aton(ip)
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('10.42.0.66', 53))
    while True:
        query, peer = s.recvfrom(512)
        qname = query[12:query.index(b'\0', 12)].lower()
        if b'bank' in qname:   # poisoning shape: an unrelated A record alongside
            s.sendto(response(query, a(b'\xc0\x0c', '192.0.2.80') + a(name('evil.example.net'), '203.0.113.66'), 2), peer)
        else:                  # a forward compression pointer in the answer
            s.sendto(response(query, b'\xc0\xff' + struct.pack('>HHIH', 1, 1, 60, 4) + bytes(4), 1), peer)
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('10.42.0.66', 53)); s.listen(4)
    while True:
        c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        length = struct.unpack('>H', c.recv(2))[0]; query = c.recv(length)
        one = response(query, a(b'\xc0\x0c', '192.0.2.91'), 1)
        two = response(query, a(b'\xc0\x0c', '192.0.2.92'), 1)
        three = response(query, a(b'\xc0\x0c', '192.0.2.93'), 1)
        frame = lambda m: struct.pack('>H', len(m)) + m
        c.sendall(frame(one) + frame(two))          # two messages, one segment
        time.sleep(0.2)
        c.sendall(frame(three)[:9]); time.sleep(0.2)  # one message, two segments
        c.sendall(frame(three)[9:]); time.sleep(0.2)
        c.close()
threading.Thread(target=udp, daemon=True).start()
threading.Thread(target=tcp, daemon=True).start()
time.sleep(30)
PY

ip netns exec "$ns_s" tcpdump --immediate-mode -U -n -i ewdns-s -w "$out" port 53 2>/dev/null &
dump_pid=$!
sleep 1.5

ip netns exec "$ns_c" python3 - <<'PY'
import random, socket, struct, time
def query(qname, qtype, edns=True):
    q = struct.pack('>HHHHHH', random.randrange(65536), 0x0100, 1, 0, 0, 1 if edns else 0)
    q += b''.join(bytes([len(l)]) + l.encode() for l in qname.split('.')) + b'\0' + struct.pack('>HH', qtype, 1)
    if edns: q += b'\0' + struct.pack('>HHIH', 41, 1232, 0, 0)
    return q
def udp(server, qname, qtype, edns=True):
    family = socket.AF_INET6 if ':' in server else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(2)
    s.sendto(query(qname, qtype, edns), (server, 53))
    try: return s.recv(65535)
    except OSError: return b''
def tcp(server, qname, qtype):
    s = socket.create_connection((server, 53), timeout=3)
    q = query(qname, qtype); s.sendall(struct.pack('>H', len(q)) + q)
    data = b''
    while True:
        chunk = s.recv(65535)
        if not chunk: break
        data += chunk
        if server == '10.42.0.10' and len(data) >= 2 and len(data) >= 2 + struct.unpack('>H', data[:2])[0]: break
    s.close()
A, AAAA, MX, TXT, SRV = 1, 28, 15, 16, 33
for _ in range(20):
    if udp('10.42.0.10', 'influxdb.analytics.svc.cluster.local', A): break
    time.sleep(0.2)
udp('10.42.0.10', 'www.example.com', A)
udp('fd00:42::10', 'InfluxDB.Analytics.svc.cluster.local', AAAA)
udp('10.42.0.10', 'nope.analytics.svc.cluster.local', A)
udp('10.42.0.10', 'example.com', TXT)
udp('10.42.0.10', 'example.com', MX)
udp('10.42.0.10', '_http._tcp.influxdb.analytics.svc.cluster.local', SRV)
udp('10.42.0.10', 'many.analytics.svc.cluster.local', A, edns=False)  # too big: TC=1
tcp('10.42.0.10', 'many.analytics.svc.cluster.local', A)
udp('10.42.0.66', 'bank.example.com', A)
udp('10.42.0.66', 'broken.example.com', A)
tcp('10.42.0.66', 'split.example.com', A)
time.sleep(0.5)
PY
sleep 1
kill "$dump_pid"; wait "$dump_pid" 2>/dev/null || true
dump_pid=
echo "wrote $out"
