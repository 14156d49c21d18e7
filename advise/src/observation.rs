//! What the analysis reads: one [`Observation`] per source, destination,
//! port and day, from graph files ([`from_graph`]) or the trail (its
//! caller turns the trail's rows into observations).

use core::fmt;
use core::net::IpAddr;
use std::collections::BTreeMap;

use edgewise_edge_set::render::read_graph_json;
use edgewise_edge_set::{EndpointInfo, SERVICE_IDENTITY_LABEL};
use edgewise_ip_index::{ObjectKind, Protocol};
use serde::{Deserialize, Serialize};

use crate::{AdviseError, day_of};

/// A group of source pods.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Source {
    /// The namespace.
    pub namespace: String,
    /// The `service-identity` label (`""` when unset, or when sources are
    /// grouped by namespace).
    pub identity: String,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.identity.is_empty() {
            f.write_str(&self.namespace)
        } else {
            write!(f, "{}+{}", self.namespace, self.identity)
        }
    }
}

/// Who a source reached: what is counted and allowed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// The pods of a workload (a Deployment's, StatefulSet's, ...; a pod
    /// no controller owns is a workload of kind `Pod`).
    Workload {
        /// Their namespace.
        namespace: String,
        /// The workload's kind, as Kubernetes spells it.
        workload_kind: String,
        /// The workload's name.
        name: String,
    },
    /// A Service (its cluster address).
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A node.
    Node {
        /// Its name.
        name: String,
    },
    /// A name the client resolved: every address of it.
    Name {
        /// The name.
        name: String,
    },
    /// An address outside the cluster without a name.
    Address {
        /// The address.
        ip: IpAddr,
    },
}

impl Target {
    /// The destination of a name the client resolved: the name in lower
    /// case without its final dot, when it is a host name (letters,
    /// digits, `-`, `_` and dots, at most 253 bytes); `None` otherwise
    /// (the address then stands alone).
    pub fn of_name(fqdn: &str) -> Option<Self> {
        let name = normal_name(fqdn);
        let host = !name.is_empty()
            && name.len() <= 253
            && name
                .split('.')
                .all(|label| !label.is_empty() && label.len() <= 63)
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        host.then_some(Self::Name { name })
    }

    /// Whether it is outside the pod network (nodes, names, addresses).
    pub fn is_external(&self) -> bool {
        matches!(
            self,
            Self::Node { .. } | Self::Name { .. } | Self::Address { .. }
        )
    }

    /// The namespace of a pod, workload or Service.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Self::Workload { namespace, .. } | Self::Service { namespace, .. } => Some(namespace),
            _ => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Workload {
                namespace,
                workload_kind,
                name,
            } => write!(f, "{namespace}/{workload_kind}/{name}"),
            Self::Service { namespace, name } => write!(f, "service {namespace}/{name}"),
            Self::Node { name } => write!(f, "node/{name}"),
            Self::Name { name } => f.write_str(name),
            Self::Address { ip } => write!(f, "{ip}"),
        }
    }
}

/// One source's traffic to one destination address and port on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The UTC day (Unix milliseconds at its start) it was seen on.
    pub day: i64,
    /// The source pods' namespace.
    pub namespace: String,
    /// Their `service-identity` label (`""` when unset).
    pub service_identity: String,
    /// The destination.
    pub target: Target,
    /// The destination's address.
    pub ip: IpAddr,
    /// The destination pods' stable labels (pods only).
    pub labels: BTreeMap<String, String>,
    /// The server's port.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
    /// Flows.
    pub flows: u64,
    /// First seen (Unix milliseconds).
    pub first_seen_ms: i64,
    /// Last seen.
    pub last_seen_ms: i64,
}

impl Observation {
    /// The observation of an edge between two endpoints, or `None` when
    /// the client is not a pod in a namespace.
    pub fn of_edge(
        src: &EndpointInfo,
        dst: &EndpointInfo,
        port: u16,
        protocol: Protocol,
        flows: u64,
        first_seen_ms: i64,
        last_seen_ms: i64,
    ) -> Option<Self> {
        let client = src.identity.as_deref()?;
        if client.kind != ObjectKind::Pod {
            return None;
        }
        let namespace = client.namespace.clone()?;
        let (target, labels) = target_of(dst);
        Some(Self {
            day: day_of(last_seen_ms),
            namespace,
            service_identity: client
                .labels
                .get(SERVICE_IDENTITY_LABEL)
                .cloned()
                .unwrap_or_default(),
            target,
            ip: dst.ip.to_canonical(),
            labels,
            port,
            protocol,
            flows,
            first_seen_ms,
            last_seen_ms,
        })
    }
}

fn target_of(dst: &EndpointInfo) -> (Target, BTreeMap<String, String>) {
    let Some(object) = dst.identity.as_deref() else {
        let target = dst
            .fqdn
            .as_deref()
            .and_then(Target::of_name)
            .unwrap_or(Target::Address {
                ip: dst.ip.to_canonical(),
            });
        return (target, BTreeMap::new());
    };
    let namespace = object.namespace.clone().unwrap_or_default();
    match object.kind {
        ObjectKind::Pod => {
            let target = match &object.workload {
                Some(workload) => Target::Workload {
                    namespace,
                    workload_kind: workload.kind.as_str().to_owned(),
                    name: workload.name.clone(),
                },
                None => Target::Workload {
                    namespace,
                    workload_kind: "Pod".to_owned(),
                    name: object.name.clone(),
                },
            };
            (target, object.labels.clone())
        }
        ObjectKind::Service => (
            Target::Service {
                namespace,
                name: object.name.clone(),
            },
            BTreeMap::new(),
        ),
        ObjectKind::Node => (
            Target::Node {
                name: object.name.clone(),
            },
            BTreeMap::new(),
        ),
    }
}

/// A name in lower case without its final dot.
pub fn normal_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The observations of an `edgewise.graph/v1` document (what `edgewise
/// edges --graph`, the daemon's `/graph` and its graph files write):
/// every edge from a pod, on the day of its last seen time. `name` is how
/// errors call the file.
///
/// # Errors
/// [`AdviseError::Graph`] when the document is not JSON of that schema.
pub fn from_graph(name: &str, bytes: &[u8]) -> Result<Vec<Observation>, AdviseError> {
    let slice = read_graph_json(name, bytes).map_err(|problem| AdviseError::Graph {
        source_name: name.to_owned(),
        problem,
    })?;
    let ms = |ns: u64| i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX);
    Ok(slice
        .edges
        .iter()
        .filter_map(|edge| {
            Observation::of_edge(
                &edge.src,
                &edge.dst,
                edge.port,
                edge.protocol,
                edge.flows,
                ms(edge.first_seen_ns),
                ms(edge.last_seen_ns),
            )
        })
        .collect())
}
