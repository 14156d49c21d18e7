//! Declared edges (what NetworkPolicies allow) against the observed service
//! graph (who talks to whom, on which port, how often, since when), with a
//! verdict on every edge; sans-IO.
//!
//! The parts, in the order data flows through them:
//! - [`policy`]: NetworkPolicy JSON and hand-written allow-lists compiled
//!   into a [`PolicySet`] that gives each edge a [`Verdict`]:
//!   [`VerdictKind::Declared`], [`VerdictKind::Violation`] or
//!   [`VerdictKind::NotGoverned`], with the deciding policy.
//! - [`observe`]: the [`ObservedGraph`], a bounded accumulator on the hot
//!   path (raw addresses, no identity, no allocation for a known edge),
//!   plus fingerprints and services per address; drained into a
//!   [`GraphSlice`] with identities and verdicts attached.
//! - [`graph`]: the [`ServiceGraph`], slices of many agents and windows
//!   merged (commutative, associative, idempotent).
//! - [`aggregate`](mod@aggregate): the graph by workload, namespace, or namespace and a
//!   `service-identity` label.
//! - [`render`]: JSON (documented schemas) and Graphviz DOT.
//! - [`view`](mod@view): the graph as a web view draws it (groups, one edge per
//!   pair with its ports, verdicts, names, fingerprints and services,
//!   within a time window).
//! - [`service`]: what a service is, from a flow's first bytes.
//!
//! ```
//! use edgewise_edge_set::{
//!     DeclaredPolicies, EdgeKey, GraphConfig, ObservedGraph, ServiceGraph, VerdictKind,
//! };
//! use edgewise_edge_set::time::UnixNanos;
//! use edgewise_ip_index::{IpIndex, Protocol};
//!
//! let mut index = IpIndex::default();
//! index.load(br#"{"kind": "List", "items": [
//!   {"kind": "Pod", "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
//!    "status": {"phase": "Running", "podIP": "10.0.0.1"}},
//!   {"kind": "Pod", "metadata": {"name": "db", "namespace": "shop", "labels": {"app": "db"}},
//!    "status": {"phase": "Running", "podIP": "10.0.0.2"}}]}"#);
//! let mut policies = DeclaredPolicies::default();
//! policies.load_allow_list("allow.txt", "shop/app=web -> shop/app=db 5432").unwrap();
//! let policies = policies.compile();
//!
//! let at = UnixNanos::from_secs; // Unix time, passed in
//! let mut graph = ObservedGraph::new(GraphConfig::default(), at(0));
//! let edge = |dst: &str, port| EdgeKey {
//!     src: "10.0.0.1".parse().unwrap(),
//!     dst: dst.parse().unwrap(),
//!     port,
//!     protocol: Protocol::Tcp,
//! };
//! graph.record(edge("10.0.0.2", 5432), 1, 0, at(10));
//! graph.record(edge("10.0.0.2", 22), 1, 0, at(20));
//! let slice = graph.drain("node-a", at(30), &mut index.snapshot(), Some(&policies));
//! let verdicts: Vec<_> = slice.edges.iter().map(|e| e.verdict.as_ref().unwrap().verdict).collect();
//! assert_eq!(verdicts, [VerdictKind::Violation, VerdictKind::Declared]); // port 22, then 5432
//!
//! let merged = ServiceGraph::from_slice(&slice);
//! assert_eq!(merged.total_flows(), 2);
//! ```

#![forbid(unsafe_code)]

// The edgewise crates whose types this crate's API uses, so that a user
// names them at the version this crate was built with.
pub use edgewise_ip_index as ip_index;
pub use edgewise_time as time;

pub mod aggregate;
mod error;
pub mod graph;
pub mod observe;
pub mod policy;
pub mod render;
pub mod selector;
pub mod service;
pub mod slice;
pub mod view;

pub use aggregate::{
    AggregateOptions, Aggregated, Granularity, GroupEdge, SERVICE_IDENTITY_LABEL, aggregate,
};
pub use error::EdgeSetError;
pub use graph::{EdgeView, NodeView, ServiceGraph};
pub use observe::{
    Attach, EdgeKey, Fingerprint, GraphConfig, GraphStats, NoIdentity, ObservedGraph, Recorded,
};
pub use policy::{
    DeclaredPolicies, EdgeQuery, Endpoint, LoadReport, Policy, PolicyId, PolicySet, Side, Verdict,
    VerdictKind,
};
pub use selector::LabelSelector;
pub use service::detect_service;
pub use slice::{
    EdgeVerdict, EndpointInfo, GraphSlice, ServiceSeen, ServiceSource, SliceEdge, SliceNode, Window,
};
pub use view::{VIEW_SCHEMA, View, ViewOptions, view, view_json};

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::DeclaredPolicies;

    /// Reads `data` as NetworkPolicy JSON and as an allow-list; what loads
    /// must compile, and a failed allow-list must change nothing.
    pub fn policies(data: &[u8]) {
        let mut policies = DeclaredPolicies::default();
        let report = policies.load(data);
        assert!(report.policies >= policies.len());
        let before = policies.clone();
        if let Ok(text) = core::str::from_utf8(data) {
            match policies.load_allow_list("fuzz", text) {
                Ok(_) => {}
                Err(errors) => {
                    assert!(!errors.is_empty());
                    assert_eq!(policies, before, "a failed allow-list changed nothing");
                }
            }
        }
        let _ = policies.compile();
    }
}
