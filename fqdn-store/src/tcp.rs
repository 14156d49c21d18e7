//! DNS over TCP: the 2-byte length framing of RFC 1035 section 4.2.2,
//! rebuilt from captured segments.
//!
//! A [`TcpDnsStream`] follows one direction of one connection. Segments are
//! given with their sequence numbers; retransmitted bytes are dropped,
//! several messages in one segment and one message split across segments are
//! both handled, and a message that fits in the segment that completes it is
//! handed out without a copy. A gap in the sequence numbers (a lost segment)
//! makes the framing unrecoverable: the stream reports
//! [`DnsError::StreamGap`] once and ignores the rest of the connection.
//!
//! Memory per stream is bounded: at most one incomplete message (under
//! 64 KiB) is buffered. [`TcpDnsStreams`] keeps many streams under a hard
//! count and an idle timeout.

use core::hash::Hash;
use std::collections::HashMap;

use edgewise_time::UnixNanos;

use crate::DnsError;

/// One direction of one TCP connection carrying DNS messages.
#[derive(Debug, Default, Clone)]
pub struct TcpDnsStream {
    buffer: Vec<u8>,
    next_seq: Option<u32>,
    failed: bool,
}

impl TcpDnsStream {
    /// A stream whose first segment is taken to start on a message boundary
    /// (call [`TcpDnsStream::syn`] when the handshake was seen).
    pub fn new() -> Self {
        Self::default()
    }

    /// The handshake was seen: data starts at `isn + 1`. Resets the stream.
    pub fn syn(&mut self, isn: u32) {
        self.buffer.clear();
        self.failed = false;
        self.next_seq = Some(isn.wrapping_add(1));
    }

    /// Feeds one segment's payload; `on_message` gets every DNS message it
    /// completes, without the length prefix.
    ///
    /// # Errors
    /// [`DnsError::StreamGap`] when bytes before `seq` were never seen; the
    /// stream then ignores everything until [`TcpDnsStream::syn`].
    pub fn push(
        &mut self,
        seq: u32,
        payload: &[u8],
        mut on_message: impl FnMut(&[u8]),
    ) -> Result<(), DnsError> {
        if self.failed || payload.is_empty() {
            return Ok(());
        }
        let end = seq.wrapping_add(payload_len(payload));
        let fresh = match self.next_seq {
            None => payload,
            Some(expected) => {
                let ahead = seq.wrapping_sub(expected).cast_signed();
                if ahead > 0 {
                    self.failed = true;
                    self.buffer = Vec::new();
                    return Err(DnsError::StreamGap { expected, got: seq });
                }
                let overlap = ahead.unsigned_abs() as usize;
                if overlap >= payload.len() {
                    return Ok(());
                }
                &payload[overlap..]
            }
        };
        self.next_seq = Some(end);
        if self.buffer.is_empty() {
            let rest = split_messages(fresh, &mut on_message);
            self.buffer.extend_from_slice(rest);
        } else {
            self.buffer.extend_from_slice(fresh);
            let consumed = self.buffer.len() - split_messages(&self.buffer, &mut on_message).len();
            self.buffer.drain(..consumed);
        }
        if self.buffer.is_empty() && self.buffer.capacity() > 4096 {
            self.buffer = Vec::new();
        }
        Ok(())
    }

    /// Bytes held for an incomplete message.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

fn payload_len(payload: &[u8]) -> u32 {
    // A TCP payload is far below 4 GiB; saturate rather than wrap if not.
    u32::try_from(payload.len()).unwrap_or(u32::MAX)
}

/// Hands out every complete length-prefixed message and returns the rest.
fn split_messages<'b>(mut bytes: &'b [u8], on_message: &mut impl FnMut(&[u8])) -> &'b [u8] {
    while let Some((prefix, rest)) = bytes.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*prefix));
        let Some(message) = rest.get(..len) else {
            break;
        };
        on_message(message);
        bytes = &rest[len..];
    }
    bytes
}

/// Settings for [`TcpDnsStreams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamsConfig {
    /// Streams kept at once; the least recently active goes first.
    pub max_streams: usize,
    /// A stream with no segment for this long (nanoseconds) is dropped.
    pub idle_ns: u64,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            max_streams: 4096,
            idle_ns: 60 * 1_000_000_000,
        }
    }
}

/// Many [`TcpDnsStream`]s keyed by the caller's flow key (for example the
/// 4-tuple of one direction), bounded in count.
///
/// When full, adding a stream scans for the least recently active one
/// (`O(max_streams)`, only on that path).
#[derive(Debug, Clone)]
pub struct TcpDnsStreams<K> {
    config: StreamsConfig,
    streams: HashMap<K, (TcpDnsStream, u64), foldhash::fast::RandomState>,
    evicted: u64,
}

impl<K: Hash + Eq + Clone> TcpDnsStreams<K> {
    /// An empty set of streams.
    pub fn new(config: StreamsConfig) -> Self {
        Self {
            config,
            streams: HashMap::default(),
            evicted: 0,
        }
    }

    /// Feeds one segment of the flow `key` at `now`.
    /// `syn` says the segment carries SYN (its `seq` is then the ISN);
    /// `fin_or_rst` closes the stream after its payload.
    ///
    /// # Errors
    /// As [`TcpDnsStream::push`].
    pub fn push(
        &mut self,
        key: &K,
        segment: Segment<'_>,
        now: UnixNanos,
        on_message: impl FnMut(&[u8]),
    ) -> Result<(), DnsError> {
        let now = now.as_nanos();
        if !self.streams.contains_key(key) {
            if segment.payload.is_empty() && !segment.syn {
                return Ok(());
            }
            self.make_room(now);
        }
        let (stream, seen) = self.streams.entry(key.clone()).or_default();
        *seen = now;
        let mut seq = segment.seq;
        if segment.syn {
            stream.syn(segment.seq);
            seq = seq.wrapping_add(1);
        }
        let result = stream.push(seq, segment.payload, on_message);
        if segment.fin_or_rst {
            self.streams.remove(key);
        }
        result
    }

    fn make_room(&mut self, now: u64) {
        if self.streams.len() < self.config.max_streams {
            return;
        }
        let idle = self.config.idle_ns;
        let before = self.streams.len();
        self.streams
            .retain(|_, (_, seen)| now.saturating_sub(*seen) < idle);
        self.evicted += (before - self.streams.len()) as u64;
        if self.streams.len() >= self.config.max_streams.max(1) {
            let oldest = self
                .streams
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.streams.remove(&oldest);
                self.evicted += 1;
            }
        }
    }

    /// Streams currently followed.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether no stream is followed.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Streams dropped to stay under the limits.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

/// What [`TcpDnsStreams::push`] needs from a TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// The sequence number.
    pub seq: u32,
    /// SYN is set (`seq` is the initial sequence number).
    pub syn: bool,
    /// FIN or RST is set: the direction ends after this payload.
    pub fin_or_rst: bool,
    /// The TCP payload.
    pub payload: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(messages: &[&[u8]]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for message in messages {
            bytes.extend_from_slice(&u16::try_from(message.len()).unwrap().to_be_bytes());
            bytes.extend_from_slice(message);
        }
        bytes
    }

    fn collect(
        stream: &mut TcpDnsStream,
        seq: u32,
        payload: &[u8],
    ) -> (Vec<Vec<u8>>, Result<(), DnsError>) {
        let mut out = Vec::new();
        let result = stream.push(seq, payload, |message| out.push(message.to_vec()));
        (out, result)
    }

    #[test]
    fn several_messages_in_one_segment() {
        let mut stream = TcpDnsStream::new();
        let bytes = framed(&[b"first", b"second", b""]);
        let (out, result) = collect(&mut stream, 100, &bytes);
        assert_eq!(result, Ok(()));
        assert_eq!(out, vec![b"first".to_vec(), b"second".to_vec(), Vec::new()]);
        assert_eq!(stream.buffered(), 0);
    }

    #[test]
    fn a_message_split_at_every_byte() {
        let bytes = framed(&[b"hello dns", b"again"]);
        for cut in 0..=bytes.len() {
            let mut stream = TcpDnsStream::new();
            stream.syn(999);
            let (mut out, first) = collect(&mut stream, 1000, &bytes[..cut]);
            let (rest, second) = collect(
                &mut stream,
                1000 + u32::try_from(cut).unwrap(),
                &bytes[cut..],
            );
            out.extend(rest);
            assert_eq!((first, second), (Ok(()), Ok(())));
            assert_eq!(
                out,
                vec![b"hello dns".to_vec(), b"again".to_vec()],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn retransmissions_are_not_delivered_twice() {
        let bytes = framed(&[b"abcdef"]);
        let mut stream = TcpDnsStream::new();
        stream.syn(u32::MAX); // data starts at 0 after wrapping
        let (out, _) = collect(&mut stream, 0, &bytes[..4]);
        assert!(out.is_empty());
        // Overlapping retransmission of the first 4 bytes plus the rest.
        let (out, result) = collect(&mut stream, 0, &bytes);
        assert_eq!((out, result), (vec![b"abcdef".to_vec()], Ok(())));
        // A full duplicate delivers nothing.
        let (out, result) = collect(&mut stream, 0, &bytes);
        assert_eq!((out.len(), result), (0, Ok(())));
    }

    #[test]
    fn a_gap_fails_the_stream_once() {
        let bytes = framed(&[b"abcdef", b"gh"]);
        let mut stream = TcpDnsStream::new();
        stream.syn(0);
        let (_, result) = collect(&mut stream, 1, &bytes[..3]);
        assert_eq!(result, Ok(()));
        let (out, result) = collect(&mut stream, 6, &bytes[5..]);
        assert_eq!(
            result,
            Err(DnsError::StreamGap {
                expected: 4,
                got: 6
            })
        );
        assert!(out.is_empty());
        let (out, result) = collect(&mut stream, 100, &framed(&[b"x"]));
        assert_eq!(
            (out.len(), result),
            (0, Ok(())),
            "ignored until the next SYN"
        );
    }

    #[test]
    fn streams_are_bounded_and_closed_by_fin() {
        let config = StreamsConfig {
            max_streams: 2,
            idle_ns: 1_000,
        };
        let mut streams = TcpDnsStreams::new(config);
        let half = framed(&[b"abcd"]);
        let segment = |payload| Segment {
            seq: 1,
            syn: false,
            fin_or_rst: false,
            payload,
        };
        for key in 0..5u32 {
            streams
                .push(
                    &key,
                    segment(&half[..3]),
                    UnixNanos::from_nanos(u64::from(key)),
                    |_| {},
                )
                .unwrap();
        }
        assert_eq!((streams.len(), streams.evicted()), (2, 3));
        let mut seen = 0;
        let fin = Segment {
            seq: 4,
            syn: false,
            fin_or_rst: true,
            payload: &half[3..],
        };
        streams
            .push(&4, fin, UnixNanos::from_nanos(5), |_| seen += 1)
            .unwrap();
        assert_eq!((seen, streams.len()), (1, 1));
    }
}
