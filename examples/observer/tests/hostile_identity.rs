//! Hostile clients against `edgewise identity serve` (the same listener
//! stack as the daemon's; no root needed): each attack of `attacks/`, with
//! `/healthz` answered within 100 ms from another address during and after
//! it, the server's memory under a bound (128 MiB peak), and a clean exit
//! on SIGTERM with attackers still connected.

mod attacks;
mod common;
mod live;

use std::net::SocketAddr;
use std::process::Command;

use attacks::{
    announced_bodies, connection_flood, endless_headers, exits_cleanly_on, free_port, healthy,
    rss_kib, slow_and_deaf,
};
use live::{Collected, demo};

#[test]
fn hostile_clients_do_not_knock_identity_serve_over() {
    let server: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut serve = Collected::spawn(
        Command::new(env!("CARGO_BIN_EXE_edgewise"))
            .args(["identity", "serve", "--objects"])
            .arg(demo("objects.json"))
            .args(["--listen", &server.to_string(), "--interval-ms", "200"]),
    );
    assert!(
        Collected::wait_for(&serve.stderr, 20, |l| l.contains("serving identities")),
        "{}",
        Collected::text(&serve.stderr)
    );
    let pid = serve.child.id();
    healthy(server, "at start");

    announced_bodies(server, "POST /identities/deltas HTTP/1.1\r\nHost: e\r\n");
    // No route takes a body: a request announcing one is answered at once,
    // so the slow attacker is a stream that is never read.
    let held = slow_and_deaf(
        server,
        b"GET /identities/deltas HTTP/1.1\r\nHost: e\r\n\r\n",
        b"GET /identities/baseline HTTP/1.1\r\nHost: e\r\n\r\n",
    );
    let floods = endless_headers(server, pid);
    connection_flood(server);
    let peak = rss_kib(pid, "VmHWM:");
    assert!(peak < 128 * 1024, "peak RSS {peak} KiB");

    exits_cleanly_on(&mut serve.child, "-TERM");
    drop((held, floods));
}
