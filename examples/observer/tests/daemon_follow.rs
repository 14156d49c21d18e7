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
use live::fake::{self, Fake, edge_record, items};
use live::{Cluster, Collected, demo, preflight, scenario, start_daemon};
use serde_json::{Value, json};

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
    let (mut fake, url) = Fake::start();
    for object in items(&demo("objects.json"))
        .iter()
        .chain(&items(&demo("policies.json")))
    {
        fake.send("apply", Some(object));
    }
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, edgewise_k8s::testing::kubeconfig(&url)).unwrap();

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
    let daemon = start_daemon(&inputs, &dir.join("graph"), &[]);
    assert!(
        Collected::wait_for(&daemon.stderr, 40, |line| line.contains(": observing")),
        "the daemon attached: {}",
        Collected::text(&daemon.stderr)
    );
    assert!(scenario(&["traffic"]), "the clients ran");
    let to_db = |e: &Value| {
        e["src"]["identity"]["name"] == "frontend-7d9f8c6b5-x0"
            && e["dst"]["identity"]["name"] == "postgres-0"
    };
    let first = edge_record(&daemon, |e| to_db(e) && e["update"] == false);
    assert_eq!(first["verdict"], "violation", "{first}");

    // A NetworkPolicy edited on the API: the server streams it, the edge's
    // verdict follows.
    let mut policy = items(&demo("policies.json"))
        .into_iter()
        .find(|p| p["metadata"]["name"] == "postgres-ingress")
        .unwrap();
    policy["spec"]["ingress"][0]["from"]
        .as_array_mut()
        .unwrap()
        .push(json!({"podSelector": {"matchLabels": {"app": "frontend"}}}));
    fake.send("apply", Some(&policy));
    edge_record(&daemon, |e| {
        to_db(e) && e["update"] == true && e["verdict"] == "declared"
    });

    // Pod churn: postgres replaced by another pod on the same address.
    let mut postgres = items(&demo("objects.json"))
        .into_iter()
        .find(|o| o["metadata"]["name"] == "postgres-0")
        .unwrap();
    fake.send("delete", Some(&postgres));
    postgres["metadata"]["name"] = json!("postgres-1");
    postgres["metadata"]["uid"] = json!("postgres-1-uid");
    fake.send("apply", Some(&postgres));
    edge_record(&daemon, |e| {
        e["update"] == true
            && e["src"]["identity"]["name"] == "frontend-7d9f8c6b5-x0"
            && e["dst"]["identity"]["name"] == "postgres-1"
    });

    daemon.signal("-TERM");
    let mut daemon = daemon;
    assert!(daemon.child.wait().unwrap().success());
    server.signal("-TERM");
    let mut server = server;
    assert!(server.child.wait().unwrap().success());
    drop(fake);
    std::fs::remove_dir_all(&dir).unwrap();
}
