//! The cluster objects the index is built from (what an informer holds,
//! reduced to what identity needs) and the identity a lookup returns.
//!
//! Inputs are plain structs with public fields so that an agent with its own
//! informer can fill them without JSON; [`crate::kube`] fills them from
//! Kubernetes JSON. What a lookup returns is a [`ClusterObject`]: kind,
//! namespace, name, uid, workload, labels without churn labels, service
//! account and node, shared behind an `Arc` so that readers never copy it.

use core::fmt;
use core::net::IpAddr;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds since the Unix epoch, from a Kubernetes timestamp
/// (`metadata.creationTimestamp`, `status.startTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// The controller that owns an object (`metadata.ownerReferences`, the one
/// with `controller: true`, else the first).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnerRef {
    /// Its kind, such as `ReplicaSet`.
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// The metadata the index uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectMeta {
    /// The namespace (none for nodes).
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
    /// The uid. Objects are told apart by uid, which is what keeps a
    /// recreated pod of the same name from being confused with the old one;
    /// without one, the namespace and name stand in for it.
    pub uid: Option<String>,
    /// `metadata.resourceVersion`; when both versions are integers (as the
    /// API server's are), an update older than the one applied is ignored.
    pub resource_version: Option<String>,
    /// The labels, as given (churn labels are dropped when indexing).
    pub labels: BTreeMap<String, String>,
    /// The controlling owner, if any.
    pub owner: Option<OwnerRef>,
    /// `metadata.creationTimestamp`.
    pub created: Option<Timestamp>,
    /// `metadata.deletionTimestamp` is set: the object is terminating.
    pub terminating: bool,
}

/// `status.phase` of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PodPhase {
    /// Accepted, not all containers started.
    #[default]
    Pending,
    /// Bound to a node, at least one container running.
    Running,
    /// All containers terminated successfully: the pod claims no IP.
    Succeeded,
    /// All containers terminated, at least one failed: claims no IP.
    Failed,
    /// The phase could not be obtained.
    Unknown,
}

impl PodPhase {
    /// Whether the pod has finished (Succeeded or Failed).
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// A Pod, as far as identity goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Pod {
    /// Metadata.
    pub meta: ObjectMeta,
    /// `status.podIPs` (or `status.podIP`), in order, without duplicates.
    pub ips: Vec<IpAddr>,
    /// `status.phase`.
    pub phase: PodPhase,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `spec.hostNetwork`: the pod uses its node's addresses and claims none.
    pub host_network: bool,
    /// `spec.serviceAccountName`.
    pub service_account: Option<String>,
    /// `spec.nodeName`.
    pub node_name: Option<String>,
    /// `status.startTime`.
    pub started: Option<Timestamp>,
    /// The containers' ports that have a name (what a NetworkPolicy's named
    /// port refers to), in order.
    pub named_ports: Vec<NamedPort>,
    /// `spec.volumes` of kind `secret` and `projected`: which Secret each
    /// file comes from.
    pub secret_volumes: Vec<crate::volumes::SecretVolumeSpec>,
}

/// A transport protocol as Kubernetes names it (`TCP`, `UDP`, `SCTP`);
/// edgewise writes it in lower case.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP, the Kubernetes default.
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// Reads `TCP`, `UDP` or `SCTP` (any case); [`str::parse`] says why not.
    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    /// The IP protocol number (6, 17, 132).
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Sctp => 132,
        }
    }

    /// The lower-case name (`tcp`, `udp`, `sctp`), as edgewise writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

/// A protocol name or number that is not TCP, UDP or SCTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a protocol edgewise knows (tcp, udp, sctp): {0}")]
pub struct UnknownProtocol(pub String);

impl core::str::FromStr for Protocol {
    type Err = UnknownProtocol;

    /// `TCP`, `UDP` or `SCTP`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Self::Tcp, Self::Udp, Self::Sctp]
            .into_iter()
            .find(|p| text.eq_ignore_ascii_case(p.as_str()))
            .ok_or_else(|| UnknownProtocol(text.to_owned()))
    }
}

impl TryFrom<u8> for Protocol {
    type Error = UnknownProtocol;

    /// The IP protocol number: 6, 17 or 132.
    fn try_from(number: u8) -> Result<Self, Self::Error> {
        [Self::Tcp, Self::Udp, Self::Sctp]
            .into_iter()
            .find(|p| p.number() == number)
            .ok_or_else(|| UnknownProtocol(number.to_string()))
    }
}

impl From<Protocol> for u8 {
    fn from(protocol: Protocol) -> Self {
        protocol.number()
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named container port (`spec.containers[].ports[]` with a `name`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NamedPort {
    /// The port's name, such as `http`.
    pub name: String,
    /// `containerPort`.
    pub port: u16,
    /// `protocol` (TCP when not given).
    pub protocol: Protocol,
}

/// A Service, as far as identity goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// Metadata.
    pub meta: ObjectMeta,
    /// `spec.clusterIPs` (or `spec.clusterIP`); empty for a headless
    /// (`None`) or ExternalName service.
    pub cluster_ips: Vec<IpAddr>,
}

/// A Node, as far as identity goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// Metadata.
    pub meta: ObjectMeta,
    /// The `InternalIP` entries of `status.addresses`.
    pub internal_ips: Vec<IpAddr>,
}

/// One object of a kind the index knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// A Pod.
    Pod(Pod),
    /// A Service.
    Service(Service),
    /// A Node.
    Node(Node),
}

impl Object {
    /// The object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Pod(pod) => &pod.meta,
            Self::Service(service) => &service.meta,
            Self::Node(node) => &node.meta,
        }
    }

    /// The object's kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Self::Pod(_) => ObjectKind::Pod,
            Self::Service(_) => ObjectKind::Service,
            Self::Node(_) => ObjectKind::Node,
        }
    }
}

/// The kind of a cluster object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ObjectKind {
    /// A Node.
    Node,
    /// A Service.
    Service,
    /// A Pod.
    Pod,
}

impl ObjectKind {
    /// The kind as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Node => "Node",
            Self::Service => "Service",
            Self::Pod => "Pod",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of workload a pod belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadKind {
    /// A Deployment (the pod's ReplicaSet with its hash trimmed).
    Deployment,
    /// A ReplicaSet whose Deployment could not be told.
    ReplicaSet,
    /// A StatefulSet.
    StatefulSet,
    /// A DaemonSet.
    DaemonSet,
    /// A CronJob (a Job named `<cronjob>-<scheduled minute>`).
    CronJob,
    /// A Job.
    Job,
    /// A pod without a controller: the pod is its own workload.
    Pod,
    /// Any other controller kind (custom resources), as named.
    Other(String),
}

impl WorkloadKind {
    /// The kind Kubernetes spells `kind`; names other than the built-in
    /// controllers are [`WorkloadKind::Other`].
    pub fn parse(kind: &str) -> Self {
        match kind {
            "Deployment" => Self::Deployment,
            "ReplicaSet" => Self::ReplicaSet,
            "StatefulSet" => Self::StatefulSet,
            "DaemonSet" => Self::DaemonSet,
            "CronJob" => Self::CronJob,
            "Job" => Self::Job,
            "Pod" => Self::Pod,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The kind as Kubernetes spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Deployment => "Deployment",
            Self::ReplicaSet => "ReplicaSet",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
            Self::CronJob => "CronJob",
            Self::Job => "Job",
            Self::Pod => "Pod",
            Self::Other(kind) => kind,
        }
    }
}

impl Serialize for WorkloadKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WorkloadKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let kind = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::parse(&kind))
    }
}

/// The workload a pod belongs to, found through its owner chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Workload {
    /// The namespace.
    pub namespace: String,
    /// The controller's kind.
    pub kind: WorkloadKind,
    /// The controller's name (a Deployment's, not its ReplicaSet's).
    pub name: String,
}

impl fmt::Display for Workload {
    /// `namespace/kind/name`, such as `analytics/Deployment/influxdb`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.kind.as_str(), self.name)
    }
}

/// What an IP resolves to: one pod, service or node.
///
/// It is also the identity the rest of edgewise attaches to an address, and
/// its JSON form (serde) is the `identity` object of edgewise's outputs:
/// fields that are empty or absent are left out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClusterObject {
    /// Pod, Service or Node.
    pub kind: ObjectKind,
    /// The namespace (none for a node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The name (a StatefulSet pod keeps its ordinal name).
    pub name: String,
    /// The uid, when the input had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The workload (pods only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
    /// Labels without churn labels (see [`crate::IndexConfig::churn_labels`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The service account (pods only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// The node a pod runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// A pod's named container ports (empty for services and nodes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_ports: Vec<NamedPort>,
    /// How the object is written in a resolved peer: `namespace/name` for a
    /// pod or service, `node/name` for a node.
    pub display: Box<str>,
}

impl ClusterObject {
    /// An object of `kind` with its namespace and name, written as a
    /// resolved peer writes it (`namespace/name`, `node/name` for a node);
    /// the other fields are empty, for the caller to set.
    pub fn new(kind: ObjectKind, namespace: Option<&str>, name: &str) -> Self {
        let display = match (kind, namespace) {
            (ObjectKind::Node, _) | (_, None) => format!("node/{name}"),
            (_, Some(namespace)) => format!("{namespace}/{name}"),
        };
        Self {
            kind,
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            uid: None,
            workload: None,
            labels: BTreeMap::new(),
            service_account: None,
            node_name: None,
            named_ports: Vec::new(),
            display: display.into(),
        }
    }

    /// The application name: the `app.kubernetes.io/name` label, else the
    /// `app` label.
    pub fn app(&self) -> Option<&str> {
        self.labels
            .get("app.kubernetes.io/name")
            .or_else(|| self.labels.get("app"))
            .map(String::as_str)
    }
}

impl fmt::Display for ClusterObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// What the index holds for one IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// One object owns the IP.
    One(Arc<ClusterObject>),
    /// Several objects claim the IP and none ranks above the others.
    Ambiguous(Arc<[Arc<ClusterObject>]>),
}
