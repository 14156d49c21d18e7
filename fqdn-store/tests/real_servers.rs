//! Real responses from real DNS servers: dnsmasq and unbound (Debian
//! packages, installed by `scripts/test.sh`) on loopback ports of their own,
//! queried over UDP (IPv4 and IPv6) and TCP. Checks what the parser reads,
//! what the store maps, and that hickory-proto agrees on every response.
//! Skips with a reason when a server is not installed (a failure in CI).

mod support;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edgewise_fqdn_store::fuzzing::differential;
use edgewise_fqdn_store::{FqdnStore, Message, Rcode, RecordType, Recorded, StoreConfig, Unmapped};
use edgewise_test_support::{have, skip};
use edgewise_time::UnixNanos;
use support::Builder;

const MANY: usize = 60;

/// A server process killed on drop, with its scratch folder.
struct Server {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    // Bind both protocols on one port so neither is taken.
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgewise-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn many_hosts(dir: &Path) -> PathBuf {
    let hosts = dir.join("hosts");
    let lines = (1..=MANY).fold(String::new(), |mut lines, n| {
        let _ = writeln!(lines, "10.99.0.{n} many.edgewise.test");
        lines
    });
    std::fs::write(&hosts, lines).unwrap();
    hosts
}

fn dnsmasq() -> Option<Server> {
    if !have("dnsmasq") {
        skip("dnsmasq is not installed (apt-get install dnsmasq-base)");
        return None;
    }
    let dir = scratch("dnsmasq");
    let port = free_port();
    let hosts = many_hosts(&dir);
    let child = Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1,::1",
            "--user=root",
            &format!("--pid-file={}", dir.join("pid").display()),
            &format!("--port={port}"),
            &format!("--addn-hosts={}", hosts.display()),
            "--local=/edgewise.test/",
            "--host-record=api.edgewise.test,10.42.1.159,fd00:42::159",
            "--cname=alias2.edgewise.test,api.edgewise.test",
            "--cname=alias1.edgewise.test,alias2.edgewise.test",
            "--cname=www.edgewise.test,alias1.edgewise.test",
            "--txt-record=txt.edgewise.test,\"v=spf1 -all\"",
            "--mx-host=mx.edgewise.test,mail.edgewise.test,10",
            "--srv-host=_http._tcp.edgewise.test,api.edgewise.test,8080",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dnsmasq");
    Some(ready(Server { child, dir, port }))
}

fn unbound() -> Option<Server> {
    if !have("unbound") {
        skip("unbound is not installed (apt-get install unbound)");
        return None;
    }
    let dir = scratch("unbound");
    let port = free_port();
    let config = dir.join("unbound.conf");
    let many = (1..=MANY).fold(String::new(), |mut many, n| {
        let _ = writeln!(
            many,
            "  local-data: \"many.edgewise.test. 300 IN A 10.99.0.{n}\""
        );
        many
    });
    std::fs::write(
        &config,
        format!(
            r#"server:
  interface: 127.0.0.1@{port}
  interface: ::1@{port}
  port: {port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: ""
  use-syslog: no
  logfile: "{dir}/unbound.log"
  verbosity: 1
  do-not-query-localhost: yes
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow
  access-control: ::1/128 allow
  local-zone: "edgewise.test." static
  local-data: "api.edgewise.test. 120 IN A 10.42.1.159"
  local-data: "api.edgewise.test. 120 IN AAAA fd00:42::159"
  local-data: "txt.edgewise.test. 60 IN TXT \"hello\""
  local-data: "mx.edgewise.test. 60 IN MX 10 mail.edgewise.test."
{many}remote-control:
  control-enable: no
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    let child = Command::new("unbound")
        .args(["-d", "-c"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start unbound");
    Some(ready(Server { child, dir, port }))
}

/// Waits until the server answers.
fn ready(server: Server) -> Server {
    let deadline = Instant::now() + Duration::from_secs(10);
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port));
    while Instant::now() < deadline {
        if try_udp(address, &query("api.edgewise.test", RecordType::A, false)).is_some() {
            return server;
        }
    }
    let log = std::fs::read_to_string(server.dir.join("unbound.log")).unwrap_or_default();
    panic!(
        "the DNS server on port {} never answered\n{log}",
        server.port
    );
}

fn query(name: &str, record_type: RecordType, edns: bool) -> Vec<u8> {
    let mut builder = Builder::new(0x5151, 0x0100);
    builder.question(name, record_type.0);
    let mut bytes = builder.finish();
    if edns {
        // An OPT record advertising 4096-byte UDP payloads.
        bytes[11] = 1;
        bytes.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    }
    bytes
}

fn try_udp(server: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let local: SocketAddr = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    }
    .parse()
    .unwrap();
    let socket = UdpSocket::bind(local).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    socket.send_to(query, server).ok()?;
    let mut buffer = vec![0; 65_535];
    let (len, _) = socket.recv_from(&mut buffer).ok()?;
    buffer.truncate(len);
    Some(buffer)
}

fn udp(server: SocketAddr, query: &[u8]) -> Vec<u8> {
    (0..10)
        .find_map(|_| try_udp(server, query))
        .expect("a UDP answer")
}

fn tcp(server: SocketAddr, query: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut framed = u16::try_from(query.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).unwrap();
    let mut prefix = [0; 2];
    stream.read_exact(&mut prefix).unwrap();
    let mut message = vec![0; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut message).unwrap();
    message
}

/// Parses, checks against hickory-proto, records; returns the names of
/// the answer records' types and what was recorded.
fn record(store: &mut FqdnStore, response: &[u8]) -> (Vec<String>, Recorded) {
    differential(response);
    let message = Message::parse(response).expect("a real response parses");
    let types = message
        .answers()
        .map(|record| record.record_type.to_string())
        .collect();
    (types, store.record(response, UnixNanos::ZERO).unwrap())
}

fn names(store: &FqdnStore, ip: &str) -> Vec<String> {
    store
        .lookup(ip.parse::<IpAddr>().unwrap(), UnixNanos::ZERO)
        .map(str::to_owned)
        .collect()
}

fn check_common(server: &Server, store: &mut FqdnStore) {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port));
    let v6: SocketAddr = format!("[::1]:{}", server.port).parse().unwrap();

    // Mixed case in the question, IPv6 transport, AAAA.
    let response = udp(v6, &query("ApI.EdgeWise.TEST", RecordType::AAAA, false));
    let message = Message::parse(&response).unwrap();
    assert!(
        message
            .question()
            .unwrap()
            .name
            .labels()
            .any(|label| label == b"EdgeWise"),
        "case echoed"
    );
    assert_eq!(
        record(store, &response),
        (vec!["AAAA".into()], Recorded::Mapped(1))
    );
    assert_eq!(names(store, "fd00:42::159"), ["api.edgewise.test"]);

    // NXDOMAIN maps nothing.
    let response = udp(v4, &query("nope.edgewise.test", RecordType::A, false));
    assert_eq!(
        Message::parse(&response).unwrap().header().rcode(),
        Rcode::NXDOMAIN
    );
    assert_eq!(
        record(store, &response).1,
        Recorded::Unmapped(Unmapped::Rcode(Rcode::NXDOMAIN))
    );

    // TXT and MX are skipped by length and map nothing.
    for (name, record_type, label) in [
        ("txt.edgewise.test", RecordType::TXT, "TXT"),
        ("mx.edgewise.test", RecordType::MX, "MX"),
    ] {
        let response = udp(v4, &query(name, record_type, true));
        let (types, recorded) = record(store, &response);
        assert_eq!(
            (types, recorded),
            (vec![label.to_owned()], Recorded::Mapped(0)),
            "{name}"
        );
    }

    // Too many addresses for 512 bytes: truncated over UDP, whole over TCP.
    let small = query("many.edgewise.test", RecordType::A, false);
    let response = udp(v4, &small);
    let message = Message::parse(&response).expect("a truncated response still parses");
    assert!(message.header().is_truncated());
    assert!(message.answers().count() < MANY);
    record(store, &response);
    let response = tcp(v4, &small);
    assert!(!Message::parse(&response).unwrap().header().is_truncated());
    assert_eq!(record(store, &response).1, Recorded::Mapped(MANY));
    for n in [1, MANY] {
        assert_eq!(
            names(store, &format!("10.99.0.{n}")),
            ["many.edgewise.test"]
        );
    }
}

#[test]
fn dnsmasq_responses() {
    let Some(server) = dnsmasq() else { return };
    let mut store = FqdnStore::new(StoreConfig::default());
    check_common(&server, &mut store);
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port));

    // A CNAME chain of three hops maps to the name asked for.
    let response = udp(v4, &query("WWW.edgewise.test", RecordType::A, false));
    let (types, recorded) = record(&mut store, &response);
    assert_eq!(types, ["CNAME", "CNAME", "CNAME", "A"]);
    assert_eq!(recorded, Recorded::Mapped(1));
    let mut api = names(&store, "10.42.1.159");
    api.sort();
    assert_eq!(
        api,
        ["www.edgewise.test"],
        "only the question name; the A query for api was never made"
    );

    // SRV is skipped by length.
    let response = udp(
        v4,
        &query("_http._tcp.edgewise.test", RecordType::SRV, false),
    );
    assert_eq!(
        record(&mut store, &response),
        (vec!["SRV".into()], Recorded::Mapped(0))
    );
}

#[test]
fn unbound_responses() {
    let Some(server) = unbound() else { return };
    let mut store = FqdnStore::new(StoreConfig::default());
    check_common(&server, &mut store);
}
