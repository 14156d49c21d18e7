//! Fingerprint values and their canonical strings.
//!
//! The canonical form is `window_options_mss_wscale`:
//! - `window`: the raw 16-bit header value, decimal;
//! - `options`: listed kinds joined by `-`, or `00` when none were listed;
//! - `mss`: decimal, at least two digits (`%02d`), `00` when absent;
//! - `wscale`: decimal, `00` when absent or zero.
//!
//! A [`Ja4ts`] may carry a suffix: `_d1-d2-...` (rounded seconds between
//! consecutive SYN-ACKs of one connection) and `-R<n>` (seconds from the last
//! SYN-ACK to a bare RST). Formatting writes straight into the formatter: no
//! allocation.

use core::fmt;

use crate::options::OptionSummary;
use crate::tcp::TcpHeader;
use crate::{Ja4Error, TcpFlags};

/// The per-packet part shared by JA4T and JA4TS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFingerprint {
    /// The raw receive window of the segment.
    pub window: u16,
    /// The option walk: listed kinds, MSS, window scale, where it stopped.
    pub options: OptionSummary,
}

impl TcpFingerprint {
    /// Fingerprints any checked header, whatever its flags.
    pub fn of<T: AsRef<[u8]>>(header: &TcpHeader<T>) -> Self {
        TcpFingerprint {
            window: header.window(),
            options: OptionSummary::walk(header.options()),
        }
    }
}

impl TcpFingerprint {
    fn render(&self, text: &mut Text) {
        text.number(u32::from(self.window));
        text.byte(b'_');
        let kinds = self.options.kinds();
        if kinds.is_empty() {
            text.bytes(b"00");
        }
        for (i, kind) in kinds.iter().enumerate() {
            if i > 0 {
                text.byte(b'-');
            }
            text.number(u32::from(*kind));
        }
        text.byte(b'_');
        if self.options.mss < 10 {
            text.byte(b'0');
        }
        text.number(u32::from(self.options.mss));
        text.byte(b'_');
        match self.options.window_scale {
            0 => text.bytes(b"00"),
            shift => text.number(u32::from(shift)),
        }
    }
}

impl fmt::Display for TcpFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Text::new();
        self.render(&mut text);
        f.write_str(text.as_str())
    }
}

/// JA4T: the fingerprint of a client's connection-opening SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ja4t(pub TcpFingerprint);

impl Ja4t {
    /// Fingerprints a SYN (ECN bits allowed; see [`TcpFlags::is_syn`]).
    ///
    /// # Errors
    /// A header error from [`TcpHeader::new_checked`], or
    /// [`Ja4Error::WrongFlags`] when the segment is not a SYN.
    pub fn from_syn(tcp: &[u8]) -> Result<Self, Ja4Error> {
        let header = TcpHeader::new_checked(tcp)?;
        Self::from_header(&header)
    }

    /// As [`Ja4t::from_syn`], for a header already checked.
    ///
    /// # Errors
    /// [`Ja4Error::WrongFlags`] when the segment is not a SYN.
    pub fn from_header<T: AsRef<[u8]>>(header: &TcpHeader<T>) -> Result<Self, Ja4Error> {
        expect_flags(header.flags(), TcpFlags::is_syn, "SYN")?;
        Ok(Ja4t(TcpFingerprint::of(header)))
    }
}

impl fmt::Display for Ja4t {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The most SYN-ACK gaps a JA4TS lists (10 SYN-ACKs timed).
pub const MAX_SYN_ACK_DELAYS: usize = 9;

/// JA4TS: the fingerprint of a server's SYN-ACK, with the retransmission and
/// RST timing suffix when a [`crate::Ja4Tracker`] saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ja4ts {
    /// Window, MSS and scale of the latest SYN-ACK; options of the first.
    pub fingerprint: TcpFingerprint,
    delays: [u32; MAX_SYN_ACK_DELAYS],
    delays_len: u8,
    /// Rounded seconds from the last SYN-ACK to a bare RST, when this
    /// fingerprint was triggered by one after two or more SYN-ACKs.
    pub rst_after: Option<u32>,
}

impl Ja4ts {
    /// Fingerprints a single SYN-ACK, with no timing suffix.
    ///
    /// # Errors
    /// A header error from [`TcpHeader::new_checked`], or
    /// [`Ja4Error::WrongFlags`] when the segment is not a SYN-ACK.
    pub fn from_syn_ack(tcp: &[u8]) -> Result<Self, Ja4Error> {
        let header = TcpHeader::new_checked(tcp)?;
        Self::from_header(&header)
    }

    /// As [`Ja4ts::from_syn_ack`], for a header already checked.
    ///
    /// # Errors
    /// [`Ja4Error::WrongFlags`] when the segment is not a SYN-ACK.
    pub fn from_header<T: AsRef<[u8]>>(header: &TcpHeader<T>) -> Result<Self, Ja4Error> {
        expect_flags(header.flags(), TcpFlags::is_syn_ack, "SYN-ACK")?;
        Ok(Ja4ts::new(TcpFingerprint::of(header)))
    }

    /// A JA4TS with no suffix.
    pub fn new(fingerprint: TcpFingerprint) -> Self {
        Ja4ts {
            fingerprint,
            ..Ja4ts::default()
        }
    }

    /// Rounded seconds between consecutive SYN-ACKs, oldest first.
    pub fn delays(&self) -> &[u32] {
        &self.delays[..usize::from(self.delays_len)]
    }

    /// Appends a SYN-ACK gap; returns false (and keeps the list) when
    /// [`MAX_SYN_ACK_DELAYS`] are already recorded.
    pub fn push_delay(&mut self, seconds: u32) -> bool {
        match self.delays.get_mut(usize::from(self.delays_len)) {
            Some(slot) => {
                *slot = seconds;
                self.delays_len += 1;
                true
            }
            None => false,
        }
    }
}

impl fmt::Display for Ja4ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Text::new();
        self.fingerprint.render(&mut text);
        let delays = self.delays();
        for (i, delay) in delays.iter().enumerate() {
            text.byte(if i == 0 { b'_' } else { b'-' });
            text.number(*delay);
        }
        if let Some(rst) = self.rst_after {
            text.bytes(if delays.is_empty() { b"_R" } else { b"-R" });
            text.number(rst);
        }
        f.write_str(text.as_str())
    }
}

/// A stack buffer holding one rendered fingerprint. Rendering by hand and
/// writing once is several times faster than one `write!` per option kind.
/// The longest JA4TS is 5 + 1 + 40 * 4 + 1 + 5 + 1 + 3 + 9 * 11 + 12 = 287
/// bytes.
struct Text {
    buf: [u8; 288],
    len: usize,
}

impl Text {
    fn new() -> Self {
        Text {
            buf: [0; 288],
            len: 0,
        }
    }

    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    fn number(&mut self, mut value: u32) {
        let mut digits = [0u8; 10];
        let mut start = digits.len();
        loop {
            start -= 1;
            // `value % 10` is below 10: the cast is exact.
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.bytes(&digits[start..]);
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are ever pushed.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

fn expect_flags(
    flags: TcpFlags,
    wanted: fn(TcpFlags) -> bool,
    expected: &'static str,
) -> Result<(), Ja4Error> {
    if wanted(flags) {
        Ok(())
    } else {
        Err(Ja4Error::WrongFlags {
            flags: flags.0,
            expected,
        })
    }
}
