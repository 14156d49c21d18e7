//! The TCP option walk behind JA4T / JA4TS (RFC 9293 section 3.1, option
//! format; RFC 7323 window scale).
//!
//! Rules, as FoxIO's reference applies them (see the crate docs):
//! - kinds are listed in wire order, NOP (1) included, duplicates repeated,
//!   unknown kinds by number;
//! - End of Option List (0) is listed, and so is every following `0x00` byte,
//!   until the first non-zero byte, where the walk stops;
//! - a malformed option (no length byte, length below 2, or running past the
//!   options area) is not listed and stops the walk, recorded in
//!   [`OptionSummary::stop`];
//! - MSS is the value of the last kind-2 option of length 4, the window scale
//!   the shift of the last kind-3 option of length 3.
//!
//! The walk is a bounded loop over at most 40 bytes and never allocates.

/// The largest options area a TCP header can carry (60 - 20 bytes).
pub const MAX_OPTIONS_LEN: usize = 40;

/// TCP option kinds the walk gives meaning to.
pub mod kind {
    /// End of Option List.
    pub const EOL: u8 = 0;
    /// No-Operation.
    pub const NOP: u8 = 1;
    /// Maximum Segment Size.
    pub const MSS: u8 = 2;
    /// Window Scale.
    pub const WINDOW_SCALE: u8 = 3;
}

/// Why the option walk stopped before the end of the options area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionsStop {
    /// An End of Option List and its zero padding ended the walk (normal).
    EndOfList {
        /// Offset of the first non-zero byte after the padding, if any.
        trailing_at: Option<u8>,
    },
    /// The last byte of the area is a kind that needs a length byte.
    MissingLength {
        /// Offset of the option in the options area.
        at: u8,
    },
    /// An option's length byte is 0 or 1.
    LengthTooSmall {
        /// Offset of the option in the options area.
        at: u8,
        /// The length byte.
        len: u8,
    },
    /// An option's length runs past the options area.
    PastEnd {
        /// Offset of the option in the options area.
        at: u8,
        /// The length byte.
        len: u8,
    },
}

impl OptionsStop {
    /// Whether the stop reflects a malformed option rather than a normal end.
    pub fn is_malformed(&self) -> bool {
        !matches!(self, OptionsStop::EndOfList { .. })
    }
}

/// What the walk saw: the listed kinds and the MSS / window scale values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OptionSummary {
    kinds: [u8; MAX_OPTIONS_LEN],
    len: u8,
    /// Value of the last well-formed MSS option, 0 when absent.
    pub mss: u16,
    /// Shift count of the last well-formed window scale option, 0 when absent.
    pub window_scale: u8,
    /// Where and why the walk stopped early, if it did.
    pub stop: Option<OptionsStop>,
}

impl Default for OptionSummary {
    fn default() -> Self {
        OptionSummary {
            kinds: [0; MAX_OPTIONS_LEN],
            len: 0,
            mss: 0,
            window_scale: 0,
            stop: None,
        }
    }
}

impl OptionSummary {
    /// Walks an options area. Bytes past [`MAX_OPTIONS_LEN`] are ignored
    /// (a real header cannot carry more).
    #[inline]
    pub fn walk(options: &[u8]) -> Self {
        let area = &options[..options.len().min(MAX_OPTIONS_LEN)];
        let mut summary = OptionSummary::default();
        let mut at = 0;
        while at < area.len() {
            let kind = area[at];
            // `at` < 40, so these narrowing casts are exact.
            let at_u8 = u8::try_from(at).unwrap_or(u8::MAX);
            if kind == kind::EOL {
                let padding_end = area[at..]
                    .iter()
                    .position(|&b| b != 0)
                    .map_or(area.len(), |p| at + p);
                for _ in at..padding_end {
                    summary.push(kind::EOL);
                }
                let trailing_at =
                    (padding_end < area.len()).then(|| u8::try_from(padding_end).unwrap_or(0));
                summary.stop = Some(OptionsStop::EndOfList { trailing_at });
                break;
            }
            if kind == kind::NOP {
                summary.push(kind);
                at += 1;
                continue;
            }
            let Some(&len) = area.get(at + 1) else {
                summary.stop = Some(OptionsStop::MissingLength { at: at_u8 });
                break;
            };
            if len < 2 {
                summary.stop = Some(OptionsStop::LengthTooSmall { at: at_u8, len });
                break;
            }
            let end = at + usize::from(len);
            if end > area.len() {
                summary.stop = Some(OptionsStop::PastEnd { at: at_u8, len });
                break;
            }
            summary.push(kind);
            let value = &area[at + 2..end];
            match (kind, value) {
                (kind::MSS, &[hi, lo]) => summary.mss = u16::from_be_bytes([hi, lo]),
                (kind::WINDOW_SCALE, &[shift]) => summary.window_scale = shift,
                _ => {}
            }
            at = end;
        }
        summary
    }

    #[inline]
    fn push(&mut self, kind: u8) {
        // Every listed kind consumes at least one byte of a <= 40-byte area.
        if let Some(slot) = self.kinds.get_mut(usize::from(self.len)) {
            *slot = kind;
            self.len += 1;
        }
    }

    /// This walk's listed kinds with another walk's MSS and window scale: how
    /// a retransmitted SYN-ACK combines with the first one.
    #[must_use]
    pub fn with_values_of(&self, other: &OptionSummary) -> OptionSummary {
        OptionSummary {
            mss: other.mss,
            window_scale: other.window_scale,
            ..*self
        }
    }

    /// The listed option kinds, in wire order.
    pub fn kinds(&self) -> &[u8] {
        &self.kinds[..usize::from(self.len)]
    }
}
