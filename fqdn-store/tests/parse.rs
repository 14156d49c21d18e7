//! The parser on built messages and on the shared malformed captures: every
//! rule of `wire::message` and `wire::name`, and every truncation length.

mod support;

use std::net::Ipv4Addr;

use edgewise_fqdn_store::{DnsError, Message, RecordData, RecordType};
use support::{Builder, Data, Section};

fn example() -> Vec<u8> {
    let mut builder = Builder::response("WWW.Example.com", support::A);
    builder
        .answer("www.example.com", 300, Data::Cname("web.example.net"))
        .answer("web.example.net", 60, Data::A(Ipv4Addr::new(192, 0, 2, 1)))
        .typed_answer("www.example.com", support::MX, 60, &[0, 10, 0xc0, 12])
        .record(
            Section::Authority,
            "example.com",
            60,
            Data::Raw(b"\x05hello"),
        )
        .record(
            Section::Additional,
            "x.example.com",
            60,
            Data::Aaaa("2001:db8::1".parse().unwrap()),
        );
    builder.finish()
}

#[test]
fn reads_every_section() {
    let bytes = example();
    let message = Message::parse(&bytes).unwrap();
    let header = message.header();
    assert!(header.is_response());
    assert_eq!(header.id, 0x4242);
    let question = message.question().unwrap();
    assert_eq!(
        question.name.to_string(),
        "www.example.com",
        "lowercase, no trailing dot"
    );
    assert_eq!(question.record_type, RecordType::A);
    let answers: Vec<_> = message.answers().collect();
    assert_eq!(answers.len(), 3);
    assert!(
        matches!(answers[0].data(), RecordData::Cname(target) if target.to_string() == "web.example.net")
    );
    assert!(matches!(answers[1].data(), RecordData::A(ip) if ip == Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(
        (answers[1].ttl, answers[1].record_type),
        (60, RecordType::A)
    );
    assert!(matches!(answers[2].data(), RecordData::Other(raw) if raw == [0, 10, 0xc0, 12]));
    assert_eq!(message.authorities().count(), 1);
    assert_eq!(
        message.additionals().next().unwrap().record_type,
        RecordType::AAAA
    );
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = example();
    for cut in 0..bytes.len() {
        let error = Message::parse(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(
                error,
                DnsError::HeaderTruncated { .. } | DnsError::Truncated { .. }
            ),
            "cut at {cut}: {error}"
        );
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = example();
    let end = bytes.len();
    bytes.push(0);
    assert_eq!(
        Message::parse(&bytes).unwrap_err(),
        DnsError::TrailingBytes { end, extra: 1 }
    );
}

#[test]
fn counts_that_lie_are_rejected() {
    let mut bytes = example();
    bytes[7] += 1; // one more answer than present
    assert!(matches!(
        Message::parse(&bytes),
        Err(DnsError::Truncated { .. } | DnsError::TrailingBytes { .. })
    ));
    let mut bytes = example();
    bytes[6..8].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(
        Message::parse(&bytes),
        Err(DnsError::Truncated { .. })
    ));
}

#[test]
fn wrong_address_lengths_are_rejected() {
    let mut builder = Builder::response("a.example", support::A);
    builder.typed_answer("a.example", support::A, 1, &[1, 2, 3]);
    assert!(matches!(
        Message::parse(&builder.finish()),
        Err(DnsError::BadAddressLength {
            record_type: "A",
            rdlength: 3,
            ..
        })
    ));
    let mut builder = Builder::response("a.example", support::AAAA);
    builder.typed_answer("a.example", support::AAAA, 1, &[0; 4]);
    assert!(matches!(
        Message::parse(&builder.finish()),
        Err(DnsError::BadAddressLength {
            record_type: "AAAA",
            rdlength: 4,
            ..
        })
    ));
    // Zero-length A data (hickory reads it as an "update" record) is wrong
    // in a response.
    let mut builder = Builder::response("a.example", support::A);
    builder.typed_answer("a.example", support::A, 1, &[]);
    assert!(matches!(
        Message::parse(&builder.finish()),
        Err(DnsError::BadAddressLength { rdlength: 0, .. })
    ));
}

#[test]
fn a_cname_must_fill_its_data_exactly() {
    let mut builder = Builder::response("a.example", support::A);
    builder.typed_answer("a.example", support::CNAME, 1, b"\x01b\x00\x00");
    assert!(matches!(
        Message::parse(&builder.finish()),
        Err(DnsError::BadCnameLength {
            name_len: 3,
            rdlength: 4,
            ..
        })
    ));
    let mut builder = Builder::response("a.example", support::A);
    builder.typed_answer("a.example", support::CNAME, 1, b"\x01b\x01c");
    assert!(matches!(
        Message::parse(&builder.finish()),
        Err(DnsError::Truncated {
            reading: "name",
            ..
        })
    ));
}

#[test]
fn names_in_records_follow_the_name_rules() {
    // An owner name that is a forward pointer.
    let mut bytes = Builder::response("a.example", support::A).finish();
    bytes[7] = 1;
    bytes.extend_from_slice(&[0xc0, 0xff, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
    let at = bytes.len() - 16;
    assert_eq!(
        Message::parse(&bytes).unwrap_err(),
        DnsError::ForwardPointer {
            offset: at,
            target: 0xff
        }
    );
}

#[test]
fn unknown_types_and_codes_are_kept() {
    let mut builder = Builder::new(1, 0x800b); // response, rcode 11
    builder.question("x.example", 0xfff0);
    builder.typed_answer("x.example", 0xfff0, 5, b"anything at all");
    let bytes = builder.finish();
    let message = Message::parse(&bytes).unwrap();
    assert_eq!(message.header().rcode().to_string(), "DSOTYPENI");
    assert_eq!(
        message.question().unwrap().record_type.to_string(),
        "TYPE65520"
    );
}

/// The UDP payloads (by the IP length) of the shared compression-loop
/// captures: pointers to themselves and to each other.
#[test]
fn compression_loops_from_the_shared_vectors_are_rejected() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/dns");
    let dir = std::env::var_os("EDGEWISE_SHARED").map_or(dir, |shared| {
        std::path::PathBuf::from(shared).join("vectors/dns")
    });
    for file in ["dns-zlip-1.pcap", "dns-zlip-2.pcap", "dns-zlip-3.pcap"] {
        let path = dir.join(file);
        let bytes =
            std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        // Classic pcap, Ethernet, one packet: 24-byte file header, 16-byte
        // record header, 14 Ethernet, 20 IPv4 (no options), 8 UDP.
        let frame = &bytes[24 + 16..];
        let ip_len = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
        let dns = &frame[14 + 28..14 + ip_len];
        let header = Message::read_header(dns).unwrap();
        assert!(!header.is_response(), "{file} is a query");
        let error = Message::parse(dns).unwrap_err();
        assert!(
            matches!(
                error,
                DnsError::ForwardPointer { .. } | DnsError::PointerIntoHeader { .. }
            ),
            "{file}: {error}"
        );
    }
}

/// Names built from pointers to earlier names (validated once and then
/// remembered) still count their whole length.
#[test]
fn names_too_long_through_chains_of_pointers() {
    let labels: Vec<String> = (b'a'..=b'd')
        .map(|c| char::from(c).to_string().repeat(63))
        .collect();
    let name = |depth: usize| {
        labels[..depth]
            .iter()
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join(".")
    };
    let mut builder = Builder::response(&name(1), support::A);
    builder.answer(&name(2), 1, Data::A(Ipv4Addr::LOCALHOST));
    builder.answer(&name(3), 1, Data::A(Ipv4Addr::LOCALHOST));
    assert!(
        Message::parse(&builder.finish()).is_ok(),
        "193 bytes is fine"
    );
    builder.answer(&name(4), 1, Data::A(Ipv4Addr::LOCALHOST));
    let bytes = builder.finish();
    assert!(bytes.len() < 400, "compressed: {} bytes", bytes.len());
    assert!(matches!(
        Message::parse(&bytes),
        Err(DnsError::NameTooLong { .. })
    ));
}
