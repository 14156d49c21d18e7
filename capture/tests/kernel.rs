//! The observers on a real kernel: two network namespaces joined by a veth
//! pair, the observers attached to one end inside its namespace (through
//! setns, as a node agent attaches to a pod's interface), a real TCP
//! handshake over IPv4 and IPv6, and a DNS answer from dnsmasq.
//!
//! Needs root and `ip`, `python3` and `dnsmasq`; skips with the reason otherwise (a
//! failure under `CI=true`). Traffic stays between the two namespaces the
//! test creates; both are deleted on exit, even on panic.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use edgewise_capture::{BanTable, Capture, CaptureConfig, Direction, EventKind};
use edgewise_edge_set::EdgeKey;
use edgewise_ip_index::Protocol;
use edgewise_test_support::run;
use edgewise_time::UnixNanos;
use support::{
    DNS_ANSWER, Listener, Net, PinDir, Tcpdump, check_handshake, collect, connects, dns_query,
    dns_server, ensure_bpffs, preflight, preflight_tcpdump, replay_capture, start_python,
};

mod support;

#[test]
fn syn_syn_ack_and_dns_events_from_a_real_handshake() {
    if !preflight() {
        return;
    }
    let net = Net::create("s");
    let (client_ns, server_ns, client_if) = (&net.client_ns, &net.server_ns, &net.client_if);
    let Some(dns_server) = dns_server(server_ns, "10.214.0.2") else {
        return;
    };
    let mut capture = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![client_if.clone()];
        capture_config.egress = vec![client_if.clone()];
        capture_config.netns = Some(PathBuf::from(format!("/run/netns/{client_ns}")));
        capture_config
    })
    .expect("attach the observers");

    let listener = Listener::start(server_ns);
    for (from, to) in [
        ("10.214.0.1", "10.214.0.2"),
        ("fd00:ed6f::1", "fd00:ed6f::2"),
    ] {
        assert!(connects(client_ns, from, to, 8086, 5.0));
    }
    let answer = dns_query(client_ns, "10.214.0.2", "api.edgewise.test", "10.214.0.1");
    drop(dns_server);
    let seen = collect(&mut capture, 5);
    drop(listener);

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
    assert_eq!(dns.data, answer, "the answer dnsmasq sent, byte for byte");
    assert!(
        answer.ends_with(&[10, 214, 0, 9]),
        "dnsmasq answered with the address: {answer:?}"
    );

    let counters = capture.counters().unwrap();
    assert!(counters.events >= 5, "{counters:?}");
    assert_eq!(counters.lost, 0);
}

#[test]
fn a_banned_edge_times_out_while_others_pass_until_the_ban_expires() {
    if !preflight() {
        return;
    }
    ensure_bpffs();
    let net = Net::create("b");
    let pin_dir = PinDir(PathBuf::from(format!(
        "/sys/fs/bpf/edgewise-test-{}",
        std::process::id()
    )));
    let mut capture = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![net.client_if.clone()];
        capture_config.egress = vec![net.client_if.clone()];
        capture_config.netns = Some(PathBuf::from(format!("/run/netns/{}", net.client_ns)));
        capture_config.pin_dir = Some(pin_dir.0.clone());
        capture_config
    })
    .expect("attach the observers");
    let pin = capture
        .pin_dir()
        .expect("bpffs is mounted: the drop map is pinned")
        .to_owned();
    let _listener = Listener::start(&net.server_ns);
    let (client, server) = ("10.214.0.1", "10.214.0.2");
    assert!(
        connects(&net.client_ns, client, server, 8086, 2.0),
        "no ban yet"
    );

    // Another process would open the pin; so does this handle.
    let mut bans = BanTable::open_pinned(&pin).expect("open the pinned drop map");
    let edge = EdgeKey {
        src: client.parse().unwrap(),
        dst: server.parse().unwrap(),
        port: 8086,
        protocol: Protocol::Tcp,
    };
    bans.ban(&edge, Duration::from_millis(2500)).unwrap();
    let banned_at = Instant::now();
    assert!(
        !connects(&net.client_ns, client, server, 8086, 0.7),
        "the banned edge times out"
    );
    assert!(
        connects(&net.client_ns, client, server, 8087, 2.0),
        "another port passes"
    );
    assert!(
        connects(&net.client_ns, "fd00:ed6f::1", "fd00:ed6f::2", 8086, 2.0),
        "the same port over IPv6 is another edge"
    );
    let held = capture.bans().bans().unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].edge, edge);
    assert!(held[0].drops >= 1, "{held:?}");
    assert!(capture.counters().unwrap().dropped >= 1);
    // The drops are reported, client to server, at most once a second.
    let reports: Vec<_> = collect(&mut capture, 64)
        .into_iter()
        .filter(|seen| seen.kind == EventKind::Drop)
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "one report within the second: {reports:?}"
    );
    assert_eq!(reports[0].src.ip().to_string(), client);
    assert_eq!(reports[0].dst.to_string(), format!("{server}:8086"));
    let count = u64::from_ne_bytes(reports[0].data[..8].try_into().unwrap());
    assert!(count >= 1 && count <= held[0].drops, "{count} of {held:?}");

    // Expiry restores the edge.
    let expired = banned_at + Duration::from_millis(2600);
    std::thread::sleep(expired.saturating_duration_since(Instant::now()));
    assert!(
        connects(&net.client_ns, client, server, 8086, 2.0),
        "the ban expired"
    );
    assert_eq!(capture.bans().bans().unwrap()[0].remaining, Duration::ZERO);
    assert_eq!(capture.bans().sweep().unwrap(), 1, "the expired ban goes");
    assert!(capture.bans().bans().unwrap().is_empty());

    // Past a sweep that closed the gate, a new ban (through the other
    // handle) opens it again.
    bans.ban(&edge, Duration::from_secs(30)).unwrap();
    assert!(
        !connects(&net.client_ns, client, server, 8086, 0.7),
        "banned again after the sweep"
    );
    assert_eq!(capture.bans().sweep().unwrap(), 0, "a live ban stays");
    assert!(
        !connects(&net.client_ns, client, server, 8086, 0.7),
        "a sweep keeps the gate open for a live ban"
    );
    assert!(capture.bans().unban(&edge).unwrap());
    assert!(!capture.bans().unban(&edge).unwrap());
    assert!(
        connects(&net.client_ns, client, server, 8086, 2.0),
        "unbanned"
    );

    drop(capture);
    drop(bans);
    assert!(
        pin.join(edgewise_capture::BANS_PIN_NAME).exists(),
        "the pin outlives the capture"
    );
}

#[test]
fn a_full_ring_counts_what_it_loses_and_a_dropped_capture_leaves_nothing_attached() {
    if !preflight() {
        return;
    }
    let net = Net::create("r");
    let netns = PathBuf::from(format!("/run/netns/{}", net.client_ns));
    let mut capture = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![net.client_if.clone()];
        capture_config.egress = vec![net.client_if.clone()];
        capture_config.netns = Some(netns.clone());
        // One page holds 7 events of 576 bytes (plus their headers).
        capture_config.ring_bytes = 4096;
        capture_config
    })
    .expect("attach the observers");
    assert_eq!(
        edgewise_capture::tcx_programs(&net.client_if, Some(&netns)).unwrap(),
        (1, 1)
    );
    let _listener = Listener::start(&net.server_ns);
    for _ in 0..10 {
        assert!(connects(
            &net.client_ns,
            "10.214.0.1",
            "10.214.0.2",
            8086,
            2.0
        ));
    }
    // Nothing was read while 20 events came: the ring overflowed.
    let counters = capture.counters().unwrap();
    let read = collect(&mut capture, usize::MAX).len() as u64;
    assert!(counters.lost > 0, "{counters:?}");
    assert_eq!(read, counters.events, "every event written was read");
    assert!(counters.events + counters.lost >= 20, "{counters:?}");

    drop(capture);
    assert_eq!(
        edgewise_capture::tcx_programs(&net.client_if, Some(&netns)).unwrap(),
        (0, 0),
        "dropping the capture detached both programs"
    );
}

/// On port 8088: sends a banner, then echoes until the client closes.
const BANNER_SERVER: &str = r"
import socket, threading
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 8088)); s.listen(16)
print('ready', flush=True)
def serve(c):
    c.sendall(b'SSH-2.0-edgewise\r\n')
    while True:
        data = c.recv(64)
        if not data: break
        c.sendall(data)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
";

/// Connects to port 8088, reads the banner, prints `connected`, then sends
/// a line every 100 ms for `argv[3]` seconds.
const CHATTY_CLIENT: &str = r"
import socket, sys, time
s = socket.create_connection((sys.argv[2], 8088), timeout=5, source_address=(sys.argv[1], 0))
s.recv(64)
print('connected', s.getsockname()[1], flush=True)
end = time.time() + float(sys.argv[3])
while time.time() < end:
    s.sendall(b'ping\n'); s.recv(64); time.sleep(0.1)
s.close()
";

#[test]
fn connections_older_than_the_observer_show_as_flow_samples_and_first_payloads_as_banners() {
    if !preflight() {
        return;
    }
    let net = Net::create("f");
    let (_server, ready) = start_python(&net.server_ns, BANNER_SERVER, &[]);
    assert_eq!(ready.trim(), "ready");
    // A connection made before the observers are attached.
    let (_chatty, connected) = start_python(
        &net.client_ns,
        CHATTY_CLIENT,
        &["10.214.0.1", "10.214.0.2", "4"],
    );
    let old_port: u16 = connected
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();

    let mut capture = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![net.client_if.clone()];
        capture_config.egress = vec![net.client_if.clone()];
        capture_config.netns = Some(PathBuf::from(format!("/run/netns/{}", net.client_ns)));
        capture_config.flow_sample_window = Duration::from_millis(400);
        capture_config
    })
    .expect("attach the observers");
    let started = Instant::now();
    // A new connection while observing: its banner is an event. (The old
    // connection's first payload seen, an echoed ping, is its banner.)
    let (_reader, _) = start_python(
        &net.client_ns,
        CHATTY_CLIENT,
        &["10.214.0.1", "10.214.0.2", "0.1"],
    );
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_millis(1600) {
        seen.extend(collect(&mut capture, usize::MAX));
    }
    let observed = started.elapsed();

    let old_client: SocketAddr = format!("10.214.0.1:{old_port}").parse().unwrap();
    let samples = seen
        .iter()
        .filter(|e| e.kind == EventKind::FlowSample && e.src == old_client)
        .count();
    let most = usize::try_from(observed.as_millis() / 400).unwrap() + 1;
    assert!(
        (2..=most).contains(&samples),
        "the old connection is sampled about once per 400 ms window: {samples} in {observed:?}"
    );
    assert!(
        seen.iter()
            .all(|e| !(e.kind == EventKind::Syn && e.src == old_client)),
        "its handshake predates the observers"
    );
    let banner = seen
        .iter()
        .find(|e| {
            e.kind == EventKind::Banner
                && e.direction == Direction::Ingress
                && e.src.port() == 8088
                && e.dst != old_client
        })
        .unwrap_or_else(|| panic!("no banner: {seen:?}"));
    assert_eq!(banner.data, b"SSH-2.0-edgewise\r\n");
    let banners_of_flow = seen
        .iter()
        .filter(|e| e.kind == EventKind::Banner && e.src == banner.src && e.dst == banner.dst)
        .count();
    assert_eq!(
        banners_of_flow, 1,
        "one banner per flow, however much it sends"
    );
}

/// What an event says apart from when and where it was seen.
/// An event as the parity check compares it: kind, ends, sequence number
/// and data.
type Said = (EventKind, SocketAddr, SocketAddr, u32, Vec<u8>);

/// Connects to port 8088, reads the banner, then sends a 3,005-byte TLS
/// handshake record (a ClientHello's size with post-quantum key shares) in
/// two writes 50 ms apart, so that it spans segments.
const HELLO_CLIENT: &str = r"
import socket, sys, time
s = socket.create_connection((sys.argv[2], 8088), timeout=5, source_address=(sys.argv[1], 0))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.recv(64)
record = bytes([22, 3, 1, 0x0b, 0xb8]) + bytes(i % 251 for i in range(3000))
s.sendall(record[:1000]); time.sleep(0.05); s.sendall(record[1000:]); time.sleep(0.2)
print('sent', flush=True)
s.close()
";

/// Connects to port 8088, reads the banner, then sends a SOCKS 5 greeting
/// and, after it, a 300-byte TLS handshake record: a hello after a proxy
/// handshake.
const PROXY_CLIENT: &str = r"
import socket, sys, time
s = socket.create_connection((sys.argv[2], 8088), timeout=5, source_address=(sys.argv[1], 0))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.recv(64)
s.sendall(bytes([5, 1, 0])); time.sleep(0.05)
s.sendall(bytes([22, 3, 1, 1, 0x27]) + bytes(295)); time.sleep(0.2)
print('sent', flush=True)
s.close()
";

/// Runs `HELLO_CLIENT` and `PROXY_CLIENT` from `namespace` to completion
/// (their guards, to keep until the end).
fn send_hellos(namespace: &str) -> Vec<Listener> {
    [HELLO_CLIENT, PROXY_CLIENT]
        .into_iter()
        .map(|script| {
            let (child, sent) = start_python(namespace, script, &["10.214.0.1", "10.214.0.2"]);
            assert_eq!(sent.trim(), "sent");
            child
        })
        .collect()
}

/// The length of `HELLO_CLIENT`'s record as its banner parts join.
fn joined_hello(live: &[Said]) -> Option<usize> {
    let mut parts: Vec<&Said> = live
        .iter()
        .filter(|e| e.0 == EventKind::Banner && e.2.port() == 8088 && e.4.len() >= 900)
        .collect();
    parts.sort_by_key(|e| e.3);
    let mut first = edgewise_capture::first_bytes::FirstBytes::new(4);
    parts.iter().find_map(|e| {
        first
            .add(&edgewise_capture::event::Event {
                kind: e.0,
                direction: Direction::Unknown,
                time: UnixNanos::ZERO,
                ifindex: 0,
                src: e.1,
                dst: e.2,
                protocol: 6,
                wire_len: 0,
                seq: e.3,
                data: &e.4,
            })
            .map(|b| b.len())
    })
}

#[test]
fn a_replay_of_tcpdumps_capture_gives_the_same_events_as_the_live_observers() {
    if !preflight_tcpdump() {
        return;
    }
    let net = Net::create("p");
    let pcap = std::env::temp_dir().join(format!("edgewise-capture-{}.pcap", std::process::id()));
    let mut capture = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![net.client_if.clone()];
        capture_config.egress = vec![net.client_if.clone()];
        capture_config.netns = Some(PathBuf::from(format!("/run/netns/{}", net.client_ns)));
        capture_config
    })
    .expect("attach the observers");
    let tcpdump = Tcpdump::start(&net.client_ns, &net.client_if, &pcap);

    let _listener = Listener::start(&net.server_ns);
    let (_banner_server, _) = start_python(&net.server_ns, BANNER_SERVER, &[]);
    for (from, to) in [
        ("10.214.0.1", "10.214.0.2"),
        ("fd00:ed6f::1", "fd00:ed6f::2"),
    ] {
        assert!(connects(&net.client_ns, from, to, 8086, 5.0));
    }
    let (_chatty, _) = start_python(
        &net.client_ns,
        CHATTY_CLIENT,
        &["10.214.0.1", "10.214.0.2", "0.3"],
    );
    let _hellos = send_hellos(&net.client_ns);
    std::thread::sleep(Duration::from_millis(500));
    run(&[
        "ip",
        "netns",
        "exec",
        &net.server_ns,
        "python3",
        "-c",
        DNS_ANSWER,
        "10.214.0.2",
        "10.214.0.1",
        "abcd81800001000100000000",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    tcpdump.stop();

    let mut live: Vec<Said> = collect(&mut capture, usize::MAX)
        .into_iter()
        .map(|e| (e.kind, e.src, e.dst, e.seq, e.data))
        .collect();
    let mut replayed: Vec<Said> = replay_capture(&pcap)
        .into_iter()
        .map(|e| (e.kind, e.src, e.dst, e.seq, e.data))
        .collect();
    std::fs::remove_file(&pcap).unwrap();
    live.sort();
    replayed.sort();
    assert!(live.iter().any(|e| e.0 == EventKind::Banner), "{live:?}");
    assert!(
        live.iter().any(|e| e.0 == EventKind::DnsResponse),
        "{live:?}"
    );
    assert_eq!(joined_hello(&live), Some(3005), "the hello's parts");
    // After a SOCKS greeting, the record that follows is a banner too.
    assert!(
        live.iter().any(|e| e.0 == EventKind::Banner
            && e.2.port() == 8088
            && e.4.len() == 300
            && e.4.starts_with(&[22, 3, 1])),
        "the hello after the proxy handshake"
    );
    let only_live: Vec<&Said> = live.iter().filter(|e| !replayed.contains(e)).collect();
    let only_replayed: Vec<&Said> = replayed.iter().filter(|e| !live.contains(e)).collect();
    assert_eq!(
        live, replayed,
        "the replay gives exactly the live events; only live: {only_live:?}; only replayed: {only_replayed:?}"
    );
}

#[test]
fn the_egress_observer_can_be_limited_to_source_networks() {
    if !preflight() {
        return;
    }
    let net = Net::create("e");
    let mut capture = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![net.client_if.clone()];
        capture_config.egress = vec![net.client_if.clone()];
        capture_config.netns = Some(PathBuf::from(format!("/run/netns/{}", net.client_ns)));
        capture_config.egress_sources = vec!["fd00:ed6f::/64".parse().unwrap()];
        capture_config
    })
    .expect("attach the observers");
    let _listener = Listener::start(&net.server_ns);
    for (from, to) in [
        ("10.214.0.1", "10.214.0.2"),
        ("fd00:ed6f::1", "fd00:ed6f::2"),
    ] {
        assert!(connects(&net.client_ns, from, to, 8086, 5.0));
    }
    let seen = collect(&mut capture, 4);
    let syn_from = |family_v6: bool| {
        seen.iter()
            .any(|e| e.kind == EventKind::Syn && e.src.is_ipv6() == family_v6)
    };
    assert!(
        syn_from(true),
        "a source in the networks is observed: {seen:?}"
    );
    assert!(!syn_from(false), "10.214.0.1 is not in them: {seen:?}");
    let syn_acks = seen.iter().filter(|e| e.kind == EventKind::SynAck).count();
    assert_eq!(syn_acks, 2, "ingress is not filtered: {seen:?}");
}
