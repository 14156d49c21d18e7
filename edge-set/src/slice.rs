//! What one agent drained from its [`crate::ObservedGraph`] over one
//! window: a [`GraphSlice`], with identities and verdicts attached. Slices
//! are plain data (serde) so that agents can ship them to wherever they are
//! merged into a [`crate::ServiceGraph`].

use core::net::IpAddr;
use std::sync::Arc;

use edgewise_ip_index::{ClusterObject, Protocol};
use serde::{Deserialize, Serialize};

use crate::policy::VerdictKind;

/// The observation window of a slice, in the Unix time the agent passed
/// to the graph (nanoseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    /// When the window opened (the previous drain), in nanoseconds.
    pub start_ns: u64,
    /// When it closed (this drain).
    pub end_ns: u64,
}

/// One end of an edge: the address and who has it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// The address.
    pub ip: IpAddr,
    /// The cluster object that has it, when known.
    pub identity: Option<Arc<ClusterObject>>,
    /// The name it was resolved from by DNS, when known (the embedder's
    /// `Attach` decides; edgewise's pipeline falls back to the TLS server
    /// name clients asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
}

/// A verdict as a slice carries it: the word and the deciding policy's
/// name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EdgeVerdict {
    /// `declared`, `not_governed` or `violation`.
    pub verdict: VerdictKind,
    /// The policy that decided it (none when not governed).
    pub policy: Option<String>,
}

/// One edge of a slice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceEdge {
    /// The client.
    pub src: EndpointInfo,
    /// The server.
    pub dst: EndpointInfo,
    /// The server's port.
    pub port: u16,
    /// The protocol.
    #[serde(rename = "proto")]
    pub protocol: Protocol,
    /// Flows counted in the window.
    pub flows: u64,
    /// Bytes counted in the window (0 when not measured).
    pub bytes: u64,
    /// When the edge was first seen (possibly before the window).
    pub first_seen_ns: u64,
    /// When it was last seen.
    pub last_seen_ns: u64,
    /// The verdict, when policies were given.
    pub verdict: Option<EdgeVerdict>,
}

/// A service detected on an address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceSeen {
    /// The port.
    pub port: u16,
    /// The protocol.
    #[serde(rename = "proto")]
    pub protocol: Protocol,
    /// What it is (`ssh`, `http`, `tls`, ...).
    pub name: String,
    /// The product, when nmap's database named it (`OpenSSH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Its version, when the database's match gave one (`9.6p1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// How it was learnt: from traffic seen (`passive`, the default) or
    /// by probing the server (`active`).
    #[serde(default, skip_serializing_if = "ServiceSource::is_passive")]
    pub source: ServiceSource,
}

impl ServiceSeen {
    /// A service known by name only, seen passively.
    pub fn named(port: u16, protocol: Protocol, name: &str) -> Self {
        ServiceSeen {
            port,
            protocol,
            name: name.to_owned(),
            product: None,
            version: None,
            source: ServiceSource::Passive,
        }
    }
}

/// How a service was learnt.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ServiceSource {
    /// From the traffic the observers saw.
    #[default]
    Passive,
    /// From a probe sent to the server.
    Active,
}

impl ServiceSource {
    /// Whether it is [`ServiceSource::Passive`].
    pub fn is_passive(&self) -> bool {
        *self == ServiceSource::Passive
    }
}

/// What was seen of one address: fingerprints and services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceNode {
    /// The address and who has it.
    pub endpoint: EndpointInfo,
    /// JA4T fingerprints of its SYNs (as a client).
    pub client_fingerprints: Vec<String>,
    /// JA4TS fingerprints of its SYN-ACKs (as a server).
    pub server_fingerprints: Vec<String>,
    /// JA4 fingerprints of its ClientHellos (as a TLS client).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_client_fingerprints: Vec<String>,
    /// JA4S fingerprints of its ServerHellos (as a TLS server).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_server_fingerprints: Vec<String>,
    /// Services detected on it.
    pub services: Vec<ServiceSeen>,
    /// When it was last seen.
    pub last_seen_ns: u64,
}

/// Everything one agent saw in one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphSlice {
    /// The agent that drained it (a node name, say). Two agents must not
    /// share an id: slices are told apart by agent and window.
    pub agent: String,
    /// The window.
    pub window: Window,
    /// Edges active in the window.
    pub edges: Vec<SliceEdge>,
    /// Addresses whose fingerprints or services changed in the window.
    pub nodes: Vec<SliceNode>,
}

impl GraphSlice {
    /// Puts edges and nodes in a stable order (by addresses, port,
    /// protocol), so equal slices serialize equally.
    pub fn sort(&mut self) {
        self.edges
            .sort_by_key(|edge| (edge.src.ip, edge.dst.ip, edge.port, edge.protocol));
        self.nodes.sort_by_key(|node| node.endpoint.ip);
    }

    /// Takes in the next slice of the same agent, so that one slice
    /// covers both windows (an agent that drains more often than it
    /// exports). Edges of the same addresses, port and protocol add their
    /// counts, keep the earliest first seen and the latest last seen, and
    /// take the later slice's identities, names and verdict; nodes of the
    /// same address unite their fingerprints and services.
    pub fn absorb(&mut self, later: GraphSlice) {
        self.window = Window {
            start_ns: self.window.start_ns.min(later.window.start_ns),
            end_ns: self.window.end_ns.max(later.window.end_ns),
        };
        let key = |edge: &SliceEdge| (edge.src.ip, edge.dst.ip, edge.port, edge.protocol);
        let mut edges: std::collections::BTreeMap<_, SliceEdge> = self
            .edges
            .drain(..)
            .map(|edge| (key(&edge), edge))
            .collect();
        for edge in later.edges {
            match edges.get_mut(&key(&edge)) {
                Some(held) => {
                    held.flows = held.flows.saturating_add(edge.flows);
                    held.bytes = held.bytes.saturating_add(edge.bytes);
                    held.first_seen_ns = held.first_seen_ns.min(edge.first_seen_ns);
                    held.last_seen_ns = held.last_seen_ns.max(edge.last_seen_ns);
                    held.src = edge.src;
                    held.dst = edge.dst;
                    held.verdict = edge.verdict;
                }
                None => {
                    edges.insert(key(&edge), edge);
                }
            }
        }
        self.edges = edges.into_values().collect();
        let mut nodes: std::collections::BTreeMap<IpAddr, SliceNode> = self
            .nodes
            .drain(..)
            .map(|node| (node.endpoint.ip, node))
            .collect();
        for node in later.nodes {
            match nodes.get_mut(&node.endpoint.ip) {
                Some(held) => {
                    for (mine, theirs) in [
                        (&mut held.client_fingerprints, node.client_fingerprints),
                        (&mut held.server_fingerprints, node.server_fingerprints),
                        (
                            &mut held.tls_client_fingerprints,
                            node.tls_client_fingerprints,
                        ),
                        (
                            &mut held.tls_server_fingerprints,
                            node.tls_server_fingerprints,
                        ),
                    ] {
                        mine.extend(theirs);
                        mine.sort();
                        mine.dedup();
                    }
                    held.services.extend(node.services);
                    held.services.sort();
                    held.services.dedup();
                    held.endpoint = node.endpoint;
                    held.last_seen_ns = held.last_seen_ns.max(node.last_seen_ns);
                }
                None => {
                    nodes.insert(node.endpoint.ip, node);
                }
            }
        }
        self.nodes = nodes.into_values().collect();
        self.sort();
    }

    /// The flows of all its edges.
    pub fn total_flows(&self) -> u64 {
        self.edges.iter().map(|edge| edge.flows).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(start_ns: u64, flows: u64, fingerprint: &str) -> GraphSlice {
        let end = |ip: &str| EndpointInfo {
            ip: ip.parse().unwrap(),
            identity: None,
            fqdn: None,
        };
        GraphSlice {
            agent: "node-1".into(),
            window: Window {
                start_ns,
                end_ns: start_ns + 10,
            },
            edges: vec![SliceEdge {
                src: end("10.0.0.1"),
                dst: end("10.0.0.2"),
                port: 80,
                protocol: Protocol::Tcp,
                flows,
                bytes: flows,
                first_seen_ns: start_ns + 1,
                last_seen_ns: start_ns + 2,
                verdict: None,
            }],
            nodes: vec![SliceNode {
                endpoint: end("10.0.0.2"),
                client_fingerprints: Vec::new(),
                server_fingerprints: vec![fingerprint.into()],
                tls_client_fingerprints: Vec::new(),
                tls_server_fingerprints: Vec::new(),
                services: Vec::new(),
                last_seen_ns: start_ns + 2,
            }],
        }
    }

    #[test]
    fn absorbing_the_next_slice_covers_both_windows() {
        let mut first = slice(0, 2, "a");
        first.absorb(slice(10, 3, "b"));
        assert_eq!(
            first.window,
            Window {
                start_ns: 0,
                end_ns: 20
            }
        );
        assert_eq!(first.edges.len(), 1);
        let edge = &first.edges[0];
        assert_eq!(
            (edge.flows, edge.first_seen_ns, edge.last_seen_ns),
            (5, 1, 12)
        );
        assert_eq!(first.nodes[0].server_fingerprints, ["a", "b"]);
    }
}
