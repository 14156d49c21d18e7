//! Per-connection JA4TS state: SYN-ACK retransmission gaps and bare RSTs.
//!
//! Contract:
//! - Sans-IO: time comes in as `now`, a [`UnixNanos`] (a capture's timestamps
//!   for a replay; a live kernel time turned into Unix time with a
//!   [`MonotonicOffset`](edgewise_time::MonotonicOffset)). Only gaps between
//!   instants matter; time going backwards counts as a zero gap.
//! - Bounded: at most [`TrackerConfig::capacity`] handshakes are tracked. When
//!   full, the handshake tracked longest is evicted first (FIFO), and counted.
//!   A handshake idle longer than [`TrackerConfig::idle_timeout_ns`], or a
//!   SYN-ACK with a different initial sequence number on the same 4-tuple,
//!   starts afresh (a new connection reusing the ports, not a retransmission).
//! - No allocation after [`Ja4Tracker::new`]: the table and the eviction queue
//!   are sized up front.
//!
//! Rules (FoxIO's reference behaviour): a SYN gives a [`Ja4t`]; every SYN-ACK
//! gives a [`Ja4ts`], from the second SYN-ACK of a connection on with the
//! rounded gaps between consecutive SYN-ACKs (at most ten timed); a bare RST in
//! either direction gives the connection's JA4TS, with `-R<n>` after two or more
//! SYN-ACKs, and `0_00_00_00` when no SYN-ACK was seen.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use edgewise_time::UnixNanos;

use crate::fingerprint::{Ja4t, Ja4ts, MAX_SYN_ACK_DELAYS, TcpFingerprint};
use crate::tcp::TcpHeader;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Limits of a [`Ja4Tracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackerConfig {
    /// Most handshakes tracked at once (at least 1).
    pub capacity: usize,
    /// A handshake with no SYN-ACK or RST for this long is forgotten.
    pub idle_timeout_ns: u64,
}

impl Default for TrackerConfig {
    /// 16,384 handshakes (about 3 MiB), 20 minutes idle: long enough for ten
    /// SYN-ACK retransmissions with exponential backoff.
    fn default() -> Self {
        TrackerConfig {
            capacity: 16_384,
            idle_timeout_ns: 20 * 60 * NANOS_PER_SEC,
        }
    }
}

/// What one segment yielded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Observation {
    /// A client SYN.
    Ja4t(Ja4t),
    /// A server SYN-ACK, or a bare RST attributed to the connection.
    Ja4ts(Ja4ts),
}

impl core::fmt::Display for Observation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Observation::Ja4t(ja4t) => ja4t.fmt(f),
            Observation::Ja4ts(ja4ts) => ja4ts.fmt(f),
        }
    }
}

/// Counters of a [`Ja4Tracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackerStats {
    /// Handshakes tracked now.
    pub tracked: usize,
    /// Handshakes evicted because the table was full.
    pub evicted: u64,
    /// Handshakes restarted (idle too long, or a new ISN on the same ports).
    pub restarted: u64,
}

type Endpoint = (IpAddr, u16);

/// A connection key that is the same in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnKey(Endpoint, Endpoint);

impl ConnKey {
    fn new(a: Endpoint, b: Endpoint) -> Self {
        if a <= b { ConnKey(a, b) } else { ConnKey(b, a) }
    }
}

#[derive(Debug, Clone, Copy)]
struct Handshake {
    server: Endpoint,
    server_isn: u32,
    /// First SYN-ACK's options, latest SYN-ACK's window / MSS / scale, gaps.
    ja4ts: Ja4ts,
    syn_acks: u32,
    last_syn_ack_ns: u64,
    last_seen_ns: u64,
}

/// Turns TCP segments into JA4T / JA4TS observations.
pub struct Ja4Tracker {
    config: TrackerConfig,
    handshakes: HashMap<ConnKey, Handshake, foldhash::fast::RandomState>,
    order: VecDeque<ConnKey>,
    stats: TrackerStats,
}

impl Ja4Tracker {
    /// A tracker with its whole table allocated up front.
    pub fn new(config: TrackerConfig) -> Self {
        let capacity = config.capacity.max(1);
        Ja4Tracker {
            config: TrackerConfig { capacity, ..config },
            handshakes: HashMap::with_capacity_and_hasher(
                capacity,
                foldhash::fast::RandomState::default(),
            ),
            order: VecDeque::with_capacity(capacity),
            stats: TrackerStats::default(),
        }
    }

    /// Observes one segment from `src` to `dst` at `now`; returns a
    /// fingerprint for a SYN, a SYN-ACK or a bare RST, `None` otherwise.
    pub fn observe<T: AsRef<[u8]>>(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        tcp: &TcpHeader<T>,
        now: UnixNanos,
    ) -> Option<Observation> {
        let now_ns = now.as_nanos();
        let flags = tcp.flags();
        if flags.is_syn() {
            return Ja4t::from_header(tcp).ok().map(Observation::Ja4t);
        }
        let from = (src, tcp.src_port());
        let key = ConnKey::new(from, (dst, tcp.dst_port()));
        if flags.is_syn_ack() {
            return Some(Observation::Ja4ts(self.syn_ack(key, from, tcp, now_ns)));
        }
        if flags.is_bare_rst() {
            return Some(Observation::Ja4ts(self.rst(key, now_ns)));
        }
        None
    }

    fn syn_ack<T: AsRef<[u8]>>(
        &mut self,
        key: ConnKey,
        server: Endpoint,
        tcp: &TcpHeader<T>,
        now_ns: u64,
    ) -> Ja4ts {
        let current = TcpFingerprint::of(tcp);
        let idle = self.config.idle_timeout_ns;
        if let Some(hs) = self.handshakes.get_mut(&key) {
            let same_connection = hs.server == server
                && hs.server_isn == tcp.seq()
                && now_ns.saturating_sub(hs.last_seen_ns) <= idle;
            if same_connection {
                hs.syn_acks = hs.syn_acks.saturating_add(1);
                if hs.syn_acks as usize <= MAX_SYN_ACK_DELAYS + 1 {
                    hs.ja4ts
                        .push_delay(rounded_seconds(now_ns.saturating_sub(hs.last_syn_ack_ns)));
                }
                hs.ja4ts.fingerprint = TcpFingerprint {
                    window: current.window,
                    options: hs
                        .ja4ts
                        .fingerprint
                        .options
                        .with_values_of(&current.options),
                };
                hs.last_syn_ack_ns = now_ns;
                hs.last_seen_ns = now_ns;
                return hs.ja4ts;
            }
            *hs = Handshake::first(server, tcp.seq(), current, now_ns);
            self.stats.restarted += 1;
            return hs.ja4ts;
        }
        let hs = Handshake::first(server, tcp.seq(), current, now_ns);
        self.insert(key, hs, now_ns);
        hs.ja4ts
    }

    fn rst(&mut self, key: ConnKey, now_ns: u64) -> Ja4ts {
        let idle = self.config.idle_timeout_ns;
        match self.handshakes.get_mut(&key) {
            Some(hs) if now_ns.saturating_sub(hs.last_seen_ns) <= idle => {
                hs.last_seen_ns = now_ns;
                let mut ja4ts = hs.ja4ts;
                if hs.syn_acks >= 2 {
                    ja4ts.rst_after =
                        Some(rounded_seconds(now_ns.saturating_sub(hs.last_syn_ack_ns)));
                }
                ja4ts
            }
            _ => Ja4ts::default(),
        }
    }

    fn insert(&mut self, key: ConnKey, hs: Handshake, now_ns: u64) {
        // Forget handshakes that went idle, oldest first, then make room.
        while let Some(front) = self.order.front() {
            let expired = self.handshakes.get(front).is_none_or(|old| {
                now_ns.saturating_sub(old.last_seen_ns) > self.config.idle_timeout_ns
            });
            let full = self.handshakes.len() >= self.config.capacity;
            if !expired && !full {
                break;
            }
            if let Some(old) = self.order.pop_front() {
                self.handshakes.remove(&old);
                if !expired {
                    self.stats.evicted += 1;
                }
            }
        }
        self.handshakes.insert(key, hs);
        self.order.push_back(key);
    }

    /// Current counters.
    pub fn stats(&self) -> TrackerStats {
        TrackerStats {
            tracked: self.handshakes.len(),
            ..self.stats
        }
    }
}

impl Handshake {
    fn first(server: Endpoint, server_isn: u32, fingerprint: TcpFingerprint, now_ns: u64) -> Self {
        Handshake {
            server,
            server_isn,
            ja4ts: Ja4ts::new(fingerprint),
            syn_acks: 1,
            last_syn_ack_ns: now_ns,
            last_seen_ns: now_ns,
        }
    }
}

/// Nanoseconds to whole seconds, rounded half away from zero.
fn rounded_seconds(nanos: u64) -> u32 {
    let secs = nanos.saturating_add(NANOS_PER_SEC / 2) / NANOS_PER_SEC;
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::rounded_seconds;

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(rounded_seconds(0), 0);
        assert_eq!(rounded_seconds(499_999_999), 0);
        assert_eq!(rounded_seconds(500_000_000), 1);
        assert_eq!(rounded_seconds(1_499_999_999), 1);
        assert_eq!(rounded_seconds(2_500_000_000), 3);
        assert_eq!(rounded_seconds(u64::MAX), u32::MAX);
    }
}
