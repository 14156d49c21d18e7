//! [`FqdnStore`]: which names an IP address was recently resolved from.
//!
//! - `record(response, now)` parses a DNS response and maps every address it
//!   resolves (see [`crate::resolution`]) to the question name. A message
//!   that does not parse is rejected whole and counted by reason; nothing
//!   from it is stored and nothing already stored changes.
//! - The TTL is clamped to `[min_ttl, max_ttl]`, so a TTL of 0 still maps
//!   for `min_ttl`. A repeated answer never shortens a mapping.
//! - `touch(ip, now)` keeps every live mapping of an address alive for
//!   `keep_alive` more, whatever its TTL: call it while a connection to the
//!   address is alive (at least once per `min_ttl`) and the connection never
//!   loses its name (Cilium's "zombies").
//! - Bounds: at most `max_names_per_ip` names per address and
//!   `max_ips_per_name` addresses per name (the mapping nearest its deadline
//!   makes room), and at most `max_mappings` mappings in all: an expired
//!   mapping goes first, then the least recently recorded or touched.
//!   Names are stored once however many addresses share them.
//! - `lookup` never changes the store and never allocates.
//!
//! Time is a [`UnixNanos`] the caller passes in (the store reads no clock);
//! only its order and the gaps between instants matter.

mod slots;

use core::net::IpAddr;
use core::time::Duration;

use edgewise_time::UnixNanos;
use std::collections::HashMap;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::DnsError;
use crate::resolution::{Resolution, Unmapped};
use crate::wire::{Message, NameText};
use slots::Slots;

type Hasher = foldhash::fast::RandomState;
type Indices = SmallVec<[u32; 2]>;

/// Settings for an [`FqdnStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreConfig {
    /// The shortest time a mapping is kept, whatever its TTL (Cilium's
    /// `tofqdns-min-ttl`). Default 60 s, so names do not drop out between
    /// a short-TTL lookup and the connection it was made for.
    pub min_ttl: Duration,
    /// The longest time a mapping is kept without a new answer or a touch.
    /// Default 1 day.
    pub max_ttl: Duration,
    /// How long one `touch` keeps a mapping alive. Default 5 minutes.
    pub keep_alive: Duration,
    /// Mappings kept in all. Default 262,144.
    pub max_mappings: usize,
    /// Names kept per address. Default 16.
    pub max_names_per_ip: usize,
    /// Addresses kept per name. Default 1,000 (as Cilium).
    pub max_ips_per_name: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            keep_alive: Duration::from_secs(5 * 60),
            max_mappings: 262_144,
            max_names_per_ip: 16,
            max_ips_per_name: 1_000,
        }
    }
}

/// What one recorded message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The response resolved this many addresses for its question (new
    /// mappings and refreshed ones).
    Mapped(usize),
    /// The message parsed but maps nothing.
    Unmapped(Unmapped),
}

/// Counters and sizes of an [`FqdnStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StoreStats {
    /// Mappings stored now.
    pub mappings: usize,
    /// Distinct addresses stored now.
    pub addresses: usize,
    /// Distinct names stored now.
    pub names: usize,
    /// Responses that mapped at least one address.
    pub responses_mapped: u64,
    /// New mappings made.
    pub inserted: u64,
    /// Existing mappings seen again in a response.
    pub refreshed: u64,
    /// Mappings removed because they had expired (to make room or by
    /// `purge_expired`).
    pub evicted_expired: u64,
    /// Live mappings removed because the store was full.
    pub evicted_lru: u64,
    /// Mappings removed because their address had `max_names_per_ip` names.
    pub evicted_ip_cap: u64,
    /// Mappings removed because their name had `max_ips_per_name` addresses.
    pub evicted_name_cap: u64,
    /// Messages rejected, indexed like [`DnsError::REASONS`].
    pub rejected: [u64; DnsError::REASONS.len()],
    /// Parsed messages that mapped nothing, indexed like [`Unmapped::REASONS`].
    pub unmapped: [u64; Unmapped::REASONS.len()],
}

impl StoreStats {
    /// Rejected messages by reason label, reasons with a zero count left out.
    pub fn rejected_by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        by_reason(&DnsError::REASONS, &self.rejected)
    }

    /// Unmapped messages by reason label, zero counts left out.
    pub fn unmapped_by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        by_reason(&Unmapped::REASONS, &self.unmapped)
    }
}

fn by_reason<'a>(
    labels: &'a [&'static str],
    counts: &'a [u64],
) -> impl Iterator<Item = (&'static str, u64)> + 'a {
    labels
        .iter()
        .zip(counts)
        .filter(|(_, count)| **count > 0)
        .map(|(label, count)| (*label, *count))
}

/// A bounded map from IP address to the names it was resolved from.
#[derive(Debug, Clone)]
pub struct FqdnStore {
    config: StoreConfig,
    slots: Slots,
    by_ip: HashMap<IpAddr, Indices, Hasher>,
    by_name: HashMap<Arc<str>, Indices, Hasher>,
    stats: StoreStats,
    text: Box<NameText>,
}

impl Default for FqdnStore {
    fn default() -> Self {
        Self::new(StoreConfig::default())
    }
}

impl FqdnStore {
    /// An empty store. Zero caps are raised to 1.
    pub fn new(config: StoreConfig) -> Self {
        let config = StoreConfig {
            max_mappings: config.max_mappings.max(1),
            max_names_per_ip: config.max_names_per_ip.max(1),
            max_ips_per_name: config.max_ips_per_name.max(1),
            max_ttl: config.max_ttl.max(config.min_ttl),
            ..config
        };
        Self {
            config,
            slots: Slots::new(),
            by_ip: HashMap::default(),
            by_name: HashMap::default(),
            stats: StoreStats::default(),
            text: Box::new(NameText::new()),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Parses one DNS message (UDP payload, or one TCP message without its
    /// length prefix) and records what it resolves.
    ///
    /// # Errors
    /// The [`DnsError`] that rejected the message; the store is unchanged
    /// apart from the rejection counter.
    pub fn record(&mut self, message: &[u8], now: UnixNanos) -> Result<Recorded, DnsError> {
        let counted = |stats: &mut StoreStats, error: DnsError| {
            stats.rejected[error.index()] += 1;
            error
        };
        let header = Message::read_header(message).map_err(|e| counted(&mut self.stats, e))?;
        if !header.is_response() {
            self.stats.unmapped[Unmapped::Query.index()] += 1;
            return Ok(Recorded::Unmapped(Unmapped::Query));
        }
        let parsed = Message::parse(message).map_err(|e| counted(&mut self.stats, e))?;
        match Resolution::new(parsed) {
            Ok(resolution) => Ok(Recorded::Mapped(self.record_resolution(&resolution, now))),
            Err(unmapped) => {
                self.stats.unmapped[unmapped.index()] += 1;
                Ok(Recorded::Unmapped(unmapped))
            }
        }
    }

    /// Records an already parsed response; returns how many addresses it
    /// mapped.
    pub fn record_resolution(&mut self, resolution: &Resolution<'_>, now: UnixNanos) -> usize {
        let now = now.as_nanos();
        let mut text = core::mem::take(&mut self.text);
        let name = resolution.question().write_text(&mut text);
        let mut mapped = 0;
        for address in resolution.addresses() {
            let ttl = Duration::from_secs(u64::from(address.ttl))
                .clamp(self.config.min_ttl, self.config.max_ttl);
            self.map(address.ip, name, now.saturating_add(duration_ns(ttl)), now);
            mapped += 1;
        }
        self.text = text;
        if mapped > 0 {
            self.stats.responses_mapped += 1;
        }
        mapped
    }

    fn map(&mut self, ip: IpAddr, name: &str, expires: u64, now: u64) {
        if let Some(index) = self.find(ip, name) {
            self.slots.use_now(index, |mapping| {
                mapping.expires = mapping.expires.max(expires);
            });
            self.stats.refreshed += 1;
            return;
        }
        if let Some(victim) =
            self.nearest_deadline(self.by_ip.get(&ip), self.config.max_names_per_ip)
        {
            self.remove(victim);
            self.stats.evicted_ip_cap += 1;
        }
        if let Some(victim) =
            self.nearest_deadline(self.by_name.get(name), self.config.max_ips_per_name)
        {
            self.remove(victim);
            self.stats.evicted_name_cap += 1;
        }
        if self.slots.len() >= self.config.max_mappings {
            self.evict_one(now);
        }
        let name = match self.by_name.get_key_value(name) {
            Some((shared, _)) => Arc::clone(shared),
            None => Arc::from(name),
        };
        let index = self.slots.insert(ip, Arc::clone(&name), expires);
        self.by_ip.entry(ip).or_default().push(index);
        self.by_name.entry(name).or_default().push(index);
        self.stats.inserted += 1;
    }

    fn find(&self, ip: IpAddr, name: &str) -> Option<u32> {
        let indices = self.by_ip.get(&ip)?;
        indices
            .iter()
            .copied()
            .find(|&index| self.slots.get(index).is_some_and(|m| &*m.name == name))
    }

    /// The mapping nearest its deadline in `indices` when there are `cap`
    /// or more of them.
    fn nearest_deadline(&self, indices: Option<&Indices>, cap: usize) -> Option<u32> {
        let indices = indices.filter(|indices| indices.len() >= cap)?;
        indices
            .iter()
            .copied()
            .min_by_key(|&index| self.slots.get(index).map_or(0, slots::Mapping::deadline))
    }

    fn evict_one(&mut self, now: u64) {
        if let Some(index) = self.slots.expired(now) {
            self.remove(index);
            self.stats.evicted_expired += 1;
        } else if let Some(index) = self.slots.least_recent() {
            self.remove(index);
            self.stats.evicted_lru += 1;
        }
    }

    fn remove(&mut self, index: u32) {
        let Some(mapping) = self.slots.remove(index) else {
            return;
        };
        if let Some(indices) = self.by_ip.get_mut(&mapping.ip) {
            indices.retain(|other| *other != index);
            if indices.is_empty() {
                self.by_ip.remove(&mapping.ip);
            }
        }
        if let Some(indices) = self.by_name.get_mut(&mapping.name) {
            indices.retain(|other| *other != index);
            if indices.is_empty() {
                self.by_name.remove(&mapping.name);
            }
        }
    }

    /// The names `ip` was resolved from that are still live at `now`, in
    /// the order they were first recorded. Does not allocate.
    pub fn lookup(&self, ip: IpAddr, now: UnixNanos) -> impl Iterator<Item = &str> + '_ {
        let now = now.as_nanos();
        let indices = self
            .by_ip
            .get(&ip)
            .map_or(&[][..], |indices| indices.as_slice());
        indices.iter().filter_map(move |&index| {
            self.slots
                .get(index)
                .filter(|m| now < m.deadline())
                .map(|m| &*m.name)
        })
    }

    /// A connection to `ip` is alive at `now`: every live mapping of `ip`
    /// stays live for at least `keep_alive` more and becomes the most
    /// recently used. Returns how many mappings were kept.
    pub fn touch(&mut self, ip: IpAddr, now: UnixNanos) -> usize {
        let now = now.as_nanos();
        let Some(indices) = self.by_ip.get(&ip) else {
            return 0;
        };
        let kept_until = now.saturating_add(duration_ns(self.config.keep_alive));
        let mut kept = 0;
        for &index in indices {
            if self.slots.get(index).is_some_and(|m| now < m.deadline()) {
                self.slots
                    .use_now(index, |m| m.kept_until = m.kept_until.max(kept_until));
                kept += 1;
            }
        }
        kept
    }

    /// Removes every mapping whose deadline is at or before `now`; returns
    /// how many. Optional: expired mappings are never returned by `lookup`
    /// and are the first to go when the store is full.
    pub fn purge_expired(&mut self, now: UnixNanos) -> usize {
        let now = now.as_nanos();
        let mut purged = 0;
        while let Some(index) = self.slots.expired(now) {
            self.remove(index);
            purged += 1;
        }
        self.stats.evicted_expired += purged as u64;
        purged
    }

    /// Counters and current sizes.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            mappings: self.slots.len(),
            addresses: self.by_ip.len(),
            names: self.by_name.len(),
            ..self.stats
        }
    }

    /// Mappings stored now, live or not yet purged.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.slots.len() == 0
    }
}

fn duration_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
