//! Secret reads from audit webhook bodies: what is kept, what is dropped
//! and why, and attribution to every workload of the service account.

mod support;

use edgewise_ip_index::{AuditDrop, AuditLimits, IpIndex, SecretVerb, read_audit};
use support::fixture;

#[test]
fn the_fixture_event_list() {
    let batch = read_audit(&fixture("audit-events.json"), &AuditLimits::default());
    let kept: Vec<(Option<&str>, Option<&str>, SecretVerb, &str)> = batch
        .accesses
        .iter()
        .map(|a| {
            (
                a.namespace.as_deref(),
                a.name.as_deref(),
                a.verb,
                a.account.as_str(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            (
                Some("analytics"),
                Some("influxdb-admin"),
                SecretVerb::Get,
                "telegraf"
            ),
            (Some("analytics"), None, SecretVerb::List, "influxdb"),
            (None, None, SecretVerb::Watch, "external-secrets"),
        ]
    );
    assert_eq!(batch.accesses[0].time.map(|t| t.0), Some(1_795_428_900));
    assert_eq!(
        batch.accesses[0].audit_id.as_deref(),
        Some("4d1c8b2e-7f3a-4c5d-9e6f-0a1b2c3d4e01")
    );
    for (reason, count) in [
        (AuditDrop::Stage, 1),
        (AuditDrop::Denied, 1),
        (AuditDrop::NotServiceAccount, 1),
        (AuditDrop::NotSecrets, 1),
        (AuditDrop::Verb, 1),
        (AuditDrop::MalformedEvent, 1),
        (AuditDrop::BadName, 1),
        (AuditDrop::TooManyEvents, 0),
    ] {
        assert_eq!(batch.dropped(reason), count, "{}", reason.reason());
    }

    let mut index = IpIndex::default();
    index.load(&fixture("cluster.json"));
    let reads = batch.attribute(&index);
    let workloads: Vec<Vec<String>> = reads
        .iter()
        .map(|read| read.workloads.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(
        workloads,
        [
            vec!["analytics/Deployment/telegraf".to_owned()],
            vec!["analytics/StatefulSet/influxdb".to_owned()],
            vec![],
        ]
    );
}

#[test]
fn a_bare_event_and_an_account_backing_many_workloads() {
    let body = br#"{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete",
        "verb": "get", "user": {"username": "system:serviceaccount:shop:default"},
        "objectRef": {"resource": "secrets", "namespace": "shop", "name": "stripe-key"},
        "responseStatus": {"code": 200}}"#;
    let mut index = IpIndex::default();
    index.load(
        br#"{"kind": "List", "items": [
          {"kind": "Pod", "metadata": {"name": "cart-7d4b9c8f6-aaaaa", "namespace": "shop", "uid": "1",
           "labels": {"pod-template-hash": "7d4b9c8f6"},
           "ownerReferences": [{"kind": "ReplicaSet", "name": "cart-7d4b9c8f6", "controller": true}]},
           "status": {"phase": "Running", "podIP": "10.0.0.1"}},
          {"kind": "Pod", "metadata": {"name": "checkout-0", "namespace": "shop", "uid": "2",
           "ownerReferences": [{"kind": "StatefulSet", "name": "checkout", "controller": true}]},
           "spec": {"serviceAccountName": "default"},
           "status": {"phase": "Running", "podIP": "10.0.0.2"}}]}"#,
    );
    let reads = read_audit(body, &AuditLimits::default()).attribute(&index);
    assert_eq!(reads.len(), 1);
    let names: Vec<String> = reads[0].workloads.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        ["shop/Deployment/cart", "shop/StatefulSet/checkout"],
        "never narrowed to one"
    );
}

#[test]
fn bodies_are_bounded() {
    let event = r#"{"stage": "ResponseComplete", "verb": "get",
        "user": {"username": "system:serviceaccount:a:b"},
        "objectRef": {"resource": "secrets", "namespace": "a", "name": "s"},
        "responseStatus": {"code": 200}}"#;
    let body = format!(
        r#"{{"kind": "EventList", "items": [{}]}}"#,
        [event; 10].join(",")
    );
    let mut limits = AuditLimits::default();
    limits.max_body_bytes = 1 << 20;
    limits.max_events = 4;
    let batch = read_audit(body.as_bytes(), &limits);
    assert_eq!(batch.accesses.len(), 4);
    assert_eq!(batch.dropped(AuditDrop::TooManyEvents), 6);

    let mut small = AuditLimits::default();
    small.max_body_bytes = 100;
    small.max_events = 4;
    let batch = read_audit(body.as_bytes(), &small);
    assert_eq!(
        (batch.accesses.len(), batch.dropped(AuditDrop::BodyTooLarge)),
        (0, 1)
    );

    for junk in [
        &b""[..],
        b"[]",
        b"{}",
        b"{\"kind\": \"EventList\", \"items\": 3}",
        b"\xff\xfe",
        b"null",
    ] {
        let batch = read_audit(junk, &AuditLimits::default());
        assert_eq!(batch.dropped(AuditDrop::MalformedBody), 1, "{junk:?}");
    }
}

#[test]
fn denied_unless_shown_allowed() {
    let event = |annotation: &str, code: &str| {
        format!(
            r#"{{"kind": "Event", "stage": "ResponseComplete", "verb": "get",
            "user": {{"username": "system:serviceaccount:a:b"}},
            "objectRef": {{"resource": "secrets", "namespace": "a", "name": "s"}}
            {code} {annotation}}}"#
        )
    };
    let kept = |body: String| {
        read_audit(body.as_bytes(), &AuditLimits::default())
            .accesses
            .len()
    };
    assert_eq!(kept(event("", r#", "responseStatus": {"code": 200}"#)), 1);
    assert_eq!(kept(event("", r#", "responseStatus": {"code": 404}"#)), 0);
    assert_eq!(kept(event("", "")), 0, "no response code");
    assert_eq!(
        kept(event(
            r#", "annotations": {"authorization.k8s.io/decision": "forbid"}"#,
            r#", "responseStatus": {"code": 200}"#
        )),
        0
    );
    // Other groups and subresources are not core secrets.
    let other_group = r#"{"kind": "Event", "stage": "ResponseComplete", "verb": "get",
        "user": {"username": "system:serviceaccount:a:b"}, "responseStatus": {"code": 200},
        "objectRef": {"resource": "secrets", "apiGroup": "external-secrets.io", "namespace": "a"}}"#;
    assert_eq!(kept(other_group.to_owned()), 0);
}
