//! Output: the graph as JSON (a stable, documented schema) and as Graphviz
//! DOT, with each edge marked declared, not governed or violation.
//!
//! `edgewise.graph/v1` ([`graph_json`]), per address:
//!
//! ```json
//! {"schema": "edgewise.graph/v1",
//!  "edges": [{"src": {"ip": "10.42.2.30", "identity": {...}, "fqdn": "..."},
//!             "dst": {"ip": "10.42.1.159", "identity": {...}},
//!             "port": 8086, "proto": "tcp", "flows": 3, "bytes": 0,
//!             "first_seen_ns": 1, "last_seen_ns": 9, "slices": 1,
//!             "verdict": "declared", "policy": "analytics/influxdb-ingress"}],
//!  "nodes": [{"ip": "10.42.1.159", "identity": {...},
//!             "ja4t": [], "ja4ts": ["65160_2-4-8-1-3_1460_7"],
//!             "ja4s": ["t130200_1301_234ea6891581"],
//!             "services": [{"port": 8086, "proto": "tcp", "name": "http",
//!                           "product": "InfluxDB", "version": "2.7.4"}],
//!             "last_seen_ns": 9}]}
//! ```
//!
//! `identity` is [`edgewise_ip_index::ClusterObject`]'s JSON form or
//! `null`; `fqdn` is left out when unknown; `verdict` and `policy` are
//! `null` when no policies were given or no policy decided. `ja4` (as a
//! TLS client) and `ja4s` (as a TLS server) are left out when empty; a
//! service's `product` and `version` when nmap's database gave none, and
//! its `source` unless it is `active` (learnt by probing).
//!
//! `edgewise.aggregate/v1` ([`aggregate_json`]), per group:
//!
//! ```json
//! {"schema": "edgewise.aggregate/v1", "granularity": "workload",
//!  "edges": [{"src": "frontend/Deployment/web", "dst": "analytics/StatefulSet/influxdb",
//!             "port": 8086, "proto": "tcp", "flows": 3, "bytes": 0,
//!             "first_seen_ns": 1, "last_seen_ns": 9, "verdict": "declared",
//!             "verdicts": {"declared": 3, "not_governed": 0, "violation": 0, "unknown": 0}}],
//!  "self_edge_flows": 0}
//! ```

use core::fmt::Write as _;
use std::collections::BTreeSet;

use edgewise_ip_index::Protocol;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aggregate::{Aggregated, Granularity};
use crate::graph::ServiceGraph;
use crate::policy::VerdictKind;
use crate::slice::{
    EdgeVerdict, EndpointInfo, GraphSlice, ServiceSeen, SliceEdge, SliceNode, Window,
};

/// The schema tag of [`graph_json`] (`schemas/graph.schema.json`).
pub const GRAPH_SCHEMA: &str = "edgewise.graph/v1";

/// The schema tag of [`aggregate_json`] (`schemas/aggregate.schema.json`).
pub const AGGREGATE_SCHEMA: &str = "edgewise.aggregate/v1";

#[derive(Serialize)]
struct EdgeJson<'a> {
    src: &'a EndpointInfo,
    dst: &'a EndpointInfo,
    port: u16,
    proto: &'static str,
    flows: u64,
    bytes: u64,
    first_seen_ns: u64,
    last_seen_ns: u64,
    slices: usize,
    verdict: Option<VerdictKind>,
    policy: Option<&'a str>,
}

#[derive(Serialize)]
struct NodeJson<'a> {
    #[serde(flatten)]
    endpoint: &'a EndpointInfo,
    ja4t: &'a BTreeSet<String>,
    ja4ts: &'a BTreeSet<String>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    ja4: &'a BTreeSet<String>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    ja4s: &'a BTreeSet<String>,
    services: &'a BTreeSet<ServiceSeen>,
    last_seen_ns: u64,
}

/// The graph as an `edgewise.graph/v1` document (see the module docs).
pub fn graph_json(graph: &ServiceGraph) -> Value {
    let edges: Vec<Value> = graph
        .edges()
        .map(|edge| {
            to_value(&EdgeJson {
                src: edge.src,
                dst: edge.dst,
                port: edge.port,
                proto: edge.protocol.as_str(),
                flows: edge.flows,
                bytes: edge.bytes,
                first_seen_ns: edge.first_seen_ns,
                last_seen_ns: edge.last_seen_ns,
                slices: edge.slices,
                verdict: edge.verdict.map(|v| v.verdict),
                policy: edge.verdict.and_then(|v| v.policy.as_deref()),
            })
        })
        .collect();
    let nodes: Vec<Value> = graph
        .nodes()
        .map(|node| {
            to_value(&NodeJson {
                endpoint: node.endpoint,
                ja4t: node.client_fingerprints,
                ja4ts: node.server_fingerprints,
                ja4: node.tls_client_fingerprints,
                ja4s: node.tls_server_fingerprints,
                services: node.services,
                last_seen_ns: node.last_seen_ns,
            })
        })
        .collect();
    serde_json::json!({"schema": GRAPH_SCHEMA, "edges": edges, "nodes": nodes})
}

#[derive(Deserialize)]
struct GraphIn {
    schema: String,
    edges: Vec<EdgeIn>,
    #[serde(default)]
    nodes: Vec<NodeIn>,
}

#[derive(Deserialize)]
struct EdgeIn {
    src: EndpointInfo,
    dst: EndpointInfo,
    port: u16,
    proto: Protocol,
    flows: u64,
    #[serde(default)]
    bytes: u64,
    first_seen_ns: u64,
    last_seen_ns: u64,
    #[serde(default)]
    verdict: Option<VerdictKind>,
    #[serde(default)]
    policy: Option<String>,
}

#[derive(Deserialize)]
struct NodeIn {
    #[serde(flatten)]
    endpoint: EndpointInfo,
    #[serde(default)]
    ja4t: Vec<String>,
    #[serde(default)]
    ja4ts: Vec<String>,
    #[serde(default)]
    ja4: Vec<String>,
    #[serde(default)]
    ja4s: Vec<String>,
    #[serde(default)]
    services: Vec<ServiceSeen>,
    last_seen_ns: u64,
}

/// Reads an `edgewise.graph/v1` document back as one slice of `agent`,
/// its window from the earliest first seen to the latest last seen time
/// (what a graph file holds, ready to merge or to load into a trail).
///
/// # Errors
/// A message when the bytes are not such a document.
pub fn read_graph_json(agent: &str, bytes: &[u8]) -> Result<GraphSlice, String> {
    let graph: GraphIn =
        serde_json::from_slice(bytes).map_err(|e| format!("not a graph document: {e}"))?;
    if graph.schema != GRAPH_SCHEMA {
        return Err(format!(
            "schema {:?}: expected {GRAPH_SCHEMA:?}",
            graph.schema
        ));
    }
    let edges: Vec<SliceEdge> = graph
        .edges
        .into_iter()
        .map(|e| SliceEdge {
            src: e.src,
            dst: e.dst,
            port: e.port,
            protocol: e.proto,
            flows: e.flows,
            bytes: e.bytes,
            first_seen_ns: e.first_seen_ns,
            last_seen_ns: e.last_seen_ns.max(e.first_seen_ns),
            verdict: e.verdict.map(|verdict| EdgeVerdict {
                verdict,
                policy: e.policy,
            }),
        })
        .collect();
    let nodes: Vec<SliceNode> = graph
        .nodes
        .into_iter()
        .map(|n| SliceNode {
            endpoint: n.endpoint,
            client_fingerprints: n.ja4t,
            server_fingerprints: n.ja4ts,
            tls_client_fingerprints: n.ja4,
            tls_server_fingerprints: n.ja4s,
            services: n.services,
            last_seen_ns: n.last_seen_ns,
        })
        .collect();
    let start_ns = edges.iter().map(|e| e.first_seen_ns).min().unwrap_or(0);
    let end_ns = edges
        .iter()
        .map(|e| e.last_seen_ns)
        .chain(nodes.iter().map(|n| n.last_seen_ns))
        .max()
        .unwrap_or(start_ns)
        .max(start_ns);
    let mut slice = GraphSlice {
        agent: agent.to_owned(),
        window: Window { start_ns, end_ns },
        edges,
        nodes,
    };
    slice.sort();
    Ok(slice)
}

/// An aggregated graph as an `edgewise.aggregate/v1` document.
pub fn aggregate_json(aggregated: &Aggregated, granularity: &Granularity) -> Value {
    serde_json::json!({
        "schema": AGGREGATE_SCHEMA,
        "granularity": granularity.name(),
        "edges": to_value(&aggregated.edges),
        "self_edge_flows": aggregated.self_edge_flows,
    })
}

fn to_value(value: &impl Serialize) -> Value {
    // These views hold only strings, numbers and string-keyed maps, which
    // always serialize.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// An aggregated graph in Graphviz DOT: a box per group, an arrow per edge
/// labelled `port/proto` and its flows; violations red and bold, declared
/// edges green, edges no policy governs grey, edges without a verdict
/// black.
pub fn dot(aggregated: &Aggregated) -> String {
    let mut out = String::from(
        "digraph edgewise {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    let groups: BTreeSet<&str> = aggregated
        .edges
        .iter()
        .flat_map(|edge| [edge.src.as_str(), edge.dst.as_str()])
        .collect();
    for group in groups {
        let _ = writeln!(out, "  {};", quote(group));
    }
    for edge in &aggregated.edges {
        let (color, style) = match edge.verdict {
            Some(VerdictKind::Violation) => ("#c62828", "bold"),
            Some(VerdictKind::Declared) => ("#2e7d32", "solid"),
            Some(VerdictKind::NotGoverned) => ("#757575", "dashed"),
            None => ("#000000", "solid"),
        };
        let flows = if edge.flows == 1 { "flow" } else { "flows" };
        let verdict = edge.verdict.map_or("", |v| match v {
            VerdictKind::Violation => "\nviolation",
            _ => "",
        });
        let label = format!(
            "{}/{}\n{} {flows}{verdict}",
            edge.port, edge.protocol, edge.flows
        );
        let _ = writeln!(
            out,
            "  {} -> {} [label={}, color=\"{color}\", fontcolor=\"{color}\", style={style}];",
            quote(&edge.src),
            quote(&edge.dst),
            quote(&label)
        );
    }
    out.push_str("}\n");
    out
}

/// A DOT quoted string.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c if c.is_control() => {}
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}
