//! Every DNS answer, on the real kernel: dnsmasq (from Debian) answers one
//! name with 200 addresses, a 3,246-byte answer over UDP (EDNS0, a 4,096-
//! byte buffer) and the same over TCP. The observers hand the UDP answer
//! whole and the TCP answer as segments that fqdn-store's framing puts
//! back together; a replay of tcpdump's capture of the same interface gives
//! the same. With the copy limit lowered, the UDP answer is cut, and
//! counted; over a 1,500-byte MTU it leaves in IP fragments, of which the
//! observers see the first, and count it.
//!
//! Needs root, `ip`, `python3`, `dnsmasq` and `tcpdump`; skips with the
//! reason otherwise (a failure under `CI=true`). Traffic stays in the
//! namespaces the test creates.

mod support;

use std::net::SocketAddr;

use edgewise_capture::{Capture, CaptureConfig, EventKind};
use edgewise_fqdn_store::{Segment, StreamsConfig, TcpDnsStreams};
use edgewise_time::UnixNanos;
use support::{
    Net, Seen, Tcpdump, collect, dns_server_with, netns, preflight_tcpdump, python_hex,
    replay_capture,
};

/// The name dnsmasq answers with [`ADDRESSES`] addresses.
const NAME: &str = "big.edgewise.test";
const ADDRESSES: usize = 200;

/// Asks `argv[1]` for NAME's A records over `argv[2]` (`udp`, with an EDNS0
/// buffer of 4,096 bytes, or `tcp`), retrying while the server starts;
/// prints the answer in hex (without TCP's length prefix).
const QUERY: &str = r"
import socket, struct, sys, time
name = b''.join(bytes([len(l)]) + l.encode() for l in sys.argv[3].split('.')) + b'\0'
question = name + struct.pack('>HH', 1, 1)
for attempt in range(50):
    try:
        if sys.argv[2] == 'udp':
            query = struct.pack('>HHHHHH', 0x5151, 0x0100, 1, 0, 0, 1) + question
            query += b'\0' + struct.pack('>HHIH', 41, 4096, 0, 0)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            s.sendto(query, (sys.argv[1], 53))
            print(s.recv(65535).hex()); sys.exit(0)
        query = struct.pack('>HHHHHH', 0x5252, 0x0100, 1, 0, 0, 0) + question
        s = socket.create_connection((sys.argv[1], 53), timeout=0.5)
        s.sendall(struct.pack('>H', len(query)) + query)
        got = b''
        while len(got) < 2 or len(got) < 2 + struct.unpack('>H', got[:2])[0]:
            part = s.recv(65535)
            if not part: break
            got += part
        s.close()
        print(got[2:].hex()); sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
";

fn query(namespace: &str, transport: &str) -> Vec<u8> {
    python_hex(namespace, QUERY, &["10.214.0.2", transport, NAME])
}

/// What the DNS events say: the UDP answers, and the TCP answers put back
/// together from their segments as the pipeline does.
#[derive(Debug, Default, PartialEq, Eq)]
struct Answers {
    udp: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    tcp: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Answers {
    fn read(events: &[Seen]) -> Self {
        let mut answers = Self::default();
        let mut streams = TcpDnsStreams::new(StreamsConfig::default());
        for event in events {
            match event.kind {
                EventKind::DnsResponse => {
                    answers.udp.push((event.src, event.dst, event.data.clone()));
                }
                EventKind::DnsSegment => {
                    let segment = Segment {
                        seq: event.seq,
                        syn: false,
                        fin_or_rst: false,
                        payload: &event.data,
                    };
                    streams
                        .push(
                            &(event.src, event.dst),
                            segment,
                            UnixNanos::ZERO,
                            |message| {
                                answers.tcp.push((event.src, event.dst, message.to_vec()));
                            },
                        )
                        .unwrap();
                }
                _ => {}
            }
        }
        answers.udp.dedup();
        answers
    }
}

#[test]
fn a_3000_byte_answer_over_udp_and_one_over_tcp_arrive_whole_live_and_in_replay() {
    if !preflight_tcpdump() {
        return;
    }
    let net = Net::create("d");
    // A link that carries the UDP answer in one packet (jumbo frames).
    for (ns, interface) in [
        (&net.client_ns, &net.client_if),
        (&net.server_ns, &net.server_if),
    ] {
        edgewise_test_support::run(&["ip", "-n", ns, "link", "set", interface, "mtu", "9000"]);
    }
    let hosts = std::env::temp_dir().join(format!("edgewise-hosts-{}", std::process::id()));
    let lines: Vec<String> = (0..ADDRESSES)
        .map(|i| format!("10.77.{}.{} {NAME}", i / 250, i % 250 + 1))
        .collect();
    let lines = lines.join("\n");
    std::fs::write(&hosts, lines).unwrap();
    let Some(_server) = dns_server_with(
        &net.server_ns,
        "10.214.0.2",
        &[
            &format!("--addn-hosts={}", hosts.display()),
            "--edns-packet-max=4096",
        ],
    ) else {
        return;
    };
    let mut capture = Capture::attach(&net.client_config()).unwrap();
    let pcap = std::env::temp_dir().join(format!("edgewise-dns-{}.pcap", std::process::id()));
    let tcpdump = Tcpdump::start(&net.client_ns, &net.client_if, &pcap);
    let udp_answer = query(&net.client_ns, "udp");
    let tcp_answer = query(&net.client_ns, "tcp");
    assert!(udp_answer.len() > 3000, "{} bytes", udp_answer.len());
    assert!(tcp_answer.len() > 3000, "{} bytes", tcp_answer.len());
    let live = collect(&mut capture, 6);
    std::thread::sleep(std::time::Duration::from_millis(300));
    tcpdump.stop();

    let answers = Answers::read(&live);
    let server: SocketAddr = "10.214.0.2:53".parse().unwrap();
    assert_eq!(answers.udp.len(), 1, "{:?}", answers.udp);
    assert_eq!((answers.udp[0].0, &answers.udp[0].2), (server, &udp_answer));
    assert_eq!(answers.tcp.len(), 1, "one TCP answer: {live:#?}");
    assert_eq!((answers.tcp[0].0, &answers.tcp[0].2), (server, &tcp_answer));
    let counters = capture.counters().unwrap();
    assert_eq!((counters.cut, counters.lost), (0, 0), "{counters:?}");
    assert_eq!(
        Answers::read(&replay_capture(&pcap)),
        answers,
        "tcpdump's capture replayed gives the same answers"
    );
    std::fs::remove_file(&pcap).unwrap();
    drop(capture);

    // The copy limit lowered: the answer is cut, and counted.
    let mut capture = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![net.client_if.clone()];
        capture_config.netns = Some(netns(&net.client_ns));
        capture_config.dns_max_payload = 512;
        capture_config
    })
    .unwrap();
    let _ = query(&net.client_ns, "udp");
    let live = collect(&mut capture, 1);
    let cut = Answers::read(&live);
    assert_eq!(cut.udp.len(), 1, "{live:#?}");
    // dnsmasq turns its addresses round between answers: the header and
    // the question stay.
    let question = 12 + NAME.len() + 2 + 4;
    assert_eq!(cut.udp[0].2.len(), 512);
    assert_eq!(cut.udp[0].2[..question], udp_answer[..question]);
    assert_eq!(capture.counters().unwrap().cut, 1);

    // Over the usual MTU the answer is IP-fragmented: the first fragment
    // is delivered with what it holds, and counted.
    for (ns, interface) in [
        (&net.client_ns, &net.client_if),
        (&net.server_ns, &net.server_if),
    ] {
        edgewise_test_support::run(&["ip", "-n", ns, "link", "set", interface, "mtu", "1500"]);
    }
    let _ = query(&net.client_ns, "udp");
    let live = collect(&mut capture, 1);
    let first = Answers::read(&live);
    assert_eq!(first.udp.len(), 1, "{live:#?}");
    assert!(first.udp[0].2.len() < 1500, "{}", first.udp[0].2.len());
    assert_eq!(first.udp[0].2[..question], udp_answer[..question]);
    let counters = capture.counters().unwrap();
    // Cut again too: the copy limit is still 512.
    assert_eq!((counters.cut, counters.fragmented), (2, 1), "{counters:?}");
    std::fs::remove_file(&hosts).unwrap();
}
