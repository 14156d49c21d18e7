//! Reading pcap and pcapng files frame by frame.
//!
//! Contract: [`CaptureReader`] reads only through the `Read` it is given
//! (it opens nothing), in a bounded buffer that grows to at most
//! [`CaptureReader::MAX_RECORD_LEN`] for one oversized record. Frames are
//! numbered from 1 in file order, counting only packet records (pcap records,
//! pcapng Enhanced and Simple Packet Blocks), which is how Wireshark numbers
//! them. Timestamps are nanoseconds since the Unix epoch, honouring pcap's
//! microsecond/nanosecond magic and pcapng's per-interface `if_tsresol` and
//! `if_tsoffset`. A bad record ends the reading with an error naming the
//! byte offset; frames before it were already returned.
//!
//! [`CaptureReader::next_frame`] lends each frame from the reader's buffer
//! (no copy); the reader is also an [`Iterator`] of [`OwnedFrame`]s, which
//! copies each frame's bytes, for code that keeps frames or uses iterator
//! adapters. The reader is `Send` when its `Read` is.

use std::io::{self, ErrorKind, Read};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use edgewise_time::UnixNanos;

use crate::{CaptureError, LinkType};

/// One captured frame, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Frame<'a> {
    /// 1-based packet number in the file.
    pub number: u64,
    /// Capture time (Unix time; [`UnixNanos::ZERO`] when the record has
    /// none, as in a pcapng Simple Packet Block).
    pub time: UnixNanos,
    /// Link type of the interface the frame was captured on.
    pub link: LinkType,
    /// The captured bytes (possibly fewer than [`Frame::original_len`]).
    pub data: &'a [u8],
    /// Length of the frame on the wire.
    pub original_len: u32,
}

/// One captured frame with its bytes copied out of the reader: what the
/// reader yields as an [`Iterator`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OwnedFrame {
    /// 1-based packet number in the file.
    pub number: u64,
    /// Capture time (Unix time; [`UnixNanos::ZERO`] when unknown).
    pub time: UnixNanos,
    /// Link type of the interface the frame was captured on.
    pub link: LinkType,
    /// The captured bytes.
    pub data: Vec<u8>,
    /// Length of the frame on the wire.
    pub original_len: u32,
}

impl OwnedFrame {
    /// The borrowed view, as [`CaptureReader::next_frame`] gives it.
    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            number: self.number,
            time: self.time,
            link: self.link,
            data: &self.data,
            original_len: self.original_len,
        }
    }
}

impl From<Frame<'_>> for OwnedFrame {
    fn from(frame: Frame<'_>) -> Self {
        Self {
            number: frame.number,
            time: frame.time,
            link: frame.link,
            data: frame.data.to_vec(),
            original_len: frame.original_len,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    units_per_second: u64,
    offset_seconds: i64,
}

/// What one parsed block means to the frame loop.
enum Step {
    Frame,
    Skip,
    Header(Option<Interface>),
    Interface(Interface),
    NewSection,
    /// A block that parsed but cannot be used (what is wrong).
    Bad(String),
}

/// A pull reader over a pcap or pcapng stream read from `R`.
pub struct CaptureReader<R: Read> {
    inner: Inner<R>,
    legacy: Option<Interface>,
    interfaces: Vec<Interface>,
    buffer_len: usize,
    pending: usize,
    consumed: u64,
    frames: u64,
    done: bool,
}

const LEGACY_NANOSECOND_MAGICS: [u32; 2] = [0xa1b2_3c4d, 0x4d3c_b2a1];
const INITIAL_BUFFER: usize = 256 * 1024;

/// The stream with its first four bytes (read to tell the format) put
/// back. Unlike `Read::chain`, one `read` goes on into the stream after the
/// four bytes: pcap-parser checks the header from its first `read` alone.
struct Source<R> {
    magic: [u8; 4],
    at: usize,
    rest: R,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let prefix = &self.magic[self.at..];
        let n = prefix.len().min(buf.len());
        buf[..n].copy_from_slice(&prefix[..n]);
        self.at += n;
        if n == buf.len() {
            return Ok(n);
        }
        match self.rest.read(&mut buf[n..]) {
            Ok(more) => Ok(n + more),
            Err(_) if n > 0 => Ok(n),
            Err(e) => Err(e),
        }
    }
}

/// The two readers of pcap-parser, chosen by the stream's magic.
enum Inner<R: Read> {
    Ng(PcapNGReader<Source<R>>),
    Legacy(LegacyPcapReader<Source<R>>),
}

impl<R: Read> Inner<R> {
    fn get(&mut self) -> &mut dyn PcapReaderIterator {
        match self {
            Inner::Ng(reader) => reader,
            Inner::Legacy(reader) => reader,
        }
    }
}

/// pcapng's Section Header Block type, the same in both byte orders.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// pcap's magics (microsecond, nanosecond, modified), both byte orders.
const PCAP_MAGICS: [u32; 3] = [0xa1b2_c3d4, 0xa1b2_3c4d, 0xa1b2_cd34];

impl<R: Read> CaptureReader<R> {
    /// The largest single record the reader accepts.
    pub const MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

    /// Starts reading a capture, recognising pcap or pcapng from its header.
    ///
    /// # Errors
    /// [`CaptureError::Empty`], [`CaptureError::NotACapture`] or
    /// [`CaptureError::Read`].
    pub fn new(mut reader: R) -> Result<Self, CaptureError> {
        let mut magic = [0_u8; 4];
        let mut got = 0;
        while got < magic.len() {
            match reader.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(CaptureError::Read { offset: 0 }),
            }
        }
        if got == 0 {
            return Err(CaptureError::Empty);
        }
        if got < magic.len() {
            return Err(CaptureError::NotACapture);
        }
        let source = Source {
            magic,
            at: 0,
            rest: reader,
        };
        let header_error = |e: PcapError<&[u8]>| match e {
            PcapError::ReadError => CaptureError::Read { offset: 0 },
            _ => CaptureError::NotACapture,
        };
        let inner = if magic == PCAPNG_MAGIC {
            Inner::Ng(PcapNGReader::new(INITIAL_BUFFER, source).map_err(header_error)?)
        } else if PCAP_MAGICS
            .iter()
            .any(|m| magic == m.to_le_bytes() || magic == m.to_be_bytes())
        {
            Inner::Legacy(LegacyPcapReader::new(INITIAL_BUFFER, source).map_err(header_error)?)
        } else {
            return Err(CaptureError::NotACapture);
        };
        Ok(CaptureReader {
            inner,
            legacy: None,
            interfaces: Vec::new(),
            buffer_len: INITIAL_BUFFER,
            pending: 0,
            consumed: 0,
            frames: 0,
            done: false,
        })
    }

    /// Frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// The next frame, `None` at the end of the capture (or after an error).
    ///
    /// # Errors
    /// A [`CaptureError`] for a truncated or malformed record; reading stops.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, CaptureError>> {
        if self.done {
            return None;
        }
        loop {
            if self.pending > 0 {
                self.inner.get().consume(self.pending);
                self.consumed += self.pending as u64;
                self.pending = 0;
            }
            let parsed = match self.inner.get().next() {
                Ok((len, block)) => Ok((len, classify(&block))),
                Err(e) => Err(Failure::from(e)),
            };
            let step = match parsed {
                Ok((len, step)) => {
                    self.pending = len;
                    step
                }
                Err(failure) => match self.recover(failure) {
                    Ok(()) => continue,
                    Err(None) => return None,
                    Err(Some(error)) => return Some(Err(error)),
                },
            };
            if matches!(step, Step::Frame) {
                break;
            }
            if let Err(error) = self.take(step) {
                self.done = true;
                return Some(Err(error));
            }
        }
        // Parse the packet block again to return a borrow of it: the first
        // parse could not outlive the loop that may consume.
        let offset = self.consumed;
        let Ok((_, block)) = self.inner.get().next() else {
            self.done = true;
            return Some(Err(CaptureError::Truncated { offset }));
        };
        self.frames += 1;
        let number = self.frames;
        let frame = match block {
            PcapBlockOwned::Legacy(record) => {
                let iface = self.legacy.unwrap_or(Interface {
                    link: LinkType::Ethernet,
                    units_per_second: 1_000_000,
                    offset_seconds: 0,
                });
                let sub = u64::from(record.ts_usec);
                let sub_ns = if iface.units_per_second == 1_000_000_000 {
                    sub
                } else {
                    sub * 1_000
                };
                Ok(Frame {
                    number,
                    time: UnixNanos::from_nanos(u64::from(record.ts_sec) * 1_000_000_000 + sub_ns),
                    link: iface.link,
                    data: record.data,
                    original_len: record.origlen,
                })
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                match self.interfaces.get(epb.if_id as usize) {
                    Some(iface) => Ok(Frame {
                        number,
                        time: ng_timestamp(epb.ts_high, epb.ts_low, iface),
                        link: iface.link,
                        data: epb.data,
                        original_len: epb.origlen,
                    }),
                    None => Err(CaptureError::UnknownInterface {
                        interface: epb.if_id,
                        offset,
                    }),
                }
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => match self.interfaces.first() {
                Some(iface) => Ok(Frame {
                    number,
                    time: UnixNanos::ZERO,
                    link: iface.link,
                    data: spb.data,
                    original_len: spb.origlen,
                }),
                None => Err(CaptureError::UnknownInterface {
                    interface: 0,
                    offset,
                }),
            },
            _ => Err(CaptureError::Malformed {
                offset,
                detail: "packet block changed between two parses".into(),
            }),
        };
        if frame.is_err() {
            self.done = true;
        }
        Some(frame)
    }

    /// Handles a parser error: `Ok` to retry, `Err(None)` at a clean end,
    /// `Err(Some(_))` for a real error (reading stops).
    fn recover(&mut self, error: Failure) -> Result<(), Option<CaptureError>> {
        let offset = self.consumed;
        let outcome = match error {
            Failure::Eof => Err(None),
            Failure::Incomplete => match self.inner.get().refill() {
                Ok(()) => Ok(()),
                Err(_) => Err(Some(CaptureError::Read { offset })),
            },
            Failure::BufferTooSmall => {
                let wanted = self.buffer_len.saturating_mul(2);
                if wanted <= Self::MAX_RECORD_LEN && self.inner.get().grow(wanted) {
                    self.buffer_len = wanted;
                    match self.inner.get().refill() {
                        Ok(()) => Ok(()),
                        Err(_) => Err(Some(CaptureError::Read { offset })),
                    }
                } else {
                    Err(Some(CaptureError::RecordTooLarge {
                        offset,
                        limit: Self::MAX_RECORD_LEN,
                    }))
                }
            }
            Failure::UnexpectedEof => Err(Some(CaptureError::Truncated { offset })),
            Failure::Read => Err(Some(CaptureError::Read { offset })),
            Failure::NotRecognized => Err(Some(CaptureError::NotACapture)),
            Failure::Malformed(detail) => Err(Some(CaptureError::Malformed { offset, detail })),
        };
        if outcome.is_err() {
            self.done = true;
        }
        outcome
    }
}

/// A parser error with its borrow of the buffer dropped.
enum Failure {
    Eof,
    Incomplete,
    BufferTooSmall,
    UnexpectedEof,
    Read,
    NotRecognized,
    Malformed(String),
}

impl From<PcapError<&[u8]>> for Failure {
    fn from(error: PcapError<&[u8]>) -> Self {
        match error {
            PcapError::Eof => Failure::Eof,
            PcapError::Incomplete(_) => Failure::Incomplete,
            PcapError::BufferTooSmall => Failure::BufferTooSmall,
            PcapError::UnexpectedEof => Failure::UnexpectedEof,
            PcapError::ReadError => Failure::Read,
            PcapError::HeaderNotRecognized => Failure::NotRecognized,
            PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                Failure::Malformed(format!("{kind:?}"))
            }
        }
    }
}

impl<R: Read> Iterator for CaptureReader<R> {
    type Item = Result<OwnedFrame, CaptureError>;

    /// The next frame, copied; see [`CaptureReader::next_frame`].
    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().map(|frame| frame.map(OwnedFrame::from))
    }
}

impl<R: Read> CaptureReader<R> {
    /// Takes in a block that is not a frame.
    fn take(&mut self, step: Step) -> Result<(), CaptureError> {
        match step {
            Step::Frame | Step::Skip => {}
            Step::Header(legacy) => self.legacy = legacy,
            Step::NewSection => self.interfaces.clear(),
            Step::Interface(iface) => self.interfaces.push(iface),
            Step::Bad(detail) => {
                return Err(CaptureError::Malformed {
                    offset: self.consumed,
                    detail,
                });
            }
        }
        Ok(())
    }
}

fn classify(block: &PcapBlockOwned<'_>) -> Step {
    match block {
        PcapBlockOwned::Legacy(_)
        | PcapBlockOwned::NG(Block::EnhancedPacket(_) | Block::SimplePacket(_)) => Step::Frame,
        PcapBlockOwned::LegacyHeader(header) => Step::Header(Some(Interface {
            link: LinkType::from_linktype(u32::try_from(header.network.0).unwrap_or(u32::MAX)),
            units_per_second: if LEGACY_NANOSECOND_MAGICS.contains(&header.magic_number) {
                1_000_000_000
            } else {
                1_000_000
            },
            offset_seconds: 0,
        })),
        PcapBlockOwned::NG(Block::SectionHeader(_)) => Step::NewSection,
        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
            match units_per_second(idb.if_tsresol) {
                Some(units_per_second) => Step::Interface(Interface {
                    link: LinkType::from_linktype(
                        u32::try_from(idb.linktype.0).unwrap_or(u32::MAX),
                    ),
                    units_per_second,
                    offset_seconds: idb.ts_offset(),
                }),
                None => Step::Bad(format!(
                    "if_tsresol {:#04x} is not a resolution a 64-bit timestamp can use",
                    idb.if_tsresol
                )),
            }
        }
        PcapBlockOwned::NG(_) => Step::Skip,
    }
}

/// Timestamp units per second for an `if_tsresol` (pcapng, section 4.2):
/// with the high bit clear, 10 to the power of the rest; with it set, 2 to
/// the power of the rest (the reader's own helper refuses every binary
/// resolution, which would have read them as microseconds). `None` when
/// the unit does not fit a `u64`.
fn units_per_second(tsresol: u8) -> Option<u64> {
    let exponent = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exponent)
    } else {
        1u64.checked_shl(exponent)
    }
}

fn ng_timestamp(high: u32, low: u32, iface: &Interface) -> UnixNanos {
    let units = (u128::from(high) << 32) | u128::from(low);
    let per_second = u128::from(iface.units_per_second.max(1));
    let nanos = units * 1_000_000_000 / per_second;
    let offset = i128::from(iface.offset_seconds) * 1_000_000_000;
    UnixNanos::from_nanos(
        u64::try_from((i128::try_from(nanos).unwrap_or(i128::MAX) + offset).max(0))
            .unwrap_or(u64::MAX),
    )
}
