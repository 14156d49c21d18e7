//! DNS responses as records show them: [`describe`] parses one message,
//! records a response's mappings in the fqdn store, and gives the
//! [`ResponseLine`] (`edgewise dns` prints the same lines).

use std::collections::BTreeMap;
use std::net::IpAddr;

use edgewise_fqdn_store::{Address, DnsError, FqdnStore, Message, RecordData, Resolution};
use edgewise_time::UnixNanos;
use serde::Serialize;

/// One line of `edgewise dns` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum DnsLine {
    /// A response that parsed.
    Response(ResponseLine),
    /// A message that did not.
    Error {
        /// 1-based packet number.
        frame: u64,
        /// `"udp"` or `"tcp"`.
        transport: &'static str,
        /// Why it was rejected.
        error: String,
    },
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseLine {
    /// 1-based packet number (for TCP, the segment completing the message).
    pub frame: u64,
    /// `"udp"` or `"tcp"`.
    pub transport: &'static str,
    /// Transaction id.
    pub id: u16,
    /// `NOERROR`, `NXDOMAIN`, ...
    pub rcode: String,
    /// The TC flag.
    pub truncated: bool,
    /// The first question.
    pub question: Option<QuestionLine>,
    /// The answer section.
    pub answers: Vec<AnswerLine>,
    /// Address -> question name, by the mapping rule.
    pub resolved: BTreeMap<IpAddr, String>,
}

/// A question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuestionLine {
    /// Lowercase, no trailing dot.
    pub name: String,
    /// `A`, `AAAA`, `TYPE65`, ...
    #[serde(rename = "type")]
    pub record_type: String,
}

/// An answer record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnswerLine {
    /// Owner name, lowercase.
    pub name: String,
    /// Record type.
    #[serde(rename = "type")]
    pub record_type: String,
    /// TTL in seconds, as on the wire.
    pub ttl: u32,
    /// The address (A / AAAA) or target (CNAME); absent for other types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// What `edgewise dns` prints for one DNS message (`frame` and
/// `transport` only label it), after recording a response's mappings in
/// `store` at `now`: `None` for a query, the parse error for a message
/// that does not parse.
pub fn describe(
    frame: u64,
    transport: &'static str,
    bytes: &[u8],
    store: &mut FqdnStore,
    now: UnixNanos,
) -> Option<Result<ResponseLine, DnsError>> {
    describe_with(frame, transport, bytes, store, now, &mut |_, _| {})
}

/// [`describe`], also handing each address the response resolved, with
/// the question name, to `resolved`.
pub(crate) fn describe_with(
    frame: u64,
    transport: &'static str,
    bytes: &[u8],
    store: &mut FqdnStore,
    now: UnixNanos,
    on_address: &mut dyn FnMut(Address, &str),
) -> Option<Result<ResponseLine, DnsError>> {
    match Message::read_header(bytes) {
        Ok(header) if !header.is_response() => return None,
        Ok(_) => {}
        Err(error) => return Some(Err(error)),
    }
    let message = match Message::parse(bytes) {
        Ok(message) => message,
        Err(error) => return Some(Err(error)),
    };
    let mut resolved = BTreeMap::new();
    if let Ok(resolution) = Resolution::new(message) {
        let name = resolution.question().to_string();
        for address in resolution.addresses() {
            on_address(address, &name);
            resolved.insert(address.ip, name.clone());
        }
        store.record_resolution(&resolution, now);
    }
    let header = message.header();
    Some(Ok(ResponseLine {
        frame,
        transport,
        id: header.id,
        rcode: header.rcode().to_string(),
        truncated: header.is_truncated(),
        question: message.question().map(|question| QuestionLine {
            name: question.name.to_string(),
            record_type: question.record_type.to_string(),
        }),
        answers: message
            .answers()
            .map(|record| AnswerLine {
                name: record.name.to_string(),
                record_type: record.record_type.to_string(),
                ttl: record.ttl,
                data: match record.data() {
                    RecordData::A(ip) => Some(ip.to_string()),
                    RecordData::Aaaa(ip) => Some(ip.to_string()),
                    RecordData::Cname(target) => Some(target.to_string()),
                    RecordData::Other(_) => None,
                },
            })
            .collect(),
        resolved,
    }))
}
