//! The active prober, live, as root on the demo cluster of
//! `demo/cluster/scenario.sh`: the node's bridge gets the gateway address
//! a CNI bridge has (10.42.1.1), `edgewise run --probe` observes the pods'
//! host interfaces with Debian's copy of nmap's database, and a client
//! talks to a server in a way that tells nothing (a server that names
//! itself only to an HTTP request). The daemon must probe that server from
//! the node and put what it found into the edge's record and the graph,
//! marked active; it must never probe the partner outside
//! `--probe-cidrs`, nor the SSH server its banner already named.
//!
//! Needs root, `ip`, `python3`, `dnsmasq`, `tcpdump` and nmap's database;
//! skips with the reason otherwise (a failure under `CI=true`). Traffic
//! stays between the namespaces the scenario creates.

mod common;
mod live;

use std::process::Command;

use common::records;
use live::{Cluster, Collected, preflight, scenario, start_daemon};

/// A server on 10.42.1.11:9999 that answers an HTTP request as nginx does
/// and anything else with `?`.
const QUIET_SERVER: &str = r#"
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.42.1.11", 9999)); s.listen(16)
print("ready", flush=True)
def serve(c):
    c.settimeout(5)
    try:
        data = c.recv(4096)
        if data.startswith(b"GET "):
            c.sendall(b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Length: 0\r\n\r\n")
        elif data:
            c.sendall(b"?\n")
    except OSError:
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// From frontend: a connection to 10.42.1.11:9999 that sends bytes no
/// probe has the shape of.
const QUIET_CLIENT: &str = r#"
import socket
s = socket.create_connection(("10.42.1.11", 9999), timeout=5)
s.sendall(b"\x00\x01hello\n"); s.recv(64); s.close()
"#;

fn in_ns(ns: &str) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]);
    command
}

#[test]
fn a_server_no_traffic_named_is_probed_from_the_node_and_only_inside_the_probe_networks() {
    if !preflight() {
        return;
    }
    let probes = edgewise_observer::services::DEBIAN_SERVICE_PROBES;
    if !std::path::Path::new(probes).is_file() {
        common::skip(&format!("{probes} is absent (apt-get install nmap)"));
        return;
    }
    assert!(scenario(&["up"]), "the cluster comes up");
    let _cluster = Cluster;
    let added = in_ns("ewcl-node")
        .args(["ip", "addr", "add", "10.42.1.1/24", "dev", "ewcl-br0"])
        .status()
        .unwrap();
    assert!(added.success());
    let server = Collected::spawn(in_ns("ewcl-checkout").args(["python3", "-c", QUIET_SERVER]));
    assert!(Collected::wait_for(&server.stdout, 10, |l| l == "ready"));

    let dir = std::env::temp_dir().join(format!("edgewise-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let daemon = start_daemon(
        &live::inputs(),
        &dir,
        &[
            "--service-probes",
            probes,
            "--probe",
            "--probe-cidrs",
            "10.42.1.0/24",
            "--probe-rate",
            "5",
        ],
    );
    assert!(
        live::logged(&daemon, 20, &[": observing"]),
        "the daemon attached: {}",
        Collected::text(&daemon.stderr)
    );
    assert!(scenario(&["traffic"]), "the demo's traffic");
    let client = in_ns("ewcl-frontend")
        .args(["python3", "-c", QUIET_CLIENT])
        .status()
        .unwrap();
    assert!(client.success());
    // The record of the quiet server's edge names it, once probed.
    let named = Collected::wait_for(&daemon.stdout, 40, |line| {
        line.contains("\"type\":\"edge\"")
            && line.contains("\"port\":9999")
            && line.contains("\"service_product\":\"nginx\"")
    });
    // The node's own probe of it shows as an edge from the node's address
    // once its handshake settles: waited for, not assumed (a loaded
    // machine settles later).
    let probed_from_node = Collected::wait_for(&daemon.stdout, 20, |line| {
        line.contains("\"type\":\"edge\"")
            && line.contains("\"src\":{\"ip\":\"10.42.1.1\"")
            && line.contains("\"port\":9999")
    });
    // The graph is published at each stats tick (a second here).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let graph = live::http_get("/graph");
    let out = live::stop(daemon);
    assert!(named, "{out}");
    assert!(probed_from_node, "{out}");
    let graph: serde_json::Value = serde_json::from_str(&graph).unwrap();
    let quiet: Vec<&serde_json::Value> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["services"].as_array().unwrap())
        .filter(|s| s["port"] == 9999)
        .collect();
    assert_eq!(quiet.len(), 1, "{graph}");
    assert_eq!(
        (&quiet[0]["product"], &quiet[0]["source"]),
        (&serde_json::json!("nginx"), &serde_json::json!("active"))
    );
    // The node's own probes show as its edges: never to the partner
    // outside the probe networks, never to the SSH server its banner named.
    let from_node: Vec<serde_json::Value> = records(&out, "edge")
        .filter(|e| e["src"]["ip"] == "10.42.1.1")
        .collect();
    assert!(
        from_node.iter().any(|e| e["dst"]["port"] == 9999),
        "{from_node:?}"
    );
    assert!(
        from_node
            .iter()
            .all(|e| e["dst"]["ip"] != "203.0.113.7" && e["dst"]["port"] != 2222),
        "{from_node:?}"
    );
    let stats = records(&out, "stats").last().unwrap();
    assert!(stats["probes"]["outside"].as_u64() >= Some(1), "{stats}");
    assert!(stats["probes"]["hard"].as_u64() >= Some(1), "{stats}");
    let _ = std::fs::remove_dir_all(&dir);
}
