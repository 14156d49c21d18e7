//! The node agent's identity client and its producer; sans-IO.
//!
//! A node agent has no cluster access. It gets identities (address ->
//! pod, service or node, with workload, labels, service account) from the
//! cluster side as a **baseline** MaxMind DB plus a **delta stream**, and
//! answers lookups at packet rate while deltas apply:
//!
//! - [`baseline`]: the identity MMDB, read ([`Baseline::from_mmdb`]) and
//!   written ([`Baseline::to_mmdb`]), with its [`Version`] (epoch, seq).
//! - [`delta`]: [`IdentityDelta`] and its JSON-lines wire format.
//! - [`client`]: [`IdentityClient`], the state machine: in-order deltas
//!   apply, duplicates are ignored, a gap or a new epoch asks for a resync
//!   while the last good state is served, a new baseline replays what came
//!   after it.
//! - [`table`]: wait-free reads ([`IdentityReader`], [`IdentitySnapshot`]).
//! - [`producer`]: [`Producer`], successive states diffed into deltas, and
//!   baselines on demand.
//! - [`policy`]: declared edges on the same rails: NetworkPolicy,
//!   Namespace and allow-list documents as a baseline plus deltas
//!   ([`PolicyProducer`], [`PolicyClient`]).
//!
//! With the `http` feature, [`http`] adds the transport: a server of both
//! channels (identities and policies, each a baseline and a server-sent
//! events stream; TLS, bearer tokens, a follower cap, deltas gzipped once
//! for every follower), and a follower that keeps a client in step with
//! one, reconnecting with backoff. Without it, the crate does no I/O.
//!
//! The identity type is ip-index's [`edgewise_ip_index::ClusterObject`], so
//! an identity from the stream and one from a local index are the same
//! value.
//!
//! ```
//! use std::sync::Arc;
//! use edgewise_identity::{Baseline, ClientState, IdentityClient, Producer, unix_time};
//! use edgewise_ip_index::IpIndex;
//!
//! // Cluster side: an index of the cluster, a producer, a baseline file.
//! let mut index = IpIndex::default();
//! index.load(br#"{"kind": "Pod", "metadata": {"name": "influxdb-0", "namespace": "analytics"},
//!     "status": {"phase": "Running", "podIP": "10.42.1.159"}}"#);
//! let mut producer = Producer::new(1);
//! producer.update_from_index(&index.snapshot());
//! let mmdb = producer.baseline().to_mmdb(unix_time(0)).unwrap();
//!
//! // Node side: load the baseline, read without waiting.
//! let mut client = IdentityClient::default();
//! client.load_baseline(Baseline::from_mmdb(&mmdb).unwrap());
//! assert!(matches!(client.state(), ClientState::Synced(_)));
//! let reader = client.reader();
//! let snapshot = reader.snapshot();
//! let pod = snapshot.lookup("10.42.1.159".parse().unwrap()).unwrap();
//! assert_eq!(pod.display.as_ref(), "analytics/influxdb-0");
//! ```

#![forbid(unsafe_code)]

// The edgewise crates whose types this crate's API uses, so that a user
// names them at the version this crate was built with.
#[cfg(feature = "http")]
pub use edgewise_http_server as http_server;
pub use edgewise_ip_index as ip_index;

pub mod baseline;
pub mod client;
pub mod delta;
mod error;
#[cfg(feature = "http")]
pub mod http;
pub mod policy;
pub mod producer;
pub mod table;

pub use baseline::{BASELINE_SCHEMA, Baseline, DATABASE_TYPE, Version, unix_time};
pub use client::{
    BaselineOutcome, ClientConfig, ClientState, ClientStats, DeltaOutcome, IdentityClient, Resync,
};
pub use delta::{DELTA_SCHEMA, DeltaLimits, IdentityDelta, Upsert, read_delta, read_deltas};
pub use error::{ErrorSource, IdentityError};
pub use policy::{
    POLICY_BASELINE_SCHEMA, POLICY_DELTA_SCHEMA, PolicyBaseline, PolicyClient, PolicyDelta,
    PolicyDocument, PolicyOutcome, PolicyProducer, read_policy_delta,
};
pub use producer::Producer;
pub use table::{IdentityReader, IdentitySnapshot};

/// The identity an address has: ip-index's cluster object (see
/// [`baseline`] for its record schema).
pub type IdentityInfo = edgewise_ip_index::ClusterObject;

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{Baseline, DeltaLimits, IdentityClient, read_deltas};

    /// Reads `data` as delta lines and applies them to a client; what
    /// readers see must always be whole.
    pub fn deltas(data: &[u8]) {
        let (deltas, _) = read_deltas(data, &DeltaLimits::default());
        let mut client = IdentityClient::default();
        client.load_baseline(Baseline::default());
        let reader = client.reader();
        for delta in deltas {
            let line = delta.to_line();
            assert_eq!(
                crate::read_delta(line.as_bytes(), 1, &DeltaLimits::default()).unwrap(),
                delta,
                "a delta survives its own encoding"
            );
            client.apply(delta);
            let snapshot = reader.snapshot();
            assert!(snapshot.version().is_some());
        }
    }

    /// Reads `data` as a server-sent events stream with a 256-byte limit:
    /// never more than the limit held for an event, and an error ends it.
    #[cfg(feature = "http")]
    pub fn sse(data: &[u8]) {
        const LIMIT: usize = 256;
        let mut reader = crate::http::sse::EventReader::new(data, LIMIT);
        while let Ok(Some(event)) = reader.next_event() {
            assert!(event.data.len() <= LIMIT, "an event past the limit");
        }
    }

    /// Reads `data` as an identity MMDB; what loads must write and read
    /// back equal.
    pub fn mmdb(data: &[u8]) {
        if let Ok(baseline) = Baseline::from_mmdb(data) {
            let bytes = baseline
                .to_mmdb(crate::unix_time(0))
                .expect("a loaded baseline writes");
            assert_eq!(Baseline::from_mmdb(&bytes).unwrap(), baseline);
        }
    }
}
