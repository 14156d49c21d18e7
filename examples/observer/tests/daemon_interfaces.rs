//! `edgewise run` with interfaces that come and go, as root, on the demo
//! cluster of `demo/cluster/scenario.sh`: a glob (`ewh-*`, as `cali*` or
//! `lxc*` on a real node) attaches a pod's veth created after the start
//! within 2 s and observes its traffic; deleting the veth leaves the daemon
//! running; a listed interface that does not exist is a warning and shows
//! in `/healthz`.
//!
//! Needs root, `ip`, `python3`, `dnsmasq` and `tcpdump`; skips with the
//! reason otherwise (a failure under `CI=true`). Traffic stays between the
//! namespaces the scenario and the test create; they are removed on exit,
//! even on panic (every namespace is `ewcl-*`, which `scenario.sh down`
//! removes).

mod common;
mod live;

use std::process::Command;
use std::time::{Duration, Instant};

use live::{Cluster, Collected, http_get, logged, preflight, run_daemon, scenario, stop};
use serde_json::Value;

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?}");
}

/// A pod starts: its host veth appears on the bridge, and the daemon
/// attaches it within 2 s.
fn start_a_pod(daemon: &Collected) {
    // A pod starts: its host veth appears on the bridge.
    ip(&["netns", "add", "ewcl-late"]);
    let created = Instant::now();
    ip(&[
        "link",
        "add",
        "ewh-late",
        "netns",
        "ewcl-node",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        "ewcl-late",
    ]);
    let attached = logged(daemon, 2, &["ewh-late", "attached", "egress"])
        && logged(daemon, 1, &["ewh-late", "attached", "ingress"]);
    let took = created.elapsed();
    assert!(
        attached && took < Duration::from_secs(2),
        "attached within 2 s ({took:?}): {}",
        Collected::text(&daemon.stderr)
    );
    for args in [
        &[
            "-n",
            "ewcl-node",
            "link",
            "set",
            "ewh-late",
            "master",
            "ewcl-br0",
            "up",
        ][..],
        &[
            "-n",
            "ewcl-late",
            "addr",
            "add",
            "10.42.1.77/24",
            "dev",
            "eth0",
        ],
        &["-n", "ewcl-late", "link", "set", "eth0", "up"],
        &["-n", "ewcl-late", "link", "set", "lo", "up"],
    ] {
        ip(args);
    }
}

#[test]
fn a_glob_attaches_a_pod_started_later_and_survives_its_deletion() {
    if !preflight() {
        return;
    }
    assert!(scenario(&["up"]), "the cluster comes up");
    let _cluster = Cluster;
    let daemon = run_daemon(&[
        "--observe-interfaces",
        "ewh-*,ewh-absent",
        "--listen",
        "127.0.0.1:9464",
    ]);
    assert!(
        logged(&daemon, 20, &[": observing"]),
        "{}",
        Collected::text(&daemon.stderr)
    );
    assert!(
        logged(&daemon, 1, &["ewh-absent", "no such interface (yet)"]),
        "a missing listed interface is a warning: {}",
        Collected::text(&daemon.stderr)
    );
    std::thread::sleep(Duration::from_millis(1200)); // a stats tick
    let health = http_get("/healthz");
    assert!(health.starts_with("ok\n"), "{health}");
    assert!(health.contains("missing: ewh-absent"), "{health}");
    assert!(
        health.contains("attached: 14"),
        "7 pods, both ways: {health}"
    );

    start_a_pod(&daemon);
    assert!(
        scenario(&["connect", "late", "10.42.1.11", "8080", "5"]),
        "the new pod reaches checkout"
    );
    let edge_from_late =
        |line: &str| line.contains("\"type\":\"edge\"") && line.contains("\"ip\":\"10.42.1.77\"");
    assert!(
        Collected::wait_for(&daemon.stdout, 10, edge_from_late),
        "the new pod's edge: {}",
        Collected::text(&daemon.stdout)
    );

    // The pod goes: released, the daemon runs on.
    ip(&["-n", "ewcl-node", "link", "del", "ewh-late"]);
    assert!(
        logged(&daemon, 2, &["ewh-late", "detached"]),
        "{}",
        Collected::text(&daemon.stderr)
    );
    std::thread::sleep(Duration::from_millis(1200));
    let health = http_get("/healthz");
    assert!(health.contains("attached: 14"), "{health}");
    assert!(!health.contains("failed:"), "{health}");
    let metrics = http_get("/metrics");
    assert!(
        metrics.contains("edgewise_interfaces_attached 14"),
        "{metrics}"
    );
    assert!(
        scenario(&["connect", "frontend", "10.42.1.11", "8080", "3"]),
        "the others still pass"
    );
    let live = stop(daemon);
    let stats: Value = serde_json::from_str(
        live.lines()
            .rev()
            .find(|l| l.contains("\"type\":\"stats\""))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stats["interfaces"], 14, "as it stopped: {stats}");
    assert_eq!(stats["interface_failures"], serde_json::json!({}));
}
