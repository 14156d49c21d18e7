//! `edgewise observe` against a running daemon (`edgewise replay --listen`
//! on the bundled demo, served after the capture ends): the last records,
//! each filter, JSON and compact lines, a token, refusals with the
//! daemon's message, and a follower that outlives a restart of the daemon
//! and misses nothing the new one holds.

mod common;
mod live;

use std::process::Command;

use common::edgewise;
use live::Collected;

/// A free loopback port (the daemon binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The demo replayed and served on `port` (with `more` flags).
fn daemon(port: u16, more: &[&str]) -> Collected {
    let listen = format!("127.0.0.1:{port}");
    let process = Collected::spawn(
        Command::new(env!("CARGO_BIN_EXE_edgewise"))
            .args(["replay", "--listen", &listen, "--output", "/dev/null"])
            .args(more),
    );
    assert!(
        Collected::wait_for(&process.stderr, 30, |l| l.contains("the capture ended")),
        "{}",
        Collected::text(&process.stderr)
    );
    process
}

fn observe(port: u16, args: &[&str]) -> (Vec<serde_json::Value>, String, bool) {
    let server = format!("http://127.0.0.1:{port}");
    let mut all = vec!["observe", "--server", &server, "-o", "json"];
    all.extend_from_slice(args);
    let (stdout, stderr, ok) = edgewise(&all);
    let records = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON record"))
        .collect();
    (records, stderr, ok)
}

/// Waits up to 20 s until `process` printed `count` lines.
fn lines_reach(process: &Collected, count: usize) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if process.stdout.lock().unwrap().len() >= count {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

fn kinds(records: &[serde_json::Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect()
}

#[test]
fn the_last_records_and_each_filter() {
    let port = free_port();
    let _daemon = daemon(port, &[]);

    let (all, stderr, ok) = observe(port, &["--last", "1000"]);
    assert!(ok, "{stderr}");
    let count = |kind| kinds(&all).iter().filter(|k| **k == kind).count();
    assert_eq!(
        (count("edge"), count("dns"), count("rule")),
        (9, 5, 4),
        "{all:?}"
    );
    assert!(
        !kinds(&all).contains(&"stats"),
        "stats are /metrics' business"
    );

    let (default, _, _) = observe(port, &[]);
    assert_eq!(default, all, "the last 20 by default: all 18 of them");
    let (last, _, _) = observe(port, &["--last", "5"]);
    assert_eq!(last[..], all[all.len() - 5..], "the last 5, in order");
    let (three, _, _) = observe(port, &["--last", "3", "--type", "edge"]);
    assert_eq!(kinds(&three), ["edge"; 3]);

    let (violations, _, _) = observe(port, &["--verdict", "violation"]);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0]["dst"]["identity"]["name"], "postgres-0");

    // A rule record carries addresses only: its pods come from who has
    // them.
    let (to_postgres, _, _) = observe(
        port,
        &[
            "--from-pod",
            "shop/frontend",
            "--to-pod",
            "postgres",
            "--type",
            "rule",
        ],
    );
    assert_eq!(kinds(&to_postgres), ["rule"], "{to_postgres:?}");
    assert_eq!(to_postgres[0]["rule"], "undeclared-database-access");

    let (analytics, _, _) = observe(port, &["--namespace", "analytics", "--type", "edge"]);
    assert_eq!(analytics.len(), 2, "telegraf to influxdb and to coredns");
    let (partner, _, _) = observe(port, &["--to-fqdn", "*.partner.example"]);
    assert_eq!(kinds(&partner), ["dns", "rule", "edge"], "{partner:?}");
    let (udp, _, _) = observe(
        port,
        &["--protocol", "udp", "--port", "53", "--type", "edge"],
    );
    assert_eq!(udp.len(), 3);

    // The capture is from 2026-11-23: nothing in the last hour.
    let (recent, _, ok) = observe(port, &["--since", "1h"]);
    assert!(ok && recent.is_empty(), "{recent:?}");
    let (since, _, _) = observe(port, &["--since", "2026-11-23T00:00:00Z", "--type", "dns"]);
    assert_eq!(since.len(), 5);

    let server = format!("http://127.0.0.1:{port}");
    let (compact, _, ok) = edgewise(&[
        "observe",
        "--server",
        &server,
        "--verdict",
        "violation",
        "-o",
        "compact",
    ]);
    assert!(ok);
    assert!(
        compact.contains("edge        shop/frontend-7d9f8c6b5-x0:")
            && compact.contains("-> shop/postgres-0:5432 tcp VIOLATION (shop/postgres-ingress)"),
        "{compact}"
    );

    let (_, stderr, ok) = observe(port, &["--since", "yesterday"]);
    assert!(!ok && stderr.contains("--since \"yesterday\""), "{stderr}");
    let (_, stderr, ok) = edgewise(&["observe", "--server", "http://127.0.0.1:1"]);
    assert!(!ok && stderr.contains("127.0.0.1:1"), "{stderr}");
}

#[test]
fn a_token_is_asked_for_and_a_bad_query_gets_the_daemons_message() {
    let dir = std::env::temp_dir().join(format!("edgewise-observe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "r3ad\n").unwrap();
    let port = free_port();
    let _daemon = daemon(port, &["--graph-token-file", token.to_str().unwrap()]);
    let (_, stderr, ok) = observe(port, &[]);
    assert!(!ok && stderr.contains("401"), "{stderr}");
    let (records, stderr, ok) = observe(port, &["--token-file", token.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(records.len(), 18);
    // A query the daemon refuses names the parameter (curl, as another
    // client would send it).
    let answer = Command::new("python3")
        .args(["-c", "import sys, urllib.request, urllib.error\ntry:\n urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers={'Authorization': 'Bearer r3ad'}))\nexcept urllib.error.HTTPError as e:\n print(e.code, e.read().decode())"])
        .arg(format!("http://127.0.0.1:{port}/records?colour=red"))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer.stdout);
    assert!(
        answer.starts_with("400 colour: not a parameter"),
        "{answer}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_follower_outlives_a_restart_of_the_daemon() {
    let port = free_port();
    let first = daemon(port, &[]);
    let server = format!("http://127.0.0.1:{port}");
    let follower = Collected::spawn(Command::new(env!("CARGO_BIN_EXE_edgewise")).args([
        "observe", "--server", &server, "--follow", "--last", "100", "--type", "edge", "-o", "json",
    ]));
    assert!(
        lines_reach(&follower, 9),
        "the first daemon's edges: {}",
        Collected::text(&follower.stderr)
    );
    drop(first);
    assert!(
        Collected::wait_for(&follower.stderr, 20, |l| l.contains("connecting again")),
        "{}",
        Collected::text(&follower.stderr)
    );
    let _second = daemon(port, &[]);
    assert!(
        Collected::wait_for(&follower.stderr, 30, |l| l.contains("the daemon restarted")),
        "{}",
        Collected::text(&follower.stderr)
    );
    assert!(
        lines_reach(&follower, 18),
        "the second daemon's edges, each once: {}",
        Collected::text(&follower.stdout)
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(follower.stdout.lock().unwrap().len(), 18, "nothing twice");
}
