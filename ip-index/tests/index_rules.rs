//! The index's rules: who owns an address, and the recycle guard under
//! pod churn and out-of-order events.

mod support;

use edgewise_ip_index::{
    Applied, Change, IndexConfig, IpIndex, NamedRange, Object, PodPhase, WorkloadKind,
};
use support::{delete, fixture, owner, pod, service, upsert};

#[test]
fn the_fixture_cluster() {
    let mut index = IpIndex::default();
    let report = index.load(&fixture("cluster.json"));
    assert_eq!(report.errors, []);
    assert_eq!(owner(&index, "10.42.1.159"), "analytics/influxdb-0", "pod");
    assert_eq!(owner(&index, "10.43.0.86"), "analytics/influxdb", "service");
    assert_eq!(owner(&index, "10.43.0.1"), "default/kubernetes");
    assert_eq!(
        owner(&index, "192.168.56.11"),
        "node/worker-1",
        "a hostNetwork pod does not claim its node's address"
    );
    assert_eq!(owner(&index, "203.0.113.11"), "unknown", "only InternalIPs");
    assert_eq!(
        owner(&index, "10.42.2.99"),
        "unknown",
        "a Succeeded pod claims nothing"
    );
    let stats = index.stats();
    assert_eq!((stats.pods, stats.services, stats.nodes), (6, 4, 2));
    // influxdb-0 x2, telegraf x2, frontend, influxdb svc x2, kubernetes,
    // worker-1 x2, worker-2.
    assert_eq!(stats.addresses, 11);
}

#[test]
fn headless_and_external_name_services_claim_nothing() {
    let mut index = IpIndex::default();
    index.load(
        br#"{"kind": "Service", "metadata": {"name": "h", "namespace": "ns"},
             "spec": {"clusterIP": "None", "clusterIPs": ["None"]}}
            {"kind": "Service", "metadata": {"name": "e", "namespace": "ns"},
             "spec": {"type": "ExternalName", "externalName": "db.example.com"}}"#,
    );
    assert_eq!(index.stats().services, 2);
    assert_eq!(index.stats().addresses, 0);
}

#[test]
fn a_pod_wins_an_address_collision_with_a_service() {
    let mut index = IpIndex::default();
    upsert(&mut index, service("s1", "ns", "svc", &["10.0.0.9"]));
    assert_eq!(owner(&index, "10.0.0.9"), "ns/svc");
    upsert(&mut index, pod("p1", "ns", "web-abcde", &["10.0.0.9"], 100));
    assert_eq!(owner(&index, "10.0.0.9"), "ns/web-abcde");
    delete(&mut index, pod("p1", "ns", "web-abcde", &["10.0.0.9"], 100));
    assert_eq!(
        owner(&index, "10.0.0.9"),
        "ns/svc",
        "the service takes over"
    );
}

#[test]
fn a_ready_pod_beats_one_that_is_not_and_the_newest_wins_among_equals() {
    let mut index = IpIndex::default();
    let old = pod("old", "ns", "cart-aaaaa", &["10.0.0.7"], 100);
    let mut new = pod("new", "ns", "checkout-bbbbb", &["10.0.0.7"], 200);
    new.ready = false;
    new.phase = PodPhase::Pending;
    upsert(&mut index, old.clone());
    upsert(&mut index, new.clone());
    assert_eq!(
        owner(&index, "10.0.0.7"),
        "ns/cart-aaaaa",
        "still Ready beats Pending"
    );

    let mut terminating = old.clone();
    terminating.meta.terminating = true;
    upsert(&mut index, terminating);
    assert_eq!(
        owner(&index, "10.0.0.7"),
        "ns/checkout-bbbbb",
        "a terminating pod is not live; the newer not-live pod wins"
    );

    new.ready = true;
    new.phase = PodPhase::Running;
    upsert(&mut index, new.clone());
    assert_eq!(owner(&index, "10.0.0.7"), "ns/checkout-bbbbb");

    // A late update shows the old pod Ready again, still older: no change.
    upsert(&mut index, old.clone());
    assert_eq!(
        owner(&index, "10.0.0.7"),
        "ns/checkout-bbbbb",
        "the newest wins among equals"
    );
    // A late delete of the old pod removes only its own claim.
    delete(&mut index, old);
    assert_eq!(owner(&index, "10.0.0.7"), "ns/checkout-bbbbb");
    delete(&mut index, new);
    assert_eq!(owner(&index, "10.0.0.7"), "unknown");
}

#[test]
fn when_the_winner_goes_the_next_claimant_takes_over() {
    let mut index = IpIndex::default();
    let first = pod("a", "ns", "a-11111", &["10.0.0.5"], 100);
    let second = pod("b", "ns", "b-22222", &["10.0.0.5"], 200);
    upsert(&mut index, first.clone());
    upsert(&mut index, second.clone());
    assert_eq!(owner(&index, "10.0.0.5"), "ns/b-22222");
    delete(&mut index, second);
    assert_eq!(owner(&index, "10.0.0.5"), "ns/a-11111");
    // The pod finishes: it claims nothing any more.
    let mut finished = first;
    finished.phase = PodPhase::Succeeded;
    upsert(&mut index, finished);
    assert_eq!(owner(&index, "10.0.0.5"), "unknown");
}

#[test]
fn ties_are_ambiguous_not_guessed() {
    let mut index = IpIndex::default();
    upsert(&mut index, pod("b", "ns", "zeta-22222", &["10.0.0.6"], 100));
    upsert(
        &mut index,
        pod("a", "ns", "alpha-11111", &["10.0.0.6"], 100),
    );
    assert_eq!(
        owner(&index, "10.0.0.6"),
        "ambiguous(ns/alpha-11111, ns/zeta-22222)"
    );
    assert_eq!(index.stats().ambiguous, 1);
    upsert(
        &mut index,
        pod("a", "ns", "alpha-11111", &["10.0.0.6"], 101),
    );
    assert_eq!(owner(&index, "10.0.0.6"), "ns/alpha-11111");
    assert_eq!(index.stats().ambiguous, 0);
}

#[test]
fn a_recreated_pod_of_the_same_name_is_a_new_object() {
    // A StatefulSet pod comes back with the same name, a new uid and a new
    // address; the old pod's late delete must not remove the new claim.
    let mut index = IpIndex::default();
    let old = pod("uid-1", "db", "pg-0", &["10.0.0.10"], 100);
    let new = pod("uid-2", "db", "pg-0", &["10.0.0.11"], 200);
    upsert(&mut index, old.clone());
    upsert(&mut index, new);
    delete(&mut index, old);
    assert_eq!(owner(&index, "10.0.0.10"), "unknown");
    assert_eq!(owner(&index, "10.0.0.11"), "db/pg-0");
}

#[test]
fn an_address_change_moves_the_claim() {
    let mut index = IpIndex::default();
    upsert(&mut index, pod("p", "ns", "web-abcde", &["10.0.0.1"], 1));
    upsert(
        &mut index,
        pod("p", "ns", "web-abcde", &["10.0.0.2", "fd00::2"], 1),
    );
    assert_eq!(owner(&index, "10.0.0.1"), "unknown");
    assert_eq!(owner(&index, "10.0.0.2"), "ns/web-abcde");
    assert_eq!(owner(&index, "fd00::2"), "ns/web-abcde");
    assert_eq!(
        owner(&index, "::ffff:10.0.0.2"),
        "ns/web-abcde",
        "IPv4-mapped"
    );
}

#[test]
fn the_watch_fixture_reuses_an_address_out_of_order() {
    let mut index = IpIndex::default();
    let report = index.load(&fixture("watch-ip-reuse.jsonl"));
    assert_eq!(report.errors, []);
    assert_eq!(owner(&index, "10.42.1.77"), "shop/checkout-5b7c8d9f6-bbbbb");
    let stats = index.stats();
    assert_eq!(
        stats.stale, 1,
        "the MODIFIED with resourceVersion 1001 after 1002"
    );
    assert_eq!(stats.after_delete, 1, "the MODIFIED after the DELETED");
    assert_eq!(stats.pods, 1);
    let snapshot = index.snapshot();
    let pod = snapshot.lookup(support::ip("10.42.1.77")).object().unwrap();
    let workload = pod.workload.as_ref().unwrap();
    assert_eq!(
        (&workload.kind, workload.name.as_str()),
        (&WorkloadKind::Deployment, "checkout")
    );
}

#[test]
fn stale_and_after_delete_updates_are_reported() {
    let mut index = IpIndex::default();
    let mut current = pod("p", "ns", "web-abcde", &["10.0.0.1"], 1);
    current.meta.resource_version = Some("20".into());
    let mut older = current.clone();
    older.meta.resource_version = Some("19".into());
    older.ips = vec![support::ip("10.0.0.99")];
    assert_eq!(
        index.apply(Change::Upsert(Object::Pod(current.clone()))),
        Applied::Upserted
    );
    assert_eq!(
        index.apply(Change::Upsert(Object::Pod(older))),
        Applied::Stale
    );
    assert_eq!(
        index.apply(Change::Delete(Object::Pod(current.clone()))),
        Applied::Deleted
    );
    assert_eq!(
        index.apply(Change::Delete(Object::Pod(current.clone()))),
        Applied::UnknownDelete
    );
    assert_eq!(
        index.apply(Change::Upsert(Object::Pod(current))),
        Applied::AfterDelete
    );
    index.publish();
    assert_eq!(owner(&index, "10.0.0.1"), "unknown");
    assert_eq!(owner(&index, "10.0.0.99"), "unknown");
}

#[test]
fn objects_without_uid_are_told_apart_by_name() {
    let mut index = IpIndex::default();
    let mut first = pod("x", "ns", "web-abcde", &["10.0.0.1"], 1);
    first.meta.uid = None;
    let mut moved = first.clone();
    moved.ips = vec![support::ip("10.0.0.2")];
    upsert(&mut index, first);
    upsert(&mut index, moved.clone());
    assert_eq!(owner(&index, "10.0.0.1"), "unknown");
    delete(&mut index, moved.clone());
    // Without a uid there is no tombstone: the name may come back.
    upsert(&mut index, moved);
    assert_eq!(owner(&index, "10.0.0.2"), "ns/web-abcde");
}

#[test]
fn ranges_answer_when_no_object_does() {
    let mut index = IpIndex::new({
        let mut index_config = IndexConfig::default();
        index_config.ranges = vec![
            NamedRange::new("10.42.0.0/16".parse().unwrap(), "pod-cidr"),
            NamedRange::new("10.43.0.0/16".parse().unwrap(), "service-cidr"),
            NamedRange::new("0.0.0.0/0".parse().unwrap(), "world"),
        ];
        index_config
    });
    upsert(&mut index, pod("p", "ns", "web-abcde", &["10.42.0.5"], 1));
    assert_eq!(owner(&index, "10.42.0.5"), "ns/web-abcde");
    assert_eq!(owner(&index, "10.42.9.9"), "range(pod-cidr)");
    assert_eq!(owner(&index, "10.43.0.10"), "range(service-cidr)");
    assert_eq!(owner(&index, "8.8.8.8"), "range(world)");
    assert_eq!(owner(&index, "2001:db8::1"), "unknown");
}

#[test]
fn host_network_and_finished_pods_claim_nothing() {
    let mut index = IpIndex::default();
    let mut host = pod("h", "kube-system", "kube-proxy-abcde", &["192.168.0.5"], 1);
    host.host_network = true;
    let mut failed = pod("f", "ns", "job-abcde", &["10.0.0.3"], 1);
    failed.phase = PodPhase::Failed;
    upsert(&mut index, host);
    upsert(&mut index, failed);
    assert_eq!(index.stats().addresses, 0);
    assert_eq!(index.stats().pods, 2);
}

#[test]
fn service_accounts_map_to_every_workload_running_as_them() {
    let mut index = IpIndex::default();
    index.load(&fixture("cluster.json"));
    let names = |index: &IpIndex, ns: &str, sa: &str| -> Vec<String> {
        index
            .workloads_of_service_account(ns, sa)
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        names(&index, "analytics", "telegraf"),
        ["analytics/Deployment/telegraf"]
    );
    assert_eq!(
        names(&index, "analytics", "influxdb"),
        ["analytics/StatefulSet/influxdb"]
    );
    assert_eq!(
        names(&index, "analytics", "backup"),
        Vec::<String>::new(),
        "a finished pod runs as nothing"
    );
    assert_eq!(
        names(&index, "kube-system", "kube-proxy"),
        ["kube-system/DaemonSet/kube-proxy"]
    );

    // Another workload on the same account: both.
    let mut other = pod("o", "analytics", "kapacitor-abcde", &["10.42.3.3"], 5);
    other.service_account = Some("telegraf".into());
    upsert(&mut index, other.clone());
    assert_eq!(
        names(&index, "analytics", "telegraf"),
        [
            "analytics/Deployment/telegraf",
            "analytics/ReplicaSet/kapacitor"
        ]
    );
    delete(&mut index, other);
    assert_eq!(
        names(&index, "analytics", "telegraf"),
        ["analytics/Deployment/telegraf"]
    );
}

#[test]
fn changes_are_invisible_until_published() {
    let mut index = IpIndex::default();
    let reader = index.reader();
    index.apply(Change::Upsert(Object::Pod(pod(
        "p",
        "ns",
        "web-abcde",
        &["10.0.0.1"],
        1,
    ))));
    assert_eq!(
        support::describe(reader.snapshot().lookup(support::ip("10.0.0.1"))),
        "unknown"
    );
    index.publish();
    assert_eq!(
        support::describe(reader.snapshot().lookup(support::ip("10.0.0.1"))),
        "ns/web-abcde"
    );
}

/// 20,000 pods claiming one address (all tied): loading them is a matter
/// of moments (each upsert costs O(log n) in the claimants, it once cost a
/// scan and a sort), and the address names the first few by name.
#[test]
fn an_address_with_twenty_thousand_claimants_is_ambiguous_and_names_a_few() {
    let mut index = IpIndex::default();
    let items: Vec<String> = (0..20_000)
        .map(|n| {
            format!(
                r#"{{"kind": "Pod", "metadata": {{"name": "p{n:05}", "namespace": "x", "uid": "u{n}"}},
                    "status": {{"phase": "Running", "podIP": "10.9.9.9", "startTime": "2024-01-01T00:00:00Z",
                               "conditions": [{{"type": "Ready", "status": "True"}}]}}}}"#
            )
        })
        .collect();
    let list = format!(r#"{{"kind": "List", "items": [{}]}}"#, items.join(","));
    assert!(index.load(list.as_bytes()).errors.is_empty());
    let snapshot = index.snapshot();
    match snapshot.lookup("10.9.9.9".parse().unwrap()) {
        edgewise_ip_index::Lookup::Ambiguous(objects) => {
            assert_eq!(objects.len(), edgewise_ip_index::MAX_AMBIGUOUS);
            assert_eq!(objects[0].name, "p00000");
        }
        other => panic!("{other:?}"),
    }
}
