//! Allocation proofs with a counting allocator: the per-response parse path
//! allocates nothing, and the store's bytes per mapping are measured.

mod support;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use edgewise_fqdn_store::{FqdnStore, Message, NameText, Resolution, StoreConfig, TcpDnsStream};
use edgewise_test_support::{CountingAllocator, measure};
use edgewise_time::UnixNanos;
use support::{Builder, Data};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn response() -> Vec<u8> {
    let mut builder = Builder::response("www.example.com", support::A);
    builder.answer("www.example.com", 300, Data::Cname("edge.example.net"));
    for last in 1..=8 {
        builder.answer(
            "edge.example.net",
            60,
            Data::A(Ipv4Addr::new(192, 0, 2, last)),
        );
    }
    builder.typed_answer("www.example.com", support::TXT, 60, b"\x05hello");
    builder.finish()
}

#[test]
fn parsing_resolving_and_naming_a_response_does_not_allocate() {
    let bytes = response();
    let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    let mut text = NameText::new();
    let mut stream = TcpDnsStream::new();
    let mut store = FqdnStore::new(StoreConfig::default());
    store.record(&bytes, UnixNanos::ZERO).unwrap();
    let ((), measured) = measure(|| {
        for _ in 0..1000 {
            let message = Message::parse(&bytes).unwrap();
            let resolution = Resolution::new(message).unwrap();
            assert_eq!(
                resolution.question().write_text(&mut text),
                "www.example.com"
            );
            assert_eq!(resolution.addresses().count(), 8);
            for record in message.answers() {
                record.name.write_text(&mut text);
            }
            let ip = IpAddr::from([192, 0, 2, 3]);
            assert_eq!(store.lookup(ip, UnixNanos::from_nanos(1)).count(), 1);
            stream
                .push(0, &framed, |message| assert_eq!(message.len(), bytes.len()))
                .unwrap();
        }
    });
    assert_eq!(
        measured.allocations, 0,
        "allocations on the per-response path"
    );
}

/// Bytes held per mapping at 100,000 mappings, for the README: one name per
/// address (the worst case for sharing), and 100 addresses per name.
#[test]
fn bytes_per_mapping() {
    let mut report = String::new();
    for (label, ips_per_name) in [
        ("one address per name", 1u32),
        ("100 addresses per name", 100),
    ] {
        let mappings = 100_000u32;
        let responses: Vec<Vec<u8>> = (0..mappings / ips_per_name)
            .map(|n| {
                let name = format!("host-{n:06}.svc.example.com");
                let mut builder = Builder::response(&name, support::A);
                for k in 0..ips_per_name {
                    builder.answer(
                        &name,
                        300,
                        Data::A(Ipv4Addr::from(0x0a00_0000 + n * ips_per_name + k)),
                    );
                }
                builder.finish()
            })
            .collect();
        let mut config = StoreConfig::default();
        config.max_mappings = 1 << 20;
        let (store, measured) = measure(|| {
            let mut store = FqdnStore::new(config);
            for response in &responses {
                store.record(response, UnixNanos::ZERO).unwrap();
            }
            store
        });
        assert_eq!(store.len(), mappings as usize);
        let per_mapping = measured.net_bytes / isize::try_from(mappings).unwrap();
        writeln!(
            report,
            "{label}: {per_mapping} bytes per mapping (names 28 characters)"
        )
        .unwrap();
        assert!(
            per_mapping < 400,
            "{label}: {per_mapping} bytes per mapping"
        );
    }
    println!("{report}");
}
