//! Declared edges: policies compiled into an allow-list, and the verdict on
//! one edge.
//!
//! A [`Policy`] is the common form of a Kubernetes `NetworkPolicy` (read by
//! [`kube`]) and of one line of a hand-written allow-list (read by
//! [`lines`]): it selects pods ([`PodSet`]) and, for ingress and/or egress,
//! lists [`Rule`]s of peers and ports. [`DeclaredPolicies`] holds them by
//! name as they change; [`DeclaredPolicies::compile`] builds the immutable
//! [`PolicySet`] that evaluates edges.
//!
//! Evaluation follows Kubernetes semantics:
//! - a pod selected by no policy of a direction is not governed in that
//!   direction (everything is allowed);
//! - a pod selected by at least one is governed, and an edge is allowed if
//!   *any* of those policies has a rule that matches it (policies are a
//!   union; there is no deny rule and no order);
//! - an edge needs the egress side of its source and the ingress side of its
//!   destination: it is a [`VerdictKind::Violation`] if either side denies
//!   it, [`VerdictKind::NotGoverned`] if neither side is governed, and
//!   [`VerdictKind::Declared`] otherwise.
//!
//! Only pods are selected and only pods match a pod or namespace selector;
//! services, nodes (and so host-network pods) and outside addresses match
//! only an `ipBlock`. An `ipBlock` matches any address in it, pods' included
//! (the Kubernetes e2e tests rely on this). A named port matches when the
//! *destination* pod has a container port of that name and protocol whose
//! number is the edge's port; an edge to anything but a pod never matches a
//! named port. Labels are the ones [`ClusterObject::labels`] keeps: a
//! selector on a churn label (such as `pod-template-hash`) matches nothing
//! unless the index is configured to keep it.
//!
//! Evaluation allocates nothing and reads no clock.

pub mod kube;
pub mod lines;

use core::net::IpAddr;
use std::collections::BTreeMap;

use edgewise_ip_index::{ClusterObject, ObjectKind, Protocol};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use self::kube::{DeclaredPolicies, LoadReport};
use crate::selector::{LabelSelector, Labels};

/// The label the API server puts on every namespace, whose value is the
/// namespace's name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// One policy: the pods it selects and what it allows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `namespace/name` for a NetworkPolicy, `source:line` for an
    /// allow-list line.
    pub name: String,
    /// The pods the policy applies to.
    pub applies_to: PodSet,
    /// Ingress rules, when the policy governs ingress (`Some(vec![])`
    /// denies all ingress); `None` when it does not.
    pub ingress: Option<Vec<Rule>>,
    /// Egress rules, likewise.
    pub egress: Option<Vec<Rule>>,
}

/// A set of pods: those in matching namespaces whose labels (or workload)
/// match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSet {
    /// Which namespaces.
    pub namespaces: Namespaces,
    /// Which pods in them.
    pub pods: Pods,
}

/// The namespaces of a [`PodSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    /// One namespace, by name (a policy's own namespace).
    Named(String),
    /// Namespaces whose labels match (`namespaceSelector`; the empty
    /// selector is every namespace).
    Selector(LabelSelector),
}

/// The pods of a [`PodSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pods {
    /// Pods whose labels match (`podSelector`).
    Selector(LabelSelector),
    /// Pods of the workload of that name (any kind), as an allow-list
    /// line names them.
    Workload(String),
}

/// One ingress or egress rule: who, and on which ports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// The peers (`from` / `to`); `None` (absent or empty) is everyone,
    /// outside addresses included.
    pub peers: Option<Vec<Peer>>,
    /// The ports; `None` (absent or empty) is every port of every protocol.
    pub ports: Option<Vec<PortRule>>,
}

/// A peer of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// Pods.
    Pods(PodSet),
    /// Addresses.
    IpBlock(IpBlock),
}

/// An `ipBlock`: a CIDR minus exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpBlock {
    /// The block.
    pub cidr: IpNet,
    /// Ranges inside it that are not allowed.
    pub except: Vec<IpNet>,
}

impl IpBlock {
    /// Whether `ip` is in the block and in none of its exceptions.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidr.contains(&ip) && !self.except.iter().any(|net| net.contains(&ip))
    }
}

/// A port of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRule {
    /// Every port of the protocol (a `ports` entry without `port`).
    Any(Protocol),
    /// `port` to `endPort` (one port when no `endPort`).
    Range {
        /// The protocol.
        protocol: Protocol,
        /// The first port.
        first: u16,
        /// The last port (inclusive).
        last: u16,
    },
    /// A named container port of the destination pod.
    Named {
        /// The protocol.
        protocol: Protocol,
        /// The port's name.
        name: String,
    },
}

impl PortRule {
    fn matches(&self, port: u16, protocol: Protocol, destination: Option<&ClusterObject>) -> bool {
        match self {
            Self::Any(p) => *p == protocol,
            Self::Range {
                protocol: p,
                first,
                last,
            } => *p == protocol && (*first..=*last).contains(&port),
            Self::Named { protocol: p, name } => {
                *p == protocol
                    && pod(destination).is_some_and(|pod| {
                        pod.named_ports.iter().any(|named| {
                            named.port == port && named.protocol == protocol && named.name == *name
                        })
                    })
            }
        }
    }
}

/// One end of an edge: its address and, when known, who has it.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    /// The address.
    pub ip: IpAddr,
    /// Its identity, if the address is a known cluster object.
    pub identity: Option<&'a ClusterObject>,
}

/// The edge a verdict is asked for.
#[derive(Debug, Clone, Copy)]
pub struct EdgeQuery<'a> {
    /// The client.
    pub src: Endpoint<'a>,
    /// The server.
    pub dst: Endpoint<'a>,
    /// The destination port.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

/// A policy's position in its [`PolicySet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyId(u32);

/// What one direction says about an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// No policy of this direction selects the pod (or it is not a pod).
    NotGoverned,
    /// This policy allows it (policies naming the pod's namespace are tried
    /// before those selecting namespaces by label, each in name order).
    Allowed(PolicyId),
    /// Policies select the pod and none allows it; this is the first of
    /// them in name order.
    Denied(PolicyId),
}

/// The verdict on an edge: both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The destination's ingress side.
    pub ingress: Side,
    /// The source's egress side.
    pub egress: Side,
}

/// The verdict in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// Governed on at least one side, and every governed side allows it.
    Declared,
    /// Neither side is governed.
    NotGoverned,
    /// A governed side allows it nowhere.
    Violation,
}

impl VerdictKind {
    /// `declared`, `not_governed` or `violation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Declared => "declared",
            Self::NotGoverned => "not_governed",
            Self::Violation => "violation",
        }
    }
}

impl Verdict {
    /// The verdict in one word.
    pub fn kind(&self) -> VerdictKind {
        match (self.ingress, self.egress) {
            (Side::Denied(_), _) | (_, Side::Denied(_)) => VerdictKind::Violation,
            (Side::NotGoverned, Side::NotGoverned) => VerdictKind::NotGoverned,
            _ => VerdictKind::Declared,
        }
    }

    /// The policy that decided it: for a violation the (first) policy that
    /// denies it, ingress first; for a declared edge the policy that allows
    /// it, ingress first; none when not governed.
    pub fn deciding(&self) -> Option<PolicyId> {
        let sides = (self.ingress, self.egress);
        if let (Side::Denied(id), _) | (_, Side::Denied(id)) = sides {
            return Some(id);
        }
        if let (Side::Allowed(id), _) | (_, Side::Allowed(id)) = sides {
            return Some(id);
        }
        None
    }
}

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The direction a policy's rules govern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

/// Policies that may select a pod, by the direction they govern, each list
/// in name order.
#[derive(Debug, Clone, Default)]
struct Candidates {
    ingress: Vec<PolicyId>,
    egress: Vec<PolicyId>,
}

impl Candidates {
    fn add(&mut self, id: PolicyId, policy: &Policy) {
        if policy.ingress.is_some() {
            self.ingress.push(id);
        }
        if policy.egress.is_some() {
            self.egress.push(id);
        }
    }

    fn get(&self, direction: Direction) -> &[PolicyId] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// Compiled policies and namespace labels, ready to evaluate edges.
/// Immutable: build a new one (with [`DeclaredPolicies::compile`]) when
/// policies change.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Policy>,
    /// Policies that select pods of one namespace, by namespace.
    by_namespace: Map<String, Candidates>,
    /// Policies that select pods by namespace labels.
    by_selector: Candidates,
    namespace_labels: Map<String, BTreeMap<String, String>>,
}

/// A pod end of an edge with its namespace's labels, looked up once.
struct PodView<'a> {
    object: &'a ClusterObject,
    namespace: NamespaceLabels<'a>,
}

impl PolicySet {
    /// Compiles `policies` (evaluated in name order) with the labels of the
    /// namespaces known. A namespace not given has only its
    /// [`NAMESPACE_NAME_LABEL`].
    pub fn new(
        policies: impl IntoIterator<Item = Policy>,
        namespace_labels: impl IntoIterator<Item = (String, BTreeMap<String, String>)>,
    ) -> Self {
        let mut policies: Vec<Policy> = policies.into_iter().collect();
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        let mut set = Self {
            namespace_labels: namespace_labels.into_iter().collect(),
            ..Self::default()
        };
        for (index, policy) in policies.iter().enumerate() {
            let id = PolicyId(u32::try_from(index).unwrap_or(u32::MAX));
            match &policy.applies_to.namespaces {
                Namespaces::Named(namespace) => set
                    .by_namespace
                    .entry(namespace.clone())
                    .or_default()
                    .add(id, policy),
                Namespaces::Selector(_) => set.by_selector.add(id, policy),
            }
        }
        set.policies = policies;
        set
    }

    /// The number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether there are no policies (every edge is not governed).
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The policy `id` names.
    ///
    /// # Panics
    /// If `id` comes from another set.
    pub fn policy(&self, id: PolicyId) -> &Policy {
        &self.policies[id.0 as usize]
    }

    /// The verdict on `edge`.
    pub fn evaluate(&self, edge: &EdgeQuery<'_>) -> Verdict {
        let src = self.view(edge.src.identity);
        let dst = self.view(edge.dst.identity);
        let src_ip = edge.src.ip.to_canonical();
        let dst_ip = edge.dst.ip.to_canonical();
        Verdict {
            ingress: self.side(Direction::Ingress, dst.as_ref(), src.as_ref(), src_ip, edge),
            egress: self.side(Direction::Egress, src.as_ref(), dst.as_ref(), dst_ip, edge),
        }
    }

    fn view<'a>(&'a self, identity: Option<&'a ClusterObject>) -> Option<PodView<'a>> {
        let object = pod(identity)?;
        let name = object.namespace.as_deref().unwrap_or_default();
        Some(PodView {
            object,
            namespace: NamespaceLabels {
                name,
                labels: self.namespace_labels.get(name),
            },
        })
    }

    /// One direction: `subject` is the pod whose policies apply, `peer` the
    /// other end (`peer_ip` its address).
    fn side(
        &self,
        direction: Direction,
        subject: Option<&PodView<'_>>,
        peer: Option<&PodView<'_>>,
        peer_ip: IpAddr,
        edge: &EdgeQuery<'_>,
    ) -> Side {
        let Some(subject) = subject else {
            return Side::NotGoverned;
        };
        let candidates = self
            .by_namespace
            .get(subject.namespace.name)
            .map(|c| c.get(direction))
            .unwrap_or_default()
            .iter()
            .chain(self.by_selector.get(direction));
        let mut denied: Option<PolicyId> = None;
        for &id in candidates {
            let policy = self.policy(id);
            let rules = match direction {
                Direction::Ingress => policy.ingress.as_deref(),
                Direction::Egress => policy.egress.as_deref(),
            };
            // A policy listed under the subject's namespace names it; only
            // its pods remain to be checked.
            let selected = match policy.applies_to.namespaces {
                Namespaces::Named(_) => selects_pods(&policy.applies_to.pods, subject.object),
                Namespaces::Selector(_) => selects(&policy.applies_to, subject),
            };
            if !selected {
                continue;
            }
            let allows = rules.unwrap_or_default().iter().any(|rule| {
                rule.peers
                    .as_ref()
                    .is_none_or(|peers| peers.iter().any(|p| peer_matches(p, peer, peer_ip)))
                    && rule.ports.as_ref().is_none_or(|ports| {
                        ports
                            .iter()
                            .any(|p| p.matches(edge.port, edge.protocol, edge.dst.identity))
                    })
            });
            if allows {
                return Side::Allowed(id);
            }
            // Candidates come in two lists; keep the first in name order.
            denied = Some(denied.map_or(id, |d| d.min(id)));
        }
        denied.map_or(Side::NotGoverned, Side::Denied)
    }
}

fn peer_matches(peer: &Peer, pod: Option<&PodView<'_>>, ip: IpAddr) -> bool {
    match peer {
        Peer::IpBlock(block) => block.contains(ip),
        Peer::Pods(set) => pod.is_some_and(|pod| selects(set, pod)),
    }
}

fn selects(set: &PodSet, pod: &PodView<'_>) -> bool {
    let in_namespace = match &set.namespaces {
        Namespaces::Named(name) => name == pod.namespace.name,
        Namespaces::Selector(selector) => selector.matches(&pod.namespace),
    };
    in_namespace && selects_pods(&set.pods, pod.object)
}

fn selects_pods(pods: &Pods, pod: &ClusterObject) -> bool {
    match pods {
        Pods::Selector(selector) => selector.matches(&pod.labels),
        Pods::Workload(name) => pod
            .workload
            .as_ref()
            .is_some_and(|workload| workload.name == *name),
    }
}

/// A namespace's labels, with the name label the API server always sets.
struct NamespaceLabels<'a> {
    name: &'a str,
    labels: Option<&'a BTreeMap<String, String>>,
}

impl Labels for NamespaceLabels<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.labels.and_then(|labels| labels.get(key)) {
            Some(value) => Some(value),
            None if key == NAMESPACE_NAME_LABEL => Some(self.name),
            None => None,
        }
    }
}

fn pod(identity: Option<&ClusterObject>) -> Option<&ClusterObject> {
    identity.filter(|object| object.kind == ObjectKind::Pod)
}
