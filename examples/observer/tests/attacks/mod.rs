//! Attacks on a listener of ours, shared by the hostile-client tests: each
//! asserts that `/healthz`, asked from 127.0.0.1, answers within 100 ms
//! while attackers connect from 127.0.0.2 (as a kubelet's probe comes from
//! another address than an attacker's; the listener gives one peer
//! address at most an eighth of its connections).

#![allow(
    dead_code,
    reason = "each test binary uses its own subset of these helpers, so `expect` would misfire"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A connection to `server` from 127.0.0.2, the attackers' address.
pub(crate) fn attacker(server: SocketAddr) -> std::io::Result<TcpStream> {
    connect_from("127.0.0.2".parse().unwrap(), server)
}

/// A connection to `server` from `source` (a loopback address).
pub(crate) fn connect_from(
    source: std::net::IpAddr,
    server: SocketAddr,
) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    socket.connect_timeout(&server.into(), Duration::from_secs(2))?;
    Ok(socket.into())
}

/// `request` from `source`; the status line.
pub(crate) fn ask_from(source: std::net::IpAddr, server: SocketAddr, request: &[u8]) -> String {
    let Ok(mut stream) = connect_from(source, server) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// `GET /healthz` from 127.0.0.1: the status line and how long it took.
pub(crate) fn probe(server: SocketAddr) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(2)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: edgewise\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.lines().next().unwrap_or("").to_owned();
    (status, started.elapsed())
}

pub(crate) fn healthy(server: SocketAddr, when: &str) {
    let (status, took) = probe(server);
    assert!(status.contains(" 200 "), "{when}: /healthz said {status:?}");
    assert!(
        took < Duration::from_millis(100),
        "{when}: /healthz took {took:?}"
    );
}

/// One request from the attackers' address and the status line of its
/// answer.
pub(crate) fn ask(server: SocketAddr, request: &[u8]) -> String {
    ask_from("127.0.0.2".parse().unwrap(), server, request)
}

pub(crate) fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Announced bodies of 100 GB or of `u64::MAX` bytes, on `post` (a
/// request line and headers without the length) and on `GET /healthz`:
/// refused unread.
pub(crate) fn announced_bodies(server: SocketAddr, post: &str) {
    for length in ["100000000000", "18446744073709551615"] {
        let head = format!("{post}Content-Length: {length}\r\n\r\n");
        // Refused, unread: 413 (or 431 from hyper for a length past what
        // it represents, 401 or 405 when the head alone decides).
        let status = ask(server, head.as_bytes());
        assert!(status.starts_with("HTTP/1.1 4"), "{length}: {status}");
        let get = format!("GET /healthz HTTP/1.1\r\nHost: e\r\nContent-Length: {length}\r\n\r\n");
        let status = ask(server, get.as_bytes());
        assert!(
            status.contains(" 200 ") || status.contains(" 431 "),
            "{length}: {status}"
        );
        healthy(server, "after an announced huge body");
    }
}

/// A request whose announced body never comes (`slow`), and a client that
/// pipelines `deaf` 5,000 times and never reads: both held open
/// (returned) while others are answered.
pub(crate) fn slow_and_deaf(
    server: SocketAddr,
    slow: &[u8],
    deaf: &[u8],
) -> (TcpStream, TcpStream) {
    let mut slow_client = attacker(server).unwrap();
    slow_client.write_all(slow).unwrap();
    let mut deaf_client = attacker(server).unwrap();
    let pipelined = deaf.repeat(5_000);
    deaf_client
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let _ = deaf_client.write_all(&pipelined);
    healthy(server, "while a body never comes and a client never reads");
    (slow_client, deaf_client)
}

/// Header lines that never end: cut at the limit, memory does not grow
/// by what was sent. The connections, still open.
pub(crate) fn endless_headers(server: SocketAddr, pid: u32) -> Vec<TcpStream> {
    let before = rss_kib(pid, "VmRSS:");
    let mut floods = Vec::new();
    for _ in 0..4 {
        let mut stream = attacker(server).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let chunk = vec![b'a'; 1 << 20];
        let mut sent = 0usize;
        let _ = stream.write_all(b"GET / HTTP/1.1\r\nX-Long: ");
        while sent < 64 << 20 {
            if stream.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        assert!(sent < 64 << 20, "the connection was cut");
        floods.push(stream);
    }
    let after = rss_kib(pid, "VmRSS:");
    assert!(
        after < before + 32 * 1024,
        "headers without an end grew the daemon from {before} to {after} KiB"
    );
    healthy(server, "after endless header lines");
    floods
}

/// Idle connections past the cap are closed at accept; the listener
/// lives on.
pub(crate) fn connection_flood(server: SocketAddr) {
    let mut idle = Vec::new();
    for _ in 0..10_050 {
        match attacker(server) {
            Ok(stream) => idle.push(stream),
            Err(_) => break,
        }
    }
    assert!(idle.len() >= 10_000, "opened {}", idle.len());
    healthy(server, "during a connection flood");
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    healthy(server, "after a connection flood");
}

/// Sends `signal` to `child` with attackers still connected: a clean exit
/// within 5 s.
pub(crate) fn exits_cleanly_on(child: &mut std::process::Child, signal: &str) {
    let asked = Instant::now();
    let _ = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{signal}: {exit:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{signal} took {:?}",
        asked.elapsed()
    );
}
