//! The passive sensor: packet sockets, for hosts where attaching tc or XDP
//! programs is not allowed ([`AttachMode::AfPacket`]).
//!
//! Each attachment is one `AF_PACKET` socket bound to its interface, with
//! a classic BPF filter that keeps IPv4 and IPv6 packets of its direction
//! only (ingress: what arrives; egress: what the host sends,
//! `PACKET_OUTGOING`) and cuts them at [`SNAP_BYTES`], so no other packet
//! is ever copied to user space. Packets come from their network header
//! (`SOCK_DGRAM`), whatever the link type, and go through the same decoder
//! and the same rules as a replay ([`crate::replay`]: tunnels opened,
//! flows sampled, first payloads as banners), so the events are the
//! eBPF observers' for the same traffic.
//!
//! What differs from the eBPF [`crate::Capture`]:
//! - observe only: there is no drop map ([`Sensor::ban_table`] is `None`);
//! - each socket is its own queue, so the packets of one round of reads
//!   are gathered from every socket and handed on in the order the kernel
//!   received them (each packet is stamped as it is queued,
//!   `SO_TIMESTAMPNS`): a SYN on one interface and its SYN-ACK on another
//!   keep their order. An event's time is the packet's stamp (Unix time,
//!   as the kernel observers' events are once decoded);
//! - `wire_len` is the packet's length from its network header, cut at
//!   [`SNAP_BYTES`];
//! - packets the sockets' buffers had no room for are counted as lost
//!   from `PACKET_STATISTICS`;
//! - every packet costs a copy and a system call: the eBPF observers copy
//!   only the few packets that make events.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use edgewise_packet::{LinkType, decode};
use edgewise_time::UnixNanos;

use crate::attach::{AttachMode, Attachment};
use crate::bans::BanTable;
use crate::event::{Direction, Event, EventError};
use crate::follow::Sensor;
use crate::replay::{Replay, ReplayConfig};
use crate::{CaptureConfig, CaptureError, Counters, sys};

/// The most packets read from one socket in one round (a round holds at
/// most this many [`SNAP_BYTES`] packets per socket).
const PACKETS_PER_ROUND: usize = 256;

/// The most bytes of a packet read, from its network header: room for
/// tunnel headers, a UDP header and a 4,096-byte DNS payload (a longer
/// TCP segment from port 53 is cut here, and its stream with it).
pub const SNAP_BYTES: u32 = 4096 + 256;

/// The classic BPF program of one socket (see the module docs).
fn filter(direction: Direction) -> Vec<libc::sock_filter> {
    // Ancillary loads (linux/filter.h): SKF_AD_OFF + SKF_AD_PROTOCOL / _PKTTYPE.
    const SKF_AD_OFF: u32 = (-0x1000_i32).cast_unsigned();
    const SKF_AD_PROTOCOL: u32 = 0;
    const SKF_AD_PKTTYPE: u32 = 4;
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    // Instruction 1 jumps to 6 (refuse) when the direction is not ours.
    let (when_outgoing, when_not) = if direction == Direction::Egress {
        (0, 4)
    } else {
        (4, 0)
    };
    vec![
        op(LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_PKTTYPE),
        op(
            JEQ_K,
            when_outgoing,
            when_not,
            u32::from(sys::PACKET_OUTGOING),
        ),
        op(LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_PROTOCOL),
        op(JEQ_K, 1, 0, 0x0800),
        op(JEQ_K, 0, 1, 0x86dd),
        op(RET_K, 0, 0, SNAP_BYTES),
        op(RET_K, 0, 0, 0),
    ]
}

/// Packet sockets on interfaces, their packets turned into events (see the
/// module docs). Dropping it closes them.
pub struct PacketCapture {
    config: CaptureConfig,
    attachments: Vec<Attachment>,
    /// The sockets of `attachments`, in the same order.
    sockets: Vec<OwnedFd>,
    replay: Replay,
    buffer: Vec<u8>,
    /// One round's packets, their bytes one after another, and for each
    /// (received ns, socket, start, length); sorted before they are used.
    round: Vec<u8>,
    received: Vec<(u64, usize, usize, usize)>,
    events: u64,
    /// Drops counted by sockets since closed, and by the open ones.
    lost: u64,
}

impl PacketCapture {
    /// A capture with no socket yet: `config` gives the namespace, the
    /// sockets' buffer size (`ring_bytes`), the DNS payload size, the flow
    /// sampling window and the egress source networks (applied here, to
    /// the decoded packet); its interface lists and modes are not read.
    pub fn new(config: &CaptureConfig) -> Self {
        Self {
            replay: Replay::new(ReplayConfig {
                dns_max_payload: config.dns_max_payload,
                flow_sample_window: config.flow_sample_window,
                ..ReplayConfig::default()
            }),
            config: config.clone(),
            attachments: Vec::new(),
            sockets: Vec::new(),
            buffer: vec![0; usize::try_from(SNAP_BYTES).unwrap_or(2048)],
            round: Vec::new(),
            received: Vec::new(),
            events: 0,
            lost: 0,
        }
    }

    fn read_lost(&mut self, socket: usize) {
        if let Ok((_, drops)) = sys::packet_statistics(self.sockets[socket].as_fd()) {
            self.lost += drops;
        }
    }
}

/// Whether an egress packet is from the configured source networks (any
/// packet when there are none; an ingress packet always).
fn from_sources(sources: &[ipnet::IpNet], direction: Direction, event: &Event<'_>) -> bool {
    direction != Direction::Egress
        || sources.is_empty()
        || sources.iter().any(|net| net.contains(&event.src.ip()))
}

impl Sensor for PacketCapture {
    fn attach_interface(
        &mut self,
        interface: &str,
        direction: Direction,
    ) -> Result<Attachment, CaptureError> {
        let open = || {
            let interface = crate::attach::resolve(interface)?;
            let index = sys::if_index(&interface).map_err(|source| CaptureError::NoInterface {
                interface: interface.clone(),
                source,
            })?;
            let socket = sys::packet_socket(index, &filter(direction), self.config.ring_bytes)
                .map_err(|source| CaptureError::Socket {
                    interface: interface.clone(),
                    source,
                })?;
            Ok((interface, index, socket))
        };
        let (interface, index, socket) = match &self.config.netns {
            Some(netns) => sys::in_netns(netns, open).map_err(CaptureError::Netns)??,
            None => open()?,
        };
        if let Some(existing) = self
            .attachments
            .iter()
            .find(|a| a.index == index && a.direction == direction)
        {
            return Ok(existing.clone());
        }
        let attachment = Attachment {
            interface,
            index,
            direction,
            mode: AttachMode::AfPacket,
            program: "af_packet",
        };
        self.attachments.push(attachment.clone());
        self.sockets.push(socket);
        Ok(attachment)
    }

    fn detach_interface(&mut self, index: u32) -> Vec<Attachment> {
        let mut detached = Vec::new();
        let mut at = 0;
        while at < self.attachments.len() {
            if self.attachments[at].index == index {
                self.read_lost(at);
                self.sockets.remove(at);
                detached.push(self.attachments.remove(at));
            } else {
                at += 1;
            }
        }
        detached
    }

    fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    fn poll_events(
        &mut self,
        timeout: Duration,
        on_event: &mut dyn FnMut(Result<Event<'_>, EventError>),
    ) -> Result<usize, CaptureError> {
        let fds: Vec<_> = self.sockets.iter().map(AsFd::as_fd).collect();
        if !sys::wait_any(&fds, timeout).map_err(CaptureError::Poll)? {
            return Ok(0);
        }
        // Gather the round from every socket, then hand it on in the
        // order the kernel received it.
        self.round.clear();
        self.received.clear();
        for at in 0..self.sockets.len() {
            // Bounded per socket and round, so a busy interface cannot
            // starve the others or the caller's loop.
            for _ in 0..PACKETS_PER_ROUND {
                let socket = self.sockets[at].as_fd();
                let Some((length, _)) =
                    sys::receive_packet(socket, &mut self.buffer).map_err(CaptureError::Poll)?
                else {
                    break;
                };
                let received =
                    sys::packet_received_ns(socket).unwrap_or_else(|_| sys::realtime_ns());
                self.received.push((received, at, self.round.len(), length));
                self.round.extend_from_slice(&self.buffer[..length]);
            }
        }
        // Stable: packets of one socket stamped alike keep their order.
        self.received.sort_by_key(|(received, ..)| *received);
        for &(received, at, start, length) in &self.received {
            let (index, direction) = (self.attachments[at].index, self.attachments[at].direction);
            let now = UnixNanos::from_nanos(received);
            let Ok(packet) = decode(LinkType::RawIp, &self.round[start..start + length]) else {
                continue;
            };
            let wire_len = u32::try_from(length).unwrap_or(u32::MAX);
            let (sources, events) = (&self.config.egress_sources, &mut self.events);
            self.replay.packet(now, wire_len, &packet, |event| {
                let event = Event {
                    direction,
                    ifindex: index,
                    ..event
                };
                if from_sources(sources, direction, &event) {
                    *events += 1;
                    on_event(Ok(event));
                }
            });
        }
        let read = self.received.len();
        Ok(read)
    }

    fn counters(&mut self) -> Result<Counters, CaptureError> {
        for at in 0..self.sockets.len() {
            self.read_lost(at);
        }
        Ok(Counters {
            events: self.events,
            lost: self.lost,
            ..Counters::default()
        })
    }

    fn ban_table(&mut self) -> Option<&mut BanTable> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_jumps_land_on_its_two_returns() {
        for direction in [Direction::Ingress, Direction::Egress] {
            let program = filter(direction);
            let refuse = program.len() - 1;
            let accept = program.len() - 2;
            let target = |at: usize, jump: u8| at + 1 + usize::from(jump);
            // The direction test refuses one way and goes on the other.
            let (jt, jf) = (target(1, program[1].jt), target(1, program[1].jf));
            if direction == Direction::Egress {
                assert_eq!((jt, jf), (2, refuse));
            } else {
                assert_eq!((jt, jf), (refuse, 2));
            }
            assert_eq!(target(3, program[3].jt), accept);
            assert_eq!(
                (target(4, program[4].jt), target(4, program[4].jf)),
                (accept, refuse)
            );
            assert_eq!(program[accept].k, SNAP_BYTES);
            assert_eq!(program[refuse].k, 0);
        }
    }
}
