//! Every packet a node carries, on the real kernel: VLAN-tagged frames
//! (802.1Q, QinQ), IPv6 extension headers, VXLAN through the kernel's own
//! `vxlan` devices (the IANA port and Linux's 8472), Geneve, VXLAN-GPE, IP
//! in IP, GRE, and an L3 device without an Ethernet header. The observers
//! open each to the inner packet, so events carry the inner addresses (SYN headers, whose
//! JA4T they give, and DNS answers, whose names they give); a replay of
//! the same frames gives the same events.
//!
//! This kernel has no 802.1Q, `geneve`, `ipip`, `gre`, `sit` or `WireGuard`
//! devices built in (`ip link add t type ipip` answers "Unknown device
//! type"), so those cases are crafted frames written into one end of a
//! veth pair with a packet socket: the tagged frames stand for what a VLAN
//! device or a trunk port carries, the tunnel frames for what a `geneve`
//! (OVN, Antrea), `ipip` (Calico) or `gre` device sends on the physical
//! NIC; a `tun` device (packets that begin with the IP header, `ARPHRD_NONE`,
//! as `WireGuard`'s) stands for the tunnel devices themselves. VXLAN uses the
//! kernel's own devices between two namespaces.
//!
//! Needs root, `ip`, `python3` and `tcpdump`; skips with the reason
//! otherwise (a failure under `CI=true`). Traffic stays in the namespaces
//! the test creates.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use edgewise_capture::{Capture, CaptureConfig, EventKind, PROGRAM_INGRESS_L3};
use edgewise_test_support::run;
use support::{
    Listener, Net, Seen, Tcpdump, collect, connects, netns, preflight, preflight_tcpdump,
    replay_capture,
};

/// Crafts the frames: `send IFACE` writes them into IFACE with a packet
/// socket, `pcap FILE` writes them as a capture, `tun NAME FILE` makes an
/// L3 device, says `ready`, and on a line of input writes one IPv4 SYN
/// into it (and the capture of it into FILE).
const FRAMES: &str = r"
import fcntl, os, socket, struct, subprocess, sys

def csum(data):
    if len(data) % 2: data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def ipv4(src, dst, proto, payload):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + payload

def syn(sport, dport):
    # MSS 1460, window scale 7: what a JA4T needs.
    options = bytes([2, 4, 5, 180, 1, 3, 3, 7])
    return struct.pack('!HHIIBBHHH', sport, dport, 1000, 0, (5 + 2) << 4, 0x02, 64240, 0, 0) + options

def udp(sport, dport, payload):
    return struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload

MAC_A, MAC_B = bytes.fromhex('02aa00000001'), bytes.fromhex('ffffffffffff')

def eth(ethertype, payload, tags=()):
    head = MAC_B + MAC_A
    for tpid, vid in tags:
        head += struct.pack('!HH', tpid, vid)
    return head + struct.pack('!H', ethertype) + payload

def dns(name, address):
    # A response with one A record (the name compressed), TTL 300.
    question = b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\0'
    return (struct.pack('!HHHHHH', 0x4242, 0x8180, 1, 1, 0, 0) + question + struct.pack('!HH', 1, 1)
            + struct.pack('!HHHIH', 0xc00c, 1, 1, 300, 4) + socket.inet_aton(address))

def ipv6(src, dst, next_header, payload):
    return struct.pack('!IHBB16s16s', 0x60000000, len(payload), next_header, 64,
                       socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)) + payload

def frames():
    # IPv6 with a hop-by-hop and a destination options header before TCP.
    hop_by_hop = struct.pack('!BB6x', 60, 0)
    destination = struct.pack('!BB6x', 6, 0)
    yield eth(0x86dd, ipv6('fd00:9::1', 'fd00:9::2', 0, hop_by_hop + destination + syn(40015, 443)))
    # DNS answers behind a VLAN tag, inside Geneve and inside IP in IP.
    yield eth(0x0800, ipv4('10.9.20.53', '10.9.20.1', 17, udp(53, 5353, dns('vlan.edgewise.test', '10.9.21.1'))),
              [(0x8100, 10)])
    geneve_dns = struct.pack('!BBHI', 0, 0, 0x6558, 7 << 8) + eth(
        0x0800, ipv4('10.9.22.53', '10.9.22.1', 17, udp(53, 5353, dns('geneve.edgewise.test', '10.9.23.1'))))
    yield eth(0x0800, ipv4('172.31.8.1', '172.31.8.2', 17, udp(50002, 6081, geneve_dns)))
    yield eth(0x0800, ipv4('172.31.9.1', '172.31.9.2', 4,
                           ipv4('10.9.24.53', '10.9.24.1', 17, udp(53, 5353, dns('ipip.edgewise.test', '10.9.25.1')))))
    yield eth(0x0800, ipv4('10.9.1.1', '10.9.1.2', 6, syn(40001, 80)), [(0x8100, 10)])
    yield eth(0x0800, ipv4('10.9.2.1', '10.9.2.2', 6, syn(40002, 80)), [(0x88a8, 100), (0x8100, 10)])
    yield eth(0x0800, ipv4('10.9.3.1', '10.9.3.2', 6, syn(40003, 80)),
              [(0x88a8, 100), (0x8100, 10), (0x8100, 11)])
    # Four tags: past what the observers (and the replay's decoder) follow.
    yield eth(0x0800, ipv4('10.9.8.1', '10.9.8.2', 6, syn(40008, 80)),
              [(0x88a8, 100), (0x8100, 10), (0x8100, 11), (0x8100, 12)])
    inner = eth(0x0800, ipv4('10.9.4.1', '10.9.4.2', 6, syn(40004, 443)))
    # Geneve: version 0, two words of options, Transparent Ethernet Bridging, VNI 7.
    geneve = struct.pack('!BBHI', 2, 0, 0x6558, 7 << 8) + struct.pack('!HBBI', 0x0102, 0x80, 1, 0)
    yield eth(0x0800, ipv4('172.31.0.1', '172.31.0.2', 17, udp(50000, 6081, geneve + inner)))
    # IP in IP (Calico's tunl0 between nodes), GRE carrying IP, VXLAN-GPE
    # carrying IP (I and P flags, next protocol 1).
    yield eth(0x0800, ipv4('172.31.1.1', '172.31.1.2', 4, ipv4('10.9.10.1', '10.9.10.2', 6, syn(40010, 5432))))
    gre = struct.pack('!HH', 0, 0x0800)
    yield eth(0x0800, ipv4('172.31.2.1', '172.31.2.2', 47, gre + ipv4('10.9.11.1', '10.9.11.2', 6, syn(40011, 8080))))
    gpe = struct.pack('!BBBBI', 0x0c, 0, 0, 1, 9 << 8)
    yield eth(0x0800, ipv4('172.31.3.1', '172.31.3.2', 17,
                           udp(50001, 4790, gpe + ipv4('10.9.12.1', '10.9.12.2', 6, syn(40012, 9000)))))
    # A tunnel in a tunnel; five tunnels deep, past what the observers
    # (and the replay's decoder) open: counted.
    yield eth(0x0800, ipv4('172.31.4.1', '172.31.4.2', 4,
                           ipv4('172.31.5.1', '172.31.5.2', 4, ipv4('10.9.13.1', '10.9.13.2', 6, syn(40013, 80)))))
    deep = ipv4('10.9.14.1', '10.9.14.2', 6, syn(40014, 80))
    for level in range(5):
        deep = ipv4('172.31.6.%d' % level, '172.31.7.%d' % level, 4, deep)
    yield eth(0x0800, deep)

def pcap(path, linktype, packets):
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, linktype))
        for n, p in enumerate(packets):
            f.write(struct.pack('<IIII', 1700000000 + n, 0, len(p), len(p)) + p)

mode = sys.argv[1]
if mode == 'send':
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((sys.argv[2], 0))
    for f in frames():
        s.send(f)
elif mode == 'pcap':
    pcap(sys.argv[2], 1, list(frames()))
elif mode == 'tun':
    fd = os.open('/dev/net/tun', os.O_RDWR)
    fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', sys.argv[2].encode(), 0x0001 | 0x1000))
    subprocess.run(['ip', 'link', 'set', sys.argv[2], 'up'], check=True)
    print('ready', flush=True)
    sys.stdin.readline()
    packet = ipv4('10.9.5.1', '10.9.5.2', 6, syn(40005, 22))
    os.write(fd, packet)
    pcap(sys.argv[3], 101, [packet])
    sys.stdin.readline()
";

fn python(namespace: &str, args: &[&str]) {
    let status = Command::new("ip")
        .args(["netns", "exec", namespace, "python3", "-c", FRAMES])
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "python3 {args:?}");
}

fn syns(seen: &[Seen]) -> Vec<(SocketAddr, SocketAddr)> {
    let mut syns: Vec<_> = seen
        .iter()
        .filter(|e| e.kind == EventKind::Syn)
        .map(|e| (e.src, e.dst))
        .collect();
    syns.sort_unstable();
    syns.dedup();
    syns
}

fn pair(src: &str, dst: &str) -> (SocketAddr, SocketAddr) {
    (src.parse().unwrap(), dst.parse().unwrap())
}

/// What the SYN and DNS events said, whole (a SYN's header is what its
/// JA4T is made of), in order, each once.
type Said = (EventKind, SocketAddr, SocketAddr, Vec<u8>);

fn said(seen: &[Seen]) -> Vec<Said> {
    let mut said: Vec<Said> = seen
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Syn | EventKind::DnsResponse))
        .map(|e| (e.kind, e.src, e.dst, e.data.clone()))
        .collect();
    said.sort_unstable();
    said.dedup();
    said
}

/// The names the DNS events resolved: (question, address).
fn names(said: &[Said]) -> Vec<(String, String)> {
    let mut names = Vec::new();
    for (kind, _, _, data) in said {
        if *kind != EventKind::DnsResponse {
            continue;
        }
        let message = edgewise_fqdn_store::Message::parse(data).unwrap();
        let resolution = edgewise_fqdn_store::Resolution::new(message).unwrap();
        for address in resolution.addresses() {
            names.push((resolution.question().to_string(), address.ip.to_string()));
        }
    }
    names.sort_unstable();
    names
}

#[test]
fn vlan_tags_and_tunnels_are_opened_to_the_inner_packet_as_a_replay_opens_them() {
    if !preflight() {
        return;
    }
    let net = Net::create("v");
    let mut sender = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.egress = vec![net.client_if.clone()];
        capture_config.netns = Some(netns(&net.client_ns));
        capture_config
    })
    .unwrap();
    let mut receiver = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![net.server_if.clone()];
        capture_config.netns = Some(netns(&net.server_ns));
        capture_config
    })
    .unwrap();
    python(&net.client_ns, &["send", &net.client_if]);
    let expected = vec![
        pair("10.9.1.1:40001", "10.9.1.2:80"),
        pair("10.9.2.1:40002", "10.9.2.2:80"),
        pair("10.9.3.1:40003", "10.9.3.2:80"),
        pair("10.9.4.1:40004", "10.9.4.2:443"),
        pair("10.9.10.1:40010", "10.9.10.2:5432"),
        pair("10.9.11.1:40011", "10.9.11.2:8080"),
        pair("10.9.12.1:40012", "10.9.12.2:9000"),
        pair("10.9.13.1:40013", "10.9.13.2:80"),
        pair("[fd00:9::1]:40015", "[fd00:9::2]:443"),
    ];
    // The sender's egress sees the tags in the frame: the four-tag frame
    // is past the parser. The receiver's ingress sees it after the kernel
    // took the outer tag off (into the packet's metadata): three are left.
    let dns = 3;
    let sent = collect(&mut sender, expected.len() + dns);
    assert_eq!(syns(&sent), expected, "egress");
    let mut three_left = expected.clone();
    three_left.push(pair("10.9.8.1:40008", "10.9.8.2:80"));
    three_left.sort_unstable();
    let arrived = collect(&mut receiver, three_left.len() + dns);
    assert_eq!(syns(&arrived), three_left, "ingress");
    let named = [
        ("geneve.edgewise.test", "10.9.23.1"),
        ("ipip.edgewise.test", "10.9.25.1"),
        ("vlan.edgewise.test", "10.9.21.1"),
    ]
    .map(|(name, address)| (name.to_owned(), address.to_owned()));
    assert_eq!(names(&said(&sent)), named, "names resolved inside tunnels");
    assert_eq!(names(&said(&arrived)), named);
    let counters = sender.counters().unwrap();
    assert!(
        counters.parse_limit >= 2,
        "the four-tag frame and the five tunnels are counted: {counters:?}"
    );
    let pcap = std::env::temp_dir().join(format!("edgewise-frames-{}.pcap", std::process::id()));
    python(&net.client_ns, &["pcap", pcap.to_str().unwrap()]);
    assert_eq!(
        said(&replay_capture(&pcap)),
        said(&sent),
        "a replay gives the same SYN headers and DNS answers"
    );
    std::fs::remove_file(&pcap).unwrap();
}

#[test]
fn vxlan_devices_of_the_kernel_carry_edges_and_names_seen_with_their_inner_addresses() {
    if !preflight_tcpdump() {
        return;
    }
    let net = Net::create("x");
    for (id, port, subnet) in [("42", "4789", "10.9.6"), ("43", "8472", "10.9.7")] {
        for (ns, underlay, local, remote, host) in [
            (
                &net.client_ns,
                &net.client_if,
                "10.214.0.1",
                "10.214.0.2",
                "1",
            ),
            (
                &net.server_ns,
                &net.server_if,
                "10.214.0.2",
                "10.214.0.1",
                "2",
            ),
        ] {
            let device = format!("ewvx{id}");
            run(&[
                "ip", "-n", ns, "link", "add", &device, "type", "vxlan", "id", id, "local", local,
                "remote", remote, "dstport", port, "dev", underlay,
            ]);
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{subnet}.{host}/24"),
                "dev",
                &device,
            ]);
            run(&["ip", "-n", ns, "link", "set", &device, "up"]);
        }
    }
    let mut capture = Capture::attach(&net.client_config()).unwrap();
    let pcap = std::env::temp_dir().join(format!("edgewise-vxlan-{}.pcap", std::process::id()));
    let tcpdump = Tcpdump::start(&net.client_ns, &net.client_if, &pcap);
    let _server = Listener::start(&net.server_ns);
    for subnet in ["10.9.6", "10.9.7"] {
        assert!(connects(
            &net.client_ns,
            &format!("{subnet}.1"),
            &format!("{subnet}.2"),
            8086,
            5.0
        ));
    }
    // A name resolved through the 8472 tunnel (dnsmasq on the far side).
    let Some(dns_server) = support::dns_server(&net.server_ns, "10.9.7.2") else {
        return;
    };
    let answer = support::dns_query(&net.client_ns, "10.9.7.2", "api.edgewise.test", "10.9.7.1");
    drop(dns_server);
    let seen = collect(&mut capture, 5);
    let live_said = said(&seen);
    assert_eq!(
        names(&live_said),
        [("api.edgewise.test".to_owned(), "10.214.0.9".to_owned())],
        "{seen:#?}"
    );
    let (server, client) = pair("10.9.7.2:53", "10.9.7.1:5353");
    assert!(
        live_said.contains(&(EventKind::DnsResponse, server, client, answer)),
        "the answer with the inner addresses, byte for byte"
    );
    for subnet in ["10.9.6", "10.9.7"] {
        let syn = seen
            .iter()
            .find(|e| e.kind == EventKind::Syn && e.dst.to_string() == format!("{subnet}.2:8086"))
            .unwrap_or_else(|| panic!("the SYN inside VXLAN to {subnet}.2: {seen:#?}"));
        assert_eq!(syn.src.ip().to_string(), format!("{subnet}.1"));
        assert!(
            seen.iter()
                .any(|e| e.kind == EventKind::SynAck
                    && e.src.to_string() == format!("{subnet}.2:8086")),
            "the SYN-ACK back through {subnet}"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    tcpdump.stop();
    assert_eq!(
        said(&replay_capture(&pcap)),
        live_said,
        "tcpdump's capture replayed gives the same SYN headers and DNS answers"
    );
    std::fs::remove_file(&pcap).unwrap();
}

#[test]
fn an_l3_device_is_observed_from_its_ip_header() {
    if !preflight() {
        return;
    }
    let net = Net::create("t");
    let pcap = std::env::temp_dir().join(format!("edgewise-tun-{}.pcap", std::process::id()));
    let mut device = Command::new("ip")
        .args(["netns", "exec", &net.client_ns, "python3", "-c", FRAMES])
        .args(["tun", "ewtun0", pcap.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(device.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let mut capture = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec!["ewtun0".to_owned()];
        capture_config.netns = Some(netns(&net.client_ns));
        capture_config
    })
    .unwrap();
    assert_eq!(capture.attachments()[0].program, PROGRAM_INGRESS_L3);
    let mut input = device.stdin.take().unwrap();
    writeln!(input).unwrap();
    let seen = collect(&mut capture, 1);
    writeln!(input).unwrap();
    drop(input);
    assert!(device.wait().unwrap().success());
    let expected = vec![pair("10.9.5.1:40005", "10.9.5.2:22")];
    assert_eq!(syns(&seen), expected, "{seen:#?}");
    assert_eq!(
        syns(&replay_capture(&pcap)),
        expected,
        "a replay gives the same"
    );
    std::fs::remove_file(&pcap).unwrap();
}
