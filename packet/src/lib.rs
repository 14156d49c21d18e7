//! Packet decoding for edgewise: capture files in, innermost IP packets out.
//!
//! - [`CaptureReader`] reads pcap and pcapng files frame by frame from any
//!   `Read` (it opens nothing itself).
//! - [`decode`] turns one frame of a given [`LinkType`] (Ethernet, BSD
//!   loopback, Linux cooked SLL / SLL2, raw IP) into a [`Packet`]: VLAN tags,
//!   IPv4 and IPv6 with extension headers, and tunnels (IP-in-IP, GRE,
//!   ERSPAN, VXLAN, VXLAN-GPE, Geneve) opened on the way.
//! - [`Packet::transport`] gives the TCP segment or UDP datagram inside.
//!
//! Sans-IO apart from the caller's `Read`; decoding never allocates and never
//! panics on any input (fuzzed: `fuzz/fuzz_targets/packet_decode.rs`). Link
//! and IP headers are parsed by `etherparse`; tunnel and link headers it does
//! not know are parsed here.
//!
//! ```
//! use edgewise_packet::{LinkType, Transport, decode};
//!
//! // An IPv4 UDP datagram from 10.0.0.1:5353 to 10.0.0.2:53, raw IP link.
//! let frame = [
//!     0x45, 0, 0, 29, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
//!     0x14, 0xe9, 0, 53, 0, 9, 0, 0, b'x',
//! ];
//! let packet = decode(LinkType::RawIp, &frame)?;
//! assert_eq!(packet.src.to_string(), "10.0.0.1");
//! assert!(matches!(packet.transport(), Transport::Udp { dst_port: 53, payload: b"x", .. }));
//! # Ok::<(), edgewise_packet::DecodeError>(())
//! ```

#![forbid(unsafe_code)]

mod capture;
mod decode;
mod error;
mod link;
mod packet;
mod tcp;
mod tunnel;

pub use capture::{CaptureReader, Frame, OwnedFrame};
pub use decode::{MAX_TUNNEL_DEPTH, decode};
pub use edgewise_time as time;
pub use error::{CaptureError, DecodeError};
pub use link::LinkType;
pub use packet::{Packet, Transport, ip_protocol};
pub use tcp::TcpFlags;

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{CaptureReader, LinkType, decode};

    /// Decodes arbitrary bytes as every link type; must never panic.
    pub fn decode_any(data: &[u8]) {
        for link in [0, 1, 101, 108, 113, 276] {
            if let Ok(packet) = decode(LinkType::from_linktype(link), data) {
                let _ = packet.transport();
            }
        }
    }

    /// Reads arbitrary bytes as a capture file; must never panic or loop.
    pub fn read_capture(data: &[u8]) {
        if let Ok(mut reader) = CaptureReader::new(data) {
            while let Some(Ok(frame)) = reader.next_frame() {
                let _ = decode(frame.link, frame.data);
            }
        }
    }
}
