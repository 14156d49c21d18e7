//! The fixed 12-byte DNS header (RFC 1035 section 4.1.1) and its codes.

use core::fmt;

/// The DNS header: id, flags and the four section counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Transaction id.
    pub id: u16,
    /// The flags word: QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode.
    pub flags: u16,
    /// Entries in the question section.
    pub question_count: u16,
    /// Records in the answer section.
    pub answer_count: u16,
    /// Records in the authority section.
    pub authority_count: u16,
    /// Records in the additional section.
    pub additional_count: u16,
}

impl Header {
    pub(crate) fn from_bytes(bytes: &[u8; 12]) -> Self {
        let word = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        Self {
            id: word(0),
            flags: word(2),
            question_count: word(4),
            answer_count: word(6),
            authority_count: word(8),
            additional_count: word(10),
        }
    }

    /// QR: the message is a response (not a query).
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// The 4-bit opcode (0 is a standard query).
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }

    /// TC: the server truncated the message (the client should retry over TCP).
    pub fn is_truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }

    /// AA: the answer is authoritative.
    pub fn is_authoritative(&self) -> bool {
        self.flags & 0x0400 != 0
    }

    /// The 4-bit response code from the header (EDNS extended bits are not
    /// merged in).
    pub fn rcode(&self) -> Rcode {
        Rcode((self.flags & 0x000f) as u8)
    }
}

/// A response code. Unknown values are kept, never rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rcode(pub u8);

impl Rcode {
    /// No error.
    pub const NOERROR: Self = Self(0);
    /// The server could not interpret the query.
    pub const FORMERR: Self = Self(1);
    /// The server failed.
    pub const SERVFAIL: Self = Self(2);
    /// The name does not exist.
    pub const NXDOMAIN: Self = Self(3);
    /// The server does not implement the query kind.
    pub const NOTIMP: Self = Self(4);
    /// The server refused.
    pub const REFUSED: Self = Self(5);

    /// The mnemonic from the IANA registry, if this code has one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            6 => "YXDOMAIN",
            7 => "YXRRSET",
            8 => "NXRRSET",
            9 => "NOTAUTH",
            10 => "NOTZONE",
            11 => "DSOTYPENI",
            _ => return None,
        })
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "RCODE{}", self.0),
        }
    }
}

/// A record type. Unknown values are kept, never rejected, and shown as
/// `TYPE<n>` (RFC 3597).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordType(pub u16);

impl RecordType {
    /// IPv4 address.
    pub const A: Self = Self(1);
    /// Name server.
    pub const NS: Self = Self(2);
    /// Canonical name (alias).
    pub const CNAME: Self = Self(5);
    /// Start of authority.
    pub const SOA: Self = Self(6);
    /// Pointer (reverse lookups).
    pub const PTR: Self = Self(12);
    /// Mail exchange.
    pub const MX: Self = Self(15);
    /// Text.
    pub const TXT: Self = Self(16);
    /// IPv6 address.
    pub const AAAA: Self = Self(28);
    /// Service locator.
    pub const SRV: Self = Self(33);
    /// EDNS(0) pseudo-record.
    pub const OPT: Self = Self(41);
    /// Service binding.
    pub const SVCB: Self = Self(64);
    /// HTTPS service binding.
    pub const HTTPS: Self = Self(65);
    /// Any (queries only).
    pub const ANY: Self = Self(255);

    /// The mnemonic, for the types this crate names.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::A => "A",
            Self::NS => "NS",
            Self::CNAME => "CNAME",
            Self::SOA => "SOA",
            Self::PTR => "PTR",
            Self::MX => "MX",
            Self::TXT => "TXT",
            Self::AAAA => "AAAA",
            Self::SRV => "SRV",
            Self::OPT => "OPT",
            Self::SVCB => "SVCB",
            Self::HTTPS => "HTTPS",
            Self::ANY => "ANY",
            _ => return None,
        })
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "TYPE{}", self.0),
        }
    }
}

/// The Internet class, the only one mappings are learned from.
pub const CLASS_IN: u16 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_codes() {
        let header = Header::from_bytes(&[0x12, 0x34, 0x86, 0x83, 0, 1, 0, 2, 0, 3, 0, 4]);
        assert_eq!(header.id, 0x1234);
        assert!(header.is_response() && header.is_authoritative() && header.is_truncated());
        assert_eq!(header.opcode(), 0);
        assert_eq!(header.rcode(), Rcode::NXDOMAIN);
        assert_eq!(header.rcode().to_string(), "NXDOMAIN");
        assert_eq!(Rcode(14).to_string(), "RCODE14");
        assert_eq!((header.question_count, header.additional_count), (1, 4));
        assert_eq!(RecordType(99).to_string(), "TYPE99");
        assert_eq!(RecordType::AAAA.to_string(), "AAAA");
    }
}
