//! `edgewise edges` as a user runs it, on the bundled demo files.

mod common;

use std::path::PathBuf;

use common::edgewise;

fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .to_str()
        .unwrap()
        .to_owned()
}

fn name(endpoint: &serde_json::Value) -> String {
    endpoint["identity"]["display"].as_str().map_or_else(
        || endpoint["ip"].as_str().unwrap().to_owned(),
        str::to_owned,
    )
}

#[test]
fn each_flow_gets_identities_and_a_verdict_and_the_graph_is_written() {
    let out_dir = std::env::temp_dir().join(format!("edgewise-edges-{}", std::process::id()));
    let objects = repo("ip-index/tests/fixtures/cluster.json");
    let policies = repo("demo/edges/policies.json");
    let flows = repo("demo/edges/flows.jsonl");
    let (stdout, stderr, ok) = edgewise(&[
        "edges",
        "--objects",
        &objects,
        "--policies",
        &policies,
        "--flows",
        &flows,
        "--graph-out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let rows: Vec<(String, String, u64, String, String)> = stdout
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                name(&v["src"]),
                name(&v["dst"]),
                v["port"].as_u64().unwrap(),
                v["verdict"].as_str().unwrap().to_owned(),
                v["policy"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let row = |src: &str, dst: &str, port, verdict: &str, policy: &str| {
        (
            src.to_owned(),
            dst.to_owned(),
            port,
            verdict.to_owned(),
            policy.to_owned(),
        )
    };
    let telegraf = "analytics/telegraf-5d8f7c9b4-x7k2q";
    let telegraf_2 = "analytics/telegraf-5d8f7c9b4-p9m4s";
    let frontend = "web/frontend-7f9c6b5d4-kq2vd";
    let influxdb = "analytics/influxdb-0";
    let ingress = "analytics/influxdb-ingress";
    let egress = "analytics/telegraf-egress";
    assert_eq!(
        rows,
        [
            row(telegraf, influxdb, 8086, "declared", ingress),
            row(frontend, influxdb, 8086, "declared", ingress),
            row(frontend, influxdb, 22, "violation", ingress),
            row("10.42.2.99", influxdb, 8086, "violation", ingress),
            row(telegraf_2, "198.51.100.7", 443, "violation", egress),
            row(telegraf_2, "10.43.0.10", 53, "declared", egress),
            row(frontend, "default/kubernetes", 443, "not_governed", "-"),
            row("node/worker-1", influxdb, 8086, "violation", ingress),
            row(telegraf, influxdb, 8086, "declared", ingress),
        ]
    );
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        (&first["ingress"], &first["egress"]),
        (&"allowed".into(), &"allowed".into())
    );
    assert_eq!(first["dst"]["identity"]["named_ports"][0]["name"], "http");

    let dot = std::fs::read_to_string(out_dir.join("graph.dot")).unwrap();
    assert!(dot.contains(
        "\"analytics/Deployment/telegraf\" -> \"analytics/StatefulSet/influxdb\" [label=\"8086/tcp\\n2 flows\""
    ), "{dot}");
    let graph: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("graph-workload.json")).unwrap(),
    )
    .unwrap();
    let flows: u64 = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["flows"].as_u64().unwrap())
        .sum();
    assert_eq!(flows, 9);
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn bad_input_is_named() {
    let objects = repo("ip-index/tests/fixtures/cluster.json");
    let dir = std::env::temp_dir().join(format!("edgewise-edges-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let flows = write(
        "flows.jsonl",
        "{\"src\": \"10.0.0.1\", \"dst\": \"10.0.0.2\", \"port\": 80, \"proto\": \"tcp\"}\n{\"src\": \"10.0.0.1\", \"dst\": \"10.0.0.2\", \"port\": 80, \"proto\": \"icmp\"}\n",
    );
    let (stdout, stderr, ok) = edgewise(&["edges", "--objects", &objects, "--flows", &flows]);
    assert!(!ok);
    assert_eq!(
        stdout.lines().count(),
        1,
        "the good line before it was written"
    );
    assert!(
        stderr.contains("flows.jsonl:2: unknown variant `icmp`"),
        "{stderr}"
    );

    let policies = write(
        "policies.json",
        r#"{"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "ns"}, "spec": {"ingress": [{"ports": [{"port": 0}]}]}}"#,
    );
    let (_, stderr, ok) = edgewise(&[
        "edges",
        "--objects",
        &objects,
        "--policies",
        &policies,
        "--flows",
        &flows,
    ]);
    assert!(!ok);
    assert!(stderr.contains("policies.json: document 1: NetworkPolicy ns/p: spec.ingress[0].ports[0].port 0 is not a port in 1..=65535"), "{stderr}");

    let allow = write("allow.txt", "a/b -> c/d 80\na/b -> *\nx -> y\n");
    let (_, stderr, ok) = edgewise(&[
        "edges",
        "--objects",
        &objects,
        "--allow-list",
        &allow,
        "--flows",
        &flows,
    ]);
    assert!(!ok);
    assert!(stderr.contains("allow.txt:2: the destination must be pods or an address, not `*` (and 1 more wrong lines)"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}
