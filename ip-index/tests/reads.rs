//! Reads: no allocation per lookup (counting allocator), and consistent,
//! never-blocked snapshots while another thread applies and publishes.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use edgewise_ip_index::{Change, IndexConfig, IpIndex, Lookup, NamedRange, Object};
use edgewise_test_support::{CountingAllocator, measure};
use support::{ip, pod};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn lookups_allocate_nothing() {
    let mut index = IpIndex::new(IndexConfig {
        ranges: vec![NamedRange::new("10.42.0.0/16".parse().unwrap(), "pod-cidr")],
        ..IndexConfig::default()
    });
    for i in 0..1000u32 {
        let address = format!("10.42.{}.{}", i / 250, i % 250 + 1);
        index.apply(Change::Upsert(Object::Pod(pod(
            &format!("u{i}"),
            "ns",
            &format!("web-{i}"),
            &[&address],
            1,
        ))));
    }
    index.publish();
    let reader = index.reader();
    let hit = ip("10.42.1.7");
    let in_range = ip("10.42.99.1");
    let miss = ip("192.0.2.1");
    let (found, measured) = measure(|| {
        let mut found = 0;
        for _ in 0..1000 {
            let snapshot = reader.snapshot();
            found += usize::from(matches!(snapshot.lookup(hit), Lookup::Object(_)));
            found += usize::from(matches!(
                snapshot.lookup(in_range),
                Lookup::Range("pod-cidr")
            ));
            found += usize::from(matches!(snapshot.lookup(miss), Lookup::Unknown));
        }
        found
    });
    assert_eq!(found, 3000);
    assert_eq!(measured.allocations, 0, "{measured:?}");
}

#[test]
fn readers_see_whole_publishes_while_the_writer_churns() {
    // Two pods trade two addresses, publish by publish. A reader must always
    // see a state that was published whole: both addresses owned, by
    // different pods.
    let mut index = IpIndex::default();
    let a = |swap: bool| {
        pod(
            "a",
            "ns",
            "a-11111",
            &[if swap { "10.0.0.2" } else { "10.0.0.1" }],
            1,
        )
    };
    let b = |swap: bool| {
        pod(
            "b",
            "ns",
            "b-22222",
            &[if swap { "10.0.0.1" } else { "10.0.0.2" }],
            1,
        )
    };
    index.apply(Change::Upsert(Object::Pod(a(false))));
    index.apply(Change::Upsert(Object::Pod(b(false))));
    index.publish();

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let reader = index.reader();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut checked = 0u64;
                while !stop.load(Ordering::Relaxed) || checked < 1000 {
                    let snapshot = reader.snapshot();
                    let first = snapshot
                        .lookup(ip("10.0.0.1"))
                        .object()
                        .map(|o| o.name.clone());
                    let second = snapshot
                        .lookup(ip("10.0.0.2"))
                        .object()
                        .map(|o| o.name.clone());
                    let (Some(first), Some(second)) = (first, second) else {
                        panic!("an address lost its owner mid-publish");
                    };
                    assert_ne!(first, second, "a torn snapshot");
                    checked += 1;
                }
                checked
            })
        })
        .collect();
    for round in 0..2000 {
        let swap = round % 2 == 0;
        index.apply(Change::Upsert(Object::Pod(a(swap))));
        index.apply(Change::Upsert(Object::Pod(b(swap))));
        index.publish();
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().expect("reader") >= 1000);
    }
}
