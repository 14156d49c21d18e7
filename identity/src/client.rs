//! The client's state machine: a baseline, then deltas in order.
//!
//! While synced at version (E, S):
//! - a delta of epoch E and seq S+1 applies, as one atomic step for readers;
//! - a delta of epoch E and seq <= S is a duplicate, and one of an epoch
//!   below E is stale: both are ignored;
//! - a delta of epoch E and seq > S+1 (a gap) or of an epoch above E (the
//!   producer restarted) marks the client as needing a resync, reported to
//!   the caller, and is kept.
//!
//! While a resync is needed, the client keeps serving the last good state
//! unchanged and keeps the deltas it receives (at most
//! [`ClientConfig::max_pending`]; beyond that the oldest go, and are
//! counted). [`IdentityClient::load_baseline`] builds the new state from the
//! baseline off to the side, replays the kept deltas that follow it without
//! a gap, and swaps it in at once: readers never see an empty or
//! half-built table. A delete is never lost: it is either in the baseline
//! (the producer's state at its version) or in a delta after it, which is
//! replayed; a kept delta that a gap separates from the baseline leaves the
//! client needing a resync rather than skipping it.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgewise_ip_index::ip_key;

use crate::baseline::{Baseline, Version};
use crate::delta::IdentityDelta;
use crate::table::{IdentityReader, Op, Table};

/// Limits of an [`IdentityClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The most deltas kept while a resync is needed (default 4,096).
    pub max_pending: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self { max_pending: 4096 }
    }
}

/// Why a resync is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// No baseline was loaded yet.
    NoBaseline,
    /// A delta skipped ahead: `expected` was next, `got` came.
    Gap {
        /// The seq that was due.
        expected: u64,
        /// The seq that came.
        got: u64,
    },
    /// A delta of a newer epoch: the producer restarted.
    NewEpoch {
        /// The epoch held.
        current: u64,
        /// The epoch that came.
        got: u64,
    },
}

/// Whether the client is synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Deltas apply as they come.
    Synced(Version),
    /// A baseline is needed; the last good state is served meanwhile.
    NeedsResync(Resync),
}

/// What [`IdentityClient::apply`] did with a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaOutcome {
    /// It applied; readers see it.
    Applied,
    /// Already applied (or covered by the baseline): ignored.
    Duplicate,
    /// Of an older epoch: ignored.
    Stale,
    /// Kept until the next baseline (a resync is needed).
    Kept(Resync),
}

/// What [`IdentityClient::load_baseline`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineOutcome {
    /// Loaded; this many kept deltas were replayed on top of it.
    Loaded {
        /// Deltas replayed.
        replayed: usize,
    },
    /// Older than the state held: ignored.
    Stale,
}

/// Counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClientStats {
    /// Deltas applied (live or replayed).
    pub applied: u64,
    /// Duplicate and stale deltas ignored.
    pub ignored: u64,
    /// Deltas dropped because too many were kept during a resync.
    pub dropped_pending: u64,
    /// Baselines loaded.
    pub baselines: u64,
}

/// The identity client (see the module docs). Single writer; readers come
/// from [`IdentityClient::reader`].
pub struct IdentityClient {
    config: ClientConfig,
    writer: left_right::WriteHandle<Table, Op>,
    reader: IdentityReader,
    state: ClientState,
    /// The version of what readers see, once a baseline was loaded.
    served: Option<Version>,
    pending: BTreeMap<Version, IdentityDelta>,
    stats: ClientStats,
}

impl std::fmt::Debug for IdentityClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityClient")
            .field("state", &self.state)
            .field("pending", &self.pending.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for IdentityClient {
    fn default() -> Self {
        Self::new(ClientConfig::default())
    }
}

impl IdentityClient {
    /// A client with no baseline yet (every lookup misses).
    pub fn new(config: ClientConfig) -> Self {
        let (writer, handle) = left_right::new::<Table, Op>();
        Self {
            config,
            writer,
            reader: IdentityReader { handle },
            state: ClientState::NeedsResync(Resync::NoBaseline),
            served: None,
            pending: BTreeMap::new(),
            stats: ClientStats::default(),
        }
    }

    /// A reader for another thread.
    pub fn reader(&self) -> IdentityReader {
        self.reader.clone()
    }

    /// Synced, or why not.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Takes one delta (see the module docs).
    pub fn apply(&mut self, delta: IdentityDelta) -> DeltaOutcome {
        let version = delta.version();
        match self.state {
            ClientState::Synced(current) => {
                if version.epoch < current.epoch {
                    self.stats.ignored += 1;
                    return DeltaOutcome::Stale;
                }
                if version.epoch == current.epoch && version.seq <= current.seq {
                    self.stats.ignored += 1;
                    return DeltaOutcome::Duplicate;
                }
                if version.epoch == current.epoch && version.seq == current.seq + 1 {
                    self.write(&delta);
                    self.writer.publish();
                    self.stats.applied += 1;
                    self.state = ClientState::Synced(version);
                    self.served = Some(version);
                    return DeltaOutcome::Applied;
                }
                let resync = if version.epoch == current.epoch {
                    Resync::Gap {
                        expected: current.seq + 1,
                        got: version.seq,
                    }
                } else {
                    Resync::NewEpoch {
                        current: current.epoch,
                        got: version.epoch,
                    }
                };
                self.state = ClientState::NeedsResync(resync);
                self.keep(delta);
                DeltaOutcome::Kept(resync)
            }
            ClientState::NeedsResync(resync) => {
                if let Some(served) = self.served
                    && version <= served
                {
                    self.stats.ignored += 1;
                    return if version.epoch < served.epoch {
                        DeltaOutcome::Stale
                    } else {
                        DeltaOutcome::Duplicate
                    };
                }
                self.keep(delta);
                DeltaOutcome::Kept(resync)
            }
        }
    }

    fn keep(&mut self, delta: IdentityDelta) {
        self.pending.insert(delta.version(), delta);
        while self.pending.len() > self.config.max_pending {
            self.pending.pop_first();
            self.stats.dropped_pending += 1;
        }
    }

    /// Loads a baseline and replays the kept deltas that follow it (see the
    /// module docs). A baseline older than the state served is ignored.
    pub fn load_baseline(&mut self, baseline: Baseline) -> BaselineOutcome {
        let version = baseline.version();
        if self.served.is_some_and(|served| version < served) {
            return BaselineOutcome::Stale;
        }
        let (version, mut entries) = baseline.into_parts();
        // Kept deltas at or before the baseline are covered by it; those of
        // an older epoch are stale.
        self.pending = self.pending.split_off(&Version {
            epoch: version.epoch,
            seq: version.seq + 1,
        });
        let mut current = version;
        let mut replayed = 0;
        while let Some(entry) = self.pending.first_entry() {
            let next = *entry.key();
            if next.epoch != current.epoch || next.seq != current.seq + 1 {
                break;
            }
            let delta = entry.remove();
            for ip in &delta.removes {
                entries.remove(&ip_key(*ip));
            }
            for upsert in delta.upserts {
                entries.insert(ip_key(upsert.ip), Arc::new(upsert.identity));
            }
            current = next;
            replayed += 1;
        }
        self.writer.append(Op::Replace(Box::new(Table {
            version: Some(current),
            entries,
        })));
        self.writer.publish();
        self.served = Some(current);
        self.stats.baselines += 1;
        self.stats.applied += replayed as u64;
        self.state = match self.pending.first_key_value() {
            None => ClientState::Synced(current),
            Some((next, _)) if next.epoch == current.epoch => {
                ClientState::NeedsResync(Resync::Gap {
                    expected: current.seq + 1,
                    got: next.seq,
                })
            }
            Some((next, _)) => ClientState::NeedsResync(Resync::NewEpoch {
                current: current.epoch,
                got: next.epoch,
            }),
        };
        BaselineOutcome::Loaded { replayed }
    }

    fn write(&mut self, delta: &IdentityDelta) {
        for ip in &delta.removes {
            self.writer.append(Op::Remove(ip_key(*ip)));
        }
        for upsert in &delta.upserts {
            self.writer.append(Op::Set(
                ip_key(upsert.ip),
                Arc::new(upsert.identity.clone()),
            ));
        }
        self.writer.append(Op::Version(delta.version()));
    }
}
