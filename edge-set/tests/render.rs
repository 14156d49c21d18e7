//! JSON and DOT output of a small graph.

use edgewise_edge_set::render::{aggregate_json, dot, graph_json, read_graph_json};
use edgewise_edge_set::{
    AggregateOptions, DeclaredPolicies, EdgeKey, Fingerprint, Granularity, GraphConfig,
    ObservedGraph, ServiceGraph, aggregate,
};
use edgewise_ip_index::{IpIndex, Protocol};
use edgewise_time::UnixNanos;
use serde_json::json;

fn graph() -> ServiceGraph {
    let mut index = IpIndex::default();
    let report = index.load(
        br#"{"kind": "List", "items": [
      {"kind": "Pod", "metadata": {"name": "web-7d4b9c8f6-abcde", "namespace": "frontend",
        "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d4b9c8f6", "controller": true}]},
       "status": {"phase": "Running", "podIP": "10.42.2.30"}},
      {"kind": "Pod", "metadata": {"name": "influxdb-0", "namespace": "analytics",
        "labels": {"app": "influxdb", "service-identity": "tsdb"},
        "ownerReferences": [{"kind": "StatefulSet", "name": "influxdb", "controller": true}]},
       "status": {"phase": "Running", "podIP": "10.42.1.159"}}]}"#,
    );
    assert_eq!(report.errors, []);
    let mut declared = DeclaredPolicies::default();
    declared
        .load_allow_list("allow.txt", "frontend/web -> analytics/influxdb 8086")
        .unwrap();
    let policies = declared.compile();
    let mut observed = ObservedGraph::new(GraphConfig::default(), UnixNanos::ZERO);
    let edge = |port| EdgeKey {
        src: "10.42.2.30".parse().unwrap(),
        dst: "10.42.1.159".parse().unwrap(),
        port,
        protocol: Protocol::Tcp,
    };
    observed.record(edge(8086), 3, 900, UnixNanos::from_nanos(10));
    observed.record(edge(22), 1, 0, UnixNanos::from_nanos(20));
    observed.fingerprint(
        "10.42.1.159".parse().unwrap(),
        Fingerprint::Server("65160_2-4-8-1-3_1460_7"),
        UnixNanos::from_nanos(10),
    );
    observed.service(
        "10.42.1.159".parse().unwrap(),
        8086,
        Protocol::Tcp,
        "http",
        UnixNanos::from_nanos(10),
    );
    let slice = observed.drain(
        "worker-1",
        UnixNanos::from_nanos(30),
        &mut index.snapshot(),
        Some(&policies),
    );
    ServiceGraph::from_slice(&slice)
}

#[test]
fn graph_json_follows_the_documented_schema() {
    let json = graph_json(&graph());
    assert_eq!(json["schema"], "edgewise.graph/v1");
    let edge = &json["edges"][1];
    assert_eq!(edge["src"]["ip"], "10.42.2.30");
    assert_eq!(
        edge["src"]["identity"]["display"],
        "frontend/web-7d4b9c8f6-abcde"
    );
    assert_eq!(
        edge["src"]["identity"]["workload"],
        json!({"namespace": "frontend", "kind": "Deployment", "name": "web"})
    );
    assert_eq!(edge["dst"]["identity"]["kind"], "Pod");
    assert_eq!(
        (
            &edge["port"],
            &edge["proto"],
            &edge["flows"],
            &edge["bytes"]
        ),
        (&json!(8086), &json!("tcp"), &json!(3), &json!(900))
    );
    assert_eq!(
        (&edge["verdict"], &edge["policy"]),
        (&json!("declared"), &json!("allow.txt:1"))
    );
    assert_eq!(json["edges"][0]["verdict"], "violation");
    let node = &json["nodes"][0];
    assert_eq!(node["ip"], "10.42.1.159");
    assert_eq!(node["ja4ts"], json!(["65160_2-4-8-1-3_1460_7"]));
    assert_eq!(
        node["services"],
        json!([{"port": 8086, "proto": "tcp", "name": "http"}])
    );
}

#[test]
fn a_graph_document_reads_back_as_the_same_graph() {
    let graph = graph();
    let text = serde_json::to_vec(&graph_json(&graph)).unwrap();
    let slice = read_graph_json("from-file", &text).unwrap();
    assert_eq!(slice.agent, "from-file");
    assert_eq!(
        graph_json(&ServiceGraph::from_slice(&slice)),
        graph_json(&graph)
    );
    for (bad, expected) in [
        (
            &br#"{"schema": "edgewise.aggregate/v1", "edges": []}"#[..],
            "schema",
        ),
        (
            br#"{"schema": "edgewise.graph/v1"}"#,
            "not a graph document",
        ),
        (b"[", "not a graph document"),
    ] {
        let error = read_graph_json("x", bad).unwrap_err();
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn aggregates_and_dot_mark_each_edge() {
    let graph = graph();
    let mut workload = AggregateOptions::new(Granularity::Workload);
    workload.drop_self_edges = true;
    let aggregated = aggregate(&graph, &workload);
    let json = aggregate_json(&aggregated, &workload.granularity);
    assert_eq!(json["granularity"], "workload");
    assert_eq!(json["edges"][0]["src"], "frontend/Deployment/web");
    assert_eq!(json["edges"][0]["dst"], "analytics/StatefulSet/influxdb");
    assert_eq!(json["edges"][1]["verdicts"]["declared"], 3);

    let by_label = aggregate(
        &graph,
        &AggregateOptions::new(Granularity::NamespaceLabel("service-identity".into())),
    );
    assert_eq!(
        (
            by_label.edges[0].src.as_str(),
            by_label.edges[0].dst.as_str()
        ),
        ("frontend", "analytics/tsdb")
    );

    let dot = dot(&aggregated);
    assert!(dot.starts_with("digraph edgewise {\n"), "{dot}");
    assert!(dot.contains(
        "\"frontend/Deployment/web\" -> \"analytics/StatefulSet/influxdb\" [label=\"22/tcp\\n1 flow\\nviolation\", color=\"#c62828\""
    ), "{dot}");
    assert!(
        dot.contains("[label=\"8086/tcp\\n3 flows\", color=\"#2e7d32\""),
        "{dot}"
    );
    assert!(dot.ends_with("}\n"));
}
