//! A bounded cursor over a DNS message: every length is checked here, once.

use crate::DnsError;

/// Reads big-endian fields from `bytes`, never past its end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], pos: usize) -> Self {
        Self { bytes, pos }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes; `reading` names what they were for in the error.
    pub(crate) fn take(&mut self, n: usize, reading: &'static str) -> Result<&'a [u8], DnsError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(DnsError::Truncated {
                offset: self.pos,
                reading,
            })?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    pub(crate) fn take_array<const N: usize>(
        &mut self,
        reading: &'static str,
    ) -> Result<[u8; N], DnsError> {
        let bytes = self.take(N, reading)?;
        let mut array = [0; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    pub(crate) fn u16(&mut self, reading: &'static str) -> Result<u16, DnsError> {
        self.take_array::<2>(reading).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, reading: &'static str) -> Result<u32, DnsError> {
        self.take_array::<4>(reading).map(u32::from_be_bytes)
    }

    pub(crate) fn skip_to(&mut self, pos: usize) {
        self.pos = pos;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_reads_past_the_end() {
        let mut reader = Reader::new(&[1, 2, 3], 0);
        assert_eq!(reader.u16("x"), Ok(0x0102));
        assert_eq!(
            reader.u16("x"),
            Err(DnsError::Truncated {
                offset: 2,
                reading: "x"
            })
        );
        assert_eq!(reader.pos(), 2, "a failed read does not move the cursor");
        assert_eq!(
            reader.take(usize::MAX, "x"),
            Err(DnsError::Truncated {
                offset: 2,
                reading: "x"
            })
        );
        assert_eq!(reader.take(1, "x"), Ok(&[3][..]));
        assert_eq!(reader.remaining(), 0);
    }
}
