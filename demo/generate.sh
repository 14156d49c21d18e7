#!/usr/bin/env bash
# Regenerates demo/handshakes.pcap: real TCP handshakes between network
# namespaces that pose as pods (IPv4 and IPv6, an ECN-enabled client, a client
# with a small MSS, a refused connection, and SYN-ACK retransmissions ended by
# a bare RST).
#
# Needs root, iproute2, tcpdump and python3.
# Traffic stays between the namespaces this script creates; they are deleted
# on exit. Usage: sudo demo/generate.sh [OUT.pcap]
set -euo pipefail
out=$(realpath -m "${1:-$(dirname "$0")/handshakes.pcap}")
ns_c=ewdemo-client ns_s=ewdemo-server
cleanup() {
  ip netns del "$ns_c" 2>/dev/null || true
  ip netns del "$ns_s" 2>/dev/null || true
  [ -n "${dump_pid:-}" ] && kill "$dump_pid" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip netns add "$ns_c"
ip netns add "$ns_s"
ip link add ewdemo-c netns "$ns_c" type veth peer name ewdemo-s netns "$ns_s"
ip -n "$ns_c" addr add 10.42.1.17/24 dev ewdemo-c
ip -n "$ns_s" addr add 10.42.1.159/24 dev ewdemo-s
ip -n "$ns_c" -6 addr add fd00:42::17/64 dev ewdemo-c nodad
ip -n "$ns_s" -6 addr add fd00:42::159/64 dev ewdemo-s nodad
for ns in "$ns_c" "$ns_s"; do ip -n "$ns" link set lo up; done
ip -n "$ns_c" link set ewdemo-c up
ip -n "$ns_s" link set ewdemo-s up

ip netns exec "$ns_s" tcpdump --immediate-mode -U -n -i ewdemo-s -w "$out" tcp 2>/dev/null &
dump_pid=$!
sleep 1

ip netns exec "$ns_s" python3 - <<'PY' &
import select, socket, time
socks = []
for family, addr, port in ((socket.AF_INET, '0.0.0.0', 8086), (socket.AF_INET6, '::', 8086),
                           (socket.AF_INET, '0.0.0.0', 5432)):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port)); s.listen(16); socks.append(s)
deadline = time.time() + 15
while time.time() < deadline:
    ready, _, _ = select.select(socks, [], [], 0.2)
    for s in ready:
        c, _ = s.accept(); c.settimeout(1)
        try:
            c.recv(64); c.sendall(b'HTTP/1.1 204 No Content\r\n\r\n')
        except OSError:
            pass
        c.close()
PY
server_pid=$!
sleep 0.5

client() { # host port [mss] [ecn]
  ip netns exec "$ns_c" sh -c "sysctl -qw net.ipv4.tcp_ecn=${4:-0}; exec python3 -c '
import socket, sys
host, port, mss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if \":\" in host else socket.AF_INET)
if mss: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
s.settimeout(5)
try:
    s.connect((host, port)); s.sendall(b\"GET /ping HTTP/1.1\\r\\n\\r\\n\"); s.recv(64)
except OSError as e:
    print(\"client:\", host, port, e, file=sys.stderr)
s.close()' $1 $2 ${3:-0}"
}

client 10.42.1.159 8086
client fd00:42::159 8086
client 10.42.1.159 5432 1200
client 10.42.1.159 8086 0 1
client 10.42.1.159 9999 2>/dev/null || true   # refused: bare RST from the server

# SYN-ACK retransmissions: a raw SYN (Windows-like options) from 10.42.1.99,
# an address no namespace owns. The server's SYN-ACKs reach the client
# namespace's MAC through a static neighbour entry and are dropped there (not
# ours), so the server kernel retransmits them; a bare RST ends it.
mac=$(ip -n "$ns_c" -j link show ewdemo-c | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
ip -n "$ns_s" neigh add 10.42.1.99 lladdr "$mac" dev ewdemo-s
ip netns exec "$ns_c" python3 - <<'PY'
import socket, struct, time
src, dst, sport, dport = '10.42.1.99', '10.42.1.159', 50123, 8086
def csum(data):
    if len(data) % 2: data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16: total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff
def segment(flags, seq, options=b''):
    off = (20 + len(options)) // 4
    tcp = struct.pack('!HHIIBBHHH', sport, dport, seq, 0, off << 4, flags, 64240, 0, 0) + options
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    return ip + tcp
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
syn_options = bytes([2, 4, 5, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2])
s.sendto(segment(0x02, 1000, syn_options), (dst, 0))
time.sleep(3.6)
s.sendto(segment(0x04, 1001), (dst, 0))
PY

wait "$server_pid" || true
sleep 0.5
kill -INT "$dump_pid"; wait "$dump_pid" || true
dump_pid=
echo "wrote $out ($(stat -c %s "$out") bytes)"
