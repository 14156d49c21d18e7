//! A whole DNS message, validated in one pass and then read without checks.
//!
//! [`Message::parse`] walks the header, every question and every record of
//! the answer, authority and additional sections. It rejects the message
//! whole (a [`DnsError`]) when a name breaks a rule of [`crate::wire::name`],
//! when a count promises more than is there, when a record's data runs past
//! the end, when an A / AAAA record's data is not 4 / 16 bytes, when a CNAME's
//! target does not fill its data exactly, or when bytes follow the last
//! counted record. Every other record type is skipped by its RDLENGTH.
//!
//! Nothing is allocated and nothing is sized from the header counts: the
//! counts only bound loops over bytes that are really there.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::DnsError;
use crate::wire::header::{Header, RecordType};
use crate::wire::name::{HEADER_LEN, Name, NameCache, parse_name_cached, skip_name};
use crate::wire::reader::Reader;

/// A validated DNS message borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    header: Header,
    answers_at: usize,
    authorities_at: usize,
    additionals_at: usize,
}

/// One entry of the question section.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The name asked about.
    pub name: Name<'a>,
    /// The type asked for.
    pub record_type: RecordType,
    /// The class asked for (1 is IN).
    pub class: u16,
}

/// One resource record.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The owner name.
    pub name: Name<'a>,
    /// The record type.
    pub record_type: RecordType,
    /// The class (1 is IN; for OPT, the UDP payload size).
    pub class: u16,
    /// Time to live in seconds, as on the wire.
    pub ttl: u32,
    /// Offset of the record's first byte in the message.
    pub offset: usize,
    data: RecordData<'a>,
}

/// The data of a record, decoded for the types mappings are made from.
#[derive(Debug, Clone, Copy)]
pub enum RecordData<'a> {
    /// An A record's address.
    A(Ipv4Addr),
    /// An AAAA record's address.
    Aaaa(Ipv6Addr),
    /// A CNAME record's target.
    Cname(Name<'a>),
    /// Any other type: the raw RDATA, unchecked.
    Other(&'a [u8]),
}

impl<'a> Record<'a> {
    /// The record's data.
    pub fn data(&self) -> RecordData<'a> {
        self.data
    }
}

impl<'a> Message<'a> {
    /// Validates a whole message.
    ///
    /// # Errors
    /// A [`DnsError`] naming the first rule the message breaks.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DnsError> {
        let header = Self::read_header(bytes)?;
        let mut reader = Reader::new(bytes, HEADER_LEN);
        let mut cache = Some(NameCache::default());
        for _ in 0..header.question_count {
            read_question(bytes, &mut reader, cache.as_mut())?;
        }
        let answers_at = reader.pos();
        for _ in 0..header.answer_count {
            read_record(bytes, &mut reader, cache.as_mut())?;
        }
        let authorities_at = reader.pos();
        for _ in 0..header.authority_count {
            read_record(bytes, &mut reader, cache.as_mut())?;
        }
        let additionals_at = reader.pos();
        for _ in 0..header.additional_count {
            read_record(bytes, &mut reader, cache.as_mut())?;
        }
        if reader.remaining() > 0 {
            return Err(DnsError::TrailingBytes {
                end: reader.pos(),
                extra: reader.remaining(),
            });
        }
        Ok(Self {
            bytes,
            header,
            answers_at,
            authorities_at,
            additionals_at,
        })
    }

    /// Reads only the header (to tell a query from a response before
    /// parsing the rest).
    ///
    /// # Errors
    /// [`DnsError::HeaderTruncated`] below 12 bytes.
    pub fn read_header(bytes: &[u8]) -> Result<Header, DnsError> {
        bytes
            .first_chunk::<HEADER_LEN>()
            .map(Header::from_bytes)
            .ok_or(DnsError::HeaderTruncated {
                available: bytes.len(),
            })
    }

    /// The message's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The first question, if there is one.
    pub fn question(&self) -> Option<Question<'a>> {
        self.questions().next()
    }

    /// Every question.
    pub fn questions(&self) -> impl Iterator<Item = Question<'a>> + use<'a> {
        let bytes = self.bytes;
        let mut reader = Reader::new(bytes, HEADER_LEN);
        (0..self.header.question_count)
            .map_while(move |_| read_question(bytes, &mut reader, None).ok())
    }

    /// The answer section.
    pub fn answers(&self) -> Records<'a> {
        Records::new(self.bytes, self.answers_at, self.header.answer_count)
    }

    /// The authority section (walked for validity, never used for mappings).
    pub fn authorities(&self) -> Records<'a> {
        Records::new(self.bytes, self.authorities_at, self.header.authority_count)
    }

    /// The additional section (walked for validity, never used for mappings).
    pub fn additionals(&self) -> Records<'a> {
        Records::new(
            self.bytes,
            self.additionals_at,
            self.header.additional_count,
        )
    }
}

/// Iterator over the records of one section of a validated message.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    bytes: &'a [u8],
    reader: Reader<'a>,
    left: u16,
}

impl<'a> Records<'a> {
    fn new(bytes: &'a [u8], at: usize, count: u16) -> Self {
        Self {
            bytes,
            reader: Reader::new(bytes, at),
            left: count,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        self.left = self.left.checked_sub(1)?;
        // Validated by `Message::parse`, so this cannot fail; stop if it did.
        let record = read_record(self.bytes, &mut self.reader, None).ok();
        if record.is_none() {
            self.left = 0;
        }
        record
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

/// The name at `start` and the offset past it: validated when a cache is
/// given (while parsing), trusted otherwise (reading a parsed message).
fn name_at<'a>(
    bytes: &'a [u8],
    start: usize,
    cache: Option<&mut NameCache>,
) -> Result<(Name<'a>, usize), DnsError> {
    match cache {
        Some(cache) => parse_name_cached(bytes, start, cache),
        None => Ok((Name::trusted(bytes, start), skip_name(bytes, start))),
    }
}

fn read_question<'a>(
    bytes: &'a [u8],
    reader: &mut Reader<'a>,
    cache: Option<&mut NameCache>,
) -> Result<Question<'a>, DnsError> {
    let (name, end) = name_at(bytes, reader.pos(), cache)?;
    reader.skip_to(end);
    let record_type = RecordType(reader.u16("question")?);
    let class = reader.u16("question")?;
    Ok(Question {
        name,
        record_type,
        class,
    })
}

fn read_record<'a>(
    bytes: &'a [u8],
    reader: &mut Reader<'a>,
    mut cache: Option<&mut NameCache>,
) -> Result<Record<'a>, DnsError> {
    let offset = reader.pos();
    let (name, end) = name_at(bytes, offset, cache.as_deref_mut())?;
    reader.skip_to(end);
    let record_type = RecordType(reader.u16("record")?);
    let class = reader.u16("record")?;
    let ttl = reader.u32("record")?;
    let rdlength = reader.u16("record")?;
    let rdata_at = reader.pos();
    let rdata = reader.take(usize::from(rdlength), "rdata")?;
    let data = match record_type {
        RecordType::A => RecordData::A(Ipv4Addr::from(
            <[u8; 4]>::try_from(rdata).map_err(|_| bad_address(offset, "A", rdlength))?,
        )),
        RecordType::AAAA => RecordData::Aaaa(Ipv6Addr::from(
            <[u8; 16]>::try_from(rdata).map_err(|_| bad_address(offset, "AAAA", rdlength))?,
        )),
        RecordType::CNAME => {
            // The target is read within the message (it may point back into
            // it) but must end exactly where RDATA ends.
            let rdata_end = rdata_at + rdata.len();
            let (target, end) = name_at(&bytes[..rdata_end], rdata_at, cache)?;
            if end != rdata_end {
                return Err(DnsError::BadCnameLength {
                    offset,
                    name_len: end - rdata_at,
                    rdlength,
                });
            }
            RecordData::Cname(Name::rebind(target, bytes))
        }
        _ => RecordData::Other(rdata),
    };
    Ok(Record {
        name,
        record_type,
        class,
        ttl,
        offset,
        data,
    })
}

fn bad_address(offset: usize, record_type: &'static str, rdlength: u16) -> DnsError {
    DnsError::BadAddressLength {
        offset,
        record_type,
        rdlength,
    }
}
