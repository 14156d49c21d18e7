//! NetworkPolicy semantics, case by case from the Kubernetes documentation
//! (concepts/services-networking/network-policies) and the API reference.

mod support;

use std::collections::BTreeMap;

use edgewise_edge_set::{DeclaredPolicies, EdgeQuery, Endpoint, PolicySet, Side, VerdictKind};
use edgewise_ip_index::{ClusterObject, NamedPort, ObjectKind, Protocol};
use support::{End, ask, pod, tcp};

fn policies(json: &str) -> PolicySet {
    let mut declared = DeclaredPolicies::default();
    let report = declared.load(json.as_bytes());
    assert_eq!(report.errors, [], "{json}");
    declared.compile()
}

const NAMESPACES: &str = r#"
{"kind": "Namespace", "metadata": {"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}}}
{"kind": "Namespace", "metadata": {"name": "myproject", "labels": {"project": "myproject"}}}
{"kind": "Namespace", "metadata": {"name": "other", "labels": {"project": "other"}}}
"#;

#[test]
fn a_pod_no_policy_selects_is_not_governed() {
    let set = policies("");
    let a = pod("default", "a", &[]);
    let b = pod("default", "b", &[]);
    assert_eq!(
        ask(
            &set,
            ("10.0.0.1", Some(&a)),
            ("10.0.0.2", Some(&b)),
            80,
            Protocol::Tcp
        ),
        (VerdictKind::NotGoverned, None)
    );
}

#[test]
fn default_deny_all_ingress() {
    let set = policies(
        r#"{"kind": "NetworkPolicy", "metadata": {"name": "default-deny-ingress", "namespace": "default"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}"#,
    );
    let a = pod("default", "a", &[("app", "a")]);
    let b = pod("default", "b", &[]);
    let elsewhere = pod("other", "c", &[]);
    assert_eq!(
        ask(
            &set,
            ("10.0.0.2", Some(&b)),
            ("10.0.0.1", Some(&a)),
            80,
            Protocol::Tcp
        ),
        (
            VerdictKind::Violation,
            Some("default/default-deny-ingress".into())
        )
    );
    assert_eq!(
        tcp(&set, ("203.0.113.9", None), ("10.0.0.1", Some(&a)), 80),
        VerdictKind::Violation
    );
    // Egress from the namespace is not governed by an ingress-only policy,
    // and pods of other namespaces are not selected.
    assert_eq!(
        tcp(
            &set,
            ("10.0.0.1", Some(&a)),
            ("10.9.0.1", Some(&elsewhere)),
            80
        ),
        VerdictKind::NotGoverned
    );
    assert_eq!(
        tcp(&set, ("10.0.0.1", Some(&a)), ("203.0.113.9", None), 443),
        VerdictKind::NotGoverned
    );
}

#[test]
fn allow_all_ingress() {
    let set = policies(
        r#"{"kind": "NetworkPolicy", "metadata": {"name": "allow-all-ingress", "namespace": "default"},
            "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]}}"#,
    );
    let a = pod("default", "a", &[]);
    assert_eq!(
        ask(
            &set,
            ("203.0.113.9", None),
            ("10.0.0.1", Some(&a)),
            9999,
            Protocol::Udp
        ),
        (
            VerdictKind::Declared,
            Some("default/allow-all-ingress".into())
        )
    );
}

#[test]
fn default_deny_all_egress_and_allow_all_egress() {
    let deny = policies(
        r#"{"kind": "NetworkPolicy", "metadata": {"name": "default-deny-egress", "namespace": "default"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}"#,
    );
    let a = pod("default", "a", &[]);
    let b = pod("default", "b", &[]);
    assert_eq!(
        tcp(&deny, ("10.0.0.1", Some(&a)), ("10.0.0.2", Some(&b)), 80),
        VerdictKind::Violation
    );
    assert_eq!(
        tcp(&deny, ("10.0.0.1", Some(&a)), ("8.8.8.8", None), 53),
        VerdictKind::Violation
    );
    // Ingress to the namespace's pods is not governed by it: an outside
    // client reaching a pod is fine.
    assert_eq!(
        tcp(&deny, ("203.0.113.9", None), ("10.0.0.1", Some(&a)), 80),
        VerdictKind::NotGoverned
    );

    let allow = policies(
        r#"{"kind": "NetworkPolicy", "metadata": {"name": "allow-all-egress", "namespace": "default"},
            "spec": {"podSelector": {}, "egress": [{}], "policyTypes": ["Egress"]}}"#,
    );
    assert_eq!(
        tcp(&allow, ("10.0.0.1", Some(&a)), ("8.8.8.8", None), 53),
        VerdictKind::Declared
    );
}

#[test]
fn default_deny_all_ingress_and_egress() {
    let set = policies(
        r#"{"kind": "NetworkPolicy", "metadata": {"name": "default-deny-all", "namespace": "default"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}"#,
    );
    let a = pod("default", "a", &[]);
    let b = pod("default", "b", &[]);
    let verdict = set.evaluate(&EdgeQuery {
        src: Endpoint {
            ip: "10.0.0.1".parse().unwrap(),
            identity: Some(&a),
        },
        dst: Endpoint {
            ip: "10.0.0.2".parse().unwrap(),
            identity: Some(&b),
        },
        port: 80,
        protocol: Protocol::Tcp,
    });
    assert!(matches!(verdict.ingress, Side::Denied(_)));
    assert!(matches!(verdict.egress, Side::Denied(_)));
    assert_eq!(verdict.kind(), VerdictKind::Violation);
}

/// The documentation's `test-network-policy`.
const TEST_NETWORK_POLICY: &str = r#"{
  "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
  "metadata": {"name": "test-network-policy", "namespace": "default"},
  "spec": {
    "podSelector": {"matchLabels": {"role": "db"}},
    "policyTypes": ["Ingress", "Egress"],
    "ingress": [{
      "from": [
        {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
        {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
        {"podSelector": {"matchLabels": {"role": "frontend"}}}
      ],
      "ports": [{"protocol": "TCP", "port": 6379}]
    }],
    "egress": [{
      "to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
      "ports": [{"protocol": "TCP", "port": 5978}]
    }]
  }
}"#;

#[test]
fn the_documentation_example_policy() {
    let set = policies(&format!("{NAMESPACES}{TEST_NETWORK_POLICY}"));
    let db = pod("default", "db", &[("role", "db")]);
    let frontend = pod("default", "frontend", &[("role", "frontend")]);
    let backend = pod("default", "backend", &[("role", "backend")]);
    let in_project = pod("myproject", "anything", &[]);
    let frontend_elsewhere = pod("other", "frontend", &[("role", "frontend")]);
    let to_db = |src: End<'_>, port| tcp(&set, src, ("10.1.0.5", Some(&db)), port);

    assert_eq!(
        to_db(("172.17.0.9", None), 6379),
        VerdictKind::Declared,
        "in the ipBlock"
    );
    assert_eq!(
        to_db(("172.17.1.9", None), 6379),
        VerdictKind::Violation,
        "in the except"
    );
    assert_eq!(
        to_db(("172.18.0.1", None), 6379),
        VerdictKind::Violation,
        "outside the ipBlock"
    );
    assert_eq!(
        to_db(("10.1.2.3", Some(&in_project)), 6379),
        VerdictKind::Declared,
        "any pod of myproject"
    );
    assert_eq!(
        to_db(("10.1.0.6", Some(&frontend)), 6379),
        VerdictKind::Declared,
        "frontend of default"
    );
    assert_eq!(
        to_db(("10.1.9.6", Some(&frontend_elsewhere)), 6379),
        VerdictKind::Violation,
        "a podSelector alone means the policy's namespace"
    );
    assert_eq!(
        to_db(("10.1.0.7", Some(&backend)), 6379),
        VerdictKind::Violation
    );
    assert_eq!(
        to_db(("10.1.0.6", Some(&frontend)), 6380),
        VerdictKind::Violation,
        "wrong port"
    );
    assert_eq!(
        ask(
            &set,
            ("10.1.0.6", Some(&frontend)),
            ("10.1.0.5", Some(&db)),
            6379,
            Protocol::Udp
        )
        .0,
        VerdictKind::Violation,
        "wrong protocol"
    );

    // Egress of db: only 10.0.0.0/24 on TCP 5978.
    let from_db = |dst: End<'_>, port| tcp(&set, ("10.1.0.5", Some(&db)), dst, port);
    assert_eq!(from_db(("10.0.0.77", None), 5978), VerdictKind::Declared);
    assert_eq!(from_db(("10.0.1.77", None), 5978), VerdictKind::Violation);
    assert_eq!(from_db(("10.0.0.77", None), 443), VerdictKind::Violation);
    // Pods not labelled db are not governed by it.
    assert_eq!(
        tcp(&set, ("10.1.0.7", Some(&backend)), ("10.0.0.77", None), 443),
        VerdictKind::NotGoverned
    );
}

#[test]
fn namespace_and_pod_selector_in_one_peer_is_an_and_in_two_peers_an_or() {
    let and = policies(&format!(
        r#"{NAMESPACES}
        {{"kind": "NetworkPolicy", "metadata": {{"name": "and", "namespace": "default"}},
          "spec": {{"podSelector": {{}}, "ingress": [{{"from": [
            {{"namespaceSelector": {{"matchLabels": {{"project": "myproject"}}}},
              "podSelector": {{"matchLabels": {{"role": "client"}}}}}}]}}]}}}}"#
    ));
    let or = policies(&format!(
        r#"{NAMESPACES}
        {{"kind": "NetworkPolicy", "metadata": {{"name": "or", "namespace": "default"}},
          "spec": {{"podSelector": {{}}, "ingress": [{{"from": [
            {{"namespaceSelector": {{"matchLabels": {{"project": "myproject"}}}}}},
            {{"podSelector": {{"matchLabels": {{"role": "client"}}}}}}]}}]}}}}"#
    ));
    let server = pod("default", "server", &[]);
    let client_in_project = pod("myproject", "c", &[("role", "client")]);
    let other_in_project = pod("myproject", "o", &[]);
    let client_in_default = pod("default", "c", &[("role", "client")]);
    let to_server = |set: &PolicySet, src: &ClusterObject| {
        tcp(
            set,
            ("10.2.0.1", Some(src)),
            ("10.1.0.1", Some(&server)),
            80,
        )
    };
    assert_eq!(to_server(&and, &client_in_project), VerdictKind::Declared);
    assert_eq!(to_server(&and, &other_in_project), VerdictKind::Violation);
    assert_eq!(to_server(&and, &client_in_default), VerdictKind::Violation);
    assert_eq!(to_server(&or, &client_in_project), VerdictKind::Declared);
    assert_eq!(to_server(&or, &other_in_project), VerdictKind::Declared);
    assert_eq!(to_server(&or, &client_in_default), VerdictKind::Declared);
}

#[test]
fn targeting_a_namespace_by_its_name_label_works_without_namespace_objects() {
    let set = policies(
        r#"{"kind": "NetworkPolicy", "metadata": {"name": "from-monitoring", "namespace": "app"},
            "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector":
              {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}]}}]}]}}"#,
    );
    let server = pod("app", "server", &[]);
    let prometheus = pod("monitoring", "prometheus", &[]);
    let intruder = pod("default", "x", &[]);
    assert_eq!(
        tcp(
            &set,
            ("10.0.9.1", Some(&prometheus)),
            ("10.0.0.1", Some(&server)),
            9100
        ),
        VerdictKind::Declared
    );
    assert_eq!(
        tcp(
            &set,
            ("10.0.9.2", Some(&intruder)),
            ("10.0.0.1", Some(&server)),
            9100
        ),
        VerdictKind::Violation
    );
}

#[test]
fn port_ranges_with_end_port() {
    let set = policies(
        r#"{"kind": "NetworkPolicy", "metadata": {"name": "multi-port-egress", "namespace": "default"},
            "spec": {"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Egress"],
              "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                          "ports": [{"protocol": "TCP", "port": 32000, "endPort": 32768}]}]}}"#,
    );
    let db = pod("default", "db", &[("role", "db")]);
    let from_db = |port| tcp(&set, ("10.1.0.5", Some(&db)), ("10.0.0.9", None), port);
    assert_eq!(from_db(31999), VerdictKind::Violation);
    assert_eq!(from_db(32000), VerdictKind::Declared);
    assert_eq!(from_db(32768), VerdictKind::Declared);
    assert_eq!(from_db(32769), VerdictKind::Violation);
}

#[test]
fn named_ports_resolve_through_the_destination_pods_container_ports() {
    let set = policies(
        r#"{"kind": "NetworkPolicy", "metadata": {"name": "web-http", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}},
              "ingress": [{"ports": [{"port": "http"}]}]}}
           {"kind": "NetworkPolicy", "metadata": {"name": "client-egress", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
              "egress": [{"ports": [{"port": "http"}, {"port": "dns", "protocol": "UDP"}]}]}}"#,
    );
    let mut web = pod("shop", "web", &[("app", "web")]);
    web.named_ports = vec![NamedPort {
        name: "http".into(),
        port: 8080,
        protocol: Protocol::Tcp,
    }];
    let mut other_web = pod("shop", "web-2", &[("app", "web")]);
    other_web.named_ports = vec![NamedPort {
        name: "http".into(),
        port: 9090,
        protocol: Protocol::Tcp,
    }];
    let mut dns = pod("kube-system", "coredns", &[]);
    dns.named_ports = vec![NamedPort {
        name: "dns".into(),
        port: 53,
        protocol: Protocol::Udp,
    }];
    let client = pod("shop", "client", &[("app", "client")]);
    let outsider = ("198.51.100.1", None);

    assert_eq!(
        tcp(&set, outsider, ("10.0.0.1", Some(&web)), 8080),
        VerdictKind::Declared
    );
    assert_eq!(
        tcp(&set, outsider, ("10.0.0.1", Some(&web)), 9090),
        VerdictKind::Violation
    );
    assert_eq!(
        tcp(&set, outsider, ("10.0.0.2", Some(&other_web)), 9090),
        VerdictKind::Declared,
        "each pod's own number"
    );
    // Egress: the named port of the destination pod.
    assert_eq!(
        tcp(
            &set,
            ("10.0.0.3", Some(&client)),
            ("10.0.0.1", Some(&web)),
            8080
        ),
        VerdictKind::Declared
    );
    assert_eq!(
        ask(
            &set,
            ("10.0.0.3", Some(&client)),
            ("10.0.5.5", Some(&dns)),
            53,
            Protocol::Udp
        )
        .0,
        VerdictKind::Declared
    );
    assert_eq!(
        ask(
            &set,
            ("10.0.0.3", Some(&client)),
            ("10.0.5.5", Some(&dns)),
            53,
            Protocol::Tcp
        )
        .0,
        VerdictKind::Violation,
        "the named port is UDP"
    );
    assert_eq!(
        tcp(
            &set,
            ("10.0.0.3", Some(&client)),
            ("93.184.216.34", None),
            8080
        ),
        VerdictKind::Violation,
        "an address outside the cluster has no named ports"
    );
}

#[test]
fn egress_only_policies_leave_ingress_alone() {
    // No policyTypes: Ingress is implied, and Egress because there are
    // egress rules; so this one governs both...
    let implied = policies(
        r#"{"kind": "NetworkPolicy", "metadata": {"name": "implied", "namespace": "default"},
            "spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}}"#,
    );
    // ...while this one says Egress only.
    let egress_only = policies(
        r#"{"kind": "NetworkPolicy", "metadata": {"name": "egress-only", "namespace": "default"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}}"#,
    );
    let a = pod("default", "a", &[]);
    let inbound = ("203.0.113.1", None);
    assert_eq!(
        tcp(&implied, inbound, ("10.0.0.1", Some(&a)), 80),
        VerdictKind::Violation
    );
    assert_eq!(
        tcp(&egress_only, inbound, ("10.0.0.1", Some(&a)), 80),
        VerdictKind::NotGoverned
    );
    assert_eq!(
        ask(
            &egress_only,
            ("10.0.0.1", Some(&a)),
            ("10.96.0.10", None),
            53,
            Protocol::Udp
        )
        .0,
        VerdictKind::Declared
    );
}

#[test]
fn several_policies_are_a_union() {
    let set = policies(
        r#"{"kind": "List", "items": [
          {"kind": "NetworkPolicy", "metadata": {"name": "a-from-frontend", "namespace": "default"},
           "spec": {"podSelector": {"matchLabels": {"app": "api"}},
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}], "ports": [{"port": 443}]}]}},
          {"kind": "NetworkPolicy", "metadata": {"name": "b-from-monitoring", "namespace": "default"},
           "spec": {"podSelector": {"matchLabels": {"app": "api"}},
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "monitoring"}}}], "ports": [{"port": 9090}]}]}}]}"#,
    );
    let api = pod("default", "api", &[("app", "api")]);
    let frontend = pod("default", "frontend", &[("role", "frontend")]);
    let monitoring = pod("default", "prometheus", &[("role", "monitoring")]);
    let api_end = ("10.0.0.1", Some(&api));
    let cases = [
        (
            &frontend,
            443,
            VerdictKind::Declared,
            "default/a-from-frontend",
        ),
        (
            &monitoring,
            9090,
            VerdictKind::Declared,
            "default/b-from-monitoring",
        ),
        // Neither allows it; the first by name is reported.
        (
            &frontend,
            9090,
            VerdictKind::Violation,
            "default/a-from-frontend",
        ),
    ];
    for (src, port, verdict, policy) in cases {
        assert_eq!(
            ask(&set, ("10.0.0.2", Some(src)), api_end, port, Protocol::Tcp),
            (verdict, Some(policy.to_owned())),
            "{} -> api:{port}",
            src.name
        );
    }
}

#[test]
fn services_nodes_and_ipv4_mapped_addresses_match_only_ip_blocks() {
    let set = policies(
        r#"{"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}, {"ipBlock": {"cidr": "192.168.56.0/24"}}]}]}}"#,
    );
    let a = pod("default", "a", &[]);
    let mut service = pod("default", "svc", &[]);
    service.kind = ObjectKind::Service;
    let mut node = pod("default", "worker-1", &[]);
    node.kind = ObjectKind::Node;
    node.namespace = None;
    let dst = ("10.0.0.1", Some(&a));
    assert_eq!(
        tcp(&set, ("10.43.0.5", Some(&service)), dst, 80),
        VerdictKind::Violation
    );
    assert_eq!(
        tcp(&set, ("192.168.56.11", Some(&node)), dst, 80),
        VerdictKind::Declared
    );
    assert_eq!(
        tcp(&set, ("::ffff:192.168.56.11", None), dst, 80),
        VerdictKind::Declared
    );
    // A service or node as destination is never governed.
    assert_eq!(
        tcp(
            &set,
            ("10.0.0.9", Some(&a)),
            ("10.43.0.5", Some(&service)),
            80
        ),
        VerdictKind::NotGoverned
    );
}

#[test]
fn invalid_policies_are_named_and_keep_the_version_already_held() {
    let mut declared = DeclaredPolicies::default();
    let good = r#"{"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}}"#;
    assert_eq!(declared.load(good.as_bytes()).errors, []);
    let bad = [
        (
            r#"{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}"#,
            "",
            "spec.ingress[0].from[0]: an ipBlock cannot be combined with a podSelector or namespaceSelector",
        ),
        (
            r#"{"ipBlock": {"cidr": "10.0.0.0/33"}}"#,
            "",
            "spec.ingress[0].from[0].ipBlock.cidr \"10.0.0.0/33\" is not a CIDR",
        ),
        (
            r#"{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}"#,
            "",
            "spec.ingress[0].from[0].ipBlock.except[0] \"11.0.0.0/16\" is not strictly inside 10.0.0.0/8",
        ),
        (
            r"{}",
            "",
            "spec.ingress[0].from[0]: a peer needs a podSelector, a namespaceSelector or an ipBlock",
        ),
        (
            r#"{"podSelector": {}}"#,
            r#"{"port": 0}"#,
            "spec.ingress[0].ports[0].port 0 is not a port in 1..=65535",
        ),
        (
            r#"{"podSelector": {}}"#,
            r#"{"port": "HTTP"}"#,
            "spec.ingress[0].ports[0].port \"HTTP\" is not a port name (1 to 15 lower-case letters, digits and '-', with a letter)",
        ),
        (
            r#"{"podSelector": {}}"#,
            r#"{"port": "80"}"#,
            "spec.ingress[0].ports[0].port \"80\" is not a port name (1 to 15 lower-case letters, digits and '-', with a letter)",
        ),
        (
            r#"{"podSelector": {}}"#,
            r#"{"port": 90, "endPort": 80}"#,
            "spec.ingress[0].ports[0].endPort 80 is below port 90",
        ),
        (
            r#"{"podSelector": {}}"#,
            r#"{"port": "http", "endPort": 80}"#,
            "spec.ingress[0].ports[0].endPort needs a numeric port, not \"http\"",
        ),
        (
            r#"{"podSelector": {}}"#,
            r#"{"port": 80, "protocol": "ICMP"}"#,
            "spec.ingress[0].ports[0].protocol \"ICMP\" is not TCP, UDP or SCTP",
        ),
    ];
    for (peer, port, problem) in bad {
        let ports = if port.is_empty() {
            String::new()
        } else {
            format!(r#", "ports": [{port}]"#)
        };
        let input = format!(
            r#"{{"kind": "NetworkPolicy", "metadata": {{"name": "p", "namespace": "ns"}},
                "spec": {{"podSelector": {{}}, "ingress": [{{"from": [{peer}]{ports}}}]}}}}"#
        );
        let report = declared.load(input.as_bytes());
        assert_eq!(report.policies, 0);
        assert_eq!(
            report
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [format!("document 1: NetworkPolicy ns/p: {problem}")]
        );
    }
    let report = declared.load(
        br#"{"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "ns"}, "spec": {"policyTypes": ["Sideways"]}}"#,
    );
    assert_eq!(
        report.errors[0].to_string(),
        "document 1: NetworkPolicy ns/p: spec.policyTypes[0] \"Sideways\" is not Ingress or Egress"
    );
    // The good version is still the one held.
    let set = declared.compile();
    let a = pod("ns", "a", &[]);
    assert_eq!(
        tcp(&set, ("203.0.113.1", None), ("10.0.0.1", Some(&a)), 80),
        VerdictKind::Declared
    );
    assert_eq!(
        tcp(&set, ("203.0.113.1", None), ("10.0.0.1", Some(&a)), 81),
        VerdictKind::Violation
    );
}

#[test]
fn watch_events_add_replace_and_delete_policies_and_namespaces() {
    let mut declared = DeclaredPolicies::default();
    let report = declared.load(
        br#"{"type": "ADDED", "object": {"kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "ns"}, "spec": {"podSelector": {}}}}
            {"type": "ADDED", "object": {"kind": "Namespace", "metadata": {"name": "ns", "labels": {"team": "a"}}}}
            {"type": "BOOKMARK", "object": {"kind": "NetworkPolicy", "metadata": {"resourceVersion": "9"}}}
            {"type": "ADDED", "object": {"kind": "Pod", "metadata": {"name": "x"}}}
            {"type": "DELETED", "object": {"kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "ns"}, "spec": {"podSelector": {}}}}"#,
    );
    assert_eq!(report.errors, []);
    assert_eq!(
        (report.policies, report.namespaces, report.deleted),
        (1, 1, 1)
    );
    assert_eq!(
        report.skipped_kinds,
        BTreeMap::from([("Pod".to_owned(), 1)])
    );
    assert!(declared.is_empty());
}
