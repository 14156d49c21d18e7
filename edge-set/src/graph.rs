//! The merged service graph: [`GraphSlice`]s from any number of agents and
//! windows, merged so that order, grouping and repetition do not matter.
//!
//! [`ServiceGraph::merge`] is a join: commutative, associative and
//! idempotent (merging the same slice twice changes nothing). It holds
//! because every part of the graph merges by a join of its own:
//! - flow and byte counts are kept per slice, that is per (agent, window),
//!   and totals are sums over slices; the same slice seen twice is one
//!   entry (if two copies disagree, the larger count is kept);
//! - first seen is a minimum, last seen a maximum;
//! - fingerprints and services are set unions;
//! - an endpoint's identity and an edge's verdict are the ones of the
//!   latest window (by window end, then agent id, then value, so that ties
//!   are broken the same way everywhere).
//!
//! Times compare across agents, so agents whose slices are merged should
//! drain on a shared clock (Unix time in nanoseconds). Memory grows with
//! the number of (edge, agent, window) triples: merge slices of a sensible
//! window (a minute, say) and start a new graph per reporting period.
//!
//! Edges and addresses are keyed by address *and* identity, so an address
//! that passed from one pod to another gives two edges, not one mixed edge.

use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet};

use edgewise_ip_index::Protocol;

use crate::slice::{EdgeVerdict, EndpointInfo, GraphSlice, ServiceSeen, Window};

/// An address with the identity it had (its display name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId {
    /// The address.
    pub ip: IpAddr,
    /// [`edgewise_ip_index::ClusterObject::display`] of its identity.
    pub object: Option<Box<str>>,
}

impl EndpointId {
    fn of(endpoint: &EndpointInfo) -> Self {
        Self {
            ip: endpoint.ip,
            object: endpoint.identity.as_ref().map(|o| o.display.clone()),
        }
    }
}

/// The key of a merged edge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EdgeId {
    /// The client.
    pub src: EndpointId,
    /// The server.
    pub dst: EndpointId,
    /// The server's port.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct SliceId {
    agent: String,
    window: Window,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Counts {
    flows: u64,
    bytes: u64,
}

/// A value with the stamp of the slice it came from; the join keeps the
/// greatest (stamp, value).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Latest<T> {
    stamp: (u64, String),
    value: T,
}

impl<T: Ord + Clone> Latest<T> {
    fn new(slice: &SliceId, value: T) -> Self {
        Self {
            stamp: (slice.window.end_ns, slice.agent.clone()),
            value,
        }
    }

    fn join(&mut self, other: &Self) {
        if (&other.stamp, &other.value) > (&self.stamp, &self.value) {
            self.clone_from(other);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MergedEdge {
    counts: BTreeMap<SliceId, Counts>,
    first_seen_ns: u64,
    last_seen_ns: u64,
    src: Latest<EndpointInfo>,
    dst: Latest<EndpointInfo>,
    verdict: Latest<Option<EdgeVerdict>>,
}

impl MergedEdge {
    fn join(&mut self, other: &Self) {
        for (slice, counts) in &other.counts {
            let mine = self.counts.entry(slice.clone()).or_default();
            mine.flows = mine.flows.max(counts.flows);
            mine.bytes = mine.bytes.max(counts.bytes);
        }
        self.first_seen_ns = self.first_seen_ns.min(other.first_seen_ns);
        self.last_seen_ns = self.last_seen_ns.max(other.last_seen_ns);
        self.src.join(&other.src);
        self.dst.join(&other.dst);
        self.verdict.join(&other.verdict);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MergedNode {
    endpoint: Latest<EndpointInfo>,
    clients: BTreeSet<String>,
    servers: BTreeSet<String>,
    tls_clients: BTreeSet<String>,
    tls_servers: BTreeSet<String>,
    services: BTreeSet<ServiceSeen>,
    last_seen_ns: u64,
}

impl MergedNode {
    fn join(&mut self, other: &Self) {
        self.endpoint.join(&other.endpoint);
        self.clients.extend(other.clients.iter().cloned());
        self.servers.extend(other.servers.iter().cloned());
        self.tls_clients.extend(other.tls_clients.iter().cloned());
        self.tls_servers.extend(other.tls_servers.iter().cloned());
        self.services.extend(other.services.iter().cloned());
        self.last_seen_ns = self.last_seen_ns.max(other.last_seen_ns);
    }
}

/// The merged graph (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceGraph {
    edges: BTreeMap<EdgeId, MergedEdge>,
    nodes: BTreeMap<EndpointId, MergedNode>,
}

/// One edge of a [`ServiceGraph`], with totals over its slices.
#[derive(Debug, Clone, Copy)]
pub struct EdgeView<'a> {
    /// The client.
    pub src: &'a EndpointInfo,
    /// The server.
    pub dst: &'a EndpointInfo,
    /// The server's port.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
    /// Flows, summed over slices.
    pub flows: u64,
    /// Bytes, summed over slices.
    pub bytes: u64,
    /// First seen, over all slices.
    pub first_seen_ns: u64,
    /// Last seen, over all slices.
    pub last_seen_ns: u64,
    /// The latest verdict.
    pub verdict: Option<&'a EdgeVerdict>,
    /// How many slices (agent windows) saw it.
    pub slices: usize,
}

/// One address of a [`ServiceGraph`] with its fingerprints and services.
#[derive(Debug, Clone, Copy)]
pub struct NodeView<'a> {
    /// The address and who has it.
    pub endpoint: &'a EndpointInfo,
    /// JA4T fingerprints (as a client).
    pub client_fingerprints: &'a BTreeSet<String>,
    /// JA4TS fingerprints (as a server).
    pub server_fingerprints: &'a BTreeSet<String>,
    /// JA4 fingerprints (as a TLS client).
    pub tls_client_fingerprints: &'a BTreeSet<String>,
    /// JA4S fingerprints (as a TLS server).
    pub tls_server_fingerprints: &'a BTreeSet<String>,
    /// Services detected.
    pub services: &'a BTreeSet<ServiceSeen>,
    /// Last seen.
    pub last_seen_ns: u64,
}

impl ServiceGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// The graph of one slice.
    pub fn from_slice(slice: &GraphSlice) -> Self {
        let mut graph = Self::new();
        graph.merge_slice(slice);
        graph
    }

    /// Merges one slice (idempotent: a slice merged again changes nothing).
    pub fn merge_slice(&mut self, slice: &GraphSlice) {
        let id = SliceId {
            agent: slice.agent.clone(),
            window: slice.window,
        };
        for edge in &slice.edges {
            let merged = MergedEdge {
                counts: BTreeMap::from([(
                    id.clone(),
                    Counts {
                        flows: edge.flows,
                        bytes: edge.bytes,
                    },
                )]),
                first_seen_ns: edge.first_seen_ns,
                last_seen_ns: edge.last_seen_ns,
                src: Latest::new(&id, edge.src.clone()),
                dst: Latest::new(&id, edge.dst.clone()),
                verdict: Latest::new(&id, edge.verdict.clone()),
            };
            let key = EdgeId {
                src: EndpointId::of(&edge.src),
                dst: EndpointId::of(&edge.dst),
                port: edge.port,
                protocol: edge.protocol,
            };
            join_into(&mut self.edges, key, merged, MergedEdge::join);
        }
        for node in &slice.nodes {
            let merged = MergedNode {
                endpoint: Latest::new(&id, node.endpoint.clone()),
                clients: node.client_fingerprints.iter().cloned().collect(),
                servers: node.server_fingerprints.iter().cloned().collect(),
                tls_clients: node.tls_client_fingerprints.iter().cloned().collect(),
                tls_servers: node.tls_server_fingerprints.iter().cloned().collect(),
                services: node.services.iter().cloned().collect(),
                last_seen_ns: node.last_seen_ns,
            };
            join_into(
                &mut self.nodes,
                EndpointId::of(&node.endpoint),
                merged,
                MergedNode::join,
            );
        }
    }

    /// Merges another graph into this one.
    pub fn merge(&mut self, other: &Self) {
        for (key, edge) in &other.edges {
            join_into(&mut self.edges, key.clone(), edge.clone(), MergedEdge::join);
        }
        for (key, node) in &other.nodes {
            join_into(&mut self.nodes, key.clone(), node.clone(), MergedNode::join);
        }
    }

    /// The edges, in key order (client, server, port, protocol).
    pub fn edges(&self) -> impl Iterator<Item = EdgeView<'_>> {
        self.edges.iter().map(|(key, edge)| EdgeView {
            src: &edge.src.value,
            dst: &edge.dst.value,
            port: key.port,
            protocol: key.protocol,
            flows: edge.counts.values().map(|c| c.flows).sum(),
            bytes: edge.counts.values().map(|c| c.bytes).sum(),
            first_seen_ns: edge.first_seen_ns,
            last_seen_ns: edge.last_seen_ns,
            verdict: edge.verdict.value.as_ref(),
            slices: edge.counts.len(),
        })
    }

    /// The addresses with fingerprints or services, in key order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeView<'_>> {
        self.nodes.values().map(|node| NodeView {
            endpoint: &node.endpoint.value,
            client_fingerprints: &node.clients,
            server_fingerprints: &node.servers,
            tls_client_fingerprints: &node.tls_clients,
            tls_server_fingerprints: &node.tls_servers,
            services: &node.services,
            last_seen_ns: node.last_seen_ns,
        })
    }

    /// The number of edges.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// The flows of all edges.
    pub fn total_flows(&self) -> u64 {
        self.edges().map(|edge| edge.flows).sum()
    }
}

fn join_into<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, value: V, join: fn(&mut V, &V)) {
    match map.entry(key) {
        std::collections::btree_map::Entry::Vacant(slot) => {
            slot.insert(value);
        }
        std::collections::btree_map::Entry::Occupied(mut slot) => join(slot.get_mut(), &value),
    }
}
