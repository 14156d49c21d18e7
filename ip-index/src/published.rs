//! The read side: what readers see, and how they see it without waiting.
//!
//! The published map (IP key -> `Entry`) is kept twice by `left-right`:
//! readers probe one copy while the writer changes the other, and
//! [`crate::IpIndex::publish`] swaps them. A reader never takes a lock and
//! never waits (entering a copy is two atomic operations); it sees every
//! change up to the last publish and none after, so one [`Snapshot`] is
//! consistent across many lookups. A lookup allocates nothing.
//!
//! The writer changes only the entries an event touched (an `Op` per IP),
//! so applying one event costs O(changed entries) twice, never a rebuild.

use core::net::IpAddr;
use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;
use left_right::{Absorb, ReadGuard, ReadHandle};

use crate::object::{ClusterObject, Entry};
use crate::ranges::{RangeTable, ip_key, ip_of};

/// The map readers probe.
#[derive(Debug, Default, Clone)]
pub(crate) struct Published {
    pub(crate) entries: HashMap<u128, Entry, RandomState>,
}

/// One change to the published map.
#[derive(Debug)]
pub(crate) enum Op {
    Set(u128, Entry),
    Remove(u128),
}

impl Absorb<Op> for Published {
    fn absorb_first(&mut self, operation: &mut Op, _: &Self) {
        match operation {
            Op::Set(key, entry) => {
                self.entries.insert(*key, entry.clone());
            }
            Op::Remove(key) => {
                self.entries.remove(key);
            }
        }
    }

    fn absorb_second(&mut self, operation: Op, _: &Self) {
        match operation {
            Op::Set(key, entry) => {
                self.entries.insert(key, entry);
            }
            Op::Remove(key) => {
                self.entries.remove(&key);
            }
        }
    }

    fn sync_with(&mut self, first: &Self) {
        self.entries.clone_from(&first.entries);
    }
}

/// What an address resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// One pod, service or node owns the address.
    Object(&'a Arc<ClusterObject>),
    /// Several objects claim the address and none ranks above the others
    /// (sorted by name): the index does not guess.
    Ambiguous(&'a [Arc<ClusterObject>]),
    /// No object owns the address; a configured range contains it.
    Range(&'a str),
    /// Nothing is known about the address.
    Unknown,
}

impl<'a> Lookup<'a> {
    /// The owning object, if exactly one.
    pub fn object(self) -> Option<&'a Arc<ClusterObject>> {
        match self {
            Self::Object(object) => Some(object),
            _ => None,
        }
    }
}

/// A handle for reading the index from one thread. Clone it for each
/// thread (a handle is `Send`, not `Sync`).
#[derive(Debug, Clone)]
pub struct IndexReader {
    pub(crate) handle: ReadHandle<Published>,
    pub(crate) ranges: Arc<RangeTable>,
}

impl IndexReader {
    /// A consistent view of the index as of the last publish. Hold it only
    /// as long as needed: the next publish waits until it is dropped.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot::new(&self.handle, &self.ranges)
    }

    /// Looks `ip` up in a fresh snapshot and passes the answer to `read`.
    pub fn with_lookup<R>(&self, ip: IpAddr, read: impl FnOnce(Lookup<'_>) -> R) -> R {
        read(self.snapshot().lookup(ip))
    }
}

/// A consistent view of the index (see [`IndexReader::snapshot`]).
pub struct Snapshot<'a> {
    guard: Option<ReadGuard<'a, Published>>,
    ranges: &'a RangeTable,
}

impl<'a> Snapshot<'a> {
    pub(crate) fn new(handle: &'a ReadHandle<Published>, ranges: &'a RangeTable) -> Self {
        Self {
            guard: handle.enter(),
            ranges,
        }
    }

    /// What `ip` resolves to. IPv4-mapped IPv6 addresses resolve as the IPv4
    /// address they carry. Never allocates.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Lookup<'_> {
        let key = ip_key(ip);
        // No guard means the index (its writer) is gone: nothing is known.
        let Some(published) = &self.guard else {
            return Lookup::Unknown;
        };
        match published.entries.get(&key) {
            Some(Entry::One(object)) => Lookup::Object(object),
            Some(Entry::Ambiguous(objects)) => Lookup::Ambiguous(objects),
            None => self
                .ranges
                .lookup(key)
                .map_or(Lookup::Unknown, Lookup::Range),
        }
    }

    /// Every address one object owns, with the object (ambiguous addresses
    /// are left out), in no particular order.
    pub fn objects(&self) -> impl Iterator<Item = (IpAddr, &Arc<ClusterObject>)> {
        self.guard
            .iter()
            .flat_map(|published| published.entries.iter())
            .filter_map(|(key, entry)| match entry {
                Entry::One(object) => Some((ip_of(*key), object)),
                Entry::Ambiguous(_) => None,
            })
    }

    /// How many addresses objects claim.
    pub fn len(&self) -> usize {
        self.guard
            .as_ref()
            .map_or(0, |published| published.entries.len())
    }

    /// Whether no object claims any address.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
