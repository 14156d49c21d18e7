//! The observed graph on the hot path: a bounded accumulator of edges and
//! of what is seen of each address, keyed by raw addresses.
//!
//! Contract:
//! - [`ObservedGraph::record`] on an edge already held allocates nothing
//!   (one hash probe); a new edge is one insert.
//! - At most [`GraphConfig::max_edges`] edges and
//!   [`GraphConfig::max_nodes`] addresses are held. When a new one arrives
//!   at the cap, entries idle past the TTL and already drained are dropped
//!   first; if that frees nothing, the least recently seen sixteenth is
//!   evicted. Every eviction, and the flows it threw away before they were
//!   drained, is counted in [`GraphStats`].
//! - An edge idle for [`GraphConfig::idle_ttl_ns`] is dropped once its
//!   counts have been drained, so nothing counted is lost to expiry.
//! - No identity is looked up here. [`ObservedGraph::drain`] attaches
//!   identities (and verdicts) to what changed since the last drain and
//!   hands it out as a [`GraphSlice`].
//!
//! Time is passed in (`now`, a [`UnixNanos`]); a slice's window is in
//! the same Unix time.

use core::net::IpAddr;
use std::sync::Arc;

use edgewise_time::UnixNanos;

use edgewise_ip_index::{ClusterObject, Lookup, Protocol, Snapshot, ip_key, ip_of};
use smallvec::SmallVec;

use crate::policy::{EdgeQuery, Endpoint, PolicySet};
use crate::slice::{
    EdgeVerdict, EndpointInfo, GraphSlice, ServiceSeen, SliceEdge, SliceNode, Window,
};

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

/// Limits of an [`ObservedGraph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GraphConfig {
    /// The most edges held (default 65,536).
    pub max_edges: usize,
    /// The most addresses with fingerprints or services held (default
    /// 65,536).
    pub max_nodes: usize,
    /// How long an edge or address may go unseen before it is dropped
    /// (default 300 s).
    pub idle_ttl_ns: u64,
    /// The most distinct fingerprints kept per address and side (default 8).
    pub max_fingerprints_per_node: usize,
    /// The most services kept per address (default 16).
    pub max_services_per_node: usize,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            max_edges: 65_536,
            max_nodes: 65_536,
            idle_ttl_ns: 300 * 1_000_000_000,
            max_fingerprints_per_node: 8,
            max_services_per_node: 16,
        }
    }
}

/// An edge as the wire shows it: client address to server address and
/// port. The one edge key of the workspace: the observed graph counts by
/// it, capture's drop map bans by it, and records write it as `{"src",
/// "dst", "port", "proto"}`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct EdgeKey {
    /// The client.
    pub src: IpAddr,
    /// The server.
    pub dst: IpAddr,
    /// The server's port.
    pub port: u16,
    /// The protocol.
    #[serde(rename = "proto")]
    pub protocol: Protocol,
}

impl core::fmt::Display for EdgeKey {
    /// `10.0.0.1 -> 10.0.0.9:5432/tcp` (IPv6 servers in brackets).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let server = core::net::SocketAddr::new(self.dst, self.port);
        write!(f, "{} -> {server}/{}", self.src, self.protocol)
    }
}

/// A passive fingerprint seen for an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fingerprint<'a> {
    /// The address acted as a client: its SYN's JA4T.
    Client(&'a str),
    /// The address acted as a server: its SYN-ACK's JA4TS.
    Server(&'a str),
    /// The address acted as a TLS client: its ClientHello's JA4.
    TlsClient(&'a str),
    /// The address acted as a TLS server: its ServerHello's JA4S.
    TlsServer(&'a str),
}

/// What [`ObservedGraph::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The edge was already held.
    Existing,
    /// The edge is new (a caller evaluates rules once, here).
    New,
}

/// Counters of an [`ObservedGraph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GraphStats {
    /// Edges held now.
    pub edges: usize,
    /// Addresses with fingerprints or services held now.
    pub nodes: usize,
    /// Edges evicted because the graph was full.
    pub evicted_edges: u64,
    /// Flows those evicted edges held that were never drained.
    pub evicted_flows: u64,
    /// Edges dropped after their idle TTL.
    pub expired_edges: u64,
    /// Addresses evicted because the graph was full.
    pub evicted_nodes: u64,
    /// Fingerprints or services not kept because an address had its fill.
    pub dropped_details: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: u128,
    dst: u128,
    port: u16,
    protocol: Protocol,
}

#[derive(Debug, Clone, Copy)]
struct Counters {
    first_seen: u64,
    last_seen: u64,
    /// Flows and bytes since the last drain.
    flows: u64,
    bytes: u64,
    /// Seen since the last drain.
    active: bool,
}

#[derive(Debug, Default)]
struct NodeState {
    last_seen: u64,
    changed: bool,
    clients: SmallVec<[Box<str>; 1]>,
    servers: SmallVec<[Box<str>; 1]>,
    tls_clients: SmallVec<[Box<str>; 1]>,
    tls_servers: SmallVec<[Box<str>; 1]>,
    services: SmallVec<[ServiceSeen; 1]>,
}

/// Attaches identities to addresses when a graph is drained.
pub trait Attach {
    /// Who has `ip`, if anyone known.
    fn identity(&mut self, ip: IpAddr) -> Option<Arc<ClusterObject>>;

    /// The name `ip` was resolved from (an `fqdn-store` lookup), if known.
    fn fqdn(&mut self, ip: IpAddr) -> Option<String> {
        let _ = ip;
        None
    }
}

/// An ip-index snapshot attaches the object that owns an address; an
/// ambiguous address gets no identity.
impl Attach for Snapshot<'_> {
    fn identity(&mut self, ip: IpAddr) -> Option<Arc<ClusterObject>> {
        match self.lookup(ip) {
            Lookup::Object(object) => Some(Arc::clone(object)),
            _ => None,
        }
    }
}

/// Attaches nothing (every endpoint is an address).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIdentity;

impl Attach for NoIdentity {
    fn identity(&mut self, _: IpAddr) -> Option<Arc<ClusterObject>> {
        None
    }
}

/// The bounded accumulator (see the module docs).
#[derive(Debug)]
pub struct ObservedGraph {
    config: GraphConfig,
    edges: Map<Key, Counters>,
    nodes: Map<u128, NodeState>,
    window_start: u64,
    stats: GraphStats,
}

impl ObservedGraph {
    /// An empty graph whose first window starts at `now`. Caps of zero
    /// are taken as one.
    pub fn new(config: GraphConfig, now: UnixNanos) -> Self {
        let now_ns = now.as_nanos();
        Self {
            config: GraphConfig {
                max_edges: config.max_edges.max(1),
                max_nodes: config.max_nodes.max(1),
                ..config
            },
            edges: Map::default(),
            nodes: Map::default(),
            window_start: now_ns,
            stats: GraphStats::default(),
        }
    }

    /// Counts `flows` new flows and `bytes` bytes on `edge` (either may be
    /// zero: a sample of a known flow adds bytes only).
    pub fn record(&mut self, edge: EdgeKey, flows: u64, bytes: u64, now: UnixNanos) -> Recorded {
        let now_ns = now.as_nanos();
        let key = Key {
            src: ip_key(edge.src),
            dst: ip_key(edge.dst),
            port: edge.port,
            protocol: edge.protocol,
        };
        if let Some(counters) = self.edges.get_mut(&key) {
            counters.flows += flows;
            counters.bytes += bytes;
            counters.last_seen = counters.last_seen.max(now_ns);
            counters.active = true;
            return Recorded::Existing;
        }
        if self.edges.len() >= self.config.max_edges {
            self.make_room_for_edge(now);
        }
        self.edges.insert(
            key,
            Counters {
                first_seen: now_ns,
                last_seen: now_ns,
                flows,
                bytes,
                active: true,
            },
        );
        Recorded::New
    }

    /// Notes a fingerprint of `ip`.
    pub fn fingerprint(&mut self, ip: IpAddr, fingerprint: Fingerprint<'_>, now: UnixNanos) {
        let now_ns = now.as_nanos();
        let limit = self.config.max_fingerprints_per_node;
        let node = self.node(ip, now_ns);
        let (list, text) = match fingerprint {
            Fingerprint::Client(text) => (&mut node.clients, text),
            Fingerprint::Server(text) => (&mut node.servers, text),
            Fingerprint::TlsClient(text) => (&mut node.tls_clients, text),
            Fingerprint::TlsServer(text) => (&mut node.tls_servers, text),
        };
        if list.iter().any(|known| &**known == text) {
            return;
        }
        if list.len() >= limit {
            self.stats.dropped_details += 1;
            return;
        }
        list.push(text.into());
        node.changed = true;
    }

    /// Notes that `ip` serves `name` (such as `ssh`, `http`, `tls`) on
    /// `port`, known by name only (see [`ObservedGraph::identified`]).
    pub fn service(
        &mut self,
        ip: IpAddr,
        port: u16,
        protocol: Protocol,
        name: &str,
        now: UnixNanos,
    ) {
        let now_ns = now.as_nanos();
        // The common case, a name already held, allocates nothing.
        let node = self.node(ip, now_ns);
        if node
            .services
            .iter()
            .any(|s| s.port == port && s.protocol == protocol && s.name == name)
        {
            return;
        }
        self.identified(ip, ServiceSeen::named(port, protocol, name), now);
    }

    /// Notes what `ip` serves on a port: one service per port and
    /// protocol, the latest, except that one known by name only does not
    /// replace one with a product.
    pub fn identified(&mut self, ip: IpAddr, service: ServiceSeen, now: UnixNanos) {
        let now_ns = now.as_nanos();
        let limit = self.config.max_services_per_node;
        let node = self.node(ip, now_ns);
        let held = node
            .services
            .iter_mut()
            .find(|s| s.port == service.port && s.protocol == service.protocol);
        if let Some(held) = held {
            let poorer = service.product.is_none() && held.product.is_some();
            if *held != service && !poorer {
                *held = service;
                node.changed = true;
            }
            return;
        }
        if node.services.len() >= limit {
            self.stats.dropped_details += 1;
            return;
        }
        node.services.push(service);
        node.changed = true;
    }

    fn node(&mut self, ip: IpAddr, now_ns: u64) -> &mut NodeState {
        let key = ip_key(ip);
        if !self.nodes.contains_key(&key) && self.nodes.len() >= self.config.max_nodes {
            self.make_room_for_node(now_ns);
        }
        let node = self.nodes.entry(key).or_default();
        node.last_seen = node.last_seen.max(now_ns);
        node
    }

    /// Drops edges and addresses idle past the TTL whose counts were
    /// drained; returns how many edges went.
    pub fn expire(&mut self, now: UnixNanos) -> usize {
        let now_ns = now.as_nanos();
        let ttl = self.config.idle_ttl_ns;
        let before = self.edges.len();
        self.edges
            .retain(|_, c| c.active || now_ns.saturating_sub(c.last_seen) < ttl);
        let expired = before - self.edges.len();
        self.stats.expired_edges += expired as u64;
        self.expire_nodes(now_ns);
        expired
    }

    /// Drops addresses idle past the TTL whose details were drained;
    /// returns how many went.
    fn expire_nodes(&mut self, now_ns: u64) -> usize {
        let ttl = self.config.idle_ttl_ns;
        let before = self.nodes.len();
        self.nodes
            .retain(|_, n| n.changed || now_ns.saturating_sub(n.last_seen) < ttl);
        before - self.nodes.len()
    }

    fn make_room_for_edge(&mut self, now: UnixNanos) {
        if self.expire(now) > 0 {
            return;
        }
        let cutoff = eviction_cutoff(self.edges.values().map(|c| c.last_seen));
        let (mut evicted, mut flows) = (0, 0);
        self.edges.retain(|_, c| {
            let keep = c.last_seen > cutoff;
            if !keep {
                evicted += 1;
                flows += c.flows;
            }
            keep
        });
        self.stats.evicted_edges += evicted;
        self.stats.evicted_flows += flows;
    }

    fn make_room_for_node(&mut self, now_ns: u64) {
        if self.expire_nodes(now_ns) > 0 {
            return;
        }
        let before = self.nodes.len();
        let cutoff = eviction_cutoff(self.nodes.values().map(|n| n.last_seen));
        self.nodes.retain(|_, n| n.last_seen > cutoff);
        self.stats.evicted_nodes += (before - self.nodes.len()) as u64;
    }

    /// Counters.
    pub fn stats(&self) -> GraphStats {
        GraphStats {
            edges: self.edges.len(),
            nodes: self.nodes.len(),
            ..self.stats
        }
    }

    /// Hands out everything seen since the last drain, with identities from
    /// `attach` and, when `policies` are given, a verdict on each edge; the
    /// slice is tagged with `agent` and the window from the last drain to
    /// `now`. Counts restart from zero; edges stay held (so a known edge
    /// is not [`Recorded::New`] again) until they expire.
    pub fn drain(
        &mut self,
        agent: &str,
        now: UnixNanos,
        attach: &mut impl Attach,
        policies: Option<&PolicySet>,
    ) -> GraphSlice {
        let now_ns = now.as_nanos();
        let window = Window {
            start_ns: self.window_start,
            end_ns: now_ns.max(self.window_start),
        };
        self.window_start = window.end_ns;
        let mut endpoints: Map<u128, EndpointInfo> = Map::default();
        let mut endpoint = |key: u128| {
            endpoints
                .entry(key)
                .or_insert_with(|| {
                    let ip = ip_of(key);
                    EndpointInfo {
                        ip,
                        identity: attach.identity(ip),
                        fqdn: attach.fqdn(ip),
                    }
                })
                .clone()
        };
        let mut edges = Vec::new();
        for (key, counters) in &mut self.edges {
            if !counters.active {
                continue;
            }
            let src = endpoint(key.src);
            let dst = endpoint(key.dst);
            let verdict = policies.map(|set| {
                let verdict = set.evaluate(&EdgeQuery {
                    src: Endpoint {
                        ip: src.ip,
                        identity: src.identity.as_deref(),
                    },
                    dst: Endpoint {
                        ip: dst.ip,
                        identity: dst.identity.as_deref(),
                    },
                    port: key.port,
                    protocol: key.protocol,
                });
                EdgeVerdict {
                    verdict: verdict.kind(),
                    policy: verdict.deciding().map(|id| set.policy(id).name.clone()),
                }
            });
            edges.push(SliceEdge {
                src,
                dst,
                port: key.port,
                protocol: key.protocol,
                flows: counters.flows,
                bytes: counters.bytes,
                first_seen_ns: counters.first_seen,
                last_seen_ns: counters.last_seen,
                verdict,
            });
            counters.flows = 0;
            counters.bytes = 0;
            counters.active = false;
        }
        let mut nodes = Vec::new();
        for (key, node) in &mut self.nodes {
            if !node.changed {
                continue;
            }
            node.changed = false;
            nodes.push(SliceNode {
                endpoint: endpoint(*key),
                client_fingerprints: node.clients.iter().map(ToString::to_string).collect(),
                server_fingerprints: node.servers.iter().map(ToString::to_string).collect(),
                tls_client_fingerprints: node.tls_clients.iter().map(ToString::to_string).collect(),
                tls_server_fingerprints: node.tls_servers.iter().map(ToString::to_string).collect(),
                services: node.services.to_vec(),
                last_seen_ns: node.last_seen,
            });
        }
        self.expire(now);
        let mut slice = GraphSlice {
            agent: agent.to_owned(),
            window,
            edges,
            nodes,
        };
        slice.sort();
        slice
    }
}

/// The `last_seen` at or below which the least recently seen sixteenth
/// (at least one) of the entries lies.
fn eviction_cutoff(last_seen: impl Iterator<Item = u64>) -> u64 {
    let mut times: Vec<u64> = last_seen.collect();
    if times.is_empty() {
        return 0;
    }
    let nth = (times.len() / 16).max(1) - 1;
    *times.select_nth_unstable(nth).1
}
