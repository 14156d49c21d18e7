//! One bounded cursor for TLS's length-prefixed vectors (RFC 8446 section
//! 3.4): every length is checked here, once, and nothing past the end of a
//! vector can be read.

use crate::tls::TlsError;

/// A cursor over a byte slice; every read either succeeds whole or fails
/// with the field it was reading.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], TlsError> {
        if self.rest.len() < n {
            return Err(TlsError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, TlsError> {
        Ok(self.take(1, field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, TlsError> {
        let bytes = self.take(2, field)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    /// A vector with a one-byte length.
    pub(crate) fn vec8(&mut self, field: &'static str) -> Result<&'a [u8], TlsError> {
        let len = self.u8(field)?;
        self.take(usize::from(len), field)
    }

    /// A vector with a two-byte length.
    pub(crate) fn vec16(&mut self, field: &'static str) -> Result<&'a [u8], TlsError> {
        let len = self.u16(field)?;
        self.take(usize::from(len), field)
    }
}

/// The big-endian `u16`s of a list whose length was checked to be even.
pub(crate) fn u16s(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
}

/// A list of `u16`s (its byte length must be even).
pub(crate) fn u16_list<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a [u8], TlsError> {
    if bytes.len().is_multiple_of(2) {
        Ok(bytes)
    } else {
        Err(TlsError::OddLength { field })
    }
}
