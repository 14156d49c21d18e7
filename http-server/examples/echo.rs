//! A small service behind the server's limits: `GET /healthz` answered
//! from the request head alone, `POST /echo` taking a body of at most
//! 1 KiB (a longer one gets 413 before a byte of it is read), anything
//! else 404. Serves on the given address (default `127.0.0.1:8080`) until
//! stopped, or for the given number of seconds.
//!
//! ```sh
//! cargo run -p edgewise-http-server --example echo -- 127.0.0.1:8080 &
//! curl -s localhost:8080/healthz
//! curl -s --data 'hello' localhost:8080/echo
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use edgewise_http_server::{Head, Limits, Method, Reply, Request, Server, Service, StatusCode};

struct Echo;

impl Service for Echo {
    /// Bodies are refused past this, before they are read.
    fn body_limit(&self, method: &Method, path: &str) -> u64 {
        if *method == Method::POST && path == "/echo" {
            1024
        } else {
            0
        }
    }

    /// Answers from the head alone (health checks, refusals); `None` lets
    /// the request go on to `handle`.
    fn admit(&self, head: &Head) -> Option<Reply> {
        (head.path == "/healthz").then(|| Reply::text(StatusCode::OK, "ok\n"))
    }

    /// Runs on the runtime's blocking pool: a slow handler holds no one up.
    fn handle(&self, request: Request) -> Reply {
        match (request.head.method.as_str(), request.head.path.as_str()) {
            ("POST", "/echo") => Reply::ok("application/octet-stream", request.body),
            _ => Reply::text(StatusCode::NOT_FOUND, "no such route\n"),
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let seconds: Option<u64> = args.next().and_then(|s| s.parse().ok());
    let Ok(address) = address.parse() else {
        eprintln!("not an address: {address}");
        return ExitCode::from(2);
    };
    let server = match Server::start(address, Limits::default(), None, Arc::new(Echo)) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("{address}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("serving on {}", server.local_addr());
    let mut left = seconds.unwrap_or(u64::MAX);
    while left > 0 && !server.failed() {
        std::thread::sleep(Duration::from_secs(1));
        left -= 1;
    }
    if server.failed() {
        eprintln!("the server stopped");
        return ExitCode::FAILURE;
    }
    // Stops accepting, lets requests in flight finish, then closes.
    server.stop();
    ExitCode::SUCCESS
}
