//! Errors of packet decoding and capture reading.

use thiserror::Error;

use crate::LinkType;

/// Why a frame could not be decoded down to an IP packet. Small and `Copy`:
/// it is returned on the per-packet path; [`DecodeError::reason`] is a stable
/// label to count by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The capture's link type is not one this crate decodes.
    #[error("unsupported link type {0:?}")]
    UnsupportedLinkType(LinkType),
    /// The link-layer header is cut short.
    #[error("link-layer header truncated ({available} bytes)")]
    LinkTruncated {
        /// Bytes that were available.
        available: usize,
    },
    /// The frame carries something other than IPv4 or IPv6 (ARP, LLDP, ...).
    #[error("not an IP packet (ether type {ether_type:#06x})")]
    NotIp {
        /// The ether type (or BSD address family) that was found.
        ether_type: u16,
    },
    /// The IP header is malformed or cut short.
    #[error("malformed IP header: {0}")]
    Ip(&'static str),
}

impl DecodeError {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::UnsupportedLinkType(_) => "unsupported_link_type",
            DecodeError::LinkTruncated { .. } => "link_truncated",
            DecodeError::NotIp { .. } => "not_ip",
            DecodeError::Ip(_) => "ip",
        }
    }
}

/// Why a capture file could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The input starts with neither a pcap nor a pcapng header.
    #[error("not a pcap or pcapng file")]
    NotACapture,
    /// The input is empty.
    #[error("empty input: no capture header")]
    Empty,
    /// Reading from the underlying reader failed.
    #[error("read failed at byte {offset}")]
    Read {
        /// Bytes consumed before the failure.
        offset: u64,
    },
    /// The file ends in the middle of a block or packet record.
    #[error("capture truncated at byte {offset}: the last record is incomplete")]
    Truncated {
        /// Bytes consumed before the incomplete record.
        offset: u64,
    },
    /// A block or record is malformed.
    #[error("malformed capture record at byte {offset}: {detail}")]
    Malformed {
        /// Bytes consumed before the bad record.
        offset: u64,
        /// What the parser said.
        detail: String,
    },
    /// A record is larger than the reader's limit.
    #[error("capture record at byte {offset} is larger than the {limit}-byte limit")]
    RecordTooLarge {
        /// Bytes consumed before the record.
        offset: u64,
        /// The limit in force.
        limit: usize,
    },
    /// A pcapng packet names an interface that no Interface Description
    /// Block declared.
    #[error("pcapng packet names undeclared interface {interface} at byte {offset}")]
    UnknownInterface {
        /// The interface id.
        interface: u32,
        /// Bytes consumed before the packet.
        offset: u64,
    },
}
