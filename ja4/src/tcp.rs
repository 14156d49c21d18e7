//! A checked, zero-copy view of a TCP header (RFC 9293 section 3.1).
//!
//! Contract: [`TcpHeader::new_checked`] verifies once that the fixed 20 bytes
//! are present, that the data offset is at least 5 and that the whole header
//! (options included) lies inside the buffer. After that no accessor can
//! panic. Nothing here allocates.

use core::fmt;

use crate::Ja4Error;

/// Byte offsets of the fixed TCP header fields.
mod field {
    use core::ops::Range;

    pub(crate) const SRC_PORT: Range<usize> = 0..2;
    pub(crate) const DST_PORT: Range<usize> = 2..4;
    pub(crate) const SEQ: Range<usize> = 4..8;
    pub(crate) const ACK: Range<usize> = 8..12;
    pub(crate) const DATA_OFFSET: usize = 12;
    pub(crate) const FLAGS: usize = 13;
    pub(crate) const WINDOW: Range<usize> = 14..16;
    pub(crate) const OPTIONS_START: usize = 20;
}

/// Length of the fixed part of a TCP header.
pub const TCP_FIXED_HEADER_LEN: usize = field::OPTIONS_START;

/// The eight TCP flag bits of header byte 13.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN: no more data from sender.
    pub const FIN: u8 = 0x01;
    /// SYN: synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// RST: reset the connection.
    pub const RST: u8 = 0x04;
    /// PSH: push function.
    pub const PSH: u8 = 0x08;
    /// ACK: acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// URG: urgent pointer field is significant.
    pub const URG: u8 = 0x20;
    /// ECE: ECN-Echo (RFC 3168).
    pub const ECE: u8 = 0x40;
    /// CWR: congestion window reduced (RFC 3168).
    pub const CWR: u8 = 0x80;

    /// The flags with the two ECN bits (ECE, CWR) cleared.
    pub fn without_ecn(self) -> u8 {
        self.0 & !(Self::ECE | Self::CWR)
    }

    /// A connection-opening SYN: SYN set, ACK clear, nothing else but ECN bits.
    ///
    /// ECN bits are allowed on purpose: Linux with `tcp_ecn=1` and many Apple
    /// stacks open connections with `SYN|ECE|CWR`, and FoxIO's plugin would
    /// skip them (a documented deviation of this crate).
    pub fn is_syn(self) -> bool {
        self.without_ecn() == Self::SYN
    }

    /// A SYN-ACK: SYN and ACK set, nothing else but ECN bits.
    pub fn is_syn_ack(self) -> bool {
        self.without_ecn() == Self::SYN | Self::ACK
    }

    /// A bare RST: the flags are exactly RST (RST-ACK is not bare).
    pub fn is_bare_rst(self) -> bool {
        self.0 == Self::RST
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({:#04x})", self.0)
    }
}

/// A view of a TCP header over any byte buffer.
#[derive(Debug, Clone, Copy)]
pub struct TcpHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpHeader<T> {
    /// Wraps `buffer` (which starts at the first byte of the TCP header) after
    /// checking its length; the buffer may continue with payload.
    ///
    /// # Errors
    /// [`Ja4Error::Truncated`], [`Ja4Error::DataOffsetTooSmall`] or
    /// [`Ja4Error::OptionsTruncated`] when the header does not fit.
    pub fn new_checked(buffer: T) -> Result<Self, Ja4Error> {
        let header = TcpHeader { buffer };
        header.check_len()?;
        Ok(header)
    }

    /// Checks that the whole header lies inside the buffer.
    ///
    /// # Errors
    /// As [`TcpHeader::new_checked`].
    pub fn check_len(&self) -> Result<(), Ja4Error> {
        let data = self.buffer.as_ref();
        if data.len() < TCP_FIXED_HEADER_LEN {
            return Err(Ja4Error::Truncated {
                available: data.len(),
            });
        }
        let data_offset = data[field::DATA_OFFSET] >> 4;
        if data_offset < 5 {
            return Err(Ja4Error::DataOffsetTooSmall { data_offset });
        }
        let header_len = usize::from(data_offset) * 4;
        if header_len > data.len() {
            return Err(Ja4Error::OptionsTruncated {
                header_len,
                available: data.len(),
            });
        }
        Ok(())
    }

    fn be16(&self, range: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[range];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn be32(&self, range: core::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[range];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.be16(field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.be16(field::DST_PORT)
    }

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        self.be32(field::SEQ)
    }

    /// Acknowledgment number.
    pub fn ack(&self) -> u32 {
        self.be32(field::ACK)
    }

    /// Header length in bytes (data offset times four), 20 to 60.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The flags byte.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The raw 16-bit receive window (not scaled).
    pub fn window(&self) -> u16 {
        self.be16(field::WINDOW)
    }

    /// The option bytes (0 to 40 of them).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS_START..self.header_len()]
    }

    /// The bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}
