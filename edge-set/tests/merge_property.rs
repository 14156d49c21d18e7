//! Merging slices is a join (commutative, associative, idempotent), and
//! aggregation keeps every flow: property tests over random slices.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgewise_edge_set::{
    AggregateOptions, EdgeVerdict, EndpointInfo, Granularity, GraphSlice, ServiceGraph,
    ServiceSeen, SliceEdge, SliceNode, VerdictKind, Window, aggregate,
};
use edgewise_ip_index::{ClusterObject, ObjectKind, Protocol, Workload, WorkloadKind};
use proptest::prelude::*;

fn object(index: u8) -> Arc<ClusterObject> {
    let namespace = ["shop", "analytics", "monitoring"][usize::from(index % 3)];
    let workload = ["web", "db", "cache", "api"][usize::from(index % 4)];
    let labels = if index.is_multiple_of(2) {
        BTreeMap::from([("service-identity".to_owned(), format!("svc-{}", index % 5))])
    } else {
        BTreeMap::new()
    };
    let kind = if index == 7 {
        ObjectKind::Node
    } else {
        ObjectKind::Pod
    };
    let namespaced = (index != 7).then_some(namespace);
    let mut object = ClusterObject::new(kind, namespaced, &format!("{workload}-{index}"));
    object.workload = (index != 7).then(|| Workload {
        namespace: namespace.to_owned(),
        kind: WorkloadKind::Deployment,
        name: workload.to_owned(),
    });
    object.labels = labels;
    object.display = format!("{namespace}/{workload}-{index}").into();
    Arc::new(object)
}

fn endpoint() -> impl Strategy<Value = EndpointInfo> {
    (
        0u8..4,
        prop::option::of(prop::sample::select(vec![0u8, 1, 2, 7])),
        prop::option::of(0u8..2),
    )
        .prop_map(|(host, who, fqdn)| EndpointInfo {
            ip: format!("10.0.0.{host}").parse().unwrap(),
            identity: who.map(object),
            fqdn: fqdn.map(|n| format!("host{n}.example.com")),
        })
}

fn verdict() -> impl Strategy<Value = Option<EdgeVerdict>> {
    prop::option::of(
        (0u8..3, prop::option::of(0u8..3)).prop_map(|(kind, policy)| EdgeVerdict {
            verdict: [
                VerdictKind::Declared,
                VerdictKind::NotGoverned,
                VerdictKind::Violation,
            ][usize::from(kind)],
            policy: policy.map(|p| format!("ns/policy-{p}")),
        }),
    )
}

fn edge() -> impl Strategy<Value = SliceEdge> {
    (
        endpoint(),
        endpoint(),
        prop::sample::select(vec![80u16, 443]),
        any::<bool>(),
        0u64..50,
        0u64..5_000,
        0u64..100,
        0u64..100,
        verdict(),
    )
        .prop_map(
            |(src, dst, port, udp, flows, bytes, t0, dt, verdict)| SliceEdge {
                src,
                dst,
                port,
                protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
                flows,
                bytes,
                first_seen_ns: t0,
                last_seen_ns: t0 + dt,
                verdict,
            },
        )
}

fn node() -> impl Strategy<Value = SliceNode> {
    (
        endpoint(),
        prop::collection::vec(0u8..4, 0..3),
        prop::collection::vec(0u8..4, 0..3),
        prop::collection::vec((prop::sample::select(vec![22u16, 80]), 0u8..2), 0..2),
        0u64..200,
    )
        .prop_map(
            |(endpoint, clients, servers, services, last_seen_ns)| SliceNode {
                endpoint,
                client_fingerprints: clients.iter().map(|c| format!("ja4t-{c}")).collect(),
                server_fingerprints: servers.iter().map(|s| format!("ja4ts-{s}")).collect(),
                tls_client_fingerprints: clients.iter().map(|c| format!("ja4-{c}")).collect(),
                tls_server_fingerprints: servers.iter().map(|s| format!("ja4s-{s}")).collect(),
                services: services
                    .into_iter()
                    .map(|(port, name)| ServiceSeen {
                        product: (name == 0).then(|| "OpenSSH".to_owned()),
                        ..ServiceSeen::named(
                            port,
                            Protocol::Tcp,
                            ["ssh", "http"][usize::from(name)],
                        )
                    })
                    .collect(),
                last_seen_ns,
            },
        )
}

fn slice() -> impl Strategy<Value = GraphSlice> {
    (
        prop::sample::select(vec!["node-a", "node-b", "node-c"]),
        0u64..4,
        prop::collection::vec(edge(), 0..12),
        prop::collection::vec(node(), 0..4),
    )
        .prop_map(|(agent, window, edges, nodes)| GraphSlice {
            agent: agent.to_owned(),
            window: Window {
                start_ns: window * 100,
                end_ns: window * 100 + 100,
            },
            edges,
            nodes,
        })
}

// Few addresses, identities and ports, so that slices often share edges
// and conflicting copies of a slice meet: that is where a merge that is not
// a join shows.

/// A graph merged from a few slices.
fn graph() -> impl Strategy<Value = ServiceGraph> {
    prop::collection::vec(slice(), 0..4).prop_map(|slices| {
        let mut graph = ServiceGraph::new();
        for slice in &slices {
            graph.merge_slice(slice);
        }
        graph
    })
}

fn merged(a: &ServiceGraph, b: &ServiceGraph) -> ServiceGraph {
    let mut out = a.clone();
    out.merge(b);
    out
}

const GRANULARITIES: [fn() -> Granularity; 3] = [
    || Granularity::Workload,
    || Granularity::Namespace,
    || Granularity::NamespaceLabel("service-identity".to_owned()),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn merge_is_commutative(a in graph(), b in graph()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
    }

    #[test]
    fn merge_is_associative(a in graph(), b in graph(), c in graph()) {
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
    }

    #[test]
    fn merge_is_idempotent(a in graph(), s in slice()) {
        prop_assert_eq!(merged(&a, &a), a.clone());
        let mut once = a.clone();
        once.merge_slice(&s);
        let mut twice = once.clone();
        twice.merge_slice(&s);
        prop_assert_eq!(twice, once);
    }

    #[test]
    fn slices_of_distinct_windows_add_up(slices in prop::collection::vec(slice(), 1..6)) {
        // Give each slice its own window, as a real agent's drains are.
        let mut graph = ServiceGraph::new();
        let mut expected = 0;
        for (n, mut slice) in slices.into_iter().enumerate() {
            let n = n as u64;
            slice.window = Window { start_ns: n * 1_000, end_ns: n * 1_000 + 1_000 };
            // Within one slice an edge appears once, as a drain gives it.
            let mut seen = std::collections::BTreeSet::new();
            slice.edges.retain(|e| seen.insert((
                e.src.ip, e.src.identity.as_ref().map(|o| o.display.clone()),
                e.dst.ip, e.dst.identity.as_ref().map(|o| o.display.clone()),
                e.port, e.protocol)));
            expected += slice.total_flows();
            graph.merge_slice(&slice);
        }
        prop_assert_eq!(graph.total_flows(), expected);
    }

    #[test]
    fn aggregation_keeps_every_flow(g in graph(), drop_self_edges in any::<bool>()) {
        for granularity in GRANULARITIES {
            let options = {
let mut aggregate_options = AggregateOptions::new(granularity());
aggregate_options.drop_self_edges = drop_self_edges;
aggregate_options
};
            let aggregated = aggregate(&g, &options);
            prop_assert_eq!(aggregated.total_flows() + aggregated.self_edge_flows, g.total_flows());
            if !drop_self_edges {
                prop_assert_eq!(aggregated.self_edge_flows, 0);
            }
            let by_verdict: u64 = aggregated.edges.iter().map(|e| {
                let v = e.verdicts;
                v.declared + v.not_governed + v.violation + v.unknown
            }).sum();
            prop_assert_eq!(by_verdict, aggregated.total_flows());
            if drop_self_edges {
                prop_assert!(aggregated.edges.iter().all(|e| e.src != e.dst));
            }
        }
    }
}
