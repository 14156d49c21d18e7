//! The record layer (RFC 8446 section 5.1, the same framing back to SSL
//! 3.0): the first handshake message of one direction of a connection,
//! put back together when it spans several records or segments.
//!
//! Contract: [`first_handshake`] reads records from the start of a byte
//! stream (the concatenated payloads of one direction, as the caller has
//! them). Every record must be a handshake record (content type 22) of a
//! version `3.x`, no longer than 2^14 + 2048 bytes, until the message's
//! 4-byte header and its body are whole. The message is returned borrowed
//! from the stream when one record holds it (the common case), and copied
//! into the caller's scratch buffer otherwise. Nothing allocates.

use crate::tls::TlsError;

/// The record header: type, version, length.
pub const RECORD_HEADER_LEN: usize = 5;

/// A handshake message's header: type, 24-bit length.
const HANDSHAKE_HEADER_LEN: usize = 4;

/// The content type of handshake records.
const HANDSHAKE: u8 = 22;

/// The longest record fragment a peer may send (2^14, plus the 2048 bytes
/// RFC 5246 allows a compressed or protected record; a plaintext record
/// never needs them, but some stacks' first records are checked this
/// loosely by every other reader, so a hello is not refused for it).
const MAX_FRAGMENT: usize = (1 << 14) + 2048;

/// Whether `bytes` start like a TLS handshake record (type 22, version
/// 3.0 to 3.4): what a caller checks before keeping more of a stream.
pub fn starts_handshake(bytes: &[u8]) -> bool {
    matches!(bytes, [HANDSHAKE, 3, minor, ..] if *minor <= 4)
}

/// One handshake message: its type and its body (after the 4-byte
/// header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake<'a> {
    /// The message type (1 ClientHello, 2 ServerHello, ...).
    pub kind: u8,
    /// The body.
    pub body: &'a [u8],
}

/// The first handshake message of `stream` (see the module docs).
///
/// # Errors
/// [`TlsError::NotHandshake`] when a record is not a handshake record,
/// [`TlsError::Incomplete`] when the stream ends first (more bytes may
/// complete it), [`TlsError::RecordTooLong`] for a record over the limit,
/// [`TlsError::TooLarge`] when the message does not fit in `scratch`.
pub fn first_handshake<'a>(
    stream: &'a [u8],
    scratch: &'a mut [u8],
) -> Result<Handshake<'a>, TlsError> {
    let mut rest = stream;
    let mut have = 0usize;
    // The whole message length once its header is in, header included.
    let mut need: Option<usize> = None;
    let mut first = true;
    loop {
        let Some(fragment) = next_fragment(&mut rest)? else {
            return Err(TlsError::Incomplete {
                have,
                need: need.unwrap_or(HANDSHAKE_HEADER_LEN),
            });
        };
        if first {
            first = false;
            if let Some(message) = whole_in(fragment) {
                return Ok(message);
            }
        }
        // Bytes past the message (the next message of the same record)
        // may be copied too: the message is cut to its length at the end.
        let take = fragment.len().min(scratch.len() - have);
        scratch[have..have + take].copy_from_slice(&fragment[..take]);
        have += take;
        if need.is_none() && have >= HANDSHAKE_HEADER_LEN.min(scratch.len()) {
            if scratch.len() < HANDSHAKE_HEADER_LEN {
                return Err(TlsError::TooLarge {
                    len: HANDSHAKE_HEADER_LEN,
                    max: scratch.len(),
                });
            }
            let total = HANDSHAKE_HEADER_LEN + body_len(&scratch[..HANDSHAKE_HEADER_LEN]);
            if total > scratch.len() {
                return Err(TlsError::TooLarge {
                    len: total,
                    max: scratch.len(),
                });
            }
            need = Some(total);
        }
        if let Some(total) = need
            && have >= total
        {
            return Ok(Handshake {
                kind: scratch[0],
                body: &scratch[HANDSHAKE_HEADER_LEN..total],
            });
        }
    }
}

/// The next record's fragment, or `None` when the stream ends before a
/// whole record.
fn next_fragment<'a>(rest: &mut &'a [u8]) -> Result<Option<&'a [u8]>, TlsError> {
    let [kind, major, _minor, hi, lo, ..] = **rest else {
        if starts_handshake_prefix(rest) {
            return Ok(None);
        }
        return Err(TlsError::NotHandshake);
    };
    if kind != HANDSHAKE || major != 3 {
        return Err(TlsError::NotHandshake);
    }
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len > MAX_FRAGMENT {
        return Err(TlsError::RecordTooLong { len });
    }
    let Some(record) = rest.get(..RECORD_HEADER_LEN + len) else {
        // A partial record: what it holds still counts towards the
        // message, so hand it over (the caller sees `Incomplete` later).
        let fragment = &rest[RECORD_HEADER_LEN..];
        *rest = &[];
        return Ok((!fragment.is_empty()).then_some(fragment));
    };
    *rest = &rest[record.len()..];
    Ok(Some(&record[RECORD_HEADER_LEN..]))
}

/// Whether a stream shorter than a record header could still start one.
fn starts_handshake_prefix(bytes: &[u8]) -> bool {
    matches!(bytes, [] | [HANDSHAKE] | [HANDSHAKE, 3, ..])
}

fn body_len(header: &[u8]) -> usize {
    (usize::from(header[1]) << 16) | (usize::from(header[2]) << 8) | usize::from(header[3])
}

/// The message, when the first fragment holds all of it.
fn whole_in(fragment: &[u8]) -> Option<Handshake<'_>> {
    let header = fragment.get(..HANDSHAKE_HEADER_LEN)?;
    let total = HANDSHAKE_HEADER_LEN + body_len(header);
    let message = fragment.get(..total)?;
    Some(Handshake {
        kind: message[0],
        body: &message[HANDSHAKE_HEADER_LEN..],
    })
}
