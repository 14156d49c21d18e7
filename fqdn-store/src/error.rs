//! The crate's errors: [`DnsError`] on the per-message path (small, `Copy`,
//! countable by reason) and [`MatcherError`] for name matchers built from
//! operator input.

use thiserror::Error;

/// Why a DNS message was rejected. A rejected message is rejected whole:
/// nothing from it reaches the store.
///
/// Offsets are byte offsets from the first byte of the DNS header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum DnsError {
    /// Fewer than the 12 bytes of a DNS header.
    #[error("DNS header truncated: {available} of 12 bytes")]
    HeaderTruncated {
        /// Bytes that were available.
        available: usize,
    },
    /// A name, a record's fixed fields or its data run past the end of the
    /// message (also what a header count larger than the records present
    /// looks like).
    #[error("message truncated at offset {offset} while reading {reading}")]
    Truncated {
        /// Where the missing bytes should have started.
        offset: usize,
        /// What was being read ("name", "question", "record", "rdata").
        reading: &'static str,
    },
    /// A compression pointer that does not point strictly backwards, before
    /// the start of the name (or name part) that contains it.
    #[error("compression pointer at offset {offset} points forward or at itself (to {target})")]
    ForwardPointer {
        /// Offset of the pointer.
        offset: usize,
        /// Where it points.
        target: usize,
    },
    /// A compression pointer into the 12-byte header.
    #[error("compression pointer at offset {offset} points into the header (to {target})")]
    PointerIntoHeader {
        /// Offset of the pointer.
        offset: usize,
        /// Where it points.
        target: usize,
    },
    /// A label length byte with the reserved top bits `01` or `10`
    /// (this is also how a label longer than 63 bytes shows on the wire).
    #[error("reserved label type {byte:#04x} at offset {offset}")]
    ReservedLabelType {
        /// Offset of the length byte.
        offset: usize,
        /// The length byte.
        byte: u8,
    },
    /// A name longer than 255 bytes in wire form (RFC 1035 section 2.3.4).
    #[error("name starting at offset {offset} is longer than 255 bytes")]
    NameTooLong {
        /// Offset of the name.
        offset: usize,
    },
    /// An A record whose data is not 4 bytes, or an AAAA record whose data is
    /// not 16 bytes.
    #[error("{record_type} record at offset {offset} has {rdlength} bytes of data")]
    BadAddressLength {
        /// Offset of the record.
        offset: usize,
        /// "A" or "AAAA".
        record_type: &'static str,
        /// The record's RDLENGTH.
        rdlength: u16,
    },
    /// A CNAME whose target name does not fill its RDLENGTH exactly.
    #[error(
        "CNAME record at offset {offset}: target name is {name_len} bytes, RDLENGTH {rdlength}"
    )]
    BadCnameLength {
        /// Offset of the record.
        offset: usize,
        /// Bytes the name took in place.
        name_len: usize,
        /// The record's RDLENGTH.
        rdlength: u16,
    },
    /// Bytes left over after the last record the header counts.
    #[error("{extra} bytes after the last record (message ends at offset {end})")]
    TrailingBytes {
        /// Where the counted records end.
        end: usize,
        /// How many bytes follow.
        extra: usize,
    },
    /// A TCP stream lost bytes (a gap in sequence numbers), so the 2-byte
    /// length framing can no longer be trusted; the stream is dropped.
    #[error("TCP stream gap: expected sequence {expected}, got {got}")]
    StreamGap {
        /// The next sequence number that was expected.
        expected: u32,
        /// The sequence number of the segment that arrived.
        got: u32,
    },
}

impl DnsError {
    /// Every reason label, in the order of [`DnsError::index`].
    pub const REASONS: [&'static str; 10] = [
        "header-truncated",
        "truncated",
        "forward-pointer",
        "pointer-into-header",
        "reserved-label-type",
        "name-too-long",
        "bad-address-length",
        "bad-cname-length",
        "trailing-bytes",
        "stream-gap",
    ];

    /// A stable, short label for counting rejections by reason.
    pub fn reason(self) -> &'static str {
        Self::REASONS[self.index()]
    }

    /// A dense index into [`DnsError::REASONS`], for counters kept in arrays.
    pub fn index(self) -> usize {
        match self {
            Self::HeaderTruncated { .. } => 0,
            Self::Truncated { .. } => 1,
            Self::ForwardPointer { .. } => 2,
            Self::PointerIntoHeader { .. } => 3,
            Self::ReservedLabelType { .. } => 4,
            Self::NameTooLong { .. } => 5,
            Self::BadAddressLength { .. } => 6,
            Self::BadCnameLength { .. } => 7,
            Self::TrailingBytes { .. } => 8,
            Self::StreamGap { .. } => 9,
        }
    }
}

/// Why a name matcher could not be built from its text.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MatcherError {
    /// An exact name or pattern that is empty, has an empty label, a label
    /// over 63 bytes, or is over 253 characters.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The text given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A pattern with a character outside `[-a-zA-Z0-9_.*]`, or `**` anywhere
    /// but as the whole first label.
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The text given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A regular expression the `regex` crate rejects (syntax, or over the
    /// size limit).
    #[error("invalid regular expression {pattern:?}")]
    InvalidRegex {
        /// The text given.
        pattern: String,
        /// The `regex` crate's error.
        #[source]
        source: regex::Error,
    },
}
