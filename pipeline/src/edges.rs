//! What the pipeline holds per edge between events: the facts the rules
//! last judged ([`Facts`]), whether the first record went out, the rules
//! that matched, and the ban ([`EdgeState`]); and the bounded table of
//! them ([`EdgeTable`]).
//!
//! Bounds: at most `max` edges. An edge idle for the idle TTL goes at the
//! next expiry, unless it holds a ban (a banned edge is idle because the
//! kernel drops its packets; its state goes when the ban is lifted). When
//! full, the eighth least recently seen unbanned edges go (O(1) amortised
//! per insert), counted as evicted.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use edgewise_edge_set::EdgeKey;
use edgewise_ip_index::{ClusterObject, Protocol};
use smallvec::SmallVec;

use edgewise_ja4::tls::Ja4s;

use crate::FqdnSource;
use crate::banners::{ServiceFact, TlsClientFact};
use crate::records::ViaService;

/// An edge's facts: what its records say and its rules see.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Facts {
    pub(crate) src_identity: Option<Arc<ClusterObject>>,
    pub(crate) dst_identity: Option<Arc<ClusterObject>>,
    /// The name the client address was resolved from (by anyone).
    pub(crate) src_fqdn: Option<String>,
    /// The server's name and whose it is.
    pub(crate) fqdn: Option<(Arc<str>, FqdnSource)>,
    pub(crate) verdict: &'static str,
    pub(crate) policy: Option<String>,
    pub(crate) via_service: Option<Box<ViaService>>,
    pub(crate) ja4t: Option<Arc<str>>,
    pub(crate) ja4ts: Option<Arc<str>>,
    pub(crate) service: Option<Arc<ServiceFact>>,
    pub(crate) tls_client: Option<Arc<TlsClientFact>>,
    pub(crate) ja4s: Option<Ja4s>,
}

/// A ban the pipeline holds on an edge.
#[derive(Debug, Clone)]
pub(crate) struct Ban {
    /// The rule that holds it (none: adopted, or its rule was removed).
    pub(crate) rule: Option<usize>,
    /// Found in the kernel at start: lifted by its TTL only (or when an
    /// `allow` matches its edge).
    pub(crate) adopted: bool,
    pub(crate) ttl: Duration,
    /// When it lifts unless refreshed (the kernel holds the same deadline).
    pub(crate) until: u64,
    /// The kernel accepted it.
    pub(crate) enforced: bool,
}

/// One edge's state.
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent flags of one edge's progress"
)]
pub(crate) struct EdgeState {
    /// The port the client used first.
    pub(crate) client_port: u16,
    pub(crate) last_seen: u64,
    /// The facts the rules last judged.
    pub(crate) facts: Facts,
    /// The first `edge` record went out.
    pub(crate) reported: bool,
    /// The server's SYN-ACK was seen.
    pub(crate) answered: bool,
    /// A first payload was seen.
    pub(crate) payload: bool,
    /// The rules that matched at the last judgement (by index).
    pub(crate) matched: Vec<bool>,
    /// An `allow` rule matched at the last judgement.
    pub(crate) allowed: bool,
    /// The rules changed since the last judgement.
    pub(crate) stale: bool,
    /// Facts changed since the last record, which waits for the update
    /// interval.
    pub(crate) update_pending: bool,
    /// When the last record of the edge went out.
    pub(crate) last_record: u64,
    pub(crate) ban: Option<Box<Ban>>,
}

type Hasher = foldhash::fast::RandomState;

/// The server ports (and protocols) a client reaches an address on.
type Ports = SmallVec<[(u16, Protocol); 2]>;

/// The edges held (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct EdgeTable {
    pub(crate) edges: HashMap<EdgeKey, EdgeState, Hasher>,
    /// The same edges by (client, server) address: which ones a DNS
    /// answer to the client about the server concerns.
    by_pair: HashMap<(IpAddr, IpAddr), Ports, Hasher>,
    /// Edges whose first record waits for the settle window, by deadline.
    pub(crate) settling: VecDeque<(u64, EdgeKey)>,
    /// Edges holding a ban.
    pub(crate) banned: BTreeSet<EdgeKey>,
    pub(crate) evicted: u64,
}

impl EdgeTable {
    /// Holds a new edge.
    pub(crate) fn insert(&mut self, key: EdgeKey, state: EdgeState) {
        if self.edges.insert(key, state).is_none() {
            self.by_pair
                .entry((key.src, key.dst))
                .or_default()
                .push((key.port, key.protocol));
        }
    }

    /// The edges from `client` to `server`, any port.
    pub(crate) fn between(&self, client: IpAddr, server: IpAddr) -> Vec<EdgeKey> {
        self.by_pair
            .get(&(client, server))
            .map(|ports| {
                ports
                    .iter()
                    .map(|&(port, protocol)| EdgeKey {
                        src: client,
                        dst: server,
                        port,
                        protocol,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes the edges `keep` refuses (never a banned one); how many.
    fn remove_where(&mut self, mut gone: impl FnMut(&EdgeState) -> bool) -> usize {
        let removed: Vec<EdgeKey> = self
            .edges
            .iter()
            .filter(|(_, e)| e.ban.is_none() && gone(e))
            .map(|(key, _)| *key)
            .collect();
        for key in &removed {
            self.edges.remove(key);
            if let Some(ports) = self.by_pair.get_mut(&(key.src, key.dst)) {
                ports.retain(|p| *p != (key.port, key.protocol));
                if ports.is_empty() {
                    self.by_pair.remove(&(key.src, key.dst));
                }
            }
        }
        removed.len()
    }

    /// Makes room for one more edge when `max` are held.
    pub(crate) fn make_room(&mut self, max: usize) {
        if self.edges.len() < max.max(1) {
            return;
        }
        let mut seen: Vec<u64> = self
            .edges
            .values()
            .filter(|e| e.ban.is_none())
            .map(|e| e.last_seen)
            .collect();
        if seen.is_empty() {
            return;
        }
        let cut = (seen.len() / 8).max(1);
        let (_, nth, _) = seen.select_nth_unstable(cut - 1);
        let limit = *nth;
        self.evicted += self.remove_where(|e| e.last_seen <= limit) as u64;
    }

    /// Removes unbanned edges not seen since `before`; how many.
    pub(crate) fn expire(&mut self, before: u64) -> usize {
        self.remove_where(|e| e.last_seen < before)
    }
}
