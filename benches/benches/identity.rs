//! identity: lookups in 100k identities through the client (a hash probe in
//! a published table) against the `maxminddb` crate's own lookup on the
//! same MMDB file (tree walk, and tree walk plus decoding the record, which
//! is what a caller needs); and the client's lookups while a writer thread
//! applies deltas at 10k per second.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgewise_identity::{Baseline, IdentityClient, IdentityDelta, Upsert, Version, unix_time};
use edgewise_ip_index::{ClusterObject, ObjectKind, Workload, WorkloadKind};

const ENTRIES: u32 = 100_000;
const PROBES: u32 = 4096;

fn ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a2a_0000 + i))
}

fn pod(i: u32) -> ClusterObject {
    let namespace = format!("team-{}", i % 100);
    let name = format!("web-{}-7d4b9c8f6-{i:05}", i % 500);
    let mut pod = ClusterObject::new(ObjectKind::Pod, Some(&namespace), &name);
    pod.uid = Some(format!("0b5f{i:08x}-0000-4000-8000-000000000000"));
    pod.workload = Some(Workload {
        namespace: namespace.clone(),
        kind: WorkloadKind::Deployment,
        name: format!("web-{}", i % 500),
    });
    pod.labels = [
        ("app".to_owned(), format!("web-{}", i % 500)),
        ("tier".to_owned(), "frontend".to_owned()),
    ]
    .into();
    pod.service_account = Some("default".to_owned());
    pod.node_name = Some(format!("worker-{}", i % 20));
    pod
}

fn probes() -> Vec<IpAddr> {
    (0..PROBES)
        .map(|i| ip(i.wrapping_mul(2_654_435_761) % ENTRIES))
        .collect()
}

fn lookups(c: &mut Criterion) {
    let baseline = Baseline::new(
        Version { epoch: 1, seq: 1 },
        (0..ENTRIES).map(|i| (ip(i), Arc::new(pod(i)))),
    );
    let bytes = baseline.to_mmdb(unix_time(0)).unwrap();
    let reader = maxminddb::Reader::from_source(&bytes[..]).unwrap();
    let mut client = IdentityClient::default();
    client.load_baseline(baseline);
    let probes = probes();

    let mut group = c.benchmark_group("identity/lookup_100k");
    group.throughput(Throughput::Elements(u64::from(PROBES)));
    let identities = client.reader();
    group.bench_function("client_one_snapshot", |b| {
        b.iter(|| {
            let snapshot = identities.snapshot();
            for ip in &probes {
                black_box(snapshot.lookup(*ip));
            }
        });
    });
    group.bench_function("client_snapshot_per_lookup", |b| {
        b.iter(|| {
            for ip in &probes {
                black_box(identities.snapshot().lookup(*ip).is_some());
            }
        });
    });
    group.bench_function("maxminddb_tree_walk", |b| {
        b.iter(|| {
            for ip in &probes {
                black_box(reader.lookup(*ip).unwrap().has_data());
            }
        });
    });
    group.bench_function("maxminddb_walk_and_decode", |b| {
        b.iter(|| {
            for ip in &probes {
                black_box(
                    reader
                        .lookup(*ip)
                        .unwrap()
                        .decode::<ClusterObject>()
                        .unwrap(),
                );
            }
        });
    });
    group.finish();

    // A writer thread applies one delta every 100 µs (10k/s), each moving
    // one address to another identity; readers look up meanwhile.
    let running = Arc::new(AtomicBool::new(true));
    let writer = {
        let running = Arc::clone(&running);
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut seq = 1;
            while running.load(Ordering::Relaxed) {
                seq += 1;
                let i = u32::try_from(seq % u64::from(ENTRIES)).unwrap();
                client.apply(IdentityDelta {
                    epoch: 1,
                    seq,
                    upserts: vec![Upsert {
                        ip: ip(i),
                        identity: pod(i + 1),
                    }],
                    removes: Vec::new(),
                });
                let due = start + Duration::from_micros(100 * (seq - 1));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            seq - 1
        })
    };
    let mut group = c.benchmark_group("identity/lookup_100k_while_10k_deltas_per_s");
    group.throughput(Throughput::Elements(u64::from(PROBES)));
    group.bench_function("client_snapshot_per_lookup", |b| {
        b.iter(|| {
            for ip in &probes {
                black_box(identities.snapshot().lookup(*ip).is_some());
            }
        });
    });
    group.finish();
    running.store(false, Ordering::Relaxed);
    let applied = writer.join().unwrap();
    eprintln!("identity bench: {applied} deltas applied during the concurrent run");
}

criterion_group!(benches, lookups);
criterion_main!(benches);
