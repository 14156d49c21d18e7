//! The decoded view of one frame: the innermost IP packet and its transport.

use core::net::IpAddr;

use crate::TcpFlags;

/// IP protocol numbers this crate names.
pub mod ip_protocol {
    /// IPv4 in IP.
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 in IP.
    pub const IPV6: u8 = 41;
    /// Generic Routing Encapsulation.
    pub const GRE: u8 = 47;
}

/// An IP packet found in a frame, after every tunnel was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Source address of the innermost IP header.
    pub src: IpAddr,
    /// Destination address of the innermost IP header.
    pub dst: IpAddr,
    /// The transport protocol number (after IPv6 extension headers).
    pub protocol: u8,
    /// The transport bytes: header and payload, up to the IP length or the
    /// end of the capture, whichever comes first.
    pub transport_bytes: &'a [u8],
    /// The capture cut the IP payload short of what the IP header declares.
    pub truncated: bool,
    /// The IP payload is a fragment; the transport header may be absent.
    pub fragment: bool,
    /// How many tunnels (GRE, ERSPAN, VXLAN, Geneve, IP-in-IP) were opened.
    pub tunnel_depth: u8,
}

/// The transport layer of a [`Packet`]. It may grow variants (ICMP, SCTP)
/// and its variants fields: match them with `..` and a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport<'a> {
    /// A TCP segment (a header of at least 20 bytes was captured).
    #[non_exhaustive]
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgement number (meaningful when `flags` has ACK).
        ack: u32,
        /// The flag bits.
        flags: TcpFlags,
        /// The bytes after the header (its data offset, options included),
        /// up to the IP length or the end of the capture; empty when the
        /// data offset is below 20 bytes or past what was captured.
        payload: &'a [u8],
        /// The whole segment, from the first byte of the TCP header.
        segment: &'a [u8],
    },
    /// A UDP datagram.
    #[non_exhaustive]
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// The payload, bounded by the UDP length field and the capture.
        payload: &'a [u8],
        /// The UDP length field disagrees with the IP payload length
        /// (a classic way to make decoders read different data).
        length_mismatch: bool,
    },
    /// A fragment, a truncated transport header, or another protocol.
    Other,
}

impl<'a> Packet<'a> {
    /// The transport view: TCP and UDP with their ports, anything else (and
    /// any fragment, or a header cut short by the capture) as `Other`.
    pub fn transport(&self) -> Transport<'a> {
        if self.fragment {
            return Transport::Other;
        }
        let bytes = self.transport_bytes;
        match self.protocol {
            ip_protocol::TCP if bytes.len() >= 20 => {
                let header_len = usize::from(bytes[12] >> 4) * 4;
                Transport::Tcp {
                    src_port: u16::from_be_bytes([bytes[0], bytes[1]]),
                    dst_port: u16::from_be_bytes([bytes[2], bytes[3]]),
                    seq: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
                    ack: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
                    flags: TcpFlags::from_bits(bytes[13]),
                    payload: bytes
                        .get(header_len.max(20)..)
                        .filter(|_| header_len >= 20)
                        .unwrap_or(&[]),
                    segment: bytes,
                }
            }
            ip_protocol::UDP => udp(bytes).map_or(Transport::Other, |u| Transport::Udp {
                src_port: u.src_port,
                dst_port: u.dst_port,
                payload: u.payload,
                length_mismatch: u.length_mismatch,
            }),
            _ => Transport::Other,
        }
    }
}

pub(crate) struct Udp<'a> {
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) payload: &'a [u8],
    pub(crate) length_mismatch: bool,
}

/// Reads a UDP header (RFC 768). The payload ends where the length field
/// says, or at the end of the capture if that comes first.
pub(crate) fn udp(bytes: &[u8]) -> Option<Udp<'_>> {
    let (header, rest) = bytes.split_first_chunk::<8>()?;
    let declared = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let payload_len = declared.saturating_sub(8).min(rest.len());
    Some(Udp {
        src_port: u16::from_be_bytes([header[0], header[1]]),
        dst_port: u16::from_be_bytes([header[2], header[3]]),
        payload: &rest[..payload_len],
        length_mismatch: declared != bytes.len(),
    })
}
