//! `edgewise run --kubeconfig` against a fake API server, as root, on the
//! demo cluster of `demo/cluster/scenario.sh`: no file is exported; the
//! daemon watches pods, namespaces and NetworkPolicies (the demo's, served
//! by `edgewise_k8s::testing::FakeApiServer`, which speaks the real list
//! and watch protocol; no real API server can run here) and must name both
//! ends of each edge, turn a NetworkPolicy edit into new verdicts, follow
//! a pod replaced by another on the same address, and keep following
//! after a 410 relist.
//!
//! The fake runs inside the node's namespace, where the daemon runs: this
//! test binary started again as a child under `ip netns exec`, driven by
//! lines on its standard input. Needs root, `ip`, `python3`, `dnsmasq`
//! and `tcpdump`; skips with the reason otherwise (a failure under
//! `CI=true`).

mod common;
mod live;

use live::fake::{self, Fake, let_frontend_into_postgres, observe_demo_traffic, replace_postgres};
use live::{Cluster, preflight, scenario};

/// The fake API server's process (see `live::fake`).
#[test]
#[ignore = "a helper process, started by edgewise_run_follows_a_cluster_through_its_api"]
fn fake_api_process() {
    fake::serve_from_stdin();
}

#[test]
fn edgewise_run_follows_a_cluster_through_its_api() {
    if !preflight() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("edgewise-kube-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    assert!(scenario(&["up"]), "the cluster comes up");
    let _cluster = Cluster;
    let (mut fake, kubeconfig) = Fake::with_demo(&dir);
    let inputs = [
        "--kubeconfig".to_owned(),
        kubeconfig.to_str().unwrap().to_owned(),
    ];
    // Both ends named from the watched objects, the verdict from the
    // watched NetworkPolicies.
    let daemon = observe_demo_traffic(&inputs, &dir.join("graph"));

    // A NetworkPolicy edited on the API: the edge's verdict follows.
    let_frontend_into_postgres(&mut fake, &daemon);

    // The history compacted and the watches dropped (a 410 relist), then
    // the postgres pod replaced by another on the same address: the edge
    // names the new pod.
    fake.send("compact", None);
    fake.send("drop", None);
    replace_postgres(&mut fake, &daemon);

    daemon.signal("-TERM");
    let mut daemon = daemon;
    assert!(daemon.child.wait().unwrap().success());
    drop(fake);
    std::fs::remove_dir_all(&dir).unwrap();
}
