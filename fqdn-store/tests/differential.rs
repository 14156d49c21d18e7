//! Differential property test against hickory-proto: generated responses
//! (compressed or not, mixed case, every record kind we treat specially),
//! as built and after random byte edits and truncation. Whenever
//! hickory-proto parses one, our questions and answers must agree with its
//! (see `fuzzing::differential` for the documented stricter cases).

mod support;

use std::net::{Ipv4Addr, Ipv6Addr};

use edgewise_fqdn_store::fuzzing::differential;
use proptest::prelude::*;
use support::{Builder, Data};

const NAMES: [&str; 6] = [
    "a.example",
    "WWW.Example.COM",
    "b.a.example",
    "cdn.example.net",
    "x",
    "a.b.c.d.e.f.g",
];

#[derive(Debug, Clone)]
enum Kind {
    A(u32),
    Aaaa(u128),
    Cname(usize),
    Other(u16, Vec<u8>),
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        any::<u32>().prop_map(Kind::A),
        any::<u128>().prop_map(Kind::Aaaa),
        (0..NAMES.len()).prop_map(Kind::Cname),
        (2u16..300, proptest::collection::vec(any::<u8>(), 0..12))
            .prop_map(|(t, d)| Kind::Other(t, d)),
    ]
}

fn cased(name: &str, mask: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

prop_compose! {
    fn response()(
        id in any::<u16>(),
        flags in prop_oneof![Just(0x8180u16), Just(0x8183), Just(0x8580), Just(0x0100), any::<u16>()],
        question in 0..NAMES.len(),
        answers in proptest::collection::vec((0..NAMES.len(), kind(), any::<u32>(), any::<u64>()), 0..8),
        compress in any::<bool>(),
    ) -> Vec<u8> {
        let mut builder = Builder::new(id, flags);
        builder.compress = compress;
        builder.question(NAMES[question], 1);
        for (owner, kind, ttl, mask) in &answers {
            let owner = cased(NAMES[*owner], *mask);
            match kind {
                Kind::A(ip) => builder.answer(&owner, *ttl, Data::A(Ipv4Addr::from(*ip))),
                Kind::Aaaa(ip) => builder.answer(&owner, *ttl, Data::Aaaa(Ipv6Addr::from(*ip))),
                Kind::Cname(target) => builder.answer(&owner, *ttl, Data::Cname(&cased(NAMES[*target], !mask))),
                // Types hickory reads as structured data would fail its own
                // checks on random bytes; keep those to types it treats as
                // opaque or that we both skip.
                Kind::Other(rtype, data) => {
                    let rtype = if [1, 5, 28].contains(rtype) { 99 } else { *rtype };
                    builder.typed_answer(&owner, rtype, *ttl, data)
                }
            };
        }
        builder.finish()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_hickory_on_generated_responses(bytes in response()) {
        differential(&bytes);
    }

    #[test]
    fn agrees_with_hickory_after_edits(
        bytes in response(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = bytes;
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        differential(&bytes);
    }
}
