//! Frame decoding: link layer, IP, tunnels, down to the innermost packet.
//!
//! Contract: [`decode`] never panics and never allocates. It reads the link
//! header of the capture's [`LinkType`], VLAN tags (802.1Q, `QinQ`), IPv4 (with
//! options) or IPv6 (with extension headers), then opens tunnels — IP-in-IP,
//! GRE, ERSPAN I/II/III, VXLAN, VXLAN-GPE, Geneve — up to
//! [`MAX_TUNNEL_DEPTH`] deep. A tunnel whose inner frame does not decode is
//! left closed: the outer packet is returned, never an error. A capture cut
//! short inside the IP payload is normal and flagged in
//! [`Packet::truncated`].

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, err::Layer};

use crate::link;
use crate::packet::{ip_protocol, udp};
use crate::tunnel::{self, Inner};
use crate::{DecodeError, LinkType, Packet};

/// How many tunnels [`decode`] opens, at most, inside one frame.
pub const MAX_TUNNEL_DEPTH: u8 = 4;

/// Decodes one captured frame of the given link type down to its innermost
/// IP packet.
///
/// # Errors
/// [`DecodeError`] when the frame holds no IP packet or its outermost
/// headers are malformed.
pub fn decode(link: LinkType, frame: &[u8]) -> Result<Packet<'_>, DecodeError> {
    match link {
        LinkType::Ethernet => ethernet(frame, 0),
        LinkType::RawIp => ip(frame, 0),
        LinkType::Null => ip(link::strip_bsd_loopback(frame, false)?, 0),
        LinkType::Loop => ip(link::strip_bsd_loopback(frame, true)?, 0),
        LinkType::LinuxSll | LinkType::LinuxSll2 => {
            let (ether_type, rest) = link::strip_sll(frame, link == LinkType::LinuxSll2)?;
            ether_payload(ether_type, rest, 0)
        }
        LinkType::Unknown(_) => Err(DecodeError::UnsupportedLinkType(link)),
    }
}

fn ethernet(frame: &[u8], depth: u8) -> Result<Packet<'_>, DecodeError> {
    let sliced = LaxSlicedPacket::from_ethernet(frame).map_err(|_| DecodeError::LinkTruncated {
        available: frame.len(),
    })?;
    from_sliced(&sliced, depth)
}

fn ether_payload(ether_type: u16, data: &[u8], depth: u8) -> Result<Packet<'_>, DecodeError> {
    from_sliced(
        &LaxSlicedPacket::from_ether_type(EtherType(ether_type), data),
        depth,
    )
}

fn ip(data: &[u8], depth: u8) -> Result<Packet<'_>, DecodeError> {
    let sliced = LaxSlicedPacket::from_ip(data)
        .map_err(|_| DecodeError::Ip("no valid IPv4 or IPv6 header"))?;
    from_sliced(&sliced, depth)
}

fn from_sliced<'a>(sliced: &LaxSlicedPacket<'a>, depth: u8) -> Result<Packet<'a>, DecodeError> {
    let (src, dst, payload) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
            v4.payload(),
        ),
        Some(LaxNetSlice::Ipv6(v6)) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
            v6.payload(),
        ),
        Some(LaxNetSlice::Arp(_)) | None => return Err(not_ip(sliced)),
    };
    let packet = Packet {
        src,
        dst,
        protocol: payload.ip_number.0,
        transport_bytes: payload.payload,
        truncated: payload.incomplete,
        fragment: payload.fragmented,
        tunnel_depth: depth,
    };
    Ok(open_tunnel(packet))
}

fn not_ip(sliced: &LaxSlicedPacket<'_>) -> DecodeError {
    match &sliced.stop_err {
        Some((_, Layer::Ethernet2Header | Layer::VlanHeader | Layer::LinuxSllHeader)) => {
            DecodeError::LinkTruncated {
                available: sliced.ether_payload().map_or(0, |p| p.payload.len()),
            }
        }
        Some((_, layer)) => DecodeError::Ip(layer.error_title()),
        None => DecodeError::NotIp {
            ether_type: sliced.ether_payload().map_or(0, |p| p.ether_type.0),
        },
    }
}

/// Opens the tunnel `outer` carries, if any, keeping `outer` when the inner
/// frame does not decode or the depth limit is reached.
fn open_tunnel(outer: Packet<'_>) -> Packet<'_> {
    if outer.fragment || outer.tunnel_depth >= MAX_TUNNEL_DEPTH {
        return outer;
    }
    let bytes = outer.transport_bytes;
    let inner = match outer.protocol {
        ip_protocol::GRE => tunnel::gre(bytes),
        ip_protocol::IPIP | ip_protocol::IPV6 => Some(Inner::Ip(bytes)),
        ip_protocol::UDP => {
            udp(bytes).and_then(|u| tunnel::udp_tunnel(u.src_port, u.dst_port, u.payload))
        }
        _ => None,
    };
    let depth = outer.tunnel_depth + 1;
    let decoded = match inner {
        Some(Inner::Ethernet(frame)) => ethernet(frame, depth),
        Some(Inner::Ip(packet)) => ip(packet, depth),
        None => return outer,
    };
    decoded.unwrap_or(outer)
}
