//! A differential check against hickory-proto, for the fuzz target and the
//! property test: whenever hickory-proto parses a message, this crate parses
//! it too and agrees on the questions and the answer records.
//!
//! Documented places where this parser is stricter, where hickory-proto's
//! success is not a disagreement:
//! - bytes after the last counted record ([`DnsError::TrailingBytes`]):
//!   hickory-proto ignores them; the check then compares the message
//!   without them;
//! - compression pointers into the 12-byte header
//!   ([`DnsError::PointerIntoHeader`]);
//! - A / AAAA / CNAME records with no data at all, which hickory-proto reads
//!   as dynamic-update records ([`DnsError::BadAddressLength`] with
//!   RDLENGTH 0, or a CNAME target cut short).

use hickory_proto::op::Message as HickoryMessage;
use hickory_proto::rr::{Name as HickoryName, RData, Record as HickoryRecord};

use crate::{DnsError, Message, Name, RecordData, RecordType};

/// Panics when hickory-proto parses `data` and this crate disagrees.
///
/// # Panics
/// On any disagreement; that is the point.
pub fn check(data: &[u8]) {
    let Ok(theirs) = HickoryMessage::from_vec(data) else {
        return;
    };
    let ours = match Message::parse(data) {
        Ok(ours) => ours,
        Err(DnsError::TrailingBytes { end, .. }) => {
            Message::parse(&data[..end]).expect("the message without its trailing bytes parses")
        }
        Err(DnsError::PointerIntoHeader { .. }) => return,
        Err(error) if is_update_shaped(&theirs) => {
            assert!(matches!(
                error,
                DnsError::BadAddressLength { rdlength: 0, .. } | DnsError::Truncated { .. }
            ));
            return;
        }
        Err(error) => panic!("hickory-proto parses what we reject: {error}"),
    };
    let header = ours.header();
    assert_eq!(header.id, theirs.metadata.id);
    let questions: Vec<_> = ours.questions().collect();
    assert_eq!(questions.len(), theirs.queries.len());
    for (mine, their) in questions.iter().zip(&theirs.queries) {
        assert_same_name(mine.name, their.name());
        assert_eq!(mine.record_type.0, u16::from(their.query_type()));
    }
    let answers: Vec<_> = ours.answers().collect();
    assert_eq!(answers.len(), theirs.answers.len());
    for (mine, their) in answers.iter().zip(&theirs.answers) {
        assert_same_record(mine, their);
    }
}

fn is_update_shaped(message: &HickoryMessage) -> bool {
    let records = message
        .answers
        .iter()
        .chain(&message.authorities)
        .chain(&message.additionals);
    records
        .into_iter()
        .any(|record| matches!(record.data, RData::Update0(_)))
}

fn assert_same_record(mine: &crate::Record<'_>, their: &HickoryRecord) {
    assert_same_name(mine.name, &their.name);
    assert_eq!(mine.ttl, their.ttl);
    match (mine.data(), &their.data) {
        (RecordData::A(ip), RData::A(a)) => assert_eq!(ip, a.0),
        (RecordData::Aaaa(ip), RData::AAAA(aaaa)) => assert_eq!(ip, aaaa.0),
        (RecordData::Cname(target), RData::CNAME(cname)) => assert_same_name(target, &cname.0),
        (RecordData::Other(_), _) => {
            assert!(
                ![RecordType::A, RecordType::AAAA, RecordType::CNAME].contains(&mine.record_type)
            );
        }
        (mine, their) => panic!("record data differs: {mine:?} vs {their:?}"),
    }
}

fn assert_same_name(mine: Name<'_>, their: &HickoryName) {
    let mine: Vec<Vec<u8>> = mine.labels().map(<[u8]>::to_ascii_lowercase).collect();
    let theirs: Vec<Vec<u8>> = their.iter().map(<[u8]>::to_ascii_lowercase).collect();
    assert_eq!(mine, theirs, "names differ");
}
