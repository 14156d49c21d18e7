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

/// A validated DNS message borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    header: Header,
    answers_at: usize,
    answer_cnames: u16,
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
        let mut cache = NameCache::default();
        let mut pos = HEADER_LEN;
        for _ in 0..header.question_count {
            pos = validate_question(bytes, pos, &mut cache)?;
        }
        let answers_at = pos;
        let (authorities_at, answer_cnames) =
            validate_section(bytes, answers_at, header.answer_count, &mut cache)?;
        let (additionals_at, _) =
            validate_section(bytes, authorities_at, header.authority_count, &mut cache)?;
        let (pos, _) =
            validate_section(bytes, additionals_at, header.additional_count, &mut cache)?;
        if pos < bytes.len() {
            return Err(DnsError::TrailingBytes {
                end: pos,
                extra: bytes.len() - pos,
            });
        }
        Ok(Self {
            bytes,
            header,
            answers_at,
            answer_cnames,
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
        let mut pos = HEADER_LEN;
        (0..self.header.question_count).map_while(move |_| read_question(bytes, &mut pos))
    }

    /// The answer section.
    pub fn answers(&self) -> Records<'a> {
        Records::new(self.bytes, self.answers_at, self.header.answer_count)
    }

    /// How many records of the answer section are CNAMEs (of any class).
    pub fn answer_cname_count(&self) -> u16 {
        self.answer_cnames
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
    pos: usize,
    left: u16,
}

impl<'a> Records<'a> {
    fn new(bytes: &'a [u8], at: usize, count: u16) -> Self {
        Self {
            bytes,
            pos: at,
            left: count,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    #[inline]
    fn next(&mut self) -> Option<Record<'a>> {
        self.left = self.left.checked_sub(1)?;
        // Validated by `Message::parse`, so this cannot fail; stop if it did.
        let record = read_record(self.bytes, &mut self.pos);
        if record.is_none() {
            self.left = 0;
        }
        record
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

/// Validates the question at `pos`; returns the offset past it.
fn validate_question(bytes: &[u8], pos: usize, cache: &mut NameCache) -> Result<usize, DnsError> {
    let end = parse_name_cached(bytes, pos, cache)?;
    if end + 4 > bytes.len() {
        return Err(DnsError::Truncated {
            offset: end,
            reading: "question",
        });
    }
    Ok(end + 4)
}

/// Validates `count` records from `pos`; returns the offset past them and
/// how many were CNAMEs.
fn validate_section(
    bytes: &[u8],
    mut pos: usize,
    count: u16,
    cache: &mut NameCache,
) -> Result<(usize, u16), DnsError> {
    let mut cnames = 0;
    for _ in 0..count {
        let (end, record_type) = validate_record(bytes, pos, cache)?;
        cnames += u16::from(record_type == RecordType::CNAME);
        pos = end;
    }
    Ok((pos, cnames))
}

/// Validates the record at `offset`; returns the offset past it and its
/// type. Reads only what the rules need: the name, the type, RDLENGTH, and a
/// CNAME's target.
#[inline]
fn validate_record(
    bytes: &[u8],
    offset: usize,
    cache: &mut NameCache,
) -> Result<(usize, RecordType), DnsError> {
    let fixed_at = parse_name_cached(bytes, offset, cache)?;
    let Some(fixed) = bytes
        .get(fixed_at..)
        .and_then(<[u8]>::first_chunk::<FIXED_LEN>)
    else {
        return Err(DnsError::Truncated {
            offset: fixed_at,
            reading: "record",
        });
    };
    let record_type = RecordType(u16::from_be_bytes([fixed[0], fixed[1]]));
    let rdlength = u16::from_be_bytes([fixed[8], fixed[9]]);
    let rdata_at = fixed_at + FIXED_LEN;
    let rdata_end = rdata_at + usize::from(rdlength);
    if rdata_end > bytes.len() {
        return Err(DnsError::Truncated {
            offset: rdata_at,
            reading: "rdata",
        });
    }
    match record_type {
        RecordType::A if rdlength != 4 => Err(bad_address(offset, "A", rdlength)),
        RecordType::AAAA if rdlength != 16 => Err(bad_address(offset, "AAAA", rdlength)),
        RecordType::CNAME => {
            // The target is read within the message (it may point back into
            // it) but must end exactly where RDATA ends.
            let end = parse_name_cached(&bytes[..rdata_end], rdata_at, cache)?;
            if end == rdata_end {
                Ok((rdata_end, record_type))
            } else {
                Err(DnsError::BadCnameLength {
                    offset,
                    name_len: end - rdata_at,
                    rdlength,
                })
            }
        }
        _ => Ok((rdata_end, record_type)),
    }
}

/// Type, class, TTL and RDLENGTH: the fixed part of a record after its name.
const FIXED_LEN: usize = 10;

/// Reads the question at `pos` of a validated message.
fn read_question<'a>(bytes: &'a [u8], pos: &mut usize) -> Option<Question<'a>> {
    let name = Name::trusted(bytes, *pos);
    let at = skip_name(bytes, *pos);
    let fixed = bytes.get(at..)?.first_chunk::<4>()?;
    *pos = at + 4;
    Some(Question {
        name,
        record_type: RecordType(u16::from_be_bytes([fixed[0], fixed[1]])),
        class: u16::from_be_bytes([fixed[2], fixed[3]]),
    })
}

/// Reads the record at `pos` of a validated message.
#[inline]
fn read_record<'a>(bytes: &'a [u8], pos: &mut usize) -> Option<Record<'a>> {
    let offset = *pos;
    let name = Name::trusted(bytes, offset);
    let fixed_at = skip_name(bytes, offset);
    let fixed = bytes.get(fixed_at..)?.first_chunk::<FIXED_LEN>()?;
    let record_type = RecordType(u16::from_be_bytes([fixed[0], fixed[1]]));
    let rdata_at = fixed_at + FIXED_LEN;
    let rdata =
        bytes.get(rdata_at..rdata_at + usize::from(u16::from_be_bytes([fixed[8], fixed[9]])))?;
    *pos = rdata_at + rdata.len();
    let data = match record_type {
        RecordType::A => RecordData::A(Ipv4Addr::from(<[u8; 4]>::try_from(rdata).ok()?)),
        RecordType::AAAA => RecordData::Aaaa(Ipv6Addr::from(<[u8; 16]>::try_from(rdata).ok()?)),
        RecordType::CNAME => RecordData::Cname(Name::trusted(bytes, rdata_at)),
        _ => RecordData::Other(rdata),
    };
    Some(Record {
        name,
        record_type,
        class: u16::from_be_bytes([fixed[2], fixed[3]]),
        ttl: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
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
