//! A burst of new connections, as root: `edgewise run` observing `lo`
//! while 20,000 loopback connections are made at 10,000 a second (fewer
//! than the ephemeral ports, so none waits for a port)
//! must lose no kernel event (`lost_events` 0 in its last stats), with the
//! default ring size. Needs root; skips with the reason otherwise (a
//! failure under `CI=true`).

mod common;
mod live;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{is_root, records, skip};
use live::Collected;

/// Connections in the burst, and the pace asked for.
const BURST_TOTAL: u32 = 20_000;
const BURST_RATE: u32 = 10_000;

/// Connections made, and how long they took.
fn burst(server: SocketAddr, total: u32, per_second: u32) -> (u32, Duration) {
    let started = Instant::now();
    let mut made = 0;
    for n in 0..total {
        // Paced: connection n is due at n / per_second.
        let due = Duration::from_secs_f64(f64::from(n) / f64::from(per_second));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        if TcpStream::connect_timeout(&server, Duration::from_secs(3)).is_ok() {
            made += 1;
        }
    }
    (made, started.elapsed())
}

#[test]
fn a_burst_of_ten_thousand_connections_a_second_loses_no_event() {
    if !is_root() {
        skip("the daemon's observers need root");
        return;
    }
    let dir = std::env::temp_dir().join(format!("edgewise-burst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out.jsonl");
    // A deep backlog: the burst must not wait on the accepting thread.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(4096).unwrap();
    let listener: TcpListener = socket.into();
    let server = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let mut daemon = Collected::spawn(
        Command::new(env!("CARGO_BIN_EXE_edgewise"))
            .args(["run", "--observe-interfaces", "lo"])
            .args(["--bpf-pin-dir", dir.join("pins").to_str().unwrap()])
            .args(["--stats-interval-seconds", "1"])
            .args(["--output", out.to_str().unwrap()]),
    );
    assert!(
        Collected::wait_for(&daemon.stderr, 20, |l| l.contains(": observing")),
        "{}",
        Collected::text(&daemon.stderr)
    );
    let (made, took) = burst(server, BURST_TOTAL, BURST_RATE);
    std::thread::sleep(Duration::from_millis(1500));
    daemon.signal("-TERM");
    assert!(daemon.child.wait().unwrap().success());
    let text = std::fs::read_to_string(&out).unwrap();
    let stats = records(&text, "stats").last().expect("the last stats");
    let syns = stats["events"]["syn"].as_u64().unwrap_or(0);
    println!(
        "burst: {made} connections in {took:?}; {syns} SYNs seen, lost_events {}",
        stats["lost_events"]
    );
    assert!(made >= BURST_TOTAL - 1_000, "the burst ran: {made}");
    assert!(syns >= u64::from(made), "every SYN seen: {stats}");
    assert_eq!(stats["lost_events"], 0, "{stats}");
    std::fs::remove_dir_all(&dir).unwrap();
}
