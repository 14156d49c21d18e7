//! The graph as a web view draws it: groups at a [`Granularity`] (the same
//! groups as [`crate::aggregate()`]), one edge per (client group, server
//! group) with everything a reader of that edge asks about, limited to the
//! edges seen within a time window.
//!
//! `edgewise.view/v1` ([`view_json`]):
//!
//! ```json
//! {"schema": "edgewise.view/v1", "granularity": "workload",
//!  "newest_ns": 9, "window_ns": null, "edges_in_window": 1, "edges_in_graph": 1,
//!  "groups": [{"id": "frontend/Deployment/web", "kind": "workload",
//!              "namespace": "frontend", "addresses": ["10.42.2.30"]}],
//!  "edges": [{"src": "frontend/Deployment/web", "dst": "analytics/StatefulSet/influxdb",
//!             "verdict": "declared", "flows": 3, "bytes": 0,
//!             "first_seen_ns": 1, "last_seen_ns": 9,
//!             "ports": [{"port": 8086, "proto": "tcp", "flows": 3,
//!                        "verdict": "declared", "policies": ["analytics/influxdb-ingress"]}],
//!             "fqdns": [], "client": {"ja4t": [], "ja4": []},
//!             "server": {"ja4ts": [], "ja4s": [], "services": []}}]}
//! ```
//!
//! - `kind` of a group: `workload` (a pod's workload, or a pod or service
//!   named alone at workload granularity), `namespace` (at namespace and
//!   namespace + label granularity), `node`, `external` (an address
//!   without identity that a DNS answer named: the group is the name) or
//!   `address` (neither).
//! - The window: edges whose last seen time is within `window_ns` of the
//!   newest last seen time of the graph (`newest_ns`), so that a graph
//!   file of last week reads the same as a running daemon's; none: every
//!   edge.
//! - An edge's `verdict` is the worst of its ports' (violation, then not
//!   governed, then declared; `null` when no policies were given), a
//!   port's `policies` the deciding policies of the address edges it sums.
//! - `client` holds the TCP (`ja4t`) and TLS (`ja4`) fingerprints of the
//!   client addresses of the edge, `server` the server addresses'
//!   (`ja4ts`, `ja4s`) and the services seen on the edge's ports.
//! - Lists are sorted and without repeats; every time is nanoseconds since
//!   the Unix epoch.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use edgewise_ip_index::{ObjectKind, Protocol};
use serde::Serialize;
use serde_json::Value;

use crate::aggregate::{Granularity, group_of};
use crate::graph::{EdgeView, NodeView, ServiceGraph};
use crate::policy::VerdictKind;
use crate::slice::{EndpointInfo, ServiceSeen};

/// The schema tag of [`View`] (`schemas/view.schema.json`).
pub const VIEW_SCHEMA: &str = "edgewise.view/v1";

/// What to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ViewOptions {
    /// The grouping.
    pub granularity: Granularity,
    /// Only edges last seen within this many nanoseconds of the graph's
    /// newest (none: all).
    pub window_ns: Option<u64>,
}

impl ViewOptions {
    /// Grouped by `granularity`, every edge however old.
    pub fn new(granularity: Granularity) -> Self {
        Self {
            granularity,
            window_ns: None,
        }
    }
}

/// A group: a node of the drawing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewGroup {
    /// Its name ([`group_of`]).
    pub id: String,
    /// `workload`, `namespace`, `node`, `external` or `address`.
    pub kind: &'static str,
    /// Its namespace, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The addresses of the edges drawn that fall in it.
    pub addresses: BTreeSet<IpAddr>,
}

/// One port of an edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewPort {
    /// The server port.
    pub port: u16,
    /// The protocol.
    pub proto: Protocol,
    /// Flows.
    pub flows: u64,
    /// The worst verdict of the address edges on this port.
    pub verdict: Option<VerdictKind>,
    /// Their deciding policies.
    pub policies: BTreeSet<String>,
}

/// The client side's fingerprints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ClientFacts {
    /// JA4T.
    pub ja4t: BTreeSet<String>,
    /// JA4.
    pub ja4: BTreeSet<String>,
}

/// The server side's fingerprints and services.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ServerFacts {
    /// JA4TS.
    pub ja4ts: BTreeSet<String>,
    /// JA4S.
    pub ja4s: BTreeSet<String>,
    /// The services seen on the edge's ports.
    pub services: BTreeSet<ServiceSeen>,
}

/// An edge of the drawing: every address edge from `src` to `dst`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewEdge {
    /// The client group.
    pub src: String,
    /// The server group.
    pub dst: String,
    /// The worst verdict of its ports.
    pub verdict: Option<VerdictKind>,
    /// Flows, summed.
    pub flows: u64,
    /// Bytes, summed.
    pub bytes: u64,
    /// Earliest first seen.
    pub first_seen_ns: u64,
    /// Latest last seen.
    pub last_seen_ns: u64,
    /// Per server port and protocol.
    pub ports: Vec<ViewPort>,
    /// The names the servers were reached by.
    pub fqdns: BTreeSet<String>,
    /// The clients' fingerprints.
    pub client: ClientFacts,
    /// The servers' fingerprints and services.
    pub server: ServerFacts,
}

/// The drawing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct View {
    /// `edgewise.view/v1`.
    pub schema: &'static str,
    /// `workload`, `namespace` or `namespace+LABEL`.
    pub granularity: String,
    /// The newest last seen time of the graph (0 when empty).
    pub newest_ns: u64,
    /// The window asked for.
    pub window_ns: Option<u64>,
    /// Address edges within the window.
    pub edges_in_window: usize,
    /// Address edges in the graph.
    pub edges_in_graph: usize,
    /// The groups with an edge drawn, by id.
    pub groups: Vec<ViewGroup>,
    /// The edges, by (src, dst).
    pub edges: Vec<ViewEdge>,
}

/// The kind of group `endpoint` falls in at `granularity`.
fn group_kind(endpoint: &EndpointInfo, granularity: &Granularity) -> &'static str {
    match &endpoint.identity {
        None if endpoint.fqdn.is_some() => "external",
        None => "address",
        Some(identity) if identity.kind == ObjectKind::Node => "node",
        Some(identity) if identity.namespace.is_none() => "address",
        Some(_) => match granularity {
            Granularity::Workload => "workload",
            Granularity::Namespace | Granularity::NamespaceLabel(_) => "namespace",
        },
    }
}

/// The groups, edges and ports being summed.
struct Drawing<'g> {
    granularity: &'g Granularity,
    nodes: BTreeMap<IpAddr, Vec<NodeView<'g>>>,
    groups: BTreeMap<String, ViewGroup>,
    edges: BTreeMap<(String, String), ViewEdge>,
    ports: BTreeMap<(String, String, u16, Protocol), ViewPort>,
}

impl<'g> Drawing<'g> {
    fn new(graph: &'g ServiceGraph, granularity: &'g Granularity) -> Self {
        let mut nodes: BTreeMap<IpAddr, Vec<NodeView<'g>>> = BTreeMap::new();
        for node in graph.nodes() {
            nodes.entry(node.endpoint.ip).or_default().push(node);
        }
        Self {
            granularity,
            nodes,
            groups: BTreeMap::new(),
            edges: BTreeMap::new(),
            ports: BTreeMap::new(),
        }
    }

    /// `endpoint`'s group, with its address.
    fn group(&mut self, endpoint: &EndpointInfo) -> String {
        let id = group_of(endpoint, self.granularity);
        self.groups
            .entry(id.clone())
            .or_insert_with(|| ViewGroup {
                id: id.clone(),
                kind: group_kind(endpoint, self.granularity),
                namespace: endpoint
                    .identity
                    .as_ref()
                    .and_then(|identity| identity.namespace.clone()),
                addresses: BTreeSet::new(),
            })
            .addresses
            .insert(endpoint.ip);
        id
    }

    fn add(&mut self, edge: &EdgeView<'_>) {
        let src = self.group(edge.src);
        let dst = self.group(edge.dst);
        let verdict = edge.verdict.map(|v| v.verdict);
        let drawn = self
            .edges
            .entry((src.clone(), dst.clone()))
            .or_insert_with(|| ViewEdge {
                src: src.clone(),
                dst: dst.clone(),
                verdict: None,
                flows: 0,
                bytes: 0,
                first_seen_ns: edge.first_seen_ns,
                last_seen_ns: edge.last_seen_ns,
                ports: Vec::new(),
                fqdns: BTreeSet::new(),
                client: ClientFacts::default(),
                server: ServerFacts::default(),
            });
        drawn.verdict = drawn.verdict.max(verdict);
        drawn.flows += edge.flows;
        drawn.bytes += edge.bytes;
        drawn.first_seen_ns = drawn.first_seen_ns.min(edge.first_seen_ns);
        drawn.last_seen_ns = drawn.last_seen_ns.max(edge.last_seen_ns);
        drawn.fqdns.extend(edge.dst.fqdn.clone());
        for node in self.nodes.get(&edge.src.ip).into_iter().flatten() {
            drawn
                .client
                .ja4t
                .extend(node.client_fingerprints.iter().cloned());
            drawn
                .client
                .ja4
                .extend(node.tls_client_fingerprints.iter().cloned());
        }
        for node in self.nodes.get(&edge.dst.ip).into_iter().flatten() {
            drawn
                .server
                .ja4ts
                .extend(node.server_fingerprints.iter().cloned());
            drawn
                .server
                .ja4s
                .extend(node.tls_server_fingerprints.iter().cloned());
            drawn.server.services.extend(
                node.services
                    .iter()
                    .filter(|s| s.port == edge.port && s.protocol == edge.protocol)
                    .cloned(),
            );
        }
        let port = self
            .ports
            .entry((src, dst, edge.port, edge.protocol))
            .or_insert_with(|| ViewPort {
                port: edge.port,
                proto: edge.protocol,
                flows: 0,
                verdict: None,
                policies: BTreeSet::new(),
            });
        port.flows += edge.flows;
        port.verdict = port.verdict.max(verdict);
        port.policies
            .extend(edge.verdict.and_then(|v| v.policy.clone()));
    }

    /// The groups and the edges with their ports.
    fn finish(mut self) -> (Vec<ViewGroup>, Vec<ViewEdge>) {
        for ((src, dst, _, _), port) in self.ports {
            if let Some(edge) = self.edges.get_mut(&(src, dst)) {
                edge.ports.push(port);
            }
        }
        (
            self.groups.into_values().collect(),
            self.edges.into_values().collect(),
        )
    }
}

/// The drawing of `graph` (see the module docs).
pub fn view(graph: &ServiceGraph, options: &ViewOptions) -> View {
    let newest_ns = graph.edges().map(|e| e.last_seen_ns).max().unwrap_or(0);
    let horizon = options
        .window_ns
        .map_or(0, |window| newest_ns.saturating_sub(window));
    let mut drawing = Drawing::new(graph, &options.granularity);
    let (mut in_window, mut in_graph) = (0, 0);
    for edge in graph.edges() {
        in_graph += 1;
        if edge.last_seen_ns >= horizon {
            in_window += 1;
            drawing.add(&edge);
        }
    }
    let (groups, edges) = drawing.finish();
    View {
        schema: VIEW_SCHEMA,
        granularity: options.granularity.name(),
        newest_ns,
        window_ns: options.window_ns,
        edges_in_window: in_window,
        edges_in_graph: in_graph,
        groups,
        edges,
    }
}

/// [`view`] as JSON.
pub fn view_json(graph: &ServiceGraph, options: &ViewOptions) -> Value {
    // Strings, numbers, addresses and sets of them always serialize.
    serde_json::to_value(view(graph, options)).unwrap_or(Value::Null)
}
