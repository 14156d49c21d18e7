//! The observed graph: counting, draining with identities and verdicts,
//! expiry, the size cap, fingerprints and services.

use edgewise_edge_set::{
    DeclaredPolicies, EdgeKey, Fingerprint, GraphConfig, NoIdentity, ObservedGraph, Recorded,
    ServiceSeen, VerdictKind,
};
use edgewise_ip_index::{IpIndex, Protocol};
use edgewise_test_support::{CountingAllocator, measure};
use edgewise_time::UnixNanos;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const SECOND: u64 = 1_000_000_000;

/// A test's instant: `nanos` nanoseconds of Unix time.
fn ns(nanos: u64) -> UnixNanos {
    UnixNanos::from_nanos(nanos)
}

fn edge(src: &str, dst: &str, port: u16) -> EdgeKey {
    EdgeKey {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        port,
        protocol: Protocol::Tcp,
    }
}

const CLUSTER: &[u8] = br#"{"kind": "List", "items": [
  {"kind": "Pod", "metadata": {"name": "web-1", "namespace": "frontend", "labels": {"app": "web"}},
   "status": {"phase": "Running", "podIP": "10.42.2.30", "conditions": [{"type": "Ready", "status": "True"}]}},
  {"kind": "Pod", "metadata": {"name": "influxdb-0", "namespace": "analytics", "labels": {"app": "influxdb"}},
   "status": {"phase": "Running", "podIP": "10.42.1.159", "conditions": [{"type": "Ready", "status": "True"}]}}]}"#;

#[test]
fn a_known_edge_costs_no_allocation() {
    let mut graph = ObservedGraph::new(GraphConfig::default(), UnixNanos::ZERO);
    let key = edge("10.0.0.1", "10.0.0.2", 443);
    assert_eq!(graph.record(key, 1, 60, ns(1)), Recorded::New);
    let (recorded, measured) = measure(|| {
        let mut last = Recorded::New;
        for now in 2..10_002 {
            last = graph.record(key, 1, 60, ns(now));
        }
        last
    });
    assert_eq!(recorded, Recorded::Existing);
    assert_eq!(measured.allocations, 0, "{measured:?}");
    // A known fingerprint or service costs none either.
    let ip = key.dst;
    graph.fingerprint(ip, Fingerprint::Server("64240_2-4-8-1-3_1460_7"), ns(3));
    graph.service(ip, 443, Protocol::Tcp, "tls", ns(3));
    let ((), measured) = measure(|| {
        graph.fingerprint(ip, Fingerprint::Server("64240_2-4-8-1-3_1460_7"), ns(4));
        graph.service(ip, 443, Protocol::Tcp, "tls", ns(4));
    });
    assert_eq!(measured.allocations, 0, "{measured:?}");
}

#[test]
fn drain_attaches_identities_and_verdicts_and_restarts_the_counts() {
    let mut index = IpIndex::default();
    assert_eq!(index.load(CLUSTER).errors, []);
    let mut declared = DeclaredPolicies::default();
    declared
        .load_allow_list("allow.txt", "frontend/web-1 -> analytics/influxdb-0 8086")
        .unwrap();
    let policies = declared.compile();

    let mut graph = ObservedGraph::new(GraphConfig::default(), ns(100));
    let web_to_influx = edge("10.42.2.30", "10.42.1.159", 8086);
    graph.record(web_to_influx, 1, 0, ns(110));
    graph.record(web_to_influx, 1, 500, ns(120));
    // The same edge written as IPv4-mapped IPv6 is the same edge.
    graph.record(
        edge("::ffff:10.42.2.30", "::ffff:10.42.1.159", 8086),
        1,
        0,
        ns(130),
    );
    graph.record(edge("10.42.2.30", "10.42.1.159", 22), 1, 0, ns(140));
    graph.record(edge("10.42.2.30", "93.184.216.34", 443), 1, 0, ns(150));

    let slice = graph.drain("worker-1", ns(200), &mut index.snapshot(), Some(&policies));
    assert_eq!(slice.agent, "worker-1");
    assert_eq!((slice.window.start_ns, slice.window.end_ns), (100, 200));
    let rows: Vec<(String, u16, u64, u64, VerdictKind)> = slice
        .edges
        .iter()
        .map(|e| {
            let dst = e
                .dst
                .identity
                .as_ref()
                .map_or_else(|| e.dst.ip.to_string(), |o| o.display.to_string());
            (
                dst,
                e.port,
                e.flows,
                e.bytes,
                e.verdict.as_ref().unwrap().verdict,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "analytics/influxdb-0".into(),
                22,
                1,
                0,
                VerdictKind::Violation
            ),
            (
                "analytics/influxdb-0".into(),
                8086,
                3,
                500,
                VerdictKind::Declared
            ),
            ("93.184.216.34".into(), 443, 1, 0, VerdictKind::NotGoverned),
        ]
    );
    let declared_edge = &slice.edges[1];
    assert_eq!(
        (declared_edge.first_seen_ns, declared_edge.last_seen_ns),
        (110, 130)
    );
    assert_eq!(
        declared_edge.verdict.as_ref().unwrap().policy.as_deref(),
        Some("allow.txt:1")
    );
    assert_eq!(
        declared_edge
            .src
            .identity
            .as_ref()
            .unwrap()
            .display
            .as_ref(),
        "frontend/web-1"
    );

    // Nothing new: the next slice is empty, and a known edge stays known.
    let empty = graph.drain("worker-1", ns(300), &mut NoIdentity, None);
    assert!(empty.edges.is_empty());
    assert_eq!((empty.window.start_ns, empty.window.end_ns), (200, 300));
    assert_eq!(
        graph.record(web_to_influx, 1, 0, ns(310)),
        Recorded::Existing
    );
    let next = graph.drain("worker-1", ns(400), &mut NoIdentity, None);
    assert_eq!(next.edges.len(), 1);
    assert_eq!((next.edges[0].flows, next.edges[0].first_seen_ns), (1, 110));
    assert!(next.edges[0].verdict.is_none());
}

#[test]
fn idle_edges_expire_only_after_they_were_drained() {
    let mut config = GraphConfig::default();
    config.idle_ttl_ns = 10 * SECOND;
    let mut graph = ObservedGraph::new(config, UnixNanos::ZERO);
    graph.record(edge("10.0.0.1", "10.0.0.2", 80), 1, 0, UnixNanos::ZERO);
    assert_eq!(
        graph.expire(ns(60 * SECOND)),
        0,
        "its flow was never drained"
    );
    assert_eq!(graph.stats().edges, 1);
    let slice = graph.drain("a", ns(60 * SECOND), &mut NoIdentity, None);
    assert_eq!(slice.total_flows(), 1);
    assert_eq!(graph.stats().edges, 0, "drained and idle: gone");
    assert_eq!(graph.stats().expired_edges, 1);
    assert_eq!(
        graph.record(edge("10.0.0.1", "10.0.0.2", 80), 1, 0, ns(61 * SECOND)),
        Recorded::New
    );
}

#[test]
fn the_cap_holds_and_evictions_are_counted() {
    let mut config = GraphConfig::default();
    config.max_edges = 64;
    let mut graph = ObservedGraph::new(config, UnixNanos::ZERO);
    for i in 0..1_000u16 {
        graph.record(edge("10.0.0.1", "10.0.0.2", i + 1), 1, 0, ns(u64::from(i)));
        assert!(graph.stats().edges <= 64);
    }
    let stats = graph.stats();
    assert!(stats.evicted_edges >= 1_000 - 64, "{stats:?}");
    assert_eq!(
        stats.evicted_flows, stats.evicted_edges,
        "one undrained flow each"
    );
    // The least recently seen went first: the newest edge is still held.
    let slice = graph.drain("a", ns(2_000), &mut NoIdentity, None);
    assert!(slice.edges.iter().any(|e| e.port == 1_000));
    assert_eq!(
        slice.total_flows() + stats.evicted_flows,
        1_000,
        "every flow accounted for"
    );

    // A cap of zero is taken as one.
    let mut tiny = ObservedGraph::new(
        {
            let mut graph_config = GraphConfig::default();
            graph_config.max_edges = 0;
            graph_config
        },
        UnixNanos::ZERO,
    );
    for port in 1..=3 {
        tiny.record(
            edge("10.0.0.1", "10.0.0.2", port),
            1,
            0,
            ns(u64::from(port)),
        );
    }
    assert_eq!((tiny.stats().edges, tiny.stats().evicted_edges), (1, 2));
}

#[test]
fn fingerprints_and_services_are_deduplicated_bounded_and_drained() {
    let mut config = GraphConfig::default();
    config.max_fingerprints_per_node = 2;
    config.max_services_per_node = 1;
    let mut graph = ObservedGraph::new(config, UnixNanos::ZERO);
    let server = "10.0.0.2".parse().unwrap();
    let client = "10.0.0.1".parse().unwrap();
    graph.fingerprint(client, Fingerprint::Client("64240_2-4-8-1-3_1460_7"), ns(1));
    graph.fingerprint(client, Fingerprint::Client("64240_2-4-8-1-3_1460_7"), ns(2));
    graph.fingerprint(server, Fingerprint::Server("65160_2-4-8-1-3_1460_7"), ns(1));
    graph.fingerprint(server, Fingerprint::Server("29200_2-4-8-1-3_1460_7"), ns(1));
    graph.fingerprint(server, Fingerprint::Server("14600_2-4-8-1-3_1460_7"), ns(1));
    graph.service(server, 22, Protocol::Tcp, "ssh", ns(1));
    graph.service(server, 22, Protocol::Tcp, "ssh", ns(1));
    graph.service(server, 80, Protocol::Tcp, "http", ns(1));
    assert_eq!(graph.stats().dropped_details, 2);
    let slice = graph.drain("a", ns(10), &mut NoIdentity, None);
    assert_eq!(slice.nodes.len(), 2);
    assert_eq!(
        slice.nodes[0].client_fingerprints,
        ["64240_2-4-8-1-3_1460_7"]
    );
    assert_eq!(slice.nodes[1].server_fingerprints.len(), 2);
    assert_eq!(
        slice.nodes[1].services,
        [ServiceSeen::named(22, Protocol::Tcp, "ssh")]
    );
    // Unchanged since: not in the next slice.
    graph.fingerprint(
        client,
        Fingerprint::Client("64240_2-4-8-1-3_1460_7"),
        ns(11),
    );
    assert!(
        graph
            .drain("a", ns(20), &mut NoIdentity, None)
            .nodes
            .is_empty()
    );
}

#[test]
fn a_slice_survives_json() {
    let mut index = IpIndex::default();
    index.load(CLUSTER);
    let mut graph = ObservedGraph::new(GraphConfig::default(), UnixNanos::ZERO);
    graph.record(edge("10.42.2.30", "10.42.1.159", 8086), 2, 100, ns(5));
    graph.fingerprint(
        "10.42.1.159".parse().unwrap(),
        Fingerprint::Server("x"),
        ns(5),
    );
    let slice = graph.drain("worker-1", ns(10), &mut index.snapshot(), None);
    let json = serde_json::to_string(&slice).unwrap();
    assert!(json.contains(r#""proto":"tcp""#), "{json}");
    let back: edgewise_edge_set::GraphSlice = serde_json::from_str(&json).unwrap();
    assert_eq!(back, slice);
}
