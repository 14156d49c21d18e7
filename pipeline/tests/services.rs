//! Edges to a Service's ClusterIP are judged as kube-proxy would deliver
//! them: against each ready backend, at its target port (a number or a
//! container port's name), through EndpointSlices when there are some and
//! the selector's ready pods otherwise. Verdicts to the ClusterIP must
//! equal the verdicts to the pod; backends that disagree are reported.

use std::time::Duration;

use edgewise_capture::{Direction, Event, EventKind};
use edgewise_edge_set::DeclaredPolicies;
use edgewise_ip_index::{IpIndex, ServiceCatalog};
use edgewise_pipeline::{EdgeRecord, Identities, Output, Pipeline, PipelineConfig, Record, Rules};
use edgewise_time::UnixNanos;

fn pod(name: &str, app: &str, ip: &str) -> String {
    format!(
        r#"{{"kind": "Pod", "metadata": {{"name": "{name}", "namespace": "shop", "uid": "{name}",
            "labels": {{"app": "{app}"}}}},
           "spec": {{"containers": [{{"ports": [{{"name": "pg", "containerPort": 5432}},
                                                {{"name": "redis", "containerPort": 6379}}]}}]}},
           "status": {{"phase": "Running", "podIP": "{ip}",
                      "conditions": [{{"type": "Ready", "status": "True"}}]}}}}"#
    )
}

/// A NetworkPolicy letting `from` reach `to` on `port` (a number or a
/// name) and nothing else.
fn allow(name: &str, to: &str, from: &str, port: &str) -> String {
    format!(
        r#"{{"kind": "NetworkPolicy", "metadata": {{"name": "{name}", "namespace": "shop"}},
           "spec": {{"podSelector": {{"matchLabels": {{"app": "{to}"}}}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{{"from": [{{"podSelector": {{"matchLabels": {{"app": "{from}"}}}}}}],
                                 "ports": [{{"port": {port}}}]}}]}}}}"#
    )
}

fn objects() -> String {
    let items = [
        pod("web", "web", "10.42.0.10"),
        pod("other", "other", "10.42.0.11"),
        pod("db-0", "db", "10.42.0.20"),
        pod("db-1", "db", "10.42.0.21"),
        pod("cache-a", "cache", "10.42.0.30"),
        pod("cache-b", "cache-legacy", "10.42.0.31"),
        // The database takes web on the named port only.
        allow("db", "db", "web", "\"pg\""),
        allow("cache", "cache", "web", "6379"),
        allow("cache-legacy", "cache-legacy", "nobody", "6379"),
        r#"{"kind": "Service", "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"clusterIP": "10.43.0.5", "selector": {"app": "db"},
                     "ports": [{"name": "pg", "port": 5432, "targetPort": "pg"},
                               {"name": "metrics", "port": 9000, "targetPort": 9187}]}}"#
            .to_owned(),
        r#"{"kind": "Service", "metadata": {"name": "cache", "namespace": "shop"},
            "spec": {"clusterIP": "10.43.0.6", "ports": [{"name": "redis", "port": 6379}]}}"#
            .to_owned(),
        r#"{"kind": "EndpointSlice", "metadata": {"name": "cache-x1", "namespace": "shop",
              "labels": {"kubernetes.io/service-name": "cache"}},
            "ports": [{"name": "redis", "port": 6379, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.42.0.30"], "conditions": {"ready": true}},
                          {"addresses": ["10.42.0.31"], "conditions": {"ready": true}},
                          {"addresses": ["10.42.0.99"], "conditions": {"ready": false}}]}"#
            .to_owned(),
        r#"{"kind": "Service", "metadata": {"name": "empty", "namespace": "shop"},
            "spec": {"clusterIP": "10.43.0.7", "selector": {"app": "nothing"},
                     "ports": [{"port": 80}]}}"#
            .to_owned(),
    ];
    format!(r#"{{"kind": "List", "items": [{}]}}"#, items.join(","))
}

fn pipeline() -> Pipeline {
    let objects = objects();
    let mut index = IpIndex::default();
    assert!(index.load(objects.as_bytes()).errors.is_empty());
    let mut policies = DeclaredPolicies::default();
    assert!(policies.load(objects.as_bytes()).errors.is_empty());
    let mut catalog = ServiceCatalog::default();
    assert_eq!(catalog.read(objects.as_bytes()), Vec::<String>::new());
    let mut config = PipelineConfig::default();
    config.settle = Duration::ZERO;
    let mut pipeline = Pipeline::new(
        config,
        Identities::Index(Box::new(index)),
        policies.compile(),
        Rules::default(),
        UnixNanos::ZERO,
    );
    pipeline.replace_services(catalog.resolve(), UnixNanos::ZERO);
    pipeline
}

/// The first record of client -> server.
fn judge(pipeline: &mut Pipeline, client: &str, server: &str) -> EdgeRecord {
    let mut syn = [0u8; 20];
    syn[12] = 5 << 4;
    syn[13] = 0x02;
    let event = Event {
        kind: EventKind::Syn,
        direction: Direction::Unknown,
        time: UnixNanos::ZERO,
        ifindex: 0,
        src: format!("{client}:40000").parse().unwrap(),
        dst: server.parse().unwrap(),
        protocol: 6,
        wire_len: 60,
        seq: 0,
        data: &syn,
    };
    pipeline.handle_event(&event, UnixNanos::from_nanos(1_000));
    std::iter::from_fn(|| pipeline.poll_output())
        .find_map(|output| match output {
            Output::Record(Record::Edge(edge)) if !edge.update && edge.dst.port != 53 => Some(edge),
            _ => None,
        })
        .expect("an edge record")
}

#[test]
fn a_cluster_ip_is_judged_as_its_pods_with_a_named_target_port() {
    let mut p = pipeline();
    let mut verdicts = Vec::new();
    for client in ["10.42.0.10", "10.42.0.11"] {
        let to_service = judge(&mut p, client, "10.43.0.5:5432");
        let to_pod = judge(&mut p, client, "10.42.0.20:5432");
        assert_eq!(to_service.verdict, to_pod.verdict, "from {client}");
        let via = to_service
            .via_service
            .clone()
            .expect("judged through the service");
        assert_eq!(
            (via.service.as_str(), via.backends, via.agree),
            ("shop/db", 2, true)
        );
        verdicts.push(to_service);
    }
    assert_eq!(verdicts[0].verdict, "declared");
    assert_eq!(verdicts[0].policy.as_deref(), Some("shop/db"));
    assert_eq!(verdicts[1].verdict, "violation");
    assert_eq!(verdicts[1].via_service.as_ref().unwrap().denying.len(), 2);
}

#[test]
fn a_numbered_target_port_is_the_port_the_pod_is_judged_on() {
    let mut p = pipeline();
    // Service port 9000 goes to 9187, which the policy does not open.
    let to_service = judge(&mut p, "10.42.0.10", "10.43.0.5:9000");
    let to_pod = judge(&mut p, "10.42.0.10", "10.42.0.21:9187");
    assert_eq!(to_service.verdict, "violation");
    assert_eq!(to_service.verdict, to_pod.verdict);
}

#[test]
fn backends_that_disagree_are_reported_and_the_strictest_wins() {
    let mut p = pipeline();
    let record = judge(&mut p, "10.42.0.10", "10.43.0.6:6379");
    assert_eq!(record.verdict, "violation");
    let via = record.via_service.unwrap();
    assert_eq!(via.backends, 2, "the endpoint that is not ready is none");
    assert!(!via.agree);
    assert_eq!(via.denying, ["shop/cache-b (10.42.0.31:6379)".to_owned()]);
    assert_eq!(
        judge(&mut p, "10.42.0.10", "10.42.0.30:6379").verdict,
        "declared"
    );
}

#[test]
fn a_service_without_ready_backends_says_so() {
    let mut p = pipeline();
    let record = judge(&mut p, "10.42.0.10", "10.43.0.7:80");
    assert_eq!(record.verdict, "no_backends");
    assert_eq!(record.via_service.unwrap().backends, 0);
    // An address no Service fronts is judged as itself.
    assert!(
        judge(&mut p, "10.42.0.10", "10.43.0.99:80")
            .via_service
            .is_none()
    );
}
