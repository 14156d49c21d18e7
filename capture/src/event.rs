//! The records the kernel programs write, decoded without copying.
//!
//! Layout (`bpf/event.h`, `struct event_header`, 64 bytes, native byte
//! order): timestamp (u64, `bpf_ktime_get_ns`), ifindex (u32), kind,
//! direction, family, protocol (u8 each), source and destination address
//! (16 bytes each, network order, IPv4 in the first 4), source and
//! destination port (u16, host order), data length (u16), padding (u16),
//! length on the wire (u32), a TCP segment's sequence number (u32, host
//! order; 0 otherwise); then `data_len` bytes of data (a TCP header with
//! its options, a DNS payload or part of a TCP segment from port 53, a
//! banner, nothing for a flow sample, the count of a drop report).
//!
//! A record shorter than its header says, of an unknown kind, direction or
//! family, or with a data length beyond the record is an [`EventError`].

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use edgewise_time::{MonotonicNanos, MonotonicOffset, UnixNanos};
use thiserror::Error;

/// The size of `struct event_header`.
pub const HEADER_LEN: usize = 64;

/// The most data bytes an event carries (`EVENT_MAX_DATA`), but for a
/// banner or DNS.
pub const MAX_DATA: u16 = 512;

/// The most bytes of DNS an event carries (`DNS_MAX`): an EDNS0 answer of
/// the usual 4,096-byte buffer, or one part of a TCP segment from port 53.
pub const DNS_MAX: u16 = 4096;

/// The most [`EventKind::DnsSegment`] events one TCP segment gives
/// (`DNS_SEGMENT_PARTS`); past `DNS_MAX` times this, the segment is cut
/// (and counted, [`crate::Counters::cut`]).
pub const DNS_SEGMENT_PARTS: u16 = 4;

/// The most bytes of one payload a banner event carries (`BANNER_MAX`): a
/// ClientHello with post-quantum key shares (about 2 KB) fits.
pub const BANNER_MAX: u16 = 2048;

/// How many payloads after a proxy handshake's first (a SOCKS 4 or 5
/// request, HTTP CONNECT, and the proxy's answer) are banner events too
/// (`PROXY_PARTS`): the TLS hello after the handshake is among them.
pub const PROXY_PARTS: u8 = 3;

/// How far past a flow's first payload banner events follow a TLS
/// handshake record it began (`BANNER_FOLLOW_MAX`, counted from the first
/// payload's first byte).
pub const BANNER_FOLLOW_MAX: u16 = 8192;

/// What the kernel saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// A TCP SYN; the data is its TCP header with options.
    Syn,
    /// A TCP SYN-ACK; the data is its TCP header with options.
    SynAck,
    /// A UDP packet from port 53; the data is its payload (cut at the
    /// configured size, at most [`DNS_MAX`]).
    DnsResponse,
    /// The first payload of a flow (each direction is a flow): a server's
    /// banner or a client's first request, up to [`BANNER_MAX`] bytes;
    /// when it begins a TLS handshake record that goes on past it, the
    /// payloads that continue the record are banners too (put them
    /// together by [`Event::seq`]); after a proxy handshake, the next
    /// [`PROXY_PARTS`] payloads are (see [`crate::replay`]).
    Banner,
    /// A packet of a flow not sampled for the configured window: how
    /// connections older than the observer show (no data).
    FlowSample,
    /// Packets of a banned edge were dropped (the packet shown is the
    /// latest, client to server): the data is the count since the edge's
    /// last report, a native-endian `u64` ([`Event::dropped`]). At most
    /// one per edge per second.
    Drop,
    /// Part of a TCP segment from port 53 (DNS over TCP): the data is up
    /// to [`DNS_MAX`] bytes of the payload from [`Event::seq`]; a segment
    /// longer than that gives several, in order. The 2-byte framing is
    /// the reader's to undo (`edgewise_fqdn_store::TcpDnsStreams`). The
    /// segment also goes to its flow (samples and banners) as any other.
    DnsSegment,
}

/// Which hook saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// tcx ingress: arriving on the interface.
    Ingress,
    /// tcx egress: leaving by the interface.
    Egress,
    /// Replayed from a capture file, which does not say.
    Unknown,
}

/// One event, borrowing its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// What it is.
    pub kind: EventKind,
    /// Which hook saw it.
    pub direction: Direction,
    /// When, in Unix time: a kernel event's monotonic stamp
    /// (`bpf_ktime_get_ns()`) turned into Unix time by [`decode`]'s offset,
    /// or a replayed frame's capture time.
    pub time: UnixNanos,
    /// The interface.
    pub ifindex: u32,
    /// The sender.
    pub src: SocketAddr,
    /// The receiver.
    pub dst: SocketAddr,
    /// The IP protocol number (6 or 17).
    pub protocol: u8,
    /// The packet's length as the kernel saw it.
    pub wire_len: u32,
    /// For a banner of a TCP flow or a DNS segment, the sequence number
    /// where `data` starts in the sender's byte stream; 0 otherwise.
    pub seq: u32,
    /// The TCP header with options, the DNS payload, or the banner.
    pub data: &'a [u8],
}

impl Event<'_> {
    /// For a [`EventKind::Drop`], the packets dropped since the edge's
    /// last report; `None` for another kind or a short record.
    pub fn dropped(&self) -> Option<u64> {
        if self.kind != EventKind::Drop {
            return None;
        }
        let bytes: [u8; 8] = self.data.get(..8)?.try_into().ok()?;
        Some(u64::from_ne_bytes(bytes))
    }
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EventError {
    /// Shorter than its header or than the data it announces.
    #[error("a record of {0} bytes is truncated")]
    Truncated(usize),
    /// A kind, direction or family the programs never write.
    #[error("unknown {field} {value}")]
    Unknown {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u8,
    },
}

impl EventError {
    /// A label to count by.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Truncated(_) => "truncated",
            Self::Unknown { .. } => "unknown_field",
        }
    }
}

fn u16_at(record: &[u8], offset: usize) -> u16 {
    u16::from_ne_bytes([record[offset], record[offset + 1]])
}

fn u32_at(record: &[u8], offset: usize) -> u32 {
    u32::from_ne_bytes(record[offset..offset + 4].try_into().unwrap_or_default())
}

/// Decodes one ring-buffer record; `clock` turns its kernel time
/// (monotonic) into the event's Unix [`Event::time`].
///
/// # Errors
/// [`EventError`] (see the module docs).
pub fn decode(record: &[u8], clock: MonotonicOffset) -> Result<Event<'_>, EventError> {
    if record.len() < HEADER_LEN {
        return Err(EventError::Truncated(record.len()));
    }
    let kernel_time = u64::from_ne_bytes(record[0..8].try_into().unwrap_or_default());
    let ifindex = u32_at(record, 8);
    let kind = match record[12] {
        1 => EventKind::Syn,
        2 => EventKind::SynAck,
        3 => EventKind::DnsResponse,
        4 => EventKind::Banner,
        5 => EventKind::FlowSample,
        6 => EventKind::Drop,
        7 => EventKind::DnsSegment,
        value => {
            return Err(EventError::Unknown {
                field: "kind",
                value,
            });
        }
    };
    let direction = match record[13] {
        0 => Direction::Ingress,
        1 => Direction::Egress,
        value => {
            return Err(EventError::Unknown {
                field: "direction",
                value,
            });
        }
    };
    let address = |offset: usize| -> Result<IpAddr, EventError> {
        let bytes: [u8; 16] = record[offset..offset + 16].try_into().unwrap_or_default();
        match record[14] {
            4 => Ok(IpAddr::V4(Ipv4Addr::new(
                bytes[0], bytes[1], bytes[2], bytes[3],
            ))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(bytes))),
            value => Err(EventError::Unknown {
                field: "family",
                value,
            }),
        }
    };
    let src = SocketAddr::new(address(16)?, u16_at(record, 48));
    let dst = SocketAddr::new(address(32)?, u16_at(record, 50));
    let data_len = usize::from(u16_at(record, 52));
    let data = record
        .get(HEADER_LEN..HEADER_LEN + data_len)
        .ok_or(EventError::Truncated(record.len()))?;
    Ok(Event {
        kind,
        direction,
        time: clock.to_unix(MonotonicNanos::from_nanos(kernel_time)),
        ifindex,
        src,
        dst,
        protocol: record[15],
        wire_len: u32_at(record, 56),
        seq: u32_at(record, 60),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, family: u8, data: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; HEADER_LEN];
        r[0..8].copy_from_slice(&123u64.to_ne_bytes());
        r[8..12].copy_from_slice(&7u32.to_ne_bytes());
        r[12] = kind;
        r[13] = 1;
        r[14] = family;
        r[15] = 6;
        r[16..20].copy_from_slice(&[10, 0, 0, 1]);
        r[32..36].copy_from_slice(&[10, 0, 0, 2]);
        r[48..50].copy_from_slice(&40000u16.to_ne_bytes());
        r[50..52].copy_from_slice(&8086u16.to_ne_bytes());
        r[52..54].copy_from_slice(&u16::try_from(data.len()).unwrap().to_ne_bytes());
        r[56..60].copy_from_slice(&74u32.to_ne_bytes());
        r.extend_from_slice(data);
        r
    }

    #[test]
    fn a_record_decodes_and_every_bad_one_is_named() {
        let good = record(1, 4, &[1, 2, 3]);
        // The kernel's 123 ns after boot, with boot at 1,000 s Unix time.
        let clock = MonotonicOffset::new(UnixNanos::from_secs(1_000), MonotonicNanos::ZERO);
        let event = decode(&good, clock).unwrap();
        assert_eq!(event.kind, EventKind::Syn);
        assert_eq!(event.direction, Direction::Egress);
        assert_eq!(event.src, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(event.dst, "10.0.0.2:8086".parse().unwrap());
        assert_eq!(
            (event.time, event.ifindex, event.wire_len),
            (UnixNanos::from_nanos(1_000_000_000_123), 7, 74)
        );
        assert_eq!(event.data, [1, 2, 3]);
        for len in 0..good.len() {
            assert!(
                matches!(decode(&good[..len], clock), Err(EventError::Truncated(_))),
                "{len}"
            );
        }
        assert_eq!(
            decode(&record(9, 4, &[]), clock),
            Err(EventError::Unknown {
                field: "kind",
                value: 9
            })
        );
        assert_eq!(
            decode(&record(1, 5, &[]), clock),
            Err(EventError::Unknown {
                field: "family",
                value: 5
            })
        );
    }
}
