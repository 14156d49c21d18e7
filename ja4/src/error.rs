//! The crate's error type: small, `Copy`, and countable by reason.

use thiserror::Error;

/// Why a TCP header could not be fingerprinted.
///
/// Every variant is cheap to copy so the per-packet path never allocates, and
/// [`Ja4Error::reason`] gives a stable label a daemon can count by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum Ja4Error {
    /// Fewer than the 20 bytes of a fixed TCP header were captured.
    #[error("TCP header truncated: {available} of 20 fixed bytes captured")]
    Truncated {
        /// Bytes that were available.
        available: usize,
    },
    /// The data offset field is below its minimum of 5 (20 bytes).
    #[error("TCP data offset {data_offset} is below the minimum of 5")]
    DataOffsetTooSmall {
        /// The 4-bit data offset, in 32-bit words.
        data_offset: u8,
    },
    /// The header (fixed part plus options) runs past the captured bytes.
    #[error("TCP header says {header_len} bytes but only {available} were captured")]
    OptionsTruncated {
        /// Header length claimed by the data offset, in bytes.
        header_len: usize,
        /// Bytes that were available.
        available: usize,
    },
    /// The segment is not the kind the caller asked to fingerprint
    /// (for example a plain ACK given to [`crate::Ja4t::from_syn`]).
    #[error("TCP flags {flags:#04x} are not a {expected}")]
    WrongFlags {
        /// The TCP flags byte that was seen.
        flags: u8,
        /// What was expected ("SYN", "SYN-ACK").
        expected: &'static str,
    },
}

impl Ja4Error {
    /// A short, stable label for metrics (`truncated`, `data_offset`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            Ja4Error::Truncated { .. } => "truncated",
            Ja4Error::DataOffsetTooSmall { .. } => "data_offset",
            Ja4Error::OptionsTruncated { .. } => "options_truncated",
            Ja4Error::WrongFlags { .. } => "wrong_flags",
        }
    }
}
