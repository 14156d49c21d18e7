//! `edgewise run --observe-mode af_packet`, as root, on the demo cluster
//! of `demo/cluster/scenario.sh`: a tcx daemon and an `af_packet` one side
//! by side on the same traffic write the same edges and fingerprints, and
//! the `af_packet` one refuses its drop rule's ban (`"enforced": false`,
//! said in the log). Its own test binary: the demo cluster's namespaces
//! are shared, so two tests using it cannot run at once.
//!
//! Needs root, `ip`, `python3`, `dnsmasq` and `tcpdump`; skips with the
//! reason otherwise (a failure under `CI=true`). Traffic stays between the
//! namespaces the scenario creates; they are removed on exit, even on
//! panic.

mod common;
mod live;

use std::time::Duration;

use common::edges_of;
use live::{Cluster, Collected, demo, logged, preflight, run_daemon, scenario, stop};

#[test]
fn af_packet_gives_the_same_edges_as_tcx_on_the_same_traffic() {
    if !preflight() {
        return;
    }
    assert!(scenario(&["up"]), "the cluster comes up");
    let _cluster = Cluster;
    let dir = std::env::temp_dir().join(format!("edgewise-afp-{}", std::process::id()));
    let pins = dir.join("pins");
    let tcx = run_daemon(&["--observe-interfaces", "ewh-*"]);
    let packets = run_daemon(&[
        "--observe-interfaces",
        "ewh-*",
        "--observe-mode",
        "af_packet",
        "--bpf-pin-dir",
        pins.to_str().unwrap(),
        // Its drop rule cannot be enforced: refused, said, traffic untouched.
        "--rules",
        demo("rules.toml").to_str().unwrap(),
    ]);
    for daemon in [&tcx, &packets] {
        assert!(
            logged(daemon, 20, &[": observing"]),
            "{}",
            Collected::text(&daemon.stderr)
        );
    }
    assert!(
        logged(&packets, 1, &["mode=af_packet"]),
        "{}",
        Collected::text(&packets.stderr)
    );
    assert!(scenario(&["traffic"]), "the clients ran");
    // Both settle (2 s) and write their records.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        logged(&packets, 1, &["af_packet observes only: bans are refused"]),
        "{}",
        Collected::text(&packets.stderr)
    );
    let (tcx, packets) = (stop(tcx), stop(packets));
    let (by_tcx, by_packets) = (edges_of(&tcx), edges_of(&packets));
    assert_eq!(by_tcx.len(), 9, "{by_tcx:#?}");
    assert_eq!(by_packets, by_tcx);
    // The fingerprints agree too: the same SYN and SYN-ACK headers.
    let fingerprints = |lines: &str| {
        common::records(lines, "edge")
            .filter(|e| e["update"] != true)
            .map(|e| {
                (
                    e["src"]["ip"].to_string(),
                    e["dst"]["port"].to_string(),
                    e["ja4t"].to_string(),
                    e["ja4ts"].to_string(),
                )
            })
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(fingerprints(&packets), fingerprints(&tcx));
    let refused = common::records(&packets, "rule")
        .find(|r| r["action"] == "drop")
        .expect("the drop rule matched");
    assert_eq!(refused["enforced"], false, "{refused}");
    let _ = std::fs::remove_dir_all(&dir);
}
