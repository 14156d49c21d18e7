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
    let mut index = IpIndex::new({
        let mut index_config = IndexConfig::default();
        index_config.ranges = vec![NamedRange::new("10.42.0.0/16".parse().unwrap(), "pod-cidr")];
        index_config
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

#[test]
fn bytes_per_indexed_pod() {
    // Everything the index keeps for a pod: the object, its claim, the
    // service-account entry and both published copies.
    const PODS: u32 = 10_000;
    let (index, measured) = measure(|| {
        let mut index = IpIndex::default();
        for i in 0..PODS {
            let address = format!("10.42.{}.{}", i / 250, i % 250 + 1);
            let mut pod = pod(
                &format!("{i:08x}-aaaa-4bbb-8ccc-dddddddddddd"),
                "analytics",
                &format!("web-7d4b9c8f6-{i:05}"),
                &[&address],
                1,
            );
            pod.meta.labels = [
                ("app".to_owned(), "web".to_owned()),
                ("pod-template-hash".to_owned(), "7d4b9c8f6".to_owned()),
            ]
            .into();
            pod.node_name = Some("worker-1".to_owned());
            index.apply(Change::Upsert(Object::Pod(pod)));
        }
        index.publish();
        index.publish();
        index
    });
    let per_pod = measured.net_bytes / isize::try_from(PODS).unwrap();
    println!("ip-index: {per_pod} bytes per indexed pod ({PODS} pods)");
    assert_eq!(index.stats().pods, 10_000);
    assert!((200..2048).contains(&per_pod), "{per_pod} bytes per pod");
}
