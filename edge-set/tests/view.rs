//! The web view's drawing: groups, one edge per pair with its ports and
//! facts, the time window.

use edgewise_edge_set::render::read_graph_json;
use edgewise_edge_set::{Granularity, ServiceGraph, ViewOptions, view, view_json};
use serde_json::json;

const SECOND: u64 = 1_000_000_000;

/// Two web pods, a database, an external API named by DNS, an address
/// nobody named; the database's port 22 edge is a violation.
fn graph() -> ServiceGraph {
    let web = |name: &str, ip: &str| {
        json!({"ip": ip, "identity": {"kind": "Pod", "namespace": "shop", "name": name,
            "workload": {"namespace": "shop", "kind": "Deployment", "name": "web"},
            "labels": {"service-identity": "storefront"}, "display": format!("shop/{name}")}})
    };
    let db = json!({"ip": "10.0.1.9", "identity": {"kind": "Pod", "namespace": "data",
        "name": "db-0", "workload": {"namespace": "data", "kind": "StatefulSet", "name": "db"},
        "display": "data/db-0"}});
    let api = json!({"ip": "203.0.113.7", "identity": null, "fqdn": "api.example.com"});
    let unknown = json!({"ip": "198.51.100.1", "identity": null});
    let edge = |src: &serde_json::Value,
                dst: &serde_json::Value,
                port: u16,
                flows: u64,
                seen: u64,
                verdict: &str,
                policy: Option<&str>| {
        json!({"src": src, "dst": dst, "port": port, "proto": "tcp", "flows": flows,
            "bytes": 10, "first_seen_ns": seen, "last_seen_ns": seen,
            "verdict": verdict, "policy": policy})
    };
    let (web_a, web_b) = (web("web-a", "10.0.0.1"), web("web-b", "10.0.0.2"));
    let document = json!({"schema": "edgewise.graph/v1", "edges": [
        edge(&web_a, &db, 5432, 3, 100 * SECOND, "declared", Some("data/db-ingress")),
        edge(&web_b, &db, 5432, 2, 200 * SECOND, "declared", Some("data/db-ingress")),
        edge(&web_a, &db, 22, 1, 300 * SECOND, "violation", Some("data/db-ingress")),
        edge(&web_b, &api, 443, 4, 400 * SECOND, "not_governed", None),
        edge(&db, &unknown, 53, 1, 50 * SECOND, "not_governed", None),
    ], "nodes": [
        {"ip": "10.0.0.1", "identity": web_a["identity"], "ja4t": ["64240_2-4-8-1-3_1460_7"],
         "ja4ts": [], "services": [], "last_seen_ns": 300 * SECOND},
        {"ip": "10.0.1.9", "identity": db["identity"], "ja4t": [], "ja4ts": ["65160_2-4-8-1-3_1460_7"],
         "services": [{"port": 5432, "proto": "tcp", "name": "postgresql"},
                      {"port": 22, "proto": "tcp", "name": "ssh", "product": "OpenSSH"}],
         "last_seen_ns": 300 * SECOND},
        {"ip": "203.0.113.7", "identity": null, "fqdn": "api.example.com", "ja4t": [],
         "ja4ts": [], "ja4s": ["t130200_1301_234ea6891581"],
         "services": [{"port": 443, "proto": "tcp", "name": "tls"}], "last_seen_ns": 400 * SECOND}]});
    let slice = read_graph_json("node-a", document.to_string().as_bytes()).unwrap();
    ServiceGraph::from_slice(&slice)
}

fn options(granularity: Granularity, window_ns: Option<u64>) -> ViewOptions {
    let mut view_options = ViewOptions::new(granularity);
    view_options.window_ns = window_ns;
    view_options
}

#[test]
fn by_workload_each_pair_is_one_edge_with_its_ports_and_facts() {
    let drawn = view(&graph(), &options(Granularity::Workload, None));
    let ids: Vec<(&str, &str)> = drawn
        .groups
        .iter()
        .map(|g| (g.id.as_str(), g.kind))
        .collect();
    assert_eq!(
        ids,
        [
            ("198.51.100.1", "address"),
            ("api.example.com", "external"),
            ("data/StatefulSet/db", "workload"),
            ("shop/Deployment/web", "workload")
        ]
    );
    assert_eq!(drawn.newest_ns, 400 * SECOND);
    assert_eq!((drawn.edges_in_window, drawn.edges_in_graph), (5, 5));
    let to_db = drawn
        .edges
        .iter()
        .find(|e| e.dst == "data/StatefulSet/db")
        .unwrap();
    let json = serde_json::to_value(to_db).unwrap();
    assert_eq!(json["src"], "shop/Deployment/web");
    assert_eq!(json["verdict"], "violation", "the worst of its ports");
    assert_eq!(json["flows"], 6);
    assert_eq!(
        json["ports"],
        json!([
            {"port": 22, "proto": "tcp", "flows": 1, "verdict": "violation", "policies": ["data/db-ingress"]},
            {"port": 5432, "proto": "tcp", "flows": 5, "verdict": "declared", "policies": ["data/db-ingress"]}
        ])
    );
    assert_eq!(json["client"]["ja4t"], json!(["64240_2-4-8-1-3_1460_7"]));
    assert_eq!(json["server"]["ja4ts"], json!(["65160_2-4-8-1-3_1460_7"]));
    let services: Vec<&str> = to_db
        .server
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(services, ["ssh", "postgresql"]);
    assert_eq!(
        (to_db.first_seen_ns, to_db.last_seen_ns),
        (100 * SECOND, 300 * SECOND)
    );
    let web = drawn
        .groups
        .iter()
        .find(|g| g.id == "shop/Deployment/web")
        .unwrap();
    assert_eq!(web.namespace.as_deref(), Some("shop"));
    assert_eq!(web.addresses.len(), 2);
}

#[test]
fn an_external_server_is_drawn_by_its_name_with_its_tls_facts() {
    let json = view_json(&graph(), &options(Granularity::Workload, None));
    assert_eq!(json["schema"], "edgewise.view/v1");
    let edges = json["edges"].as_array().unwrap();
    let to_api = edges
        .iter()
        .find(|e| e["dst"] == "api.example.com")
        .unwrap();
    assert_eq!(to_api["fqdns"], json!(["api.example.com"]));
    assert_eq!(to_api["verdict"], "not_governed");
    assert_eq!(to_api["ports"][0]["policies"], json!([]));
    assert_eq!(
        to_api["server"]["ja4s"],
        json!(["t130200_1301_234ea6891581"])
    );
    assert_eq!(to_api["server"]["services"][0]["name"], "tls");
}

#[test]
fn coarser_granularities_name_the_namespace_or_its_label() {
    let drawn = view(&graph(), &options(Granularity::Namespace, None));
    let pairs: Vec<(&str, &str)> = drawn
        .edges
        .iter()
        .map(|e| (e.src.as_str(), e.dst.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("data", "198.51.100.1"),
            ("shop", "api.example.com"),
            ("shop", "data")
        ]
    );
    assert_eq!(drawn.granularity, "namespace");
    let labelled = view(
        &graph(),
        &options(Granularity::NamespaceLabel("service-identity".into()), None),
    );
    assert_eq!(labelled.granularity, "namespace+service-identity");
    assert!(
        labelled
            .groups
            .iter()
            .any(|g| g.id == "shop/storefront" && g.kind == "namespace")
    );
}

#[test]
fn the_window_counts_back_from_the_newest_edge() {
    let drawn = view(
        &graph(),
        &options(Granularity::Workload, Some(150 * SECOND)),
    );
    // Seen at 300 s and 400 s: the port 22 edge and the API; the database
    // group keeps only the violation's flows.
    assert_eq!((drawn.edges_in_window, drawn.edges_in_graph), (2, 5));
    let to_db = drawn
        .edges
        .iter()
        .find(|e| e.dst == "data/StatefulSet/db")
        .unwrap();
    assert_eq!(to_db.flows, 1);
    assert_eq!(to_db.ports.len(), 1);
    assert!(
        !drawn.groups.iter().any(|g| g.id == "198.51.100.1"),
        "a group with no edge in the window is not drawn"
    );
    let empty = view(
        &ServiceGraph::new(),
        &options(Granularity::Workload, Some(SECOND)),
    );
    assert_eq!((empty.newest_ns, empty.edges.len()), (0, 0));
}
