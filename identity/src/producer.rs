//! The producer side: successive views of the cluster (an ip-index
//! snapshot, or any address -> identity list) diffed into deltas, and a
//! baseline of the current state whenever a client needs one.
//!
//! The producer keeps the last state it published. [`Producer::update`]
//! compares a new state with it and returns the delta between them (seq one
//! more than the last), or nothing when nothing changed; an identity counts
//! as changed when any field differs. A producer that restarts without its
//! history takes a new, greater epoch (its start time is a good one), which
//! makes every client resync.

use core::net::IpAddr;
use std::collections::BTreeMap;
use std::sync::Arc;

use edgewise_ip_index::{ClusterObject, Snapshot, ip_key, ip_of};

use crate::baseline::{Baseline, Version};
use crate::delta::{IdentityDelta, Upsert};

/// What changed from `old` to `new`: the entries new or different in
/// `new`, and the keys `new` no longer has (both in key order).
pub(crate) fn diff<'o, 'n, K: Ord, V: PartialEq>(
    old: &'o BTreeMap<K, V>,
    new: &'n BTreeMap<K, V>,
) -> (Vec<(&'n K, &'n V)>, Vec<&'o K>) {
    let changed = new
        .iter()
        .filter(|(key, value)| old.get(*key) != Some(*value))
        .collect();
    let gone = old.keys().filter(|key| !new.contains_key(*key)).collect();
    (changed, gone)
}

/// Diffs states into deltas (see the module docs).
#[derive(Debug, Clone)]
pub struct Producer {
    version: Version,
    state: BTreeMap<u128, Arc<ClusterObject>>,
}

impl Producer {
    /// A producer of `epoch` with an empty state at seq 0.
    pub fn new(epoch: u64) -> Self {
        Self {
            version: Version { epoch, seq: 0 },
            state: BTreeMap::new(),
        }
    }

    /// The version of the last state.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Takes the whole current state (a later entry for the same address
    /// wins) and returns the delta from the last one, if anything changed.
    pub fn update(
        &mut self,
        current: impl IntoIterator<Item = (IpAddr, Arc<ClusterObject>)>,
    ) -> Option<IdentityDelta> {
        let next: BTreeMap<u128, Arc<ClusterObject>> = current
            .into_iter()
            .map(|(ip, object)| (ip_key(ip), object))
            .collect();
        let (changed, gone) = diff(&self.state, &next);
        let removes: Vec<IpAddr> = gone.into_iter().map(|key| ip_of(*key)).collect();
        let upserts: Vec<Upsert> = changed
            .into_iter()
            .map(|(key, object)| Upsert {
                ip: ip_of(*key),
                identity: (**object).clone(),
            })
            .collect();
        self.state = next;
        if upserts.is_empty() && removes.is_empty() {
            return None;
        }
        self.version.seq += 1;
        Some(IdentityDelta {
            epoch: self.version.epoch,
            seq: self.version.seq,
            upserts,
            removes,
        })
    }

    /// [`Producer::update`] from an ip-index snapshot (addresses one object
    /// owns; ambiguous ones are left out, as clients cannot tell them
    /// either).
    pub fn update_from_index(&mut self, snapshot: &Snapshot<'_>) -> Option<IdentityDelta> {
        self.update(
            snapshot
                .objects()
                .map(|(ip, object)| (ip, Arc::clone(object))),
        )
    }

    /// The current state as a baseline.
    pub fn baseline(&self) -> Baseline {
        Baseline::new(
            self.version,
            self.state
                .iter()
                .map(|(key, object)| (ip_of(*key), Arc::clone(object))),
        )
    }
}
