//! The active prober's sessions against real servers on loopback, with
//! Debian's copy of nmap's database: a server that speaks first is named
//! by the NULL probe; one that only answers a request is named by the
//! probe whose answer it gives (`GetRequest`), after the NULL probe's
//! wait; a closed port ends the session at once; the worker thread hands
//! results back in order.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgewise_observer::daemon::prober::{ProbeWorker, session};
use edgewise_service_probes::Database;

/// A TCP server on 127.0.0.1 (an ephemeral port, printed): `banner`
/// sends a banner on accept; `http` answers any request as nginx does.
const SERVER: &str = r#"
import socket, sys, threading
mode = sys.argv[1]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
def serve(c):
    try:
        if mode == "banner":
            c.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
            c.recv(1024)
        else:
            if c.recv(4096):
                c.sendall(b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError:
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

struct Server(Child, SocketAddr);

impl Server {
    fn start(mode: &str) -> Self {
        let mut child = Command::new("python3")
            .args(["-c", SERVER, mode])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        let address = SocketAddr::from(([127, 0, 0, 1], port.trim().parse().unwrap()));
        Server(child, address)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn database() -> Option<Database> {
    let path = edgewise_observer::services::DEBIAN_SERVICE_PROBES;
    if !std::path::Path::new(path).is_file() {
        common::skip(&format!("{path} is absent (apt-get install nmap)"));
        return None;
    }
    if !common::have("python3") {
        common::skip("python3 is not installed");
        return None;
    }
    Some(edgewise_observer::services::load_database(path.as_ref()).unwrap())
}

#[test]
fn sessions_name_servers_as_nmap_does_and_stop_at_a_closed_port() {
    let Some(db) = database() else {
        return;
    };
    let banner = Server::start("banner");
    let start = Instant::now();
    let found = session(&db, banner.1, 7).expect("named");
    assert_eq!(
        (found.service.as_str(), found.version.product.as_deref()),
        ("ssh", Some("OpenSSH"))
    );
    assert_eq!(found.probe, "NULL");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "a banner needs no wait"
    );

    let http = Server::start("http");
    let found = session(&db, http.1, 7).expect("named");
    assert_eq!(
        (
            found.service.as_str(),
            found.version.product.as_deref(),
            found.version.version.as_deref()
        ),
        ("http", Some("nginx"), Some("1.22.1"))
    );
    assert_ne!(found.probe, "NULL");

    // A closed port: nothing, at once.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let start = Instant::now();
    assert!(session(&db, closed, 9).is_none());
    assert!(start.elapsed() < Duration::from_secs(1));

    // The worker: results come back through its channel.
    let worker = ProbeWorker::start(Arc::new(db), 7);
    worker.probe(banner.1);
    worker.probe(closed);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut results = Vec::new();
    while results.len() < 2 && Instant::now() < deadline {
        results.extend(worker.results());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[0].0, banner.1);
    assert_eq!(
        results[0].1.as_ref().map(|f| f.service.as_str()),
        Some("ssh")
    );
    assert_eq!(results[1], (closed, None));
}
