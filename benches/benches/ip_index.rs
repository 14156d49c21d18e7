//! ip-index: lookups at 100k pods + 10k services against the map a user
//! would otherwise reach for (`RwLock<HashMap<IpAddr, Arc<_>>>`, std
//! hasher), and the cost of applying one watch event. Each event is
//! published at once: applying without publishing only grows the log of
//! operations readers have not seen.

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgewise_ip_index::{
    Change, ClusterObject, IndexConfig, IpIndex, NamedRange, Object, ObjectMeta, OwnerRef, Pod,
    PodPhase, Service, Snapshot, Timestamp,
};

const PODS: u32 = 100_000;
const SERVICES: u32 = 10_000;
const PROBES: usize = 4096;

fn pod_ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a2a_0000 + i))
}

fn service_ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a2b_0000 + i))
}

fn pod(i: u32, ready: bool) -> Pod {
    // `Pod` is non-exhaustive: built from its default, field by field.
    let mut pod = Pod::default();
    pod.meta = ObjectMeta {
        namespace: Some(format!("ns-{}", i % 50)),
        name: format!("web-{}-7d4b9c8f6-{i:05}", i % 500),
        uid: Some(format!("pod-{i}")),
        owner: Some(OwnerRef {
            kind: "ReplicaSet".into(),
            name: format!("web-{}-7d4b9c8f6", i % 500),
        }),
        labels: [("app".to_owned(), format!("web-{}", i % 500))].into(),
        ..ObjectMeta::default()
    };
    pod.ips = vec![pod_ip(i)];
    pod.phase = PodPhase::Running;
    pod.ready = ready;
    pod.started = Some(Timestamp(1_700_000_000 + i64::from(i)));
    pod.service_account = Some("default".into());
    pod
}

fn service(i: u32) -> Service {
    Service {
        meta: ObjectMeta {
            namespace: Some(format!("ns-{}", i % 50)),
            name: format!("svc-{i}"),
            uid: Some(format!("svc-{i}")),
            ..ObjectMeta::default()
        },
        cluster_ips: vec![service_ip(i)],
    }
}

fn index() -> IpIndex {
    let mut index = IpIndex::new({
        let mut index_config = IndexConfig::default();
        index_config.ranges = vec![NamedRange::new("10.42.0.0/16".parse().unwrap(), "pod-cidr")];
        index_config
    });
    for i in 0..PODS {
        index.apply(Change::Upsert(Object::Pod(pod(i, true))));
    }
    for i in 0..SERVICES {
        index.apply(Change::Upsert(Object::Service(service(i))));
    }
    index.publish();
    index
}

/// How many of `probes` one object owns, all looked up in `snapshot`.
fn owned(snapshot: &Snapshot<'_>, probes: &[IpAddr]) -> usize {
    probes
        .iter()
        .filter(|ip| snapshot.lookup(**black_box(ip)).object().is_some())
        .count()
}

/// Pseudo-random probes, so that the table is not walked in order.
fn probes(count: u32, address: fn(u32) -> IpAddr) -> Vec<IpAddr> {
    let mut state = 0x9e37_79b9_u32;
    (0..PROBES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            address(state % count)
        })
        .collect()
}

fn lookups(c: &mut Criterion) {
    let index = index();
    let reader = index.reader();
    let pods = probes(PODS, pod_ip);
    let services = probes(SERVICES, service_ip);
    let misses = probes(PODS, |i| IpAddr::V4(Ipv4Addr::from(0xc000_0000 + i)));

    // What a user would write instead: a std HashMap behind a RwLock.
    let mut plain: HashMap<IpAddr, Arc<ClusterObject>> = HashMap::new();
    {
        let snapshot = reader.snapshot();
        for i in 0..PODS {
            let object = snapshot.lookup(pod_ip(i)).object().unwrap().clone();
            plain.insert(pod_ip(i), object);
        }
    }
    let plain = RwLock::new(plain);

    let mut group = c.benchmark_group("ip_index_110k");
    group.throughput(Throughput::Elements(PROBES as u64));
    group.bench_function("lookup_pod_snapshot_each", |b| {
        b.iter(|| {
            pods.iter()
                .filter(|ip| reader.snapshot().lookup(**black_box(ip)).object().is_some())
                .count()
        });
    });
    for (name, probes) in [
        ("lookup_pod_one_snapshot", &pods),
        ("lookup_service_one_snapshot", &services),
        ("lookup_miss_one_snapshot", &misses),
    ] {
        group.bench_function(name, |b| b.iter(|| owned(&reader.snapshot(), probes)));
    }
    group.bench_function("std_rwlock_hashmap_lookup_pod", |b| {
        b.iter(|| {
            pods.iter()
                .filter(|ip| plain.read().unwrap().get(black_box(ip)).is_some())
                .count()
        });
    });
    group.finish();
}

fn events(c: &mut Criterion) {
    let mut index = index();
    let mut group = c.benchmark_group("ip_index_110k_event");
    group.throughput(Throughput::Elements(1));
    let mut flip = false;
    group.bench_function("apply_pod_modified_and_publish", |b| {
        b.iter(|| {
            flip = !flip;
            index.apply(Change::Upsert(Object::Pod(pod(77, flip))));
            index.publish();
        });
    });
    let lines = [watch_line(true), watch_line(false)];
    group.bench_function("load_watch_line_and_publish", |b| {
        b.iter(|| {
            flip = !flip;
            index.load(lines[usize::from(flip)].as_bytes())
        });
    });
    group.finish();
}

fn watch_line(ready: bool) -> String {
    format!(
        r#"{{"type":"MODIFIED","object":{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"web-77-7d4b9c8f6-00077","namespace":"ns-27","uid":"pod-77","resourceVersion":"","labels":{{"app":"web-77","pod-template-hash":"7d4b9c8f6"}},"ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-77-7d4b9c8f6","uid":"rs","controller":true}}]}},"spec":{{"nodeName":"worker-1","serviceAccountName":"default","containers":[{{"name":"web","image":"nginx:1.27"}}]}},"status":{{"phase":"Running","podIP":"10.42.0.77","podIPs":[{{"ip":"10.42.0.77"}}],"startTime":"2023-11-14T22:13:20Z","conditions":[{{"type":"Ready","status":"{}"}}]}}}}}}"#,
        if ready { "True" } else { "False" }
    )
}

/// One more claimant of an address 20,000 pods already claim (all tied:
/// the worst case, an address every pod of a misconfigured CNI reports):
/// the upsert and its publish.
fn crowded_address(c: &mut Criterion) {
    let shared = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1));
    let crowded = |i: u32| {
        let mut pod = pod(i, true);
        pod.ips = vec![shared];
        pod.started = Some(Timestamp(1_700_000_000));
        pod
    };
    let mut index = IpIndex::default();
    for i in 0..20_000 {
        index.apply(Change::Upsert(Object::Pod(crowded(i))));
    }
    index.publish();
    let mut group = c.benchmark_group("ip_index_crowded_address_20k");
    group.throughput(Throughput::Elements(1));
    let mut n = 20_000;
    group.bench_function("upsert_one_more_claimant_and_publish", |b| {
        b.iter(|| {
            n += 1;
            index.apply(Change::Upsert(Object::Pod(crowded(n))));
            index.apply(Change::Delete(Object::Pod(crowded(n))));
            index.publish();
        });
    });
    group.finish();
}

criterion_group!(benches, lookups, events, crowded_address);
criterion_main!(benches);
