//! Domain names inside a message: validation, label walks, comparison and
//! lowercase text.
//!
//! RFC 1035 section 4.1.4 lets a name end in a compression pointer to an
//! earlier occurrence. The rules enforced here (RFC 9267 lists what goes wrong
//! without them):
//! - a pointer must point strictly before the start of the name part that
//!   contains it, and after a jump nothing may be read at or past that start,
//!   so every jump shrinks the readable window and a walk always ends;
//! - a pointer into the 12-byte header is rejected;
//! - length bytes with the reserved top bits `01` / `10` are rejected, which
//!   is also what caps labels at 63 bytes (RFC 1035 section 2.3.4);
//! - the name in wire form, length bytes and the root byte included, is at
//!   most 255 bytes (RFC 1035 section 2.3.4).
//!
//! A [`Name`] exists only for a name that passed these checks, so its label
//! walk cannot fail. Text is lowercase ASCII without the trailing dot, with
//! RFC 4343 escapes (`\.`, `\\`, `\DDD`) for bytes that are not printable.

use core::fmt;

use crate::DnsError;

/// The DNS header is 12 bytes; names start after it.
pub(crate) const HEADER_LEN: usize = 12;
/// Longest name in wire form (RFC 1035 section 2.3.4).
pub const MAX_NAME_WIRE_LEN: usize = 255;
/// Longest name in text form: every byte of 254 bytes of labels escaped as
/// `\DDD`, plus the dots.
pub const MAX_NAME_TEXT_LEN: usize = 1016;

/// A validated domain name inside a message. Cheap to copy; borrows the
/// message.
#[derive(Clone, Copy)]
pub struct Name<'a> {
    message: &'a [u8],
    offset: usize,
}

/// Validates the name at `start` and returns it with the offset just past it
/// in place (after its root byte or its first pointer).
#[cfg(test)]
pub(crate) fn parse_name(message: &[u8], start: usize) -> Result<(Name<'_>, usize), DnsError> {
    let end = parse_name_cached(message, start, &mut NameCache::default())?;
    Ok((Name::trusted(message, start), end))
}

/// Names already validated in one message: start, in-place end and wire
/// length. A pointer to the start of such a name need not walk it again when
/// the name's in-place bytes end at or before the start of the part holding
/// the pointer: the name's own pointers all point below its start, so every
/// byte it reads lies inside the shrunken window. Fixed size (the first
/// eight names, the ones later pointers reuse most), so validation never
/// allocates.
#[derive(Debug, Default, Clone)]
pub(crate) struct NameCache {
    /// Start offset, in-place end offset, wire length.
    entries: [(u16, u16, u8); 8],
    len: u8,
}

impl NameCache {
    #[inline]
    fn get(&self, start: usize) -> Option<(usize, usize)> {
        self.entries[..usize::from(self.len)]
            .iter()
            .find(|entry| usize::from(entry.0) == start)
            .map(|&(_, end, wire_len)| (usize::from(end), usize::from(wire_len)))
    }

    fn insert(&mut self, start: usize, end: usize, wire_len: usize) {
        // The first names of a message (question, first owners and
        // targets) are the ones later pointers reuse: keep those.
        if usize::from(self.len) == self.entries.len() {
            return;
        }
        let (Ok(start), Ok(end), Ok(wire_len)) = (
            u16::try_from(start),
            u16::try_from(end),
            u8::try_from(wire_len),
        ) else {
            return;
        };
        self.entries[usize::from(self.len)] = (start, end, wire_len);
        self.len += 1;
    }
}

/// Validates the name at `start` (see the module rules) and returns the
/// offset just past it in place, using and filling `cache`.
#[inline]
pub(crate) fn parse_name_cached(
    message: &[u8],
    start: usize,
    cache: &mut NameCache,
) -> Result<usize, DnsError> {
    // The common case: a whole name that is one pointer to a name already
    // validated (an owner name pointing at the question).
    if let Some(&[high, low]) = message.get(start..).and_then(<[u8]>::first_chunk::<2>)
        && high >= 0xc0
    {
        let target = usize::from(u16::from_be_bytes([high, low]) & 0x3fff);
        if target >= HEADER_LEN
            && let Some((known_end, _)) = cache.get(target)
            && known_end <= start
        {
            return Ok(start + 2);
        }
    }
    parse_name_walk(message, start, cache)
}

/// The full walk behind [`parse_name_cached`].
#[inline(never)]
fn parse_name_walk(message: &[u8], start: usize, cache: &mut NameCache) -> Result<usize, DnsError> {
    let mut pos = start;
    let mut limit = message.len();
    let mut part_start = start;
    let mut end_in_place = None;
    let mut wire_len = 0usize;
    loop {
        let Some(&byte) = message.get(pos).filter(|_| pos < limit) else {
            return Err(DnsError::Truncated {
                offset: pos,
                reading: "name",
            });
        };
        match byte >> 6 {
            0b00 if byte == 0 => {
                wire_len += 1;
                if wire_len > MAX_NAME_WIRE_LEN {
                    return Err(DnsError::NameTooLong { offset: start });
                }
                let end = end_in_place.unwrap_or(pos + 1);
                cache.insert(start, end, wire_len);
                return Ok(end);
            }
            0b00 => {
                let len = usize::from(byte);
                wire_len += 1 + len;
                // The root byte still has to fit.
                if wire_len >= MAX_NAME_WIRE_LEN {
                    return Err(DnsError::NameTooLong { offset: start });
                }
                if pos + 1 + len > limit {
                    return Err(DnsError::Truncated {
                        offset: pos,
                        reading: "name",
                    });
                }
                pos += 1 + len;
            }
            0b11 => {
                if pos + 2 > limit {
                    return Err(DnsError::Truncated {
                        offset: pos,
                        reading: "name",
                    });
                }
                let target = usize::from(u16::from_be_bytes([byte, message[pos + 1]]) & 0x3fff);
                if target >= part_start {
                    return Err(DnsError::ForwardPointer {
                        offset: pos,
                        target,
                    });
                }
                if target < HEADER_LEN {
                    return Err(DnsError::PointerIntoHeader {
                        offset: pos,
                        target,
                    });
                }
                let end = *end_in_place.get_or_insert(pos + 2);
                if let Some((known_end, known_len)) = cache.get(target)
                    && known_end <= part_start
                {
                    wire_len += known_len;
                    if wire_len > MAX_NAME_WIRE_LEN {
                        return Err(DnsError::NameTooLong { offset: start });
                    }
                    cache.insert(start, end, wire_len);
                    return Ok(end);
                }
                limit = part_start;
                part_start = target;
                pos = target;
            }
            _ => return Err(DnsError::ReservedLabelType { offset: pos, byte }),
        }
    }
}

/// The offset just past a name already validated (no pointer is followed).
pub(crate) fn skip_name(message: &[u8], start: usize) -> usize {
    let mut pos = start;
    while let Some(&byte) = message.get(pos) {
        match byte {
            0 => return pos + 1,
            0xc0.. => return pos + 2,
            len => pos += 1 + usize::from(len),
        }
    }
    pos
}

impl<'a> Name<'a> {
    /// A name at `offset` of a message that was already validated.
    pub(crate) fn trusted(message: &'a [u8], offset: usize) -> Self {
        Self { message, offset }
    }

    /// The labels from the leftmost, without length bytes, following
    /// compression pointers. The root name has no labels.
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            message: self.message,
            pos: self.offset,
        }
    }

    /// Offset of the name's first byte in the message.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether this is the root name (`.`).
    pub fn is_root(&self) -> bool {
        self.labels().next().is_none()
    }

    /// Compares two names label by label, ASCII case-insensitively
    /// (RFC 4343), without building either.
    #[inline]
    pub fn eq_ignore_case(&self, other: &Name<'_>) -> bool {
        let same_message = core::ptr::eq(self.message, other.message);
        // The common case: an owner name that is a pointer to the other.
        if same_message && self.first_hop() == other.first_hop() {
            return true;
        }
        self.eq_ignore_case_walk(other, same_message)
    }

    /// Where the name's bytes start after a leading pointer, if any.
    #[inline]
    fn first_hop(&self) -> usize {
        match self
            .message
            .get(self.offset..)
            .and_then(<[u8]>::first_chunk::<2>)
        {
            Some(&[high, low]) if high >= 0xc0 => {
                usize::from(u16::from_be_bytes([high, low]) & 0x3fff)
            }
            _ => self.offset,
        }
    }

    #[inline(never)]
    fn eq_ignore_case_walk(&self, other: &Name<'_>, same_message: bool) -> bool {
        let (mut left, mut right) = (self.labels(), other.labels());
        loop {
            left.settle();
            right.settle();
            // Compression makes equal names share their tail: once both
            // walks reach the same bytes, the rest is equal.
            if same_message && left.pos == right.pos {
                return true;
            }
            match (left.next(), right.next()) {
                (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    /// Writes the name as lowercase text into `out` and returns it.
    pub fn write_text<'b>(&self, out: &'b mut NameText) -> &'b str {
        out.len = 0;
        for (index, label) in self.labels().enumerate() {
            if index > 0 {
                out.push(b'.');
            }
            for &byte in label {
                match byte {
                    b'.' | b'\\' => {
                        out.push(b'\\');
                        out.push(byte);
                    }
                    0x21..=0x7e => out.push(byte.to_ascii_lowercase()),
                    _ => {
                        out.push(b'\\');
                        out.push(b'0' + byte / 100);
                        out.push(b'0' + byte / 10 % 10);
                        out.push(b'0' + byte % 10);
                    }
                }
            }
        }
        if out.len == 0 {
            out.push(b'.');
        }
        out.as_str()
    }
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.write_text(&mut NameText::new()))
    }
}

impl fmt::Debug for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self} @{})", self.offset)
    }
}

/// Iterator over a [`Name`]'s labels.
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    message: &'a [u8],
    pos: usize,
}

impl Labels<'_> {
    /// Follows pointers until the next length byte. The name was validated,
    /// so every jump goes strictly backwards; a bad one ends the walk.
    fn settle(&mut self) {
        while let (Some(&high), Some(&low)) =
            (self.message.get(self.pos), self.message.get(self.pos + 1))
        {
            if high < 0xc0 {
                return;
            }
            let target = usize::from(u16::from_be_bytes([high, low]) & 0x3fff);
            if target >= self.pos {
                self.pos = self.message.len();
                return;
            }
            self.pos = target;
        }
    }
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.settle();
        let byte = *self.message.get(self.pos)?;
        if byte == 0 || byte >= 0xc0 {
            return None;
        }
        let start = self.pos + 1;
        let label = self.message.get(start..start + usize::from(byte))?;
        self.pos = start + label.len();
        Some(label)
    }
}

/// A stack buffer for a name's text; reuse one to render names without
/// allocating.
#[derive(Clone)]
pub struct NameText {
    bytes: [u8; MAX_NAME_TEXT_LEN],
    len: usize,
}

impl NameText {
    /// An empty buffer.
    pub fn new() -> Self {
        Self {
            bytes: [0; MAX_NAME_TEXT_LEN],
            len: 0,
        }
    }

    /// The text written last.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    fn push(&mut self, byte: u8) {
        // A validated name never needs more than MAX_NAME_TEXT_LEN bytes.
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }
}

impl Default for NameText {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for NameText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NameText").field(&self.as_str()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 12-byte header followed by `body`.
    fn message(body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0; HEADER_LEN];
        bytes.extend_from_slice(body);
        bytes
    }

    fn text(message: &[u8], start: usize) -> Result<(String, usize), DnsError> {
        parse_name(message, start).map(|(name, end)| (name.to_string(), end))
    }

    #[test]
    fn plain_and_compressed_names() {
        let bytes = message(b"\x03WWW\x07Example\x03com\x00\x04mail\xc0\x10");
        assert_eq!(text(&bytes, 12), Ok(("www.example.com".into(), 29)));
        assert_eq!(text(&bytes, 29), Ok(("mail.example.com".into(), 36)));
        let (www, _) = parse_name(&bytes, 12).unwrap();
        let (example, _) = parse_name(&bytes, 16).unwrap();
        assert!(!www.eq_ignore_case(&example));
        assert!(
            example.eq_ignore_case(
                &parse_name(&message(b"\x07EXAMPLE\x03COM\x00"), 12)
                    .unwrap()
                    .0
            )
        );
    }

    #[test]
    fn root_and_escapes() {
        let bytes = message(b"\x00\x03a.b\x02\\\x01\x00");
        assert_eq!(text(&bytes, 12), Ok((".".into(), 13)));
        assert!(parse_name(&bytes, 12).unwrap().0.is_root());
        assert_eq!(text(&bytes, 13), Ok(("a\\.b.\\\\\\001".into(), 21)));
    }

    #[test]
    fn pointers_must_point_strictly_backwards() {
        // Points at itself (the dns-zlip-1 shape).
        let bytes = message(b"\xc0\x0c");
        assert_eq!(
            text(&bytes, 12),
            Err(DnsError::ForwardPointer {
                offset: 12,
                target: 12
            })
        );
        // Two pointers at each other (the dns-zlip-2 shape).
        let bytes = message(b"\xc0\x0e\xc0\x0c");
        assert_eq!(
            text(&bytes, 12),
            Err(DnsError::ForwardPointer {
                offset: 12,
                target: 14
            })
        );
        assert_eq!(
            text(&bytes, 14),
            Err(DnsError::ForwardPointer {
                offset: 12,
                target: 14
            })
        );
        // Into the header.
        let bytes = message(b"\x01a\xc0\x02");
        assert_eq!(
            text(&bytes, 12),
            Err(DnsError::PointerIntoHeader {
                offset: 14,
                target: 2
            })
        );
    }

    #[test]
    fn a_jump_cannot_read_back_into_the_part_it_left() {
        // 12: "a" then a pointer to 12 + 0 would be itself; instead point at
        // 12 from a later name whose target runs into that later name.
        let bytes = message(b"\x01a\x01b\xc0\x0c");
        // Name at 12 runs a, b, then points back to 12 (not before 12).
        assert_eq!(
            text(&bytes, 12),
            Err(DnsError::ForwardPointer {
                offset: 16,
                target: 12
            })
        );
        // A name at 16 pointing to 12 reads "a", "b", then hits 16 = old start.
        assert_eq!(
            text(&bytes, 16),
            Err(DnsError::Truncated {
                offset: 16,
                reading: "name"
            })
        );
    }

    #[test]
    fn reserved_label_types_and_long_labels() {
        for byte in [0x40u8, 0x7f, 0x80, 0xbf] {
            let bytes = message(&[byte, 0]);
            assert_eq!(
                text(&bytes, 12),
                Err(DnsError::ReservedLabelType { offset: 12, byte })
            );
        }
    }

    #[test]
    fn names_longer_than_255_bytes_are_rejected() {
        // Four 63-byte labels: 4 * 64 + 1 = 257 bytes.
        let mut body = Vec::new();
        for _ in 0..4 {
            body.push(63);
            body.extend_from_slice(&[b'x'; 63]);
        }
        body.push(0);
        assert_eq!(
            text(&message(&body), 12),
            Err(DnsError::NameTooLong { offset: 12 })
        );
        // 3 * 64 + 62 = 254 bytes of labels, plus the root: exactly 255.
        let mut body = Vec::new();
        for len in [63u8, 63, 63, 61] {
            body.push(len);
            body.extend(core::iter::repeat_n(b'y', usize::from(len)));
        }
        body.push(0);
        assert_eq!(body.len(), 255);
        let (name, end) = text(&message(&body), 12).unwrap();
        assert_eq!((name.len(), end), (253, 267));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = message(b"\x03www\x07example\x03com\x00");
        for cut in HEADER_LEN..bytes.len() {
            assert!(
                matches!(text(&bytes[..cut], 12), Err(DnsError::Truncated { .. })),
                "cut at {cut}"
            );
        }
    }
}
