//! Peer strings as tools print them (`10.42.1.159:8086`, `[fd00::5]:443`)
//! resolved to cluster names: `analytics/influxdb:8086 (10.42.1.159)`.
//!
//! The rules, exactly:
//! - a pod or service address becomes `namespace/name:port (ip)`, a node's
//!   `node/name:port (ip)`; the port and the address are kept as written
//!   (an IPv6 address without its brackets inside the parentheses);
//! - a peer marked `internet`, an address no object owns (also one only a
//!   configured range contains), an ambiguous address, and a string that is
//!   not `ip:port` are returned exactly as given;
//! - the grace memo: when the index misses an address that this resolver
//!   resolved within the grace window (300 s by default), the last name is
//!   used, so a connection outliving its pod's delete event keeps its name.
//!   An address never resolved gets no name; a reused address re-resolves
//!   on its next hit, which also replaces the memo.
//!
//! Time is passed in (`now`, a [`UnixNanos`]; the resolver reads no
//! clock). The memo holds at most [`PeerResolver::MEMO_CAPACITY`] addresses.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use edgewise_time::UnixNanos;
use foldhash::fast::RandomState;

use crate::object::ClusterObject;
use crate::published::{IndexReader, Lookup};
use crate::ranges::ip_key;

/// A peer string split into its parts, borrowing the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer<'a> {
    /// The address.
    pub ip: IpAddr,
    /// The address as written, without brackets.
    pub ip_text: &'a str,
    /// The port as written.
    pub port_text: &'a str,
}

impl<'a> Peer<'a> {
    /// Splits `a.b.c.d:port` or `[v6]:port`; `None` for anything else
    /// (a bare address, a name, an unbracketed IPv6 address, a port that is
    /// not a number below 65,536).
    pub fn parse(text: &'a str) -> Option<Self> {
        let (ip, ip_text, port_text) = if let Some(rest) = text.strip_prefix('[') {
            let (ip_text, port_text) = rest.split_once("]:")?;
            let ip: core::net::Ipv6Addr = ip_text.parse().ok()?;
            (IpAddr::V6(ip), ip_text, port_text)
        } else {
            let (ip_text, port_text) = text.rsplit_once(':')?;
            let ip: core::net::Ipv4Addr = ip_text.parse().ok()?;
            (IpAddr::V4(ip), ip_text, port_text)
        };
        port_ok(port_text).then_some(Self {
            ip,
            ip_text,
            port_text,
        })
    }
}

fn port_ok(port: &str) -> bool {
    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
}

struct Memo {
    object: Arc<ClusterObject>,
    resolved_at: u64,
}

/// Resolves peer strings through an [`IndexReader`], with a grace memo.
pub struct PeerResolver {
    reader: IndexReader,
    grace_ns: u64,
    memo: HashMap<u128, Memo, RandomState>,
}

impl core::fmt::Debug for PeerResolver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PeerResolver")
            .field("grace_ns", &self.grace_ns)
            .field("memo", &self.memo.len())
            .finish_non_exhaustive()
    }
}

impl PeerResolver {
    /// The grace window unless told otherwise.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(5 * 60);
    /// The most addresses the memo holds; when full, entries older than the
    /// grace window are dropped, and if none is, the new one is not kept.
    pub const MEMO_CAPACITY: usize = 65_536;

    /// A resolver with the default grace window.
    pub fn new(reader: IndexReader) -> Self {
        Self::with_grace(reader, Self::DEFAULT_GRACE)
    }

    /// A resolver keeping names for `grace` after the index stops knowing
    /// them (zero turns the memo off).
    pub fn with_grace(reader: IndexReader, grace: Duration) -> Self {
        Self {
            reader,
            grace_ns: u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX),
            memo: HashMap::default(),
        }
    }

    /// The object that names `ip`: the one the index holds now, else the
    /// one this resolver named within the grace window; `None` for an
    /// address no object owns, or an ambiguous one (see the module rules).
    pub fn resolve(&mut self, ip: IpAddr, now: UnixNanos) -> Option<Arc<ClusterObject>> {
        let now_ns = now.as_nanos();
        let key = ip_key(ip);
        let found = self.reader.with_lookup(ip, |lookup| match lookup {
            Lookup::Object(object) => Found::Now(Arc::clone(object)),
            Lookup::Ambiguous(_) => Found::Ambiguous,
            Lookup::Range(_) | Lookup::Unknown => Found::Missing,
        });
        match found {
            Found::Now(object) => {
                self.remember(key, &object, now_ns);
                Some(object)
            }
            Found::Ambiguous => {
                self.memo.remove(&key);
                None
            }
            Found::Missing => match self.memo.get(&key) {
                Some(memo) if now_ns.saturating_sub(memo.resolved_at) <= self.grace_ns => {
                    Some(Arc::clone(&memo.object))
                }
                Some(_) => {
                    self.memo.remove(&key);
                    None
                }
                None => None,
            },
        }
    }

    /// A socket address as an operator reads it: `namespace/name:port (ip)`
    /// when an object names its address ([`PeerResolver::resolve`]), else
    /// the address as Rust prints it (`10.0.0.9:80`, `[fd00::9]:443`).
    pub fn resolve_peer(&mut self, peer: SocketAddr, now: UnixNanos) -> String {
        match self.resolve(peer.ip(), now) {
            Some(object) => format!("{}:{} ({})", object.display, peer.port(), peer.ip()),
            None => peer.to_string(),
        }
    }

    /// The same for a peer string as tools print it (`10.42.1.159:8086`,
    /// `[fd00::5]:443`): a string that is not such a peer, and a peer marked
    /// `internet`, are returned as given, as is an address no object names;
    /// the port and address are kept as written.
    pub fn resolve_peer_str<'p>(
        &mut self,
        peer: &'p str,
        internet: bool,
        now: UnixNanos,
    ) -> Cow<'p, str> {
        if internet {
            return Cow::Borrowed(peer);
        }
        let Some(parsed) = Peer::parse(peer) else {
            return Cow::Borrowed(peer);
        };
        match self.resolve(parsed.ip, now) {
            Some(object) => Cow::Owned(format!(
                "{}:{} ({})",
                object.display, parsed.port_text, parsed.ip_text
            )),
            None => Cow::Borrowed(peer),
        }
    }

    fn remember(&mut self, key: u128, object: &Arc<ClusterObject>, now_ns: u64) {
        if self.grace_ns == 0 {
            return;
        }
        if self.memo.len() >= Self::MEMO_CAPACITY && !self.memo.contains_key(&key) {
            let grace = self.grace_ns;
            self.memo
                .retain(|_, memo| now_ns.saturating_sub(memo.resolved_at) <= grace);
            if self.memo.len() >= Self::MEMO_CAPACITY {
                return;
            }
        }
        self.memo.insert(
            key,
            Memo {
                object: Arc::clone(object),
                resolved_at: now_ns,
            },
        );
    }
}

enum Found {
    Now(Arc<ClusterObject>),
    Ambiguous,
    Missing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_strings() {
        let v4 = Peer::parse("10.42.1.159:8086").unwrap();
        assert_eq!((v4.ip_text, v4.port_text), ("10.42.1.159", "8086"));
        let v6 = Peer::parse("[fd00::5]:443").unwrap();
        assert_eq!((v6.ip_text, v6.port_text), ("fd00::5", "443"));
        assert_eq!(v6.ip, "fd00::5".parse::<IpAddr>().unwrap());
        for not_a_peer in [
            "",
            "10.42.1.159",
            "influxdb:8086",
            "fd00::5:443",
            "[fd00::5]",
            "[fd00::5]:",
            "[10.0.0.1]:80",
            "10.0.0.1:",
            "10.0.0.1:65536",
            "10.0.0.1:+80",
            "10.0.0.1:80 ",
            " 10.0.0.1:80",
            "[fd00::5]:443]",
        ] {
            assert_eq!(Peer::parse(not_a_peer), None, "{not_a_peer:?}");
        }
    }
}
