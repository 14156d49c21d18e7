//! [`ClientNames`]: which name each client resolved each address from.
//!
//! The fqdn store answers "which names was this address resolved from, by
//! anyone"; an edge's name must be its own client's (a second client that
//! never asked DNS, or a CDN address shared by many names, must not borrow
//! the first client's name). This memory is keyed by (client, address) and
//! holds the most recent name, live for the answer's TTL clamped as the
//! store clamps it ([`StoreConfig`]'s `min_ttl`..`max_ttl`), and kept alive
//! by [`ClientNames::touch`] while the edge carries traffic.
//!
//! Bounds: at most `max` entries. When full, expired entries go first;
//! if none has, the eighth nearest their deadline goes, so that a full
//! memory costs O(1) amortised per insert.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use edgewise_fqdn_store::StoreConfig;

/// How an edge's name was known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FqdnSource {
    /// This edge's client resolved the name.
    Client,
    /// Only other clients resolved the address (the record shows their
    /// most recent name; rules do not see it).
    OtherClient,
}

#[derive(Debug, Clone)]
struct Entry {
    name: Arc<str>,
    expires_ns: u64,
}

/// The per-client name memory (see the module docs).
#[derive(Debug)]
pub(crate) struct ClientNames {
    map: HashMap<(IpAddr, IpAddr), Entry, foldhash::fast::RandomState>,
    config: StoreConfig,
    evicted: u64,
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl ClientNames {
    /// An empty memory bounded as `config` bounds the store.
    pub(crate) fn new(config: StoreConfig) -> Self {
        Self {
            map: HashMap::default(),
            config,
            evicted: 0,
        }
    }

    /// `client` resolved `ip` from `name` with `ttl_s` seconds at `now`.
    pub(crate) fn record(&mut self, client: IpAddr, ip: IpAddr, name: &str, ttl_s: u32, now: u64) {
        let ttl = std::time::Duration::from_secs(u64::from(ttl_s))
            .clamp(self.config.min_ttl, self.config.max_ttl);
        let expires_ns = now.saturating_add(nanos(ttl));
        let key = (client, ip);
        if let Some(entry) = self.map.get_mut(&key) {
            if &*entry.name != name {
                entry.name = Arc::from(name);
            }
            entry.expires_ns = entry.expires_ns.max(expires_ns);
            return;
        }
        if self.map.len() >= self.config.max_mappings.max(1) {
            self.make_room(now);
        }
        self.map.insert(
            key,
            Entry {
                name: Arc::from(name),
                expires_ns,
            },
        );
    }

    /// The name `client` resolved `ip` from, live at `now`.
    pub(crate) fn lookup(&self, client: IpAddr, ip: IpAddr, now: u64) -> Option<&Arc<str>> {
        self.map
            .get(&(client, ip))
            .filter(|entry| entry.expires_ns > now)
            .map(|entry| &entry.name)
    }

    /// Keeps a live name of (`client`, `ip`) for `keep_alive` more.
    pub(crate) fn touch(&mut self, client: IpAddr, ip: IpAddr, now: u64) {
        let keep = now.saturating_add(nanos(self.config.keep_alive));
        if let Some(entry) = self.map.get_mut(&(client, ip))
            && entry.expires_ns > now
        {
            entry.expires_ns = entry.expires_ns.max(keep);
        }
    }

    /// Forgets expired names.
    pub(crate) fn purge(&mut self, now: u64) {
        self.map.retain(|_, entry| entry.expires_ns > now);
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Live entries removed to stay within bounds.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    fn make_room(&mut self, now: u64) {
        self.purge(now);
        if self.map.len() < self.config.max_mappings.max(1) {
            return;
        }
        let mut deadlines: Vec<u64> = self.map.values().map(|e| e.expires_ns).collect();
        let cut = (deadlines.len() / 8).max(1);
        let (_, nth, _) = deadlines.select_nth_unstable(cut - 1);
        let limit = *nth;
        let before = self.map.len();
        self.map.retain(|_, entry| entry.expires_ns > limit);
        self.evicted += (before - self.map.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_client_has_its_own_name_for_a_shared_address() {
        let mut names = ClientNames::new(StoreConfig::default());
        let cdn = ip("192.0.2.10");
        names.record(ip("10.0.0.1"), cdn, "a.example", 300, 0);
        names.record(ip("10.0.0.2"), cdn, "b.example", 300, S);
        assert_eq!(
            names.lookup(ip("10.0.0.1"), cdn, 2 * S).map(|n| &**n),
            Some("a.example")
        );
        assert_eq!(
            names.lookup(ip("10.0.0.2"), cdn, 2 * S).map(|n| &**n),
            Some("b.example")
        );
        assert_eq!(names.lookup(ip("10.0.0.3"), cdn, 2 * S), None);
    }

    #[test]
    fn a_name_lives_for_its_clamped_ttl_and_a_touch_keeps_it() {
        let mut names = ClientNames::new(StoreConfig::default());
        let (client, server) = (ip("10.0.0.1"), ip("192.0.2.1"));
        names.record(client, server, "a.example", 0, 0);
        assert_eq!(
            names.lookup(client, server, 59 * S).map(|n| &**n),
            Some("a.example")
        );
        assert_eq!(names.lookup(client, server, 60 * S), None, "min TTL 60 s");
        names.record(client, server, "a.example", 0, 100 * S);
        names.touch(client, server, 150 * S);
        assert_eq!(
            names.lookup(client, server, 400 * S).map(|n| &**n),
            Some("a.example")
        );
        assert_eq!(names.lookup(client, server, 451 * S), None);
    }

    #[test]
    fn a_full_memory_makes_room_and_stays_bounded() {
        let mut config = StoreConfig::default();
        config.max_mappings = 64;
        let mut names = ClientNames::new(config);
        for n in 0..10_000u32 {
            let server = IpAddr::from(n.to_be_bytes());
            names.record(ip("10.0.0.1"), server, "x.example", 300 + n, u64::from(n));
            assert!(names.len() <= 64);
        }
        assert!(names.evicted() > 0);
        let newest = IpAddr::from(9_999u32.to_be_bytes());
        assert_eq!(
            names.lookup(ip("10.0.0.1"), newest, 10_000).map(|n| &**n),
            Some("x.example")
        );
    }
}
