//! TCP header fields an observer asks first: flags, sequence and
//! acknowledgement numbers, where the payload starts (RFC 9293 section 3.1).

use core::fmt;

/// The flag bits of a TCP header (byte 13): `CWR ECE URG ACK PSH RST SYN FIN`.
///
/// ```
/// use edgewise_packet::TcpFlags;
///
/// let syn_ack = TcpFlags::from_bits(0x12);
/// assert!(syn_ack.contains(TcpFlags::SYN | TcpFlags::ACK));
/// assert!(!syn_ack.is_syn());
/// assert_eq!(syn_ack.to_string(), "SA");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: Self = Self(0x01);
    /// Synchronise sequence numbers (opens a connection).
    pub const SYN: Self = Self(0x02);
    /// Reset the connection.
    pub const RST: Self = Self(0x04);
    /// Push.
    pub const PSH: Self = Self(0x08);
    /// The acknowledgement number is significant.
    pub const ACK: Self = Self(0x10);
    /// The urgent pointer is significant.
    pub const URG: Self = Self(0x20);
    /// ECN echo (RFC 3168).
    pub const ECE: Self = Self(0x40);
    /// Congestion window reduced (RFC 3168).
    pub const CWR: Self = Self(0x80);

    /// The flags of a header's byte 13, as they are.
    #[must_use]
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits)
    }

    /// The flag byte.
    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// A connection's first segment: SYN without ACK.
    #[must_use]
    pub const fn is_syn(self) -> bool {
        self.contains(Self::SYN) && !self.contains(Self::ACK)
    }

    /// A server's answer to a SYN: SYN and ACK.
    #[must_use]
    pub const fn is_syn_ack(self) -> bool {
        self.contains(Self::SYN) && self.contains(Self::ACK)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = Self;
    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// One letter per flag set, in tcpdump's order (`S`, `F`, `P`, `R`, `U`,
/// `E`, `W` for SYN, FIN, PSH, RST, URG, ECE, CWR), then `A` for ACK: `SA`
/// for a SYN-ACK, `PA` for pushed data; `.` when no flag is set.
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LETTERS: [(TcpFlags, char); 8] = [
            (TcpFlags::SYN, 'S'),
            (TcpFlags::FIN, 'F'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
            (TcpFlags::ACK, 'A'),
        ];
        let mut any = false;
        for (flag, letter) in LETTERS {
            if self.contains(flag) {
                write!(f, "{letter}")?;
                any = true;
            }
        }
        if !any {
            f.write_str(".")?;
        }
        Ok(())
    }
}
