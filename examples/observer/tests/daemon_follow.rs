//! Follow mode, as root, on the demo cluster of `demo/cluster/scenario.sh`:
//! `edgewise identity serve` watches a fake API server (the demo's objects
//! and policies, served by `edgewise_k8s::testing::FakeApiServer`, which
//! speaks the real list and watch protocol; no real API server can run
//! here) and serves over TLS with a bearer token; `edgewise run` gets no
//! objects, no policies and no API access, only `--identity-stream` with
//! the CA and the token. It must name both ends of live traffic, give the
//! NetworkPolicy verdict, follow a policy edit and a pod replaced by
//! another on the same address.
//!
//! Needs root, `ip`, `python3`, `dnsmasq` and `tcpdump`; skips with the
//! reason otherwise (a failure under `CI=true`).

mod common;
mod live;

use std::process::Command;

use edgewise_test_support::pki::Pki;
use live::fake::{self, Fake, let_frontend_into_postgres, observe_demo_traffic, replace_postgres};
use live::{Cluster, Collected, preflight, scenario};

/// The fake API server's process (see `live::fake`).
#[test]
#[ignore = "a helper process, started by an_agent_in_follow_mode_needs_no_api_access"]
fn fake_api_process() {
    fake::serve_from_stdin();
}

#[test]
fn an_agent_in_follow_mode_needs_no_api_access() {
    if !preflight() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("edgewise-follow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::new(&dir);
    let token = dir.join("token");
    std::fs::write(&token, "agent-token\n").unwrap();
    assert!(scenario(&["up"]), "the cluster comes up");
    let _cluster = Cluster;
    let (mut fake, kubeconfig) = Fake::with_demo(&dir);

    // The server, in the node's namespace beside the fake.
    let server = Collected::spawn(
        Command::new("ip")
            .args(["netns", "exec", "ewcl-node"])
            .args([env!("CARGO_BIN_EXE_edgewise"), "identity", "serve"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--listen", "127.0.0.1:9470"])
            .arg("--tls-cert")
            .arg(&pki.server.0)
            .arg("--tls-key")
            .arg(&pki.server.1)
            .arg("--token-file")
            .arg(&token),
    );
    assert!(
        Collected::wait_for(&server.stderr, 40, |l| l
            .contains("serving identities on https://")),
        "the server started: {}",
        Collected::text(&server.stderr)
    );

    // The agent: nothing but the stream.
    let inputs = [
        "--identity-stream".to_owned(),
        "https://127.0.0.1:9470".to_owned(),
        "--identity-stream-ca".to_owned(),
        pki.ca.display().to_string(),
        "--identity-stream-token-file".to_owned(),
        token.display().to_string(),
    ];
    let daemon = observe_demo_traffic(&inputs, &dir.join("graph"));

    // A NetworkPolicy edited on the API: the server streams it, the edge's
    // verdict follows.
    let_frontend_into_postgres(&mut fake, &daemon);

    // Pod churn: postgres replaced by another pod on the same address.
    replace_postgres(&mut fake, &daemon);

    daemon.signal("-TERM");
    let mut daemon = daemon;
    assert!(daemon.child.wait().unwrap().success());
    server.signal("-TERM");
    let mut server = server;
    assert!(server.child.wait().unwrap().success());
    drop(fake);
    std::fs::remove_dir_all(&dir).unwrap();
}
