//! edge-set: recording flows into the observed graph (an edge already held,
//! the hot path) against a std `HashMap` with its default hasher doing the
//! same counting; verdicts with 1,000 NetworkPolicies; a drain of 10,000
//! edges with identities and verdicts attached; and the web view's drawing
//! of such a graph against its per-address JSON.

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgewise_edge_set::{
    DeclaredPolicies, EdgeKey, EdgeQuery, Endpoint, GraphConfig, NoIdentity, ObservedGraph,
    PolicySet,
};
use edgewise_ip_index::{ClusterObject, ObjectKind, Protocol, Workload, WorkloadKind};
use edgewise_time::UnixNanos;

const EDGES: u32 = 10_000;
const PROBES: u32 = 4096;
const NAMESPACES: u32 = 100;
const POLICIES_PER_NAMESPACE: u32 = 10;

fn ip(base: u32, i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(base + i))
}

fn edge(i: u32) -> EdgeKey {
    EdgeKey {
        src: ip(0x0a2a_0000, i % 2_000),
        dst: ip(0x0a2b_0000, i / 2),
        port: 8000 + u16::try_from(i % 7).unwrap(),
        protocol: Protocol::Tcp,
    }
}

/// Probe order that hops around the table rather than walking it.
fn probe_order() -> Vec<u32> {
    (0..PROBES)
        .map(|i| i.wrapping_mul(2_654_435_761) % EDGES)
        .collect()
}

/// What the accumulator keeps per edge, for the std map to keep too.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    flows: u64,
    bytes: u64,
    first_seen: u64,
    last_seen: u64,
}

fn record(c: &mut Criterion) {
    let order = probe_order();
    let keys: Vec<EdgeKey> = order.iter().map(|&i| edge(i)).collect();
    let mut group = c.benchmark_group("edge_set/record_known_edge");
    group.throughput(Throughput::Elements(u64::from(PROBES)));

    let mut graph = ObservedGraph::new(GraphConfig::default(), UnixNanos::ZERO);
    for i in 0..EDGES {
        graph.record(edge(i), 1, 0, UnixNanos::ZERO);
    }
    let mut now = 1;
    group.bench_function("observed_graph", |b| {
        b.iter(|| {
            now += 1;
            for key in &keys {
                black_box(graph.record(*key, 1, 1500, UnixNanos::from_nanos(now)));
            }
        });
    });

    let mut map: HashMap<EdgeKey, Counters> = HashMap::new();
    for i in 0..EDGES {
        map.insert(edge(i), Counters::default());
    }
    group.bench_function("std_hashmap", |b| {
        b.iter(|| {
            now += 1;
            for key in &keys {
                let counters = map.entry(*key).or_insert(Counters {
                    first_seen: now,
                    ..Counters::default()
                });
                counters.flows += 1;
                counters.bytes += 1500;
                counters.last_seen = now;
                black_box(counters.first_seen);
            }
        });
    });
    group.finish();
}

fn pod(namespace: u32, i: u32) -> Arc<ClusterObject> {
    let namespace_name = format!("team-{namespace}");
    let mut pod = ClusterObject::new(
        ObjectKind::Pod,
        Some(&namespace_name),
        &format!("app-{i}-0"),
    );
    pod.workload = Some(Workload {
        namespace: namespace_name.clone(),
        kind: WorkloadKind::Deployment,
        name: format!("app-{i}"),
    });
    pod.labels = [
        ("app".to_owned(), format!("app-{i}")),
        ("role".to_owned(), format!("client-{}", i % 5)),
    ]
    .into();
    Arc::new(pod)
}

/// 100 namespaces, 10 policies each: every app admits two client roles
/// from namespaces of its tier, on its own port.
fn policies() -> PolicySet {
    let mut items = Vec::new();
    for n in 0..NAMESPACES {
        items.push(format!(
            r#"{{"kind": "Namespace", "metadata": {{"name": "team-{n}", "labels": {{"tier": "tier-{}"}}}}}}"#,
            n % 4
        ));
        for p in 0..POLICIES_PER_NAMESPACE {
            items.push(format!(
                r#"{{"kind": "NetworkPolicy", "metadata": {{"name": "app-{p}", "namespace": "team-{n}"}},
                  "spec": {{"podSelector": {{"matchLabels": {{"app": "app-{p}"}}}},
                    "ingress": [{{"from": [{{"namespaceSelector": {{"matchLabels": {{"tier": "tier-{}"}}}},
                                            "podSelector": {{"matchExpressions": [{{"key": "role", "operator": "In", "values": ["client-{}", "client-{}"]}}]}}}},
                                           {{"ipBlock": {{"cidr": "192.168.0.0/16", "except": ["192.168.1.0/24"]}}}}],
                                 "ports": [{{"port": {}}}]}}]}}}}"#,
                n % 4,
                p % 5,
                (p + 1) % 5,
                8000 + p
            ));
        }
    }
    let input = format!(r#"{{"kind": "List", "items": [{}]}}"#, items.join(","));
    let mut declared = DeclaredPolicies::default();
    let report = declared.load(input.as_bytes());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        declared.len(),
        (NAMESPACES * POLICIES_PER_NAMESPACE) as usize
    );
    declared.compile()
}

fn verdicts(c: &mut Criterion) {
    let set = policies();
    let pods: Vec<Arc<ClusterObject>> = (0..2_000).map(|i| pod(i % NAMESPACES, i % 12)).collect();
    let count = u32::try_from(pods.len()).unwrap();
    let queries: Vec<(u32, u32, u16)> = probe_order()
        .iter()
        .map(|&i| {
            (
                i % count,
                (i * 7 + 3) % count,
                8000 + u16::try_from(i % 12).unwrap(),
            )
        })
        .collect();
    let mut group = c.benchmark_group("edge_set/verdict_1k_policies");
    group.throughput(Throughput::Elements(u64::from(PROBES)));
    group.bench_function("evaluate", |b| {
        b.iter(|| {
            for &(src, dst, port) in &queries {
                black_box(set.evaluate(&EdgeQuery {
                    src: Endpoint {
                        ip: ip(0x0a2a_0000, src),
                        identity: Some(&pods[src as usize]),
                    },
                    dst: Endpoint {
                        ip: ip(0x0a2a_0000, dst),
                        identity: Some(&pods[dst as usize]),
                    },
                    port,
                    protocol: Protocol::Tcp,
                }));
            }
        });
    });
    group.finish();
}

/// Identities by address, as a drain asks for them.
struct Pods<'a>(&'a [Arc<ClusterObject>]);
impl edgewise_edge_set::Attach for Pods<'_> {
    fn identity(&mut self, ip: IpAddr) -> Option<Arc<ClusterObject>> {
        let IpAddr::V4(v4) = ip else { return None };
        let i = u32::from(v4) & 0xffff;
        self.0.get(i as usize % self.0.len()).cloned()
    }
}

fn drain(c: &mut Criterion) {
    let set = policies();
    let pods: Vec<Arc<ClusterObject>> = (0..2_000).map(|i| pod(i % NAMESPACES, i % 12)).collect();
    let mut group = c.benchmark_group("edge_set/drain_10k_edges");
    group.throughput(Throughput::Elements(u64::from(EDGES)));
    group.sample_size(20);
    for (name, with_identity) in [
        ("with_identities_and_verdicts", true),
        ("addresses_only", false),
    ] {
        group.bench_function(name, |b| {
            let mut graph = ObservedGraph::new(GraphConfig::default(), UnixNanos::ZERO);
            let mut now = 0;
            b.iter(|| {
                now += 1;
                for i in 0..EDGES {
                    graph.record(edge(i), 1, 0, UnixNanos::from_nanos(now));
                }
                if with_identity {
                    black_box(graph.drain(
                        "bench",
                        UnixNanos::from_nanos(now),
                        &mut Pods(&pods),
                        Some(&set),
                    ))
                } else {
                    black_box(graph.drain(
                        "bench",
                        UnixNanos::from_nanos(now),
                        &mut NoIdentity,
                        None,
                    ))
                }
            });
        });
    }
    group.finish();
}

/// The web view's drawing of a 10,000-edge graph with identities (what
/// `/graph/view` computes per request), against the per-address JSON of
/// `/graph` (what a page would otherwise fetch and group itself).
fn view(c: &mut Criterion) {
    use edgewise_edge_set::render::graph_json;
    use edgewise_edge_set::{Granularity, ServiceGraph, ViewOptions, view_json};
    let set = policies();
    let pods: Vec<Arc<ClusterObject>> = (0..2_000).map(|i| pod(i % NAMESPACES, i % 12)).collect();
    let mut observed = ObservedGraph::new(GraphConfig::default(), UnixNanos::ZERO);
    for i in 0..EDGES {
        observed.record(edge(i), 1, 0, UnixNanos::from_nanos(1));
    }
    let graph = ServiceGraph::from_slice(&observed.drain(
        "bench",
        UnixNanos::from_nanos(2),
        &mut Pods(&pods),
        Some(&set),
    ));
    let mut group = c.benchmark_group("edge_set/view_10k_edges");
    group.throughput(Throughput::Elements(u64::from(EDGES)));
    group.sample_size(20);
    for (name, granularity) in [
        ("view_by_workload", Granularity::Workload),
        ("view_by_namespace", Granularity::Namespace),
    ] {
        let options = ViewOptions::new(granularity);
        group.bench_function(name, |b| {
            b.iter(|| black_box(view_json(&graph, &options).to_string()));
        });
    }
    group.bench_function("graph_json_per_address", |b| {
        b.iter(|| black_box(graph_json(&graph).to_string()));
    });
    group.finish();
}

criterion_group!(benches, record, verdicts, drain, view);
criterion_main!(benches);
