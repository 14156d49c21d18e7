//! What the kernel tests share: two network namespaces joined by a veth
//! pair, a Python listener and client, and event collection.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use edgewise_capture::{CaptureConfig, Direction, Event, EventKind, Sensor};
use edgewise_test_support::{Namespaces, have, is_root, run, skip};

/// The path `ip netns` gives the namespace `name`.
pub fn netns(name: &str) -> PathBuf {
    PathBuf::from(format!("/run/netns/{name}"))
}

/// What one event said, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub kind: EventKind,
    pub direction: Direction,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub data: Vec<u8>,
}

impl Seen {
    /// The event, owned.
    pub fn of(event: &Event<'_>) -> Self {
        Self {
            kind: event.kind,
            direction: event.direction,
            src: event.src,
            dst: event.dst,
            seq: event.seq,
            data: event.data.to_vec(),
        }
    }
}

/// Connects from `argv[1]` to `argv[2]` port `argv[3]`; exit status 1
/// when the connection does not complete within `argv[4]` seconds.
pub const CLIENT: &str = r"
import socket, sys
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[4]))
s.bind((sys.argv[1], 0))
try:
    s.connect((sys.argv[2], int(sys.argv[3])))
except OSError:
    sys.exit(1)
s.close()
";

/// Listens on ports 8086 and 8087, IPv4 and IPv6, accepting and closing.
pub const SERVER: &str = r"
import select, socket, sys, time
socks = []
for family, addr in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
    for port in (8086, 8087):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, port)); s.listen(64); s.setblocking(False); socks.append(s)
print('ready', flush=True)
deadline = time.time() + 30
while time.time() < deadline:
    ready, _, _ = select.select(socks, [], [], 0.2)
    for s in ready:
        try:
            c, _ = s.accept(); c.close()
        except OSError:
            pass
";

/// Two namespaces joined by a veth pair, with IPv4 and IPv6 addresses.
pub struct Net {
    pub client_ns: String,
    pub server_ns: String,
    pub client_if: String,
    pub server_if: String,
    pub _namespaces: Namespaces,
}

impl Net {
    /// `tag` keeps the names of tests running side by side apart.
    pub fn create(tag: &str) -> Self {
        let id = std::process::id() % 100_000;
        let (client_ns, server_ns) = (format!("ewc-a{tag}{id}"), format!("ewc-b{tag}{id}"));
        let (client_if, server_if) = (format!("ewa{tag}{id}"), format!("ewb{tag}{id}"));
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
            server_if,
            _namespaces: namespaces,
        }
    }

    /// The observers on the client's interface, both directions, attached
    /// inside the client's namespace.
    pub fn client_config(&self) -> CaptureConfig {
        let mut config = CaptureConfig::default();
        config.ingress = vec![self.client_if.clone()];
        config.egress = vec![self.client_if.clone()];
        config.netns = Some(netns(&self.client_ns));
        config
    }
}

/// [`preflight`], and tcpdump for the tests that replay its capture.
pub fn preflight_tcpdump() -> bool {
    if !preflight() {
        return false;
    }
    if !have("tcpdump") {
        skip("tcpdump is not installed");
        return false;
    }
    true
}

/// Root and the tools, or a printed reason to skip.
pub fn preflight() -> bool {
    if !is_root() {
        skip("attaching eBPF programs needs root");
        return false;
    }
    for tool in ["ip", "python3"] {
        if !have(tool) {
            skip(&format!("{tool} is not installed"));
            return false;
        }
    }
    true
}

/// The listener in the server namespace, killed when dropped.
pub struct Listener(pub std::process::Child);

impl Listener {
    pub fn start(namespace: &str) -> Self {
        let (listener, ready) = start_python(namespace, SERVER, &[]);
        assert_eq!(ready.trim(), "ready");
        listener
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a TCP connection from `from` to `to`:`port` completes within
/// `seconds`.
pub fn connects(namespace: &str, from: &str, to: &str, port: u16, seconds: f32) -> bool {
    Command::new("ip")
        .args([
            "netns", "exec", namespace, "python3", "-c", CLIENT, from, to,
        ])
        .args([port.to_string(), seconds.to_string()])
        .status()
        .unwrap()
        .success()
}

/// Polls until `count` events came, the ring ran dry after some, or 5 s
/// passed.
pub fn collect(capture: &mut impl Sensor, count: usize) -> Vec<Seen> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.len() < count && Instant::now() < deadline {
        let read = capture
            .poll_events(Duration::from_millis(100), &mut |event| {
                let event = event.expect("a record the programs wrote decodes");
                seen.push(Seen::of(&event));
            })
            .unwrap();
        if read == 0 && !seen.is_empty() {
            break;
        }
    }
    seen
}

/// The SYN from `client` and the SYN-ACK back, with their headers.
pub fn check_handshake(seen: &[Seen], client: &str, server_address: &str) {
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

/// Whether bpffs is mounted at /sys/fs/bpf; mounts it if not.
pub fn ensure_bpffs() {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if !mounts
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some("/sys/fs/bpf"))
    {
        run(&["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"]);
    }
}

/// A bpffs folder of pins, removed when dropped (also on panic).
pub struct PinDir(pub PathBuf);

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `script` in `namespace` and waits for its first line.
pub fn start_python(namespace: &str, script: &str, args: &[&str]) -> (Listener, String) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", namespace, "python3", "-c", script])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    (Listener(child), line)
}

/// Sends one UDP datagram from port 53 (a DNS answer's shape).
pub const DNS_ANSWER: &str = r"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
s.sendto(bytes.fromhex(sys.argv[3]), (sys.argv[2], 5353))
";

/// Asks the DNS server at `argv[1]` for `argv[2]`'s A record from port
/// 5353 of `argv[3]`, retrying while the server starts; prints the answer
/// in hex.
const DNS_QUERY: &str = r"
import random, socket, struct, sys, time
name = b''.join(bytes([len(l)]) + l.encode() for l in sys.argv[2].split('.')) + b'\0'
query = struct.pack('>HHHHHH', random.randrange(65536), 0x0100, 1, 0, 0, 0) + name + struct.pack('>HH', 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[3], 5353)); s.settimeout(0.2)
for _ in range(50):
    s.sendto(query, (sys.argv[1], 53))
    try:
        print(s.recv(4096).hex()); sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
";

/// dnsmasq answering on `address` port 53 inside `namespace`, with
/// `api.edgewise.test` at 10.214.0.9; killed when dropped. `None` (after a
/// printed skip) when dnsmasq is not installed.
pub fn dns_server(namespace: &str, address: &str) -> Option<Listener> {
    dns_server_with(namespace, address, &[])
}

/// [`dns_server`] with more of dnsmasq's options.
pub fn dns_server_with(namespace: &str, address: &str, options: &[&str]) -> Option<Listener> {
    if !have("dnsmasq") {
        skip("dnsmasq is not installed (apt-get install dnsmasq-base)");
        return None;
    }
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            namespace,
            "dnsmasq",
            "--keep-in-foreground",
        ])
        .args([
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--user=root",
            "--pid-file=",
            &format!("--listen-address={address}"),
            "--host-record=api.edgewise.test,10.214.0.9",
        ])
        .args(options)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start dnsmasq");
    Some(Listener(child))
}

/// The answer the DNS server at `server` gave to a query for `name` from
/// `client` port 5353, inside `namespace`, as the client received it.
pub fn dns_query(namespace: &str, server: &str, name: &str, client: &str) -> Vec<u8> {
    python_hex(namespace, DNS_QUERY, &[server, name, client])
}

/// What `script` run with `args` inside `namespace` printed in hex, as
/// bytes; it must succeed.
pub fn python_hex(namespace: &str, script: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new("ip")
        .args(["netns", "exec", namespace, "python3", "-c", script])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "python3 {args:?} failed");
    let hex = String::from_utf8(output.stdout).unwrap();
    let hex = hex.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// tcpdump writing an interface's packets to a file.
pub struct Tcpdump(std::process::Child);

impl Tcpdump {
    pub fn start(namespace: &str, interface: &str, file: &std::path::Path) -> Self {
        use std::io::BufRead;
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                namespace,
                "tcpdump",
                "--immediate-mode",
                "-U",
            ])
            .args(["-i", interface, "-s", "0", "-nn", "-w"])
            .arg(file)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut started = String::new();
        std::io::BufReader::new(child.stderr.as_mut().unwrap())
            .read_line(&mut started)
            .unwrap();
        assert!(started.contains("listening on"), "{started}");
        Self(child)
    }

    /// SIGINT lets it write out what it holds (`ip netns exec` execs it).
    pub fn stop(mut self) {
        run(&["kill", "-INT", &self.0.id().to_string()]);
        let _ = self.0.wait();
    }
}

/// The events a replay of the capture file at `path` gives, in order.
pub fn replay_capture(path: &std::path::Path) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut replay = edgewise_capture::Replay::new(edgewise_capture::ReplayConfig::default());
    let mut reader =
        edgewise_packet::CaptureReader::new(std::fs::File::open(path).unwrap()).unwrap();
    while let Some(frame) = reader.next_frame() {
        let frame = frame.unwrap();
        let Ok(packet) = edgewise_packet::decode(frame.link, frame.data) else {
            continue;
        };
        replay.packet(frame.time, frame.original_len, &packet, |e| {
            seen.push(Seen::of(&e));
        });
    }
    seen
}
