//! The mapping rule: which addresses in a response belong to the name the
//! client asked for.
//!
//! An A or AAAA answer maps its address to the *question name* only when its
//! owner is the question name or is reached from it through the CNAME chain
//! in the answer section (followed in any order, up to [`MAX_CNAME_HOPS`]
//! hops, stopping at a loop). An unrelated record in the answer section, the
//! classic poisoning shape, maps nothing. Authority and additional records
//! never map anything.
//!
//! Only a standard query's (opcode 0) response with rcode NOERROR, exactly
//! one question and class IN maps anything; A / AAAA / CNAME records of other
//! classes are ignored, and so are the unspecified addresses `0.0.0.0` and
//! `::` (what DNS sinkholes answer). The TTL of a mapping is the lowest along
//! its chain: the address record's own and every CNAME's before it. A TTL
//! with the top bit set counts as 0 (RFC 2181 section 8).
//!
//! The chain lives in a fixed array: building a resolution never allocates.

use core::fmt;
use core::net::IpAddr;

use crate::wire::{CLASS_IN, Message, Name, Rcode, RecordData};

/// The longest CNAME chain followed from the question name.
pub const MAX_CNAME_HOPS: usize = 32;

/// Why a parsed message maps nothing at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unmapped {
    /// QR=0: a query, not a response.
    Query,
    /// The opcode is not a standard query.
    Opcode(u8),
    /// The response code is not NOERROR (NXDOMAIN, SERVFAIL, ...).
    Rcode(Rcode),
    /// Not exactly one question.
    QuestionCount(u16),
    /// The question's class is not IN.
    Class(u16),
}

impl Unmapped {
    /// Every reason label, in the order of [`Unmapped::index`].
    pub const REASONS: [&'static str; 5] = ["query", "opcode", "rcode", "question-count", "class"];

    /// A stable label for counting by reason.
    pub fn reason(self) -> &'static str {
        Self::REASONS[self.index()]
    }

    /// A dense index into [`Unmapped::REASONS`].
    pub fn index(self) -> usize {
        match self {
            Self::Query => 0,
            Self::Opcode(_) => 1,
            Self::Rcode(_) => 2,
            Self::QuestionCount(_) => 3,
            Self::Class(_) => 4,
        }
    }
}

impl fmt::Display for Unmapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Query => f.write_str("a query, not a response"),
            Self::Opcode(opcode) => write!(f, "opcode {opcode} is not a standard query"),
            Self::Rcode(rcode) => write!(f, "response code {rcode}"),
            Self::QuestionCount(count) => write!(f, "{count} questions instead of one"),
            Self::Class(class) => write!(f, "question class {class} is not IN"),
        }
    }
}

/// An address the question name resolved to, with the TTL to keep it for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// The address.
    pub ip: IpAddr,
    /// The lowest TTL along the chain that led to it, in seconds.
    pub ttl: u32,
}

/// One name on the chain: its offset in the message, and the lowest TTL of
/// the CNAMEs that lead from the question to it. Kept small: the chain is a
/// fixed array that is built, moved and scanned for every response.
#[derive(Debug, Clone, Copy, Default)]
struct Link {
    offset: u16,
    ttl: u32,
}

/// The question name of a response and the chain of names it resolved
/// through.
#[derive(Debug, Clone)]
pub struct Resolution<'a> {
    message: Message<'a>,
    question: Name<'a>,
    chain: [Link; MAX_CNAME_HOPS + 1],
    len: usize,
    chain_cut: bool,
}

impl<'a> Resolution<'a> {
    /// Follows the question name through the answer section's CNAMEs.
    ///
    /// # Errors
    /// [`Unmapped`] when the message cannot map anything.
    pub fn new(message: Message<'a>) -> Result<Self, Unmapped> {
        let header = message.header();
        if !header.is_response() {
            return Err(Unmapped::Query);
        }
        if header.opcode() != 0 {
            return Err(Unmapped::Opcode(header.opcode()));
        }
        if header.rcode() != Rcode::NOERROR {
            return Err(Unmapped::Rcode(header.rcode()));
        }
        if header.question_count != 1 {
            return Err(Unmapped::QuestionCount(header.question_count));
        }
        let question = message.question().ok_or(Unmapped::QuestionCount(0))?;
        if question.class != CLASS_IN {
            return Err(Unmapped::Class(question.class));
        }
        let mut resolution = Self {
            message,
            question: question.name,
            chain: [Link::default(); MAX_CNAME_HOPS + 1],
            len: 1,
            chain_cut: false,
        };
        resolution.chain[0] = Link {
            offset: name_offset(question.name),
            ttl: u32::MAX,
        };
        resolution.follow_cnames();
        Ok(resolution)
    }

    fn follow_cnames(&mut self) {
        if self.message.answer_cname_count() == 0 {
            return;
        }
        loop {
            let last = self.chain[self.len - 1];
            let last_name = self.name(last);
            let next = self
                .message
                .answers()
                .find_map(|record| match record.data() {
                    RecordData::Cname(target)
                        if record.class == CLASS_IN && record.name.eq_ignore_case(&last_name) =>
                    {
                        let ttl = last.ttl.min(effective_ttl(record.ttl));
                        Some((
                            target,
                            Link {
                                offset: name_offset(target),
                                ttl,
                            },
                        ))
                    }
                    _ => None,
                });
            let Some((target, next)) = next else { return };
            if self
                .links()
                .any(|link| self.name(link).eq_ignore_case(&target))
            {
                // A CNAME loop: every name on it is already in the chain.
                return;
            }
            if self.len == self.chain.len() {
                self.chain_cut = true;
                return;
            }
            self.chain[self.len] = next;
            self.len += 1;
        }
    }

    fn links(&self) -> impl Iterator<Item = Link> + '_ {
        self.chain[..self.len].iter().copied()
    }

    fn name(&self, link: Link) -> Name<'a> {
        Name::trusted(self.message.bytes(), usize::from(link.offset))
    }

    /// The parsed message.
    pub fn message(&self) -> Message<'a> {
        self.message
    }

    /// The name the client asked for: the name every address maps to.
    pub fn question(&self) -> Name<'a> {
        self.question
    }

    /// The CNAME targets followed from the question, in chain order.
    pub fn aliases(&self) -> impl Iterator<Item = Name<'a>> + '_ {
        self.links().skip(1).map(|link| self.name(link))
    }

    /// The chain went on past [`MAX_CNAME_HOPS`]; addresses beyond the cut
    /// are not mapped.
    pub fn chain_cut(&self) -> bool {
        self.chain_cut
    }

    /// Every A / AAAA answer owned by the question name or a name on its
    /// chain, in answer order, with the lowest TTL along the way.
    pub fn addresses(&self) -> impl Iterator<Item = Address> + '_ {
        self.message.answers().filter_map(move |record| {
            let ip = match record.data() {
                RecordData::A(ip) => IpAddr::V4(ip),
                RecordData::Aaaa(ip) => IpAddr::V6(ip),
                _ => return None,
            };
            if record.class != CLASS_IN || ip.is_unspecified() {
                return None;
            }
            let link = self
                .links()
                .find(|&link| self.name(link).eq_ignore_case(&record.name))?;
            Some(Address {
                ip,
                ttl: link.ttl.min(effective_ttl(record.ttl)),
            })
        })
    }
}

/// Offsets fit in 16 bits: a DNS message is at most 65,535 bytes.
fn name_offset(name: Name<'_>) -> u16 {
    u16::try_from(name.offset()).unwrap_or(u16::MAX)
}

/// RFC 2181 section 8: a TTL with the most significant bit set is zero.
pub fn effective_ttl(ttl: u32) -> u32 {
    if ttl > i32::MAX as u32 { 0 } else { ttl }
}
