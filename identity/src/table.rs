//! The published table: identities by address and the version they stand
//! at, kept twice by `left-right`. Readers never take a lock and never wait;
//! the writer changes the copy readers are not in and swaps once per delta
//! (or once per resync), so a reader sees every delta whole or not at all,
//! and the version it reads always matches the answers.

use core::net::IpAddr;
use std::sync::Arc;

use edgewise_ip_index::{ClusterObject, ip_key};
use left_right::{Absorb, ReadGuard, ReadHandle};

use crate::Map;
use crate::baseline::Version;

#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) version: Option<Version>,
    pub(crate) entries: Map<u128, Arc<ClusterObject>>,
}

#[derive(Debug)]
pub(crate) enum Op {
    Set(u128, Arc<ClusterObject>),
    Remove(u128),
    Version(Version),
    /// A whole new table (a resync).
    Replace(Box<Table>),
}

impl Absorb<Op> for Table {
    fn absorb_first(&mut self, operation: &mut Op, _: &Self) {
        match operation {
            Op::Set(key, object) => {
                self.entries.insert(*key, Arc::clone(object));
            }
            Op::Remove(key) => {
                self.entries.remove(key);
            }
            Op::Version(version) => self.version = Some(*version),
            Op::Replace(table) => self.clone_from(table),
        }
    }

    fn absorb_second(&mut self, operation: Op, _: &Self) {
        match operation {
            Op::Set(key, object) => {
                self.entries.insert(key, object);
            }
            Op::Remove(key) => {
                self.entries.remove(&key);
            }
            Op::Version(version) => self.version = Some(version),
            Op::Replace(table) => *self = *table,
        }
    }

    fn sync_with(&mut self, first: &Self) {
        self.clone_from(first);
    }
}

/// A handle for reading identities from one thread; clone it for each
/// thread.
#[derive(Debug, Clone)]
pub struct IdentityReader {
    pub(crate) handle: ReadHandle<Table>,
}

impl IdentityReader {
    /// A consistent view as of the last delta or resync. Hold it only as
    /// long as needed: the next delta waits until it is dropped.
    pub fn snapshot(&self) -> IdentitySnapshot<'_> {
        IdentitySnapshot {
            guard: self.handle.enter(),
        }
    }
}

/// A consistent view of the identities (see [`IdentityReader::snapshot`]).
pub struct IdentitySnapshot<'a> {
    guard: Option<ReadGuard<'a, Table>>,
}

impl IdentitySnapshot<'_> {
    /// The identity of `ip` (an IPv4-mapped address as the IPv4 address it
    /// carries). One hash probe; never allocates.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<&Arc<ClusterObject>> {
        self.guard.as_ref()?.entries.get(&ip_key(ip))
    }

    /// The version the answers stand at; `None` before any baseline.
    pub fn version(&self) -> Option<Version> {
        self.guard.as_ref()?.version
    }

    /// Every identity held, once per address (an object with two addresses
    /// comes twice), in no particular order.
    pub fn objects(&self) -> impl Iterator<Item = &Arc<ClusterObject>> {
        self.guard.iter().flat_map(|table| table.entries.values())
    }

    /// How many addresses have an identity.
    pub fn len(&self) -> usize {
        self.guard.as_ref().map_or(0, |table| table.entries.len())
    }

    /// Whether none has.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
