//! The replay source: a pcap or pcapng file turned into the same events the
//! kernel programs emit for the same packets, so that a replay and a live
//! run feed the rest of edgewise identically.
//!
//! The rules are the kernel's (`bpf/observer.bpf.c`), on the innermost IP
//! packet after tunnels are opened (VXLAN, Geneve, GRE, ... through
//! `edgewise-packet`):
//! - a TCP SYN or SYN-ACK without RST or FIN, whose header (20 to 60 bytes)
//!   is all there, gives a [`EventKind::Syn`] / [`EventKind::SynAck`] with
//!   the header;
//! - a UDP datagram from port 53 with a payload gives a
//!   [`EventKind::DnsResponse`] with up to `dns_max_payload` bytes of it;
//! - a TCP segment from port 53 with a payload gives
//!   [`EventKind::DnsSegment`]s of up to [`DNS_MAX`] bytes each (at most
//!   [`DNS_SEGMENT_PARTS`]), then goes to its flow as below;
//! - any other TCP or UDP packet goes to its flow (the 5-tuple as written,
//!   each direction its own): a [`EventKind::FlowSample`] when the flow was
//!   not sampled within the window (on the capture's clock), then, for the
//!   flow's first payload, a [`EventKind::Banner`] with up to
//!   [`BANNER_MAX`] bytes and the TCP sequence number; when that payload
//!   begins a TLS handshake record that goes on past it, the next payloads
//!   of the flow are banners too, until the record's bytes are seen (at
//!   most [`BANNER_FOLLOW_MAX`] from the first payload's start); when it
//!   begins a proxy handshake (a SOCKS 4 or 5 request, HTTP CONNECT), or
//!   is the first payload of the reverse of such a flow (the proxy's
//!   answer), the flow's next [`PROXY_PARTS`] payloads are banners too
//!   (each followed in turn when it begins a handshake record).
//!
//! What differs, and why: the direction is [`Direction::Unknown`] (a file
//! does not say), the interface index is 0, the time is the capture's, and
//! `wire_len` is the frame's length. Flows are held in a bounded map (the
//! kernel's is an LRU of 65,536); when it is full the least recently seen
//! sixteenth goes.

use core::net::IpAddr;
use std::collections::HashMap;
use std::time::Duration;

use edgewise_packet::{Packet, TcpFlags, Transport};
use edgewise_time::UnixNanos;

pub use crate::event::{BANNER_FOLLOW_MAX, BANNER_MAX, DNS_MAX, DNS_SEGMENT_PARTS, PROXY_PARTS};
use crate::event::{Direction, Event, EventKind};
use crate::first_bytes::handshake_record_len;

/// Settings of a [`Replay`], as [`crate::CaptureConfig`] sets the kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayConfig {
    /// The most bytes of a UDP DNS response an event carries,
    /// 1..=[`DNS_MAX`].
    pub dns_max_payload: u32,
    /// A flow is sampled at most once per this window.
    pub flow_sample_window: Duration,
    /// The most flows held.
    pub max_flows: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            dns_max_payload: u32::from(DNS_MAX),
            flow_sample_window: Duration::from_secs(10),
            max_flows: 65_536,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    protocol: u8,
}

#[derive(Debug, Clone, Copy)]
struct FlowState {
    sampled_ns: u64,
    seen_ns: u64,
    banner_seen: bool,
    /// Bytes of a TLS handshake record still to follow as banners.
    banner_follow: u16,
    /// The flow began a proxy handshake.
    proxy: bool,
    /// Payloads after a proxy handshake's first still to be banners.
    proxy_parts: u8,
}

impl FlowState {
    /// No payload seen yet: the next one is the flow's first.
    fn before_first_payload(&self) -> bool {
        !self.banner_seen && self.banner_follow == 0 && self.proxy_parts == 0
    }
}

/// Turns decoded packets into events (see the module docs).
#[derive(Debug)]
pub struct Replay {
    config: ReplayConfig,
    window_ns: u64,
    flows: HashMap<FlowKey, FlowState, foldhash::fast::RandomState>,
}

impl Replay {
    /// A replay with no flows yet.
    pub fn new(config: ReplayConfig) -> Self {
        Self {
            config,
            window_ns: u64::try_from(config.flow_sample_window.as_nanos()).unwrap_or(u64::MAX),
            flows: HashMap::default(),
        }
    }

    /// The events of one packet captured at `time` (a frame of
    /// `wire_len` bytes), handed to `emit` in the kernel's order.
    pub fn packet<'a>(
        &mut self,
        time: UnixNanos,
        wire_len: u32,
        packet: &Packet<'a>,
        mut emit: impl FnMut(Event<'a>),
    ) {
        let event = |kind, src_port, dst_port, seq, data| Event {
            kind,
            direction: Direction::Unknown,
            time,
            ifindex: 0,
            src: (packet.src, src_port).into(),
            dst: (packet.dst, dst_port).into(),
            protocol: packet.protocol,
            wire_len,
            seq,
            data,
        };
        match packet.transport() {
            Transport::Tcp {
                src_port,
                dst_port,
                seq,
                flags,
                payload,
                segment,
                ..
            } => {
                let header = usize::from(segment[12] >> 4) * 4;
                if flags.contains(TcpFlags::SYN) {
                    if flags.contains(TcpFlags::RST)
                        || flags.contains(TcpFlags::FIN)
                        || !(20..=60).contains(&header)
                        || header > segment.len()
                    {
                        return;
                    }
                    let kind = if flags.contains(TcpFlags::ACK) {
                        EventKind::SynAck
                    } else {
                        EventKind::Syn
                    };
                    emit(event(kind, src_port, dst_port, 0, &segment[..header]));
                    return;
                }
                if header < 20 || header > segment.len() {
                    return;
                }
                // As the kernel: the sequence number on banners and DNS
                // segments only.
                if src_port == 53 {
                    let parts = payload.chunks(usize::from(DNS_MAX));
                    for (at, part) in parts.take(usize::from(DNS_SEGMENT_PARTS)).enumerate() {
                        let offset = u32::try_from(at).unwrap_or(0) * u32::from(DNS_MAX);
                        let seq = seq.wrapping_add(offset);
                        emit(event(EventKind::DnsSegment, src_port, dst_port, seq, part));
                    }
                }
                self.flow(
                    packet,
                    time.as_nanos(),
                    src_port,
                    dst_port,
                    payload,
                    &mut |kind, data| {
                        let seq = if kind == EventKind::Banner { seq } else { 0 };
                        emit(event(kind, src_port, dst_port, seq, data));
                    },
                );
            }
            Transport::Udp {
                src_port,
                dst_port,
                payload,
                ..
            } => {
                if src_port == 53 {
                    let max =
                        usize::try_from(self.config.dns_max_payload.clamp(1, u32::from(DNS_MAX)))
                            .unwrap_or(usize::MAX);
                    if !payload.is_empty() {
                        emit(event(
                            EventKind::DnsResponse,
                            src_port,
                            dst_port,
                            0,
                            &payload[..payload.len().min(max)],
                        ));
                    }
                    return;
                }
                self.flow(
                    packet,
                    time.as_nanos(),
                    src_port,
                    dst_port,
                    &[],
                    &mut |kind, data| {
                        emit(event(kind, src_port, dst_port, 0, data));
                    },
                );
            }
            _ => {}
        }
    }

    fn flow<'a>(
        &mut self,
        packet: &Packet<'a>,
        now: u64,
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
        emit: &mut impl FnMut(EventKind, &'a [u8]),
    ) {
        let key = FlowKey {
            src: packet.src,
            dst: packet.dst,
            src_port,
            dst_port,
            protocol: packet.protocol,
        };
        if !self.flows.contains_key(&key) && self.flows.len() >= self.config.max_flows.max(1) {
            self.evict();
        }
        // As the kernel's answers_proxy: asked on a flow's first payload.
        let first_payload = !payload.is_empty()
            && self
                .flows
                .get(&key)
                .is_none_or(FlowState::before_first_payload);
        let answers_proxy = first_payload && {
            let reverse = FlowKey {
                src: key.dst,
                dst: key.src,
                src_port: key.dst_port,
                dst_port: key.src_port,
                protocol: key.protocol,
            };
            self.flows.get(&reverse).is_some_and(|s| s.proxy)
        };
        let window = self.window_ns;
        let state = self.flows.entry(key).or_insert(FlowState {
            // A flow first seen now is sampled now.
            sampled_ns: now.wrapping_sub(window).wrapping_sub(1),
            seen_ns: now,
            banner_seen: false,
            banner_follow: 0,
            proxy: false,
            proxy_parts: 0,
        });
        state.seen_ns = now;
        if now.wrapping_sub(state.sampled_ns) > window {
            state.sampled_ns = now;
            emit(EventKind::FlowSample, &[]);
        }
        if !payload.is_empty() && !state.banner_seen {
            // As the kernel's observe_flow.
            let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
            let follow = || {
                handshake_record_len(payload).map_or(0, |total| {
                    u16::try_from(total)
                        .unwrap_or(u16::MAX)
                        .min(BANNER_FOLLOW_MAX)
                        .saturating_sub(len)
                })
            };
            if state.banner_follow != 0 {
                state.banner_follow = state.banner_follow.saturating_sub(len);
            } else if state.proxy_parts != 0 {
                state.proxy_parts -= 1;
                state.banner_follow = follow();
            } else {
                state.banner_follow = follow();
                if state.banner_follow == 0 && is_proxy_request(payload) {
                    state.proxy = true;
                    state.proxy_parts = PROXY_PARTS;
                } else if state.banner_follow == 0 && answers_proxy {
                    state.proxy_parts = PROXY_PARTS;
                }
            }
            state.banner_seen = state.banner_follow == 0 && state.proxy_parts == 0;
            emit(
                EventKind::Banner,
                &payload[..payload.len().min(usize::from(BANNER_MAX))],
            );
        }
    }

    fn evict(&mut self) {
        let mut seen: Vec<u64> = self.flows.values().map(|f| f.seen_ns).collect();
        let nth = (seen.len() / 16).max(1) - 1;
        let cutoff = *seen.select_nth_unstable(nth).1;
        self.flows.retain(|_, f| f.seen_ns > cutoff);
    }
}

/// Whether `payload` begins a proxy handshake (the kernel's
/// `proxy_request`): a SOCKS 5 greeting (version 5, n methods, exactly
/// 2 + n bytes), a SOCKS 4 CONNECT request, or an HTTP CONNECT request.
fn is_proxy_request(payload: &[u8]) -> bool {
    match *payload {
        [5, n, ..] => (1..=16).contains(&n) && payload.len() == 2 + usize::from(n),
        [4, 1, ..] => payload.len() >= 9,
        _ => payload.starts_with(b"CONNECT "),
    }
}
