//! The commands that read Kubernetes objects from files also read them
//! from a cluster (`--kubeconfig`): against the fake API server serving
//! the demo's objects and NetworkPolicies (no real API server can run
//! here), `resolve` names peers and `edges` gives the policies' verdicts,
//! with no file exported.

mod common;

use std::path::Path;

use common::edgewise;
use edgewise_k8s::testing::FakeApiServer;
use serde_json::Value;

fn demo(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../demo/cluster")
        .join(file);
    let list: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    list["items"].as_array().unwrap().clone()
}

#[test]
fn resolve_and_edges_read_the_cluster() {
    let api = FakeApiServer::start();
    for object in demo("objects.json")
        .into_iter()
        .chain(demo("policies.json"))
    {
        api.apply(object);
    }
    let dir = std::env::temp_dir().join(format!("edgewise-kube-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    let kubeconfig = kubeconfig.to_str().unwrap();

    let (stdout, stderr, ok) =
        edgewise(&["resolve", "--kubeconfig", kubeconfig, "10.42.1.12:5432"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "shop/postgres-0:5432 (10.42.1.12)");

    let flows = dir.join("flows.jsonl");
    std::fs::write(
        &flows,
        "{\"src\": \"10.42.1.10\", \"dst\": \"10.42.1.12\", \"port\": 5432, \"proto\": \"tcp\"}\n",
    )
    .unwrap();
    let (stdout, stderr, ok) = edgewise(&[
        "edges",
        "--kubeconfig",
        kubeconfig,
        "--flows",
        flows.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let line: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["verdict"], "violation", "{line}");
    assert_eq!(line["policy"], "shop/postgres-ingress", "{line}");

    // A cluster that cannot be reached is an error, not an empty answer.
    drop(api);
    let (_, stderr, ok) = edgewise(&["resolve", "--kubeconfig", kubeconfig, "10.42.1.12:5432"]);
    assert!(!ok);
    assert!(stderr.contains("the cluster cannot be listed"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
