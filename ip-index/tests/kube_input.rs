//! Kubernetes JSON in: the shapes `kubectl` and the API server write, and
//! errors that name the object.

mod support;

use edgewise_ip_index::{
    Change, InputError, IpIndex, NamedPort, Object, PodPhase, Protocol, WorkloadKind, read_objects,
};
use support::{fixture, ip, owner};

#[test]
fn a_kubectl_list_of_pods_services_and_nodes() {
    let objects = read_objects(&fixture("cluster.json"));
    assert_eq!(objects.errors, []);
    assert_eq!(objects.changes.len(), 12);
    assert_eq!(objects.skipped_kinds.get("Deployment"), Some(&1));

    let Change::Upsert(Object::Pod(influxdb)) = &objects.changes[0] else {
        panic!("first item is the influxdb pod");
    };
    assert_eq!(influxdb.meta.name, "influxdb-0");
    assert_eq!(influxdb.ips, [ip("10.42.1.159"), ip("fd00:42:1::159")]);
    assert_eq!(influxdb.phase, PodPhase::Running);
    assert!(influxdb.ready);
    assert_eq!(influxdb.service_account.as_deref(), Some("influxdb"));
    assert_eq!(influxdb.started.map(|t| t.0), Some(1_795_162_442));
    assert_eq!(
        influxdb.named_ports,
        [NamedPort {
            name: "http".into(),
            port: 8086,
            protocol: Protocol::Tcp
        }]
    );

    let mut index = IpIndex::default();
    index.load(&fixture("cluster.json"));
    let snapshot = index.snapshot();
    let pod = snapshot.lookup(ip("10.42.1.159")).object().unwrap().clone();
    let workload = pod.workload.as_ref().unwrap();
    assert_eq!(
        (workload.kind.clone(), workload.name.as_str()),
        (WorkloadKind::StatefulSet, "influxdb")
    );
    assert_eq!(
        pod.labels.keys().collect::<Vec<_>>(),
        ["app.kubernetes.io/name", "tier"],
        "churn labels are gone"
    );
    assert_eq!(pod.node_name.as_deref(), Some("worker-1"));
    let telegraf = snapshot.lookup(ip("10.42.2.17")).object().unwrap().clone();
    let workload = telegraf.workload.as_ref().unwrap();
    assert_eq!(
        (workload.kind.clone(), workload.name.as_str()),
        (WorkloadKind::Deployment, "telegraf")
    );
    drop(snapshot);
    assert_eq!(owner(&index, "fd00:42:1::159"), "analytics/influxdb-0");
    assert_eq!(owner(&index, "fd00:43::86"), "analytics/influxdb");
    assert_eq!(owner(&index, "fd00:56::11"), "node/worker-1");
}

#[test]
fn typed_lists_single_objects_and_concatenated_documents() {
    let input = br#"
        {"kind": "PodList", "apiVersion": "v1", "items": [
            {"metadata": {"name": "a", "namespace": "ns", "uid": "1"},
             "status": {"phase": "Running", "podIP": "10.0.0.1"}}]}
        {"kind": "Service", "metadata": {"name": "s", "namespace": "ns", "uid": "2"},
         "spec": {"clusterIP": "10.96.0.10"}}
        {"kind": "Node", "metadata": {"name": "n1", "uid": "3"},
         "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.5"}]}}
    "#;
    let mut index = IpIndex::default();
    let report = index.load(input);
    assert_eq!(report.errors, []);
    assert_eq!(report.applied, 3);
    assert_eq!(owner(&index, "10.0.0.1"), "ns/a");
    assert_eq!(owner(&index, "10.96.0.10"), "ns/s");
    assert_eq!(owner(&index, "192.168.0.5"), "node/n1");
}

#[test]
fn malformed_objects_are_named_and_the_rest_still_applies() {
    let input = br#"
        {"kind": "List", "items": [
            {"kind": "Pod", "metadata": {"name": "bad-ip", "namespace": "ns"},
             "status": {"podIP": "10.0.0.300"}},
            {"kind": "Pod", "metadata": {"name": "wrong-type", "namespace": "ns"},
             "status": {"podIPs": "10.0.0.2"}},
            {"kind": "Pod", "metadata": {"name": "bad-time", "namespace": "ns"},
             "status": {"podIP": "10.0.0.3", "startTime": "yesterday"}},
            {"kind": "Service", "metadata": {"namespace": "ns"}, "spec": {"clusterIP": "10.96.0.1"}},
            {"kind": "Pod", "metadata": {"name": "good", "namespace": "ns", "uid": "g"},
             "status": {"phase": "Running", "podIP": "10.0.0.4"}},
            42
        ]}
        [1, 2]
        {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version: 1 (2)"}}
        {"type": "SOMETHING", "object": {}}
        {"apiVersion": "v1"}
        {"kind": "Pod", "metadata": {"name": "after-syntax"
    "#;
    let objects = read_objects(input);
    let messages: Vec<String> = objects.errors.iter().map(ToString::to_string).collect();
    assert_eq!(objects.changes.len(), 1, "{messages:#?}");
    assert_eq!(
        messages[..4],
        [
            "document 1: Pod ns/bad-ip: status.podIP \"10.0.0.300\" is not an IP address",
            "document 1: Pod ns/wrong-type: invalid type: string \"10.0.0.2\", expected a sequence",
            "document 1: Pod ns/bad-time: status.startTime \"yesterday\" is not an RFC 3339 time",
            "document 1: Service <unnamed>: metadata.name is missing",
        ]
    );
    assert_eq!(objects.skipped_kinds.get("<no kind>"), Some(&1), "the 42");
    assert_eq!(
        objects.errors[4],
        InputError::Document {
            document: 2,
            problem: "a JSON array, not an object".into()
        }
    );
    assert_eq!(
        objects.errors[5],
        InputError::WatchError {
            document: 3,
            message: "too old resource version: 1 (2)".into()
        }
    );
    assert!(messages[6].contains("unknown watch event type \"SOMETHING\""));
    assert!(messages[7].starts_with("document 5: neither"));
    assert!(
        matches!(objects.errors[8], InputError::Syntax { line: 19, .. }),
        "{:?}",
        objects.errors[8]
    );
    assert_eq!(objects.errors.len(), 9);
}

#[test]
fn container_ports_are_checked_like_the_api_server_does() {
    let pod = |ports: &str| {
        format!(
            r#"{{"kind": "Pod", "metadata": {{"name": "p", "namespace": "ns"}},
                "spec": {{"containers": [{{"name": "c", "ports": {ports}}}]}}}}"#
        )
    };
    let named = |ports: &str| match &read_objects(pod(ports).as_bytes()).changes[..] {
        [Change::Upsert(Object::Pod(pod))] => pod.named_ports.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        named(
            r#"[{"containerPort": 53, "name": "dns", "protocol": "UDP"}, {"containerPort": 9153}]"#
        ),
        [NamedPort {
            name: "dns".into(),
            port: 53,
            protocol: Protocol::Udp
        }],
        "unnamed ports are not kept"
    );
    for (ports, problem) in [
        (
            r#"[{"containerPort": 70000, "name": "big"}]"#,
            "spec.containers[0].ports[0].containerPort is not a port in 1..=65535",
        ),
        (
            r#"[{"containerPort": 80, "name": "x", "protocol": "ICMP"}]"#,
            "spec.containers[0].ports[0].protocol \"ICMP\" is not TCP, UDP or SCTP",
        ),
    ] {
        let objects = read_objects(pod(ports).as_bytes());
        assert_eq!(objects.changes, []);
        assert_eq!(
            objects.errors[0].to_string(),
            format!("document 1: Pod ns/p: {problem}")
        );
    }
}

#[test]
fn too_many_addresses_is_malformed() {
    let ips: Vec<String> = (1..=17)
        .map(|i| format!(r#"{{"ip": "10.0.0.{i}"}}"#))
        .collect();
    let input = format!(
        r#"{{"kind": "Pod", "metadata": {{"name": "p", "namespace": "ns"}}, "status": {{"podIPs": [{}]}}}}"#,
        ips.join(",")
    );
    let objects = read_objects(input.as_bytes());
    assert_eq!(objects.changes, []);
    assert!(
        objects.errors[0]
            .to_string()
            .contains("more than 16 addresses")
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let mut input = String::from(r#"{"kind": "Pod", "metadata": {"name": "p"}, "x": "#);
    input.push_str(&"[".repeat(100_000));
    let objects = read_objects(input.as_bytes());
    assert!(matches!(objects.errors[..], [InputError::Syntax { .. }]));
}

/// Names and labels longer than Kubernetes allows (253 for a name, 63 for
/// a namespace, a label name or value) cannot come from an API server: the
/// object is refused, named, and the rest still applies.
#[test]
fn names_and_labels_past_kubernetes_limits_are_refused() {
    let long = |n: usize| "x".repeat(n);
    let pod = |name: &str, namespace: &str, labels: &str| {
        format!(
            r#"{{"kind": "Pod", "metadata": {{"name": "{name}", "namespace": "{namespace}", "labels": {{{labels}}}}},
                "status": {{"phase": "Running", "podIP": "10.0.0.9"}}}}"#
        )
    };
    let input = [
        pod(&long(254), "ns", ""),
        pod("a", &long(64), ""),
        pod("b", "ns", &format!(r#""app": "{}""#, long(64))),
        pod("c", "ns", &format!(r#""{}": "v""#, long(64))),
        pod("d", "ns", &format!(r#""{}/app": "v""#, long(254))),
        pod(
            &long(253),
            &long(63),
            &format!(r#""{}/{}": "{}""#, long(253), long(63), long(63)),
        ),
    ]
    .join("\n");
    let objects = read_objects(input.as_bytes());
    let messages: Vec<String> = objects.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        objects.changes.len(),
        1,
        "the one at the limits: {messages:#?}"
    );
    assert_eq!(messages.len(), 5);
    assert!(
        messages[0].contains("metadata.name is 254 bytes long, more than Kubernetes allows (253)")
    );
    assert!(messages[1].contains("metadata.namespace is 64 bytes long"));
    assert!(messages[2].contains("a label value is 64 bytes long"));
    assert!(messages[3].contains("a label key's name is 64 bytes long"));
    assert!(messages[4].contains("a label key's prefix is 254 bytes long"));
}

#[test]
fn pods_are_found_by_uid_with_their_secret_volumes_until_deleted() {
    let pod = |phase: &str| {
        format!(
            r#"{{"kind": "Pod", "apiVersion": "v1",
            "metadata": {{"name": "api-0", "namespace": "shop", "uid": "0b5c7a38-1d2e-4f60-8a9b-c0d1e2f3a4b5"}},
            "spec": {{"serviceAccountName": "api", "volumes": [
                {{"name": "db-creds", "secret": {{"secretName": "postgres-password"}}}},
                {{"name": "scratch", "emptyDir": {{}}}}]}},
            "status": {{"phase": "{phase}"}}}}"#
        )
    };
    let mut index = IpIndex::default();
    index.load(pod("Pending").as_bytes());
    let (object, volumes) = index
        .pod_by_uid("0b5c7a38-1d2e-4f60-8a9b-c0d1e2f3a4b5")
        .expect("a pod without an address is still found by uid");
    assert_eq!(&*object.display, "shop/api-0");
    assert_eq!(volumes.len(), 1);
    assert_eq!(
        volumes[0].file("password"),
        &edgewise_ip_index::SecretFile::Secret("postgres-password".into())
    );
    assert!(index.pod_by_uid("another").is_none());
    let objects = read_objects(pod("Succeeded").as_bytes());
    for change in objects.changes {
        let Change::Upsert(object) = change else {
            unreachable!()
        };
        index.apply(Change::Delete(object));
    }
    assert!(
        index
            .pod_by_uid("0b5c7a38-1d2e-4f60-8a9b-c0d1e2f3a4b5")
            .is_none()
    );
}
