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

impl fmt::Display for TcpFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_", self.window)?;
        let kinds = self.options.kinds();
        if kinds.is_empty() {
            f.write_str("00")?;
        } else {
            for (i, kind) in kinds.iter().enumerate() {
                if i > 0 {
                    f.write_str("-")?;
                }
                write!(f, "{kind}")?;
            }
        }
        write!(f, "_{:02}_", self.options.mss)?;
        match self.options.window_scale {
            0 => f.write_str("00"),
            shift => write!(f, "{shift}"),
        }
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
        self.fingerprint.fmt(f)?;
        let delays = self.delays();
        for (i, delay) in delays.iter().enumerate() {
            f.write_str(if i == 0 { "_" } else { "-" })?;
            write!(f, "{delay}")?;
        }
        if let Some(rst) = self.rst_after {
            f.write_str(if delays.is_empty() { "_" } else { "-" })?;
            write!(f, "R{rst}")?;
        }
        Ok(())
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
