//! DNS: ns per response for our parser against hickory-proto's
//! `Message::from_vec` on the same corpus (the responses of
//! `demo/dns.pcap`), and the store's inserts and lookups at 1M mappings.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use edgewise_benches::dns_responses;
use edgewise_fqdn_store::{FqdnStore, Message, RecordData, Resolution, StoreConfig};
use edgewise_time::UnixNanos;

const MILLION: u32 = 1_000_000;

/// The responses both parsers accept (the demo's malformed one is left out
/// so both do the same work).
fn corpus() -> Vec<Vec<u8>> {
    let mut corpus = dns_responses();
    corpus.retain(|message| {
        Message::parse(message).is_ok() && hickory_proto::op::Message::from_vec(message).is_ok()
    });
    assert!(corpus.len() >= 10, "the demo capture has its responses");
    corpus
}

fn parse(c: &mut Criterion) {
    let corpus = corpus();
    let mut group = c.benchmark_group("dns_parse");
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.bench_function("edgewise_parse", |b| {
        b.iter(|| {
            let mut answers = 0usize;
            for message in &corpus {
                answers += usize::from(
                    Message::parse(black_box(message))
                        .expect("valid")
                        .header()
                        .answer_count,
                );
            }
            answers
        });
    });
    group.bench_function("edgewise_parse_and_resolve", |b| {
        b.iter(|| {
            let mut mapped = 0usize;
            for message in &corpus {
                let message = Message::parse(black_box(message)).expect("valid");
                for record in message.answers() {
                    if let RecordData::A(_) | RecordData::Aaaa(_) = record.data() {
                        mapped += 1;
                    }
                }
                if let Ok(resolution) = Resolution::new(message) {
                    mapped += resolution.addresses().count();
                }
            }
            mapped
        });
    });
    group.bench_function("hickory_from_vec", |b| {
        b.iter(|| {
            let mut answers = 0usize;
            for message in &corpus {
                let message =
                    hickory_proto::op::Message::from_vec(black_box(message)).expect("valid");
                answers += message.answers.len();
            }
            answers
        });
    });
    group.finish();
}

/// One response mapping `name` to `ip`, TTL 300.
fn response(name: &str, ip: Ipv4Addr) -> Vec<u8> {
    let mut bytes = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    for label in name.split('.') {
        bytes.push(u8::try_from(label.len()).expect("short label"));
        bytes.extend_from_slice(label.as_bytes());
    }
    bytes.extend_from_slice(&[0, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
    bytes.extend_from_slice(&ip.octets());
    bytes
}

fn ip(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + n)
}

fn full_store() -> FqdnStore {
    let mut store = FqdnStore::new({
        let mut store_config = StoreConfig::default();
        store_config.max_mappings = MILLION as usize;
        store_config
    });
    for n in 0..MILLION {
        store
            .record(
                &response(&format!("host-{n:07}.svc.example.com"), ip(n)),
                UnixNanos::ZERO,
            )
            .expect("valid");
    }
    store
}

fn store(c: &mut Criterion) {
    let mut store = full_store();
    let mut group = c.benchmark_group("fqdn_store_1m");
    group.throughput(Throughput::Elements(1));
    let mut n = 0u32;
    group.bench_function("lookup_hit", |b| {
        b.iter(|| {
            n = (n + 7919) % MILLION;
            store
                .lookup(black_box(IpAddr::V4(ip(n))), UnixNanos::from_nanos(1))
                .next()
        });
    });
    group.bench_function("lookup_miss", |b| {
        b.iter(|| {
            n = n.wrapping_add(7919);
            store
                .lookup(
                    black_box(IpAddr::V4(Ipv4Addr::from(0xc000_0000 | n))),
                    UnixNanos::from_nanos(1),
                )
                .next()
        });
    });
    // Each insert is a new name and address into the full store: it parses
    // the response and evicts the least recently used mapping.
    let mut fresh = MILLION;
    group.bench_function("record_new_mapping_at_capacity", |b| {
        b.iter_batched(
            || {
                fresh += 1;
                response(&format!("new-{fresh:08}.svc.example.com"), ip(fresh))
            },
            |message| {
                store
                    .record(&message, UnixNanos::from_nanos(2))
                    .expect("valid")
            },
            BatchSize::SmallInput,
        );
    });
    let refresh: Vec<Vec<u8>> = (0..1024)
        .map(|k| response(&format!("host-{:07}.svc.example.com", k * 977), ip(k * 977)))
        .collect();
    let mut k = 0;
    group.bench_function("record_refresh", |b| {
        b.iter(|| {
            k = (k + 1) % refresh.len();
            store
                .record(black_box(&refresh[k]), UnixNanos::from_nanos(3))
                .expect("valid")
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = parse, store
}
criterion_main!(benches);
