//! IP -> Kubernetes object (pod, service, node), built from the objects an
//! informer already holds, right under pod-IP reuse; sans-IO.
//!
//! A raw peer like `10.42.1.159:8086` tells an operator nothing;
//! `analytics/influxdb:8086 (10.42.1.159)` does. This crate keeps an
//! in-memory index from address to cluster object and answers with a hash
//! probe: never reverse DNS, never a network call. When a pod's address is
//! reused, the [recycle guard](index) keeps the answer right, and when it
//! cannot tell, the index says [`Lookup::Ambiguous`] or [`Lookup::Unknown`]
//! rather than guess.
//!
//! ```
//! use edgewise_ip_index::time::UnixNanos;
//! use edgewise_ip_index::{IpIndex, Lookup, PeerResolver};
//!
//! let mut index = IpIndex::default();
//! let report = index.load(br#"{"kind": "Pod", "metadata": {"name": "influxdb-0",
//!     "namespace": "analytics", "uid": "0b5f"}, "status": {"phase": "Running",
//!     "podIP": "10.42.1.159", "conditions": [{"type": "Ready", "status": "True"}]}}"#);
//! assert!(report.errors.is_empty());
//!
//! let reader = index.reader(); // one per thread; lookups never wait
//! let ip = "10.42.1.159".parse().unwrap();
//! match reader.snapshot().lookup(ip) {
//!     Lookup::Object(pod) => assert_eq!(pod.to_string(), "analytics/influxdb-0"),
//!     other => panic!("{other:?}"),
//! }
//! let mut peers = PeerResolver::new(reader);
//! let now = UnixNanos::from_secs(1_700_000_000);
//! let peer = "10.42.1.159:8086".parse().unwrap();
//! assert_eq!(peers.resolve_peer(peer, now), "analytics/influxdb-0:8086 (10.42.1.159)");
//! ```
//!
//! Modules: [`kube`] (Kubernetes JSON in), [`index`] (the writer and the
//! recycle guard), [`published`] (wait-free reads), [`peer`] (peer strings
//! and the grace memo), [`audit`] (secret reads from audit webhooks),
//! [`ranges`] (labelled CIDRs), [`workload`] (owner chains and labels),
//! [`services`] (the backends behind a Service's ClusterIP or NodePort).

#![forbid(unsafe_code)]

pub mod audit;
mod error;
pub mod index;
pub mod kube;
pub mod object;
pub mod peer;
pub mod published;
pub mod ranges;
pub mod services;
pub mod volumes;
pub mod workload;

pub use audit::{
    AuditBatch, AuditDrop, AuditLimits, SecretAccess, SecretRead, SecretVerb, read_audit,
};
pub use edgewise_time as time;
pub use error::InputError;
pub use index::{Applied, IndexConfig, IndexStats, IpIndex, LoadReport, MAX_AMBIGUOUS};
pub use kube::{
    Change, Found, FoundObject, MAX_IPS_PER_OBJECT, MAX_NAMED_PORTS, Objects, read_objects, walk,
};
pub use object::{
    ClusterObject, NamedPort, Node, Object, ObjectKind, ObjectMeta, OwnerRef, Pod, PodPhase,
    Protocol, Service, Timestamp, UnknownProtocol, Workload, WorkloadKind,
};
pub use peer::{Peer, PeerResolver};
pub use published::{IndexReader, Lookup, Snapshot};
pub use ranges::{NamedRange, ip_key, ip_of};
pub use services::{Front, MAX_BACKENDS, ServiceBackends, ServiceCatalog};
pub use volumes::{SecretFile, SecretVolumeSpec};
pub use workload::DEFAULT_CHURN_LABELS;

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{AuditLimits, IpIndex, read_audit};

    /// Loads `data` as Kubernetes JSON and checks that every claimed
    /// address resolves.
    pub fn objects(data: &[u8]) {
        let mut index = IpIndex::default();
        let report = index.load(data);
        let stats = index.stats();
        assert!(report.applied >= stats.pods + stats.services + stats.nodes);
        assert_eq!(index.snapshot().len(), stats.addresses);
    }

    /// Reads `data` as an audit webhook body.
    pub fn audit(data: &[u8]) {
        let limits = AuditLimits {
            max_body_bytes: 1 << 16,
            max_events: 64,
        };
        let batch = read_audit(data, &limits);
        assert!(batch.accesses.len() <= limits.max_events);
        let _ = batch.attribute(&IpIndex::default());
    }
}
