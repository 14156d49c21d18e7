//! Where identities come from: Kubernetes objects through ip-index, the
//! node agent's identity client (a baseline MMDB and its deltas), or
//! nowhere (every endpoint is an address).

use std::net::IpAddr;
use std::sync::Arc;

use edgewise_edge_set::Attach;
use edgewise_fqdn_store::FqdnStore;
use edgewise_identity::{IdentityClient, IdentityReader};
use edgewise_ip_index::{ClusterObject, IpIndex, Lookup};
use edgewise_time::UnixNanos;

/// The identity source.
pub enum Identities {
    /// No identities.
    None,
    /// An index of Kubernetes objects.
    Index(Box<IpIndex>),
    /// The identity client's table (a baseline MMDB and its deltas). The
    /// client itself comes along when nothing else holds it (a baseline
    /// file): a table whose writer is gone reads as empty.
    Client(IdentityReader, Option<Box<IdentityClient>>),
}

impl Identities {
    /// Where the identities stand: it changes when the identity client's
    /// table moves to another version (ip-index identities change only
    /// when replaced).
    pub fn version(&self) -> Option<edgewise_identity::Version> {
        match self {
            Self::Client(reader, _) => reader.snapshot().version(),
            Self::None | Self::Index(_) => None,
        }
    }

    /// Who has `ip` (an address several objects claim has no one).
    pub fn lookup(&self, ip: IpAddr) -> Option<Arc<ClusterObject>> {
        match self {
            Self::None => None,
            Self::Index(index) => match index.snapshot().lookup(ip) {
                Lookup::Object(object) => Some(Arc::clone(object)),
                _ => None,
            },
            Self::Client(reader, _) => reader.snapshot().lookup(ip).cloned(),
        }
    }
}

/// Identities and names for a graph drain.
pub struct Attacher<'a> {
    /// Who has an address.
    pub identities: &'a Identities,
    /// What names resolved to it.
    pub store: &'a FqdnStore,
    /// When.
    pub now: UnixNanos,
}

impl Attach for Attacher<'_> {
    fn identity(&mut self, ip: IpAddr) -> Option<Arc<ClusterObject>> {
        self.identities.lookup(ip)
    }

    fn fqdn(&mut self, ip: IpAddr) -> Option<String> {
        self.store.lookup(ip, self.now).last().map(str::to_owned)
    }
}
