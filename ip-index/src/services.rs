//! [`ServiceBackends`]: where kube-proxy would deliver a connection to a
//! Service's front (a ClusterIP and service port, or a node address and
//! NodePort): the ready backends and the port on each.
//!
//! An observer at tc ingress sees the ClusterIP, before kube-proxy's DNAT;
//! a NetworkPolicy is about the pods behind it. This module maps each front
//! to the backends a DNAT could pick, so a caller can judge the edge as
//! each backend would see it.
//!
//! What it reads from Kubernetes JSON (the same documents ip-index reads,
//! in the same shapes: lists, single objects, watch events, where a
//! `DELETED` event removes):
//! - Service: `spec.clusterIP(s)` (not `None`), `spec.selector`,
//!   `spec.ports[]` (`name`, `port`, `protocol`, `targetPort` as a number
//!   or a container port's name, `nodePort`);
//! - EndpointSlice: the `kubernetes.io/service-name` label, `ports[]`
//!   (`name`, `port`, `protocol`), `endpoints[]` (`addresses`,
//!   `conditions.ready`, not false);
//! - Pod: labels, `status.podIP(s)`, phase Running and condition Ready,
//!   the containers' named ports;
//! - Node: `InternalIP` addresses (NodePort fronts).
//!
//! Resolution: a Service with EndpointSlices takes its backends from them
//! (the slice port of the same name as the service port); one without
//! takes the ready pods its selector matches in its namespace, with
//! `targetPort` mapped on each pod (a name through the pod's named ports;
//! a pod without that name is no backend). A Service without selector or
//! slices has no backends. At most [`MAX_BACKENDS`] backends per front.
//!
//! A document that does not parse is skipped by [`walk`] and
//! said in the returned problems; an object of the wrong shape names
//! itself there and changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use serde_json::Value;

use crate::Protocol;
use crate::kube::{Found, walk};

/// The most backends kept per front.
pub const MAX_BACKENDS: usize = 4_096;

/// The backends of one front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Front {
    /// The Service, `namespace/name`.
    pub service: String,
    /// Where a connection may be delivered: a backend's address and port.
    pub backends: Vec<SocketAddr>,
}

/// Fronts of Services and their backends (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ServiceBackends {
    fronts: HashMap<(IpAddr, u16, Protocol), Front>,
}

impl ServiceBackends {
    /// The backends behind `ip`:`port` over `protocol`, when it is a
    /// Service's front.
    pub fn front(&self, ip: IpAddr, port: u16, protocol: Protocol) -> Option<&Front> {
        self.fronts.get(&(ip.to_canonical(), port, protocol))
    }

    /// Fronts known.
    pub fn len(&self) -> usize {
        self.fronts.len()
    }

    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.fronts.is_empty()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Meta {
    name: Option<String>,
    namespace: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TargetPort {
    Number(u16),
    Name(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ServicePort {
    name: Option<String>,
    port: Option<u16>,
    protocol: Option<String>,
    target_port: Option<TargetPort>,
    node_port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ServiceSpec {
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs")]
    cluster_ips: Option<Vec<String>>,
    selector: Option<BTreeMap<String, String>>,
    ports: Option<Vec<ServicePort>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ServiceJson {
    metadata: Meta,
    spec: ServiceSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SlicePort {
    name: Option<String>,
    port: Option<u16>,
    protocol: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Conditions {
    ready: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SliceEndpoint {
    addresses: Vec<String>,
    conditions: Conditions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SliceJson {
    metadata: Meta,
    ports: Option<Vec<SlicePort>>,
    endpoints: Option<Vec<SliceEndpoint>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PortOfContainer {
    name: Option<String>,
    container_port: Option<u16>,
    protocol: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Container {
    ports: Option<Vec<PortOfContainer>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PodSpec {
    containers: Option<Vec<Container>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PodIp {
    ip: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Condition {
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NodeAddress {
    #[serde(rename = "type")]
    kind: Option<String>,
    address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Status {
    phase: Option<String>,
    #[serde(rename = "podIP")]
    pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pod_ips: Option<Vec<PodIp>>,
    conditions: Option<Vec<Condition>>,
    addresses: Option<Vec<NodeAddress>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PodJson {
    metadata: Meta,
    spec: PodSpec,
    status: Status,
}

/// A ready pod, as a selector backend.
#[derive(Debug, Clone)]
struct ReadyPod {
    labels: BTreeMap<String, String>,
    ips: Vec<IpAddr>,
    named_ports: Vec<(String, u16, Protocol)>,
}

/// What [`ServiceCatalog::read`] gathers from documents, resolved by
/// [`ServiceCatalog::resolve`].
#[derive(Debug, Default)]
pub struct ServiceCatalog {
    services: BTreeMap<(String, String), ServiceJson>,
    slices: BTreeMap<(String, String), SliceJson>,
    pods: BTreeMap<(String, String), ReadyPod>,
    nodes: BTreeMap<String, Vec<IpAddr>>,
}

fn protocol(text: Option<&str>) -> Option<Protocol> {
    match text {
        None | Some("") => Some(Protocol::Tcp),
        Some(text) => text.parse().ok(),
    }
}

fn ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

impl ServiceCatalog {
    /// Reads Services, EndpointSlices, Pods and Nodes from `input` (other
    /// kinds are passed over); the problems met, each naming the object
    /// or document.
    pub fn read(&mut self, input: &[u8]) -> Vec<String> {
        let mut problems = Vec::new();
        walk(input, |found| match found {
            Found::Object(found) => {
                if let Err(problem) = self.object(&found.kind, &found.value, found.deleted) {
                    problems.push(format!("{}: {problem}", found.display_name()));
                }
            }
            Found::Bookmark => {}
            Found::Error(error) => problems.push(error.to_string()),
        });
        problems
    }

    fn object(&mut self, kind: &str, value: &Value, deleted: bool) -> Result<(), String> {
        let meta = |value: &Value| -> Result<(String, String), String> {
            let meta = Meta::deserialize(value.get("metadata").unwrap_or(&Value::Null))
                .map_err(|e| format!("metadata: {e}"))?;
            let name = meta.name.unwrap_or_default();
            Ok((meta.namespace.unwrap_or_default(), name))
        };
        match kind {
            "Service" => {
                let key = meta(value)?;
                if deleted {
                    self.services.remove(&key);
                } else {
                    let service = ServiceJson::deserialize(value).map_err(|e| e.to_string())?;
                    self.services.insert(key, service);
                }
            }
            "EndpointSlice" => {
                let key = meta(value)?;
                if deleted {
                    self.slices.remove(&key);
                } else {
                    let slice = SliceJson::deserialize(value).map_err(|e| e.to_string())?;
                    self.slices.insert(key, slice);
                }
            }
            "Pod" => {
                let key = meta(value)?;
                let pod = PodJson::deserialize(value).map_err(|e| e.to_string())?;
                match ready_pod(pod) {
                    Some(pod) if !deleted => {
                        self.pods.insert(key, pod);
                    }
                    _ => {
                        self.pods.remove(&key);
                    }
                }
            }
            "Node" => {
                let (_, name) = meta(value)?;
                let node = PodJson::deserialize(value).map_err(|e| e.to_string())?;
                let ips = node
                    .status
                    .addresses
                    .unwrap_or_default()
                    .iter()
                    .filter(|a| a.kind.as_deref() == Some("InternalIP"))
                    .filter_map(|a| ip(a.address.as_deref()?))
                    .collect();
                if deleted {
                    self.nodes.remove(&name);
                } else {
                    self.nodes.insert(name, ips);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Every front and its backends (see the module docs).
    pub fn resolve(&self) -> ServiceBackends {
        let mut fronts = HashMap::new();
        let node_ips: Vec<IpAddr> = self.nodes.values().flatten().copied().collect();
        for ((namespace, name), service) in &self.services {
            let cluster_ips: Vec<IpAddr> = service
                .spec
                .cluster_ips
                .iter()
                .flatten()
                .chain(&service.spec.cluster_ip)
                .filter_map(|text| ip(text))
                .collect();
            let slices: Vec<&SliceJson> = self
                .slices
                .iter()
                .filter(|((ns, _), slice)| {
                    ns == namespace
                        && slice
                            .metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get("kubernetes.io/service-name"))
                            == Some(name)
                })
                .map(|(_, slice)| slice)
                .collect();
            for port in service.spec.ports.iter().flatten() {
                let (Some(number), Some(protocol)) =
                    (port.port, protocol(port.protocol.as_deref()))
                else {
                    continue;
                };
                let mut backends = if slices.is_empty() {
                    self.selected(namespace, service.spec.selector.as_ref(), port, protocol)
                } else {
                    sliced(&slices, port.name.as_deref(), protocol)
                };
                backends.sort_unstable();
                backends.dedup();
                backends.truncate(MAX_BACKENDS);
                let front = Front {
                    service: format!("{namespace}/{name}"),
                    backends,
                };
                for ip in &cluster_ips {
                    fronts.insert((*ip, number, protocol), front.clone());
                }
                if let Some(node_port) = port.node_port {
                    for ip in &node_ips {
                        fronts.insert((*ip, node_port, protocol), front.clone());
                    }
                }
            }
        }
        ServiceBackends { fronts }
    }

    /// The ready pods `selector` matches in `namespace`, at the service
    /// port's target on each.
    fn selected(
        &self,
        namespace: &str,
        selector: Option<&BTreeMap<String, String>>,
        port: &ServicePort,
        protocol: Protocol,
    ) -> Vec<SocketAddr> {
        let Some(selector) = selector.filter(|s| !s.is_empty()) else {
            return Vec::new();
        };
        let mut backends = Vec::new();
        for ((ns, _), pod) in &self.pods {
            if ns != namespace || !selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v)) {
                continue;
            }
            let target = match &port.target_port {
                None => port.port,
                Some(TargetPort::Number(n)) => Some(*n),
                Some(TargetPort::Name(name)) => pod
                    .named_ports
                    .iter()
                    .find(|(n, _, p)| n == name && *p == protocol)
                    .map(|(_, number, _)| *number),
            };
            if let Some(target) = target {
                backends.extend(pod.ips.iter().map(|ip| SocketAddr::new(*ip, target)));
            }
        }
        backends
    }
}

/// The ready endpoints of `slices` at the port named `name`.
fn sliced(slices: &[&SliceJson], name: Option<&str>, protocol: Protocol) -> Vec<SocketAddr> {
    let mut backends = Vec::new();
    for slice in slices {
        let Some(port) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == name.unwrap_or("")
                && protocol_of(p.protocol.as_deref()) == Some(protocol)
        }) else {
            continue;
        };
        let Some(number) = port.port else {
            continue;
        };
        for endpoint in slice.endpoints.iter().flatten() {
            if endpoint.conditions.ready == Some(false) {
                continue;
            }
            backends.extend(
                endpoint
                    .addresses
                    .iter()
                    .filter_map(|text| ip(text))
                    .map(|ip| SocketAddr::new(ip, number)),
            );
        }
    }
    backends
}

fn protocol_of(text: Option<&str>) -> Option<Protocol> {
    protocol(text)
}

/// A pod that is Running and Ready, with its addresses, labels and named
/// ports.
fn ready_pod(pod: PodJson) -> Option<ReadyPod> {
    let status = pod.status;
    let ready = status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.kind.as_deref() == Some("Ready") && c.status.as_deref() == Some("True"));
    if !ready {
        return None;
    }
    let mut ips: Vec<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .filter_map(|p| ip(p.ip.as_deref()?))
        .chain(status.pod_ip.as_deref().and_then(ip))
        .collect();
    ips.sort_unstable();
    ips.dedup();
    let named_ports = pod
        .spec
        .containers
        .iter()
        .flatten()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            Some((
                p.name.clone().filter(|n| !n.is_empty())?,
                p.container_port?,
                protocol(p.protocol.as_deref())?,
            ))
        })
        .collect();
    Some(ReadyPod {
        labels: pod.metadata.labels.unwrap_or_default(),
        ips,
        named_ports,
    })
}
