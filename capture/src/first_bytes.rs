//! A flow's first bytes put back together from its banner events.
//!
//! Contract: a flow's first payload is one [`EventKind::Banner`]; when it
//! begins a TLS handshake record (type 22, version 3.0 to 3.4) longer than
//! itself, the payloads that continue the record follow as banners of the
//! same flow, each with its TCP sequence number, until the record's bytes
//! (at most [`BANNER_FOLLOW_MAX`] from the first byte) are seen: the rule
//! of the kernel programs and of the replay. [`FirstBytes::add`] gives a
//! flow's first bytes once, when they are whole: at once, borrowed, for a
//! banner that needs no more (no allocation); owned, when the last part
//! arrives, for one that spans segments. A retransmitted part adds
//! nothing; a part after a gap (reordering) ends the flow's bytes where
//! the gap starts.
//!
//! Bounds: at most [`FirstBytes::new`]'s `max_flows` flows wait for parts
//! at once; beyond that the oldest is given up (counted in
//! [`FirstBytes::given_up`]), as is a flow whose parts never come.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use crate::event::{BANNER_FOLLOW_MAX, Event, EventKind};

/// One direction of a flow.
type FlowKey = (SocketAddr, SocketAddr, u8);

#[derive(Debug)]
struct Partial {
    /// The sequence number of the first byte.
    start: u32,
    bytes: Vec<u8>,
    /// How many bytes make the whole.
    want: usize,
    /// Which arrival this is, so that a stale entry of the order is told
    /// from a new partial of the same flow.
    arrival: u64,
}

/// Flows waiting for the rest of their first bytes (see the module docs).
#[derive(Debug)]
pub struct FirstBytes {
    partial: HashMap<FlowKey, Partial, foldhash::fast::RandomState>,
    order: VecDeque<(FlowKey, u64)>,
    max_flows: usize,
    arrivals: u64,
    given_up: u64,
}

/// The length (its 5-byte header included) of the TLS handshake record
/// `payload` begins: a type-22 record of version 3.0 to 3.4. The one rule
/// of the kernel's `handshake_follow`, the replay and [`whole_len`].
pub(crate) fn handshake_record_len(payload: &[u8]) -> Option<usize> {
    match *payload {
        [22, 3, minor, hi, lo, ..] if minor <= 4 => {
            Some(5 + usize::from(u16::from_be_bytes([hi, lo])))
        }
        _ => None,
    }
}

/// How many bytes the first payload `data` says make a flow's first
/// bytes: the TLS handshake record it begins (header included, at most
/// [`BANNER_FOLLOW_MAX`]), or itself.
pub fn whole_len(data: &[u8]) -> usize {
    handshake_record_len(data)
        .map_or(data.len(), |len| len.min(usize::from(BANNER_FOLLOW_MAX)))
        .max(data.len())
}

impl FirstBytes {
    /// At most `max_flows` flows waiting at once (at least one).
    pub fn new(max_flows: usize) -> Self {
        FirstBytes {
            partial: HashMap::default(),
            order: VecDeque::new(),
            max_flows: max_flows.max(1),
            arrivals: 0,
            given_up: 0,
        }
    }

    /// Flows given up: pushed out by newer ones, or ended by a gap.
    pub fn given_up(&self) -> u64 {
        self.given_up
    }

    /// Flows waiting for parts now.
    pub fn waiting(&self) -> usize {
        self.partial.len()
    }

    /// Whether the flow of `event` waits for parts (so `event` is not its
    /// first payload).
    pub fn waits_for(&self, event: &Event<'_>) -> bool {
        self.partial
            .contains_key(&(event.src, event.dst, event.protocol))
    }

    /// Takes a banner event (anything else is ignored); gives the flow's
    /// first bytes when this event makes them whole.
    pub fn add<'e>(&mut self, event: &Event<'e>) -> Option<Cow<'e, [u8]>> {
        if event.kind != EventKind::Banner || event.data.is_empty() {
            return None;
        }
        let key = (event.src, event.dst, event.protocol);
        let Some(partial) = self.partial.get_mut(&key) else {
            let want = whole_len(event.data);
            if want <= event.data.len() {
                return Some(Cow::Borrowed(event.data));
            }
            self.wait(key, event, want);
            return None;
        };
        let offset = usize::try_from(event.seq.wrapping_sub(partial.start)).unwrap_or(usize::MAX);
        let have = partial.bytes.len();
        if offset > have {
            // A gap: what came before it is all there will be.
            self.given_up += 1;
            return self.partial.remove(&key).map(|p| Cow::Owned(p.bytes));
        }
        let new = event.data.get(have - offset..).unwrap_or_default();
        let room = partial.want - have;
        partial.bytes.extend_from_slice(&new[..new.len().min(room)]);
        if partial.bytes.len() < partial.want {
            return None;
        }
        self.partial.remove(&key).map(|p| Cow::Owned(p.bytes))
    }

    fn wait(&mut self, key: FlowKey, event: &Event<'_>, want: usize) {
        while self.partial.len() >= self.max_flows {
            let Some((old, arrival)) = self.order.pop_front() else {
                break;
            };
            if self.partial.get(&old).is_some_and(|p| p.arrival == arrival) {
                self.partial.remove(&old);
                self.given_up += 1;
            }
        }
        // Entries of flows already done are skipped lazily; keep the
        // queue from growing past twice the bound.
        if self.order.len() >= 2 * self.max_flows {
            let partial = &self.partial;
            self.order
                .retain(|(k, arrival)| partial.get(k).is_some_and(|p| p.arrival == *arrival));
        }
        self.arrivals += 1;
        let mut bytes = Vec::with_capacity(want);
        bytes.extend_from_slice(event.data);
        self.partial.insert(
            key,
            Partial {
                start: event.seq,
                bytes,
                want,
                arrival: self.arrivals,
            },
        );
        self.order.push_back((key, self.arrivals));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Direction;
    use edgewise_time::UnixNanos;

    fn banner(seq: u32, data: &[u8]) -> Event<'_> {
        Event {
            kind: EventKind::Banner,
            direction: Direction::Unknown,
            time: UnixNanos::ZERO,
            ifindex: 0,
            src: "10.0.0.1:40000".parse().unwrap(),
            dst: "10.0.0.2:443".parse().unwrap(),
            protocol: 6,
            wire_len: 0,
            seq,
            data,
        }
    }

    fn record(len: usize) -> Vec<u8> {
        let mut r = vec![22, 3, 1];
        r.extend(u16::try_from(len).unwrap().to_be_bytes());
        r.extend((0..len).map(|i| u8::try_from(i % 251).unwrap()));
        r
    }

    #[test]
    fn a_whole_banner_is_borrowed_at_once() {
        let mut first = FirstBytes::new(4);
        let got = first.add(&banner(7, b"SSH-2.0-x\r\n")).unwrap();
        assert!(matches!(got, Cow::Borrowed(b"SSH-2.0-x\r\n")));
        let whole = record(100);
        assert_eq!(first.add(&banner(1, &whole)).unwrap(), &whole[..]);
        assert_eq!(first.waiting(), 0);
    }

    #[test]
    fn parts_join_by_sequence_number_and_retransmits_add_nothing() {
        let whole = record(3000);
        // A first payload shorter than a record header starts no record.
        for split in [5, 6, 1448, 2000, 3004] {
            let mut first = FirstBytes::new(4);
            let start = u32::MAX - 10; // the numbers wrap in the middle
            assert_eq!(first.add(&banner(start, &whole[..split])), None);
            // The first part again, then an overlapping part.
            assert_eq!(first.add(&banner(start, &whole[..split])), None);
            let at = split - 1;
            let seq = start.wrapping_add(u32::try_from(at).unwrap());
            let got = first.add(&banner(seq, &whole[at..])).unwrap();
            assert_eq!(got, &whole[..], "split at {split}");
            assert_eq!((first.waiting(), first.given_up()), (0, 0));
        }
    }

    #[test]
    fn a_gap_ends_the_bytes_and_the_bound_gives_up_the_oldest() {
        let whole = record(3000);
        let mut first = FirstBytes::new(1);
        assert_eq!(first.add(&banner(0, &whole[..1000])), None);
        let got = first.add(&banner(2000, &whole[2000..])).unwrap();
        assert_eq!(got, &whole[..1000]);
        assert_eq!(first.given_up(), 1);

        assert_eq!(first.add(&banner(0, &whole[..1000])), None);
        let mut other = banner(0, &whole[..1000]);
        other.src = "10.0.0.3:40000".parse().unwrap();
        assert_eq!(first.add(&other), None);
        assert_eq!((first.waiting(), first.given_up()), (1, 2));
    }

    #[test]
    fn a_record_longer_than_the_follow_limit_is_cut_there() {
        let whole = record(20_000);
        let mut first = FirstBytes::new(4);
        assert_eq!(first.add(&banner(0, &whole[..1448])), None);
        let got = first.add(&banner(1448, &whole[1448..])).unwrap();
        assert_eq!(got.len(), usize::from(BANNER_FOLLOW_MAX));
    }
}
