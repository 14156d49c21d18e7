//! `edgewise run` end to end, as root: the demo cluster of
//! `demo/cluster/scenario.sh` (namespaces posing as pods on a bridge, a
//! DNS server, clients and servers), the daemon observing the pods' host
//! interfaces from the node's namespace. It must see every edge with the
//! right identities, names, verdicts and fingerprints; its `drop` rule must
//! make the next connection of the violating edge time out while another
//! passes; `/healthz`, `/metrics` and `/graph` must answer; SIGTERM must
//! detach everything and exit 0; and tcpdump's capture of the same traffic,
//! replayed with `edgewise replay`, must give the same edges.
//!
//! Needs root, `ip`, `python3`, `dnsmasq` and `tcpdump`; skips with the
//! reason otherwise (a failure under `CI=true`). Traffic stays between the
//! namespaces the scenario creates; they are removed on exit, even on
//! panic.

mod common;
mod live;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{edges_of, records};
use live::{Cluster, Collected, demo, http_get, preflight, scenario, start_daemon};

/// `/metrics`, `/graph`, `/graph/view` and `/records` after a stats tick.
fn check_http() {
    // The stats tick publishes metrics and the graph every second.
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = http_get("/metrics");
    assert!(
        metrics.contains("edgewise_edges_seen_total{verdict=\"violation\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edgewise_packets_dropped_total"),
        "{metrics}"
    );
    let graph: serde_json::Value = serde_json::from_str(&http_get("/graph")).unwrap();
    assert!(
        graph["edges"].as_array().is_some_and(|e| e.len() >= 9),
        "{graph}"
    );
    // The web view's drawing, and the records held for followers: the
    // violation found by the pods of its addresses in a rule record.
    let view: serde_json::Value =
        serde_json::from_str(&http_get("/graph/view?granularity=workload")).unwrap();
    assert!(
        view["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["src"] == "shop/Deployment/frontend"
                && e["dst"] == "shop/StatefulSet/postgres"
                && e["verdict"] == "violation"),
        "{view}"
    );
    let held = http_get("/records?type=rule&from_pod=shop/frontend&to_pod=shop/postgres");
    assert!(
        held.contains("event: record") && held.contains("undeclared-database-access"),
        "{held}"
    );
}

/// The live run's records: the edges (returned), fingerprints, counters
/// and graph files.
fn check_records(live: &str, graph_dir: &Path) -> std::collections::BTreeSet<common::EdgeSeen> {
    let edges = edges_of(live);
    let has = |src: &str, dst: &str, port: u16, verdict: &str, fqdn: Option<&str>| {
        edges.iter().any(|e| {
            e.0 == src && e.1 == dst && e.2 == port && e.4 == verdict && e.5.as_deref() == fqdn
        })
    };
    assert!(
        has(
            "shop/frontend-7d9f8c6b5-x0",
            "shop/postgres-0",
            5432,
            "violation",
            Some("postgres.shop.svc.cluster.local")
        ),
        "{edges:#?}"
    );
    assert!(has(
        "shop/frontend-7d9f8c6b5-x0",
        "shop/checkout-7d9f8c6b5-x1",
        8080,
        "declared",
        Some("checkout.shop.svc.cluster.local")
    ));
    assert!(has(
        "shop/frontend-7d9f8c6b5-x0",
        "api.partner.example",
        443,
        "not_governed",
        Some("api.partner.example")
    ));
    assert_eq!(edges.len(), 9, "{edges:#?}");
    let to_checkout = records(live, "edge")
        .find(|e| e["dst"]["port"] == 2222)
        .unwrap();
    assert!(
        to_checkout["ja4t"]
            .as_str()
            .is_some_and(|f| f.starts_with("64240_"))
    );
    assert!(to_checkout["ja4ts"].as_str().is_some(), "{to_checkout}");
    let stats = records(live, "stats").last().unwrap();
    assert!(stats["packets_dropped"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["lost_events"], 0);
    // A quiet node's losses by cause are all there, and nothing is lost.
    for cause in [
        "ring_full",
        "copy_failed",
        "parse_limit",
        "cut",
        "fragmented",
    ] {
        assert_eq!(stats["events_lost"][cause], 0, "{cause}: {stats}");
    }
    // Each pod's hook and its peer's see every packet: duplicates go.
    assert!(stats["duplicate_events"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(records(live, "dns").count(), 5, "one record per DNS answer");
    assert!(graph_dir.join("graph.dot").exists());

    edges
}

/// The demo's objects, policies and rules, as flags.
fn demo_inputs() -> [String; 6] {
    [
        "--objects",
        demo("objects.json").to_str().unwrap(),
        "--policies",
        demo("policies.json").to_str().unwrap(),
        "--rules",
        demo("rules.toml").to_str().unwrap(),
    ]
    .map(str::to_owned)
}

/// The clients' traffic, then the drop rule's ban: the violating edge
/// times out while others pass.
fn check_enforcement(daemon: &Collected) {
    assert!(scenario(&["traffic"]), "the clients ran");
    let banned = |line: &str| {
        line.contains("\"type\":\"rule\"")
            && line.contains("\"action\":\"drop\"")
            && line.contains("\"enforced\":true")
    };
    assert!(
        Collected::wait_for(&daemon.stdout, 10, banned),
        "the drop rule fired and was enforced: {}",
        Collected::text(&daemon.stdout)
    );
    assert!(
        !scenario(&["connect", "frontend", "10.42.1.12", "5432", "1.5"]),
        "the banned edge times out"
    );
    assert!(
        scenario(&["connect", "frontend", "10.42.1.11", "8080", "3"]),
        "another edge from the same pod passes"
    );
    assert!(
        scenario(&["connect", "checkout", "10.42.1.12", "5432", "3"]),
        "another client of the same server passes"
    );
}

#[test]
fn edgewise_run_sees_the_cluster_enforces_a_drop_rule_and_a_replay_agrees() {
    if !preflight() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("edgewise-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("live.pcap");
    let graph_dir = dir.join("graph");

    assert!(scenario(&["up"]), "the cluster comes up");
    let _cluster = Cluster;
    let tcpdump = Collected::spawn(Command::new("ip").args([
        "netns",
        "exec",
        "ewcl-node",
        "tcpdump",
        "--immediate-mode",
        "-U",
        "-n",
        "-i",
        "ewcl-br0",
        "-w",
        pcap.to_str().unwrap(),
    ]));
    let inputs = demo_inputs();
    let daemon = start_daemon(&inputs, &graph_dir, &[]);
    assert!(
        Collected::wait_for(&daemon.stderr, 20, |line| line.contains(": observing")),
        "the daemon attached: {}",
        Collected::text(&daemon.stderr)
    );
    assert!(http_get("/healthz").starts_with("ok\n"));
    std::thread::sleep(Duration::from_millis(500)); // tcpdump is capturing

    check_enforcement(&daemon);
    check_http();
    daemon.signal("-USR1");
    assert!(
        Collected::wait_for(&daemon.stderr, 5, |line| line.ends_with("graph.dot")),
        "SIGUSR1 writes the graph files: {}",
        Collected::text(&daemon.stderr)
    );

    daemon.signal("-TERM");
    let mut daemon = daemon;
    let exit = daemon.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200)); // the readers drain
    assert!(
        exit.success(),
        "SIGTERM ends it cleanly: {}",
        Collected::text(&daemon.stderr)
    );
    tcpdump.signal("-INT");
    let mut tcpdump = tcpdump;
    let _ = tcpdump.child.wait();

    let live = Collected::text(&daemon.stdout);
    let edges = check_records(&live, &graph_dir);

    for pod in ["frontend", "postgres"] {
        assert_eq!(
            edgewise_capture::tcx_programs(
                &format!("ewh-{pod}"),
                Some(Path::new("/run/netns/ewcl-node"))
            )
            .unwrap(),
            (0, 0),
            "the daemon detached on exit"
        );
    }

    let (replayed, stderr, ok) = common::edgewise(
        &[
            &["replay", pcap.to_str().unwrap()][..],
            &inputs.each_ref().map(String::as_str),
        ]
        .concat(),
    );
    assert!(ok, "{stderr}");
    assert_eq!(edges_of(&replayed), edges, "a replay of the same traffic");
    std::fs::remove_dir_all(&dir).unwrap();
}
