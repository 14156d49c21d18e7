//! The observers on a real kernel: two network namespaces joined by a veth
//! pair, the observers attached to one end inside its namespace (through
//! setns, as a node agent attaches to a pod's interface), a real TCP
//! handshake over IPv4 and IPv6, and a UDP answer from port 53.
//!
//! Needs root and `ip` and `python3`; skips with the reason otherwise (a
//! failure under `CI=true`). Traffic stays between the two namespaces the
//! test creates; both are deleted on exit, even on panic.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use edgewise_capture::{Capture, CaptureConfig, Direction, EventKind};
use edgewise_test_support::{Namespaces, have, is_root, run, skip};

/// What one event said, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    kind: EventKind,
    direction: Direction,
    src: SocketAddr,
    dst: SocketAddr,
    data: Vec<u8>,
}

const CLIENT: &str = r"
import socket, sys
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(5)
s.bind((sys.argv[1], 0))
s.connect((sys.argv[2], 8086))
s.close()
";

const SERVER: &str = r"
import socket, sys, time
socks = []
for family, addr in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 8086)); s.listen(16); s.settimeout(0.2); socks.append(s)
print('ready', flush=True)
deadline = time.time() + 20
while time.time() < deadline:
    for s in socks:
        try:
            c, _ = s.accept(); c.close()
        except OSError:
            pass
";

/// Sends one UDP datagram from port 53 (a DNS answer's shape).
const DNS_ANSWER: &str = r"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
s.sendto(bytes.fromhex(sys.argv[3]), (sys.argv[2], 5353))
";

/// Two namespaces joined by a veth pair, with IPv4 and IPv6 addresses.
struct Net {
    client_ns: String,
    server_ns: String,
    client_if: String,
    _namespaces: Namespaces,
}

impl Net {
    fn create() -> Self {
        let id = std::process::id() % 100_000;
        let (client_ns, server_ns) = (format!("ewc-a{id}"), format!("ewc-b{id}"));
        let (client_if, server_if) = (format!("ewca{id}"), format!("ewcb{id}"));
        let namespaces = Namespaces(vec![client_ns.clone(), server_ns.clone()]);
        run(&["ip", "netns", "add", &client_ns]);
        run(&["ip", "netns", "add", &server_ns]);
        run(&[
            "ip", "link", "add", &client_if, "netns", &client_ns, "type", "veth", "peer", "name",
            &server_if, "netns", &server_ns,
        ]);
        for (ns, interface, v4, v6) in [
            (&client_ns, &client_if, "10.214.0.1/24", "fd00:ed6f::1/64"),
            (&server_ns, &server_if, "10.214.0.2/24", "fd00:ed6f::2/64"),
        ] {
            run(&["ip", "-n", ns, "addr", "add", v4, "dev", interface]);
            run(&["ip", "-n", ns, "addr", "add", v6, "dev", interface, "nodad"]);
            run(&["ip", "-n", ns, "link", "set", interface, "up"]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }

        Self {
            client_ns,
            server_ns,
            client_if,
            _namespaces: namespaces,
        }
    }
}

/// Polls until `count` events came or 5 s passed.
fn collect(capture: &mut Capture, count: usize) -> Vec<Seen> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.len() < count && Instant::now() < deadline {
        capture
            .poll(Duration::from_millis(100), |event| {
                let event = event.expect("a record the programs wrote decodes");
                seen.push(Seen {
                    kind: event.kind,
                    direction: event.direction,
                    src: event.src,
                    dst: event.dst,
                    data: event.data.to_vec(),
                });
            })
            .unwrap();
    }
    seen
}

/// The SYN from `client` and the SYN-ACK back, with their headers.
fn check_handshake(seen: &[Seen], client: &str, server_address: &str) {
    let syn = seen
        .iter()
        .find(|e| e.kind == EventKind::Syn && e.src.ip().to_string() == client)
        .unwrap_or_else(|| panic!("no SYN from {client}: {seen:?}"));
    assert_eq!(syn.direction, Direction::Egress);
    assert_eq!(syn.dst, server_address.parse().unwrap());
    // The data is the TCP header as sent: ports, flags, options.
    assert_eq!(
        u16::from_be_bytes([syn.data[0], syn.data[1]]),
        syn.src.port()
    );
    assert_eq!(u16::from_be_bytes([syn.data[2], syn.data[3]]), 8086);
    assert_eq!(
        usize::from(syn.data[12] >> 4) * 4,
        syn.data.len(),
        "the whole header, options included"
    );
    assert_eq!(syn.data[13] & 0x12, 0x02, "SYN without ACK");
    assert!(syn.data.len() > 20, "Linux sends options on a SYN");

    let syn_ack = seen
        .iter()
        .find(|e| e.kind == EventKind::SynAck && e.dst == syn.src)
        .unwrap_or_else(|| panic!("no SYN-ACK to {}: {seen:?}", syn.src));
    assert_eq!(syn_ack.direction, Direction::Ingress);
    assert_eq!(syn_ack.src, server_address.parse().unwrap());
    assert_eq!(syn_ack.data[13] & 0x12, 0x12, "SYN and ACK");
}

#[test]
fn syn_syn_ack_and_dns_events_from_a_real_handshake() {
    if !is_root() {
        skip("attaching eBPF programs needs root");
        return;
    }
    for tool in ["ip", "python3"] {
        if !have(tool) {
            skip(&format!("{tool} is not installed"));
            return;
        }
    }
    let net = Net::create();
    let (client_ns, server_ns, client_if) = (&net.client_ns, &net.server_ns, &net.client_if);
    let mut capture = Capture::attach(&CaptureConfig {
        ingress: vec![client_if.clone()],
        egress: vec![client_if.clone()],
        netns: Some(PathBuf::from(format!("/run/netns/{client_ns}"))),
        ..CaptureConfig::default()
    })
    .expect("attach the observers");

    let mut server = Command::new("ip")
        .args(["netns", "exec", server_ns, "python3", "-c", SERVER])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.as_mut().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "ready");
    for (from, to) in [
        ("10.214.0.1", "10.214.0.2"),
        ("fd00:ed6f::1", "fd00:ed6f::2"),
    ] {
        run(&[
            "ip", "netns", "exec", client_ns, "python3", "-c", CLIENT, from, to,
        ]);
    }
    let answer = "abcd81800001000100000000";
    run(&[
        "ip",
        "netns",
        "exec",
        server_ns,
        "python3",
        "-c",
        DNS_ANSWER,
        "10.214.0.2",
        "10.214.0.1",
        answer,
    ]);

    let seen = collect(&mut capture, 5);
    let _ = server.kill();
    let _ = server.wait();

    for (client, server_address) in [
        ("10.214.0.1", "10.214.0.2:8086"),
        ("fd00:ed6f::1", "[fd00:ed6f::2]:8086"),
    ] {
        check_handshake(&seen, client, server_address);
    }
    let dns = seen
        .iter()
        .find(|e| e.kind == EventKind::DnsResponse)
        .unwrap_or_else(|| panic!("no DNS event: {seen:?}"));
    assert_eq!(
        (dns.direction, dns.src, dns.dst),
        (
            Direction::Ingress,
            "10.214.0.2:53".parse().unwrap(),
            "10.214.0.1:5353".parse().unwrap()
        )
    );
    assert_eq!(dns.data, [0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);

    let counters = capture.counters().unwrap();
    assert!(counters.events >= 5, "{counters:?}");
    assert_eq!(counters.lost, 0);
}
