//! Small bounded memories the pipeline keeps between events.
//!
//! - [`Latest`]: the latest value per key; when full it starts over (what
//!   is forgotten is re-learnt from the next handshake or banner).
//! - [`Sightings`]: when a SYN, SYN-ACK or DNS response was first seen, so
//!   that the same packet seen again (by the hooks of both pods'
//!   interfaces on a node, or retransmitted) counts once.
//! - [`Behaviour`]: per client address, the server ports of the flows it
//!   started over the last minute (`flow.*` in rules).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};

use edgewise_capture::{Event, EventKind};

use crate::rules::FlowInput;

/// The most keys a [`Latest`] or [`Behaviour`] holds before it starts
/// over.
pub(crate) const MAX_REMEMBERED: usize = 65_536;

/// The latest value per key (see the module docs).
#[derive(Debug)]
pub(crate) struct Latest<K, V> {
    map: HashMap<K, V, foldhash::fast::RandomState>,
}

impl<K: Hash + Eq, V> Latest<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            map: HashMap::default(),
        }
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        if self.map.len() >= MAX_REMEMBERED && !self.map.contains_key(&key) {
            self.map.clear();
        }
        self.map.insert(key, value);
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }
}

/// A handshake packet or DNS response, as duplicates share it: addresses,
/// ports, protocol and the sequence number or DNS id.
type Sighting = (SocketAddr, SocketAddr, u8, u32);

/// First sightings of handshake packets and DNS responses.
#[derive(Debug)]
pub(crate) struct Sightings {
    first: Latest<Sighting, u64>,
    window_ns: u64,
}

impl Sightings {
    pub(crate) fn new(window_ns: u64) -> Self {
        Self {
            first: Latest::new(),
            window_ns,
        }
    }

    /// Whether `event` repeats one seen less than the window ago
    /// (remembering it if not).
    pub(crate) fn repeated(&mut self, event: &Event<'_>, now_ns: u64) -> bool {
        let tag = match event.kind {
            EventKind::Syn | EventKind::SynAck => event.data.get(4..8),
            EventKind::DnsResponse => event.data.get(0..2),
            // A DNS segment's stream drops the bytes it has seen.
            EventKind::Banner | EventKind::FlowSample | EventKind::Drop | EventKind::DnsSegment => {
                return false;
            }
        };
        let Some(tag) = tag else {
            return false;
        };
        let tag = tag.iter().fold(0u32, |n, b| n << 8 | u32::from(*b));
        let key = (event.src, event.dst, event.protocol, tag);
        if self
            .first
            .get(&key)
            .is_some_and(|first| now_ns.saturating_sub(*first) < self.window_ns)
        {
            return true;
        }
        self.first.insert(key, now_ns);
        false
    }
}

/// The flows one client address started: (time, server port), oldest
/// first, at most [`Behaviour::MAX_FLOWS`].
type Flows = VecDeque<(u64, u16)>;

/// Per client address, the flows of the last minute (see the module
/// docs).
#[derive(Debug)]
pub(crate) struct Behaviour {
    flows: Latest<IpAddr, Flows>,
}

const MINUTE_NS: u64 = 60 * 1_000_000_000;

impl Behaviour {
    /// The most flows remembered per address: past it the oldest goes,
    /// so the counts saturate at this.
    pub(crate) const MAX_FLOWS: usize = 512;

    pub(crate) fn new() -> Self {
        Self {
            flows: Latest::new(),
        }
    }

    /// `client` started a flow to `port` at `now`.
    pub(crate) fn flow(&mut self, client: IpAddr, port: u16, now: u64) {
        if self.flows.get(&client).is_none() {
            self.flows.insert(client, VecDeque::new());
        }
        if let Some(flows) = self.flows.map.get_mut(&client) {
            while flows
                .front()
                .is_some_and(|(at, _)| now.saturating_sub(*at) >= MINUTE_NS)
                || flows.len() >= Self::MAX_FLOWS
            {
                flows.pop_front();
            }
            flows.push_back((now, port));
        }
    }

    /// What `client` did over the minute before `now`.
    pub(crate) fn of(&self, client: IpAddr, now: u64) -> FlowInput {
        let Some(flows) = self.flows.get(&client) else {
            return FlowInput::default();
        };
        let mut ports: HashMap<u16, u32, foldhash::fast::RandomState> = HashMap::default();
        let mut total = 0u32;
        for (at, port) in flows {
            if now.saturating_sub(*at) < MINUTE_NS {
                *ports.entry(*port).or_default() += 1;
                total += 1;
            }
        }
        let entropy = ports
            .values()
            .map(|n| {
                let p = f64::from(*n) / f64::from(total);
                -p * p.log2()
            })
            .sum::<f64>();
        FlowInput {
            unique_dst_ports: i64::try_from(ports.len()).unwrap_or(i64::MAX),
            flows_per_min: i64::from(total),
            dst_port_entropy: if entropy > 0.0 { entropy } else { 0.0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_scan_shows_as_many_ports_and_high_entropy() {
        let mut behaviour = Behaviour::new();
        let scanner: IpAddr = "10.0.0.66".parse().unwrap();
        let web: IpAddr = "10.0.0.7".parse().unwrap();
        for n in 0..64u16 {
            behaviour.flow(scanner, 1000 + n, u64::from(n) * 1_000_000);
            behaviour.flow(web, 443, u64::from(n) * 1_000_000);
        }
        let scan = behaviour.of(scanner, 100_000_000);
        assert_eq!(scan.unique_dst_ports, 64);
        assert_eq!(scan.flows_per_min, 64);
        assert!((scan.dst_port_entropy - 6.0).abs() < 1e-9, "{scan:?}");
        let normal = behaviour.of(web, 100_000_000);
        assert_eq!(normal.unique_dst_ports, 1);
        assert!(normal.dst_port_entropy.abs() < 1e-12);
        let later = behaviour.of(scanner, 61 * 1_000_000_000);
        assert_eq!(later.flows_per_min, 0, "a minute later, nothing");
    }

    #[test]
    fn an_address_holds_a_bounded_number_of_flows() {
        let mut behaviour = Behaviour::new();
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        for n in 0..10_000u64 {
            behaviour.flow(client, 80, n);
        }
        assert_eq!(
            behaviour.of(client, 10_000).flows_per_min,
            i64::try_from(Behaviour::MAX_FLOWS).unwrap()
        );
    }
}
