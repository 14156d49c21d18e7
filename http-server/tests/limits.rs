//! The server's limits against hostile clients, on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgewise_http_server::{Head, Limits, Method, Reply, Request, Server, Service, StatusCode};

struct Echo;

impl Service for Echo {
    fn body_limit(&self, method: &Method, _path: &str) -> u64 {
        if method == Method::POST { 1024 } else { 0 }
    }

    fn admit(&self, head: &Head) -> Option<Reply> {
        (head.path == "/healthz").then(|| Reply::text(StatusCode::OK, "ok\n"))
    }

    fn handle(&self, request: Request) -> Reply {
        if request.head.path == "/slow" {
            std::thread::sleep(Duration::from_secs(3));
        }
        Reply::ok("application/octet-stream", request.body)
    }
}

fn start(limits: Limits) -> Server {
    Server::start("127.0.0.1:0".parse().unwrap(), limits, None, Arc::new(Echo)).unwrap()
}

fn status(server: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(server).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

fn quick_health(server: SocketAddr) -> Duration {
    let started = Instant::now();
    let answer = status(
        server,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.contains(" 200 "), "{answer}");
    started.elapsed()
}

#[test]
fn bodies_over_the_limit_are_refused_unread_and_within_it_read() {
    let server = start(Limits::default());
    let addr = server.local_addr();
    let ok = status(
        addr,
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert!(ok.contains(" 200 "), "{ok}");
    let big = status(
        addr,
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n",
    );
    assert!(big.contains(" 413 "), "{big}");
    let chunked = b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n";
    let mut request = chunked.to_vec();
    request.extend(std::iter::repeat_n(b'a', 0x800));
    request.extend_from_slice(b"\r\n0\r\n\r\n");
    assert!(
        status(addr, &request).contains(" 413 "),
        "a chunked body past the limit"
    );
    let get_body = status(
        addr,
        b"GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
    );
    assert!(get_body.contains(" 413 "), "{get_body}");
}

#[test]
fn a_connection_flood_is_refused_at_accept_and_the_probe_still_answered() {
    let mut limits = Limits::default();
    limits.max_connections = 64;
    let server = start(limits);
    let addr = server.local_addr();
    let mut held = Vec::new();
    for n in 0..600 {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(stream) => held.push(stream),
            Err(error) => panic!("connection {n}: {error}"),
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let stats = server.stats();
    assert_eq!(stats.connections, 8, "one peer gets an eighth: {stats:?}");
    assert!(stats.refused >= 590, "{stats:?}");
    drop(held);
    // The flood's connections end as the server sees them close; then the
    // peer has its share again and the probe is answered at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().connections > 0 {
        assert!(Instant::now() < deadline, "{:?}", server.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(quick_health(addr) < Duration::from_millis(100));
}

#[test]
fn headers_past_the_limit_cut_the_connection() {
    let server = start(Limits::default());
    let addr = server.local_addr();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut sent = 0;
    let _ = stream.write_all(b"GET / HTTP/1.1\r\nX-Long: ");
    let chunk = vec![b'a'; 64 * 1024];
    while sent < 16 << 20 {
        if stream.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    assert!(sent < 16 << 20, "cut after {sent} bytes");
}

#[test]
fn a_slow_handler_does_not_stop_the_probe_and_shutdown_is_bounded() {
    let server = start(Limits::default());
    let addr = server.local_addr();
    let slow = std::thread::spawn(move || {
        status(
            addr,
            b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(quick_health(addr) < Duration::from_millis(100));
    // A body that never comes, held open over the shutdown.
    let mut never = TcpStream::connect(addr).unwrap();
    never
        .write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    let asked = Instant::now();
    server.stop();
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "{:?}",
        asked.elapsed()
    );
    let _ = slow.join();
}

#[test]
fn the_fuzz_entry_answers_http_and_never_panics() {
    use edgewise_http_server::fuzzing::request;
    for input in [
        &b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"POST /audit HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /audit HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"POST /audit HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n",
        b"\x00\xff garbage",
        b"",
    ] {
        request(input);
    }
}
