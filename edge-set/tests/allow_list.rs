//! The hand-written allow-list format.

use edgewise_edge_set::{
    DeclaredPolicies, EdgeQuery, EdgeSetError, Endpoint, PolicySet, VerdictKind,
};
use edgewise_ip_index::{ClusterObject, NamedPort, ObjectKind, Protocol, Workload, WorkloadKind};

fn pod(namespace: &str, workload: &str, labels: &[(&str, &str)]) -> ClusterObject {
    ClusterObject {
        kind: ObjectKind::Pod,
        namespace: Some(namespace.to_owned()),
        name: format!("{workload}-0"),
        uid: None,
        workload: Some(Workload {
            namespace: namespace.to_owned(),
            kind: WorkloadKind::StatefulSet,
            name: workload.to_owned(),
        }),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        service_account: None,
        node_name: None,
        named_ports: vec![NamedPort {
            name: "metrics".into(),
            port: 9100,
            protocol: Protocol::Tcp,
        }],
        display: format!("{namespace}/{workload}-0").into(),
    }
}

fn verdict(
    set: &PolicySet,
    src: (&str, Option<&ClusterObject>),
    dst: (&str, Option<&ClusterObject>),
    port: u16,
    protocol: Protocol,
) -> (VerdictKind, Option<String>) {
    let verdict = set.evaluate(&EdgeQuery {
        src: Endpoint {
            ip: src.0.parse().unwrap(),
            identity: src.1,
        },
        dst: Endpoint {
            ip: dst.0.parse().unwrap(),
            identity: dst.1,
        },
        port,
        protocol,
    });
    (
        verdict.kind(),
        verdict.deciding().map(|id| set.policy(id).name.clone()),
    )
}

const LIST: &str = "
# who may talk to whom
frontend/web          -> analytics/influxdb   8086
monitoring/prometheus -> */*                  metrics   # every pod's metrics port
*                     -> kube-system/coredns  53/udp 53/tcp
analytics/*           -> 203.0.113.0/24       443
shop/app=checkout     -> payments/app=api,tier=backend
analytics/influxdb    -> 2001:db8::/32        8000-8100/udp
";

#[test]
fn lines_become_ingress_or_egress_policies() {
    let mut declared = DeclaredPolicies::default();
    assert_eq!(declared.load_allow_list("allow.txt", LIST), Ok(6));
    let set = declared.compile();
    let web = pod("frontend", "web", &[]);
    let influxdb = pod("analytics", "influxdb", &[]);
    let prometheus = pod("monitoring", "prometheus", &[]);
    let coredns = pod("kube-system", "coredns", &[]);
    let checkout = pod("shop", "checkout", &[("app", "checkout")]);
    let api = pod("payments", "api", &[("app", "api"), ("tier", "backend")]);
    let api_canary = pod(
        "payments",
        "api-canary",
        &[("app", "api"), ("tier", "canary")],
    );
    let tcp = Protocol::Tcp;

    assert_eq!(
        verdict(
            &set,
            ("10.0.0.1", Some(&web)),
            ("10.0.0.2", Some(&influxdb)),
            8086,
            tcp
        ),
        (VerdictKind::Declared, Some("allow.txt:3".into()))
    );
    // influxdb is now governed for ingress: port 22 from web, or anything
    // from elsewhere, is a violation. (Prometheus' metrics line also
    // governs every pod, so the deciding policy is the first by name.)
    assert_eq!(
        verdict(
            &set,
            ("10.0.0.1", Some(&web)),
            ("10.0.0.2", Some(&influxdb)),
            22,
            tcp
        )
        .0,
        VerdictKind::Violation
    );
    assert_eq!(
        verdict(
            &set,
            ("10.0.0.3", Some(&prometheus)),
            ("10.0.0.2", Some(&influxdb)),
            9100,
            tcp
        ),
        (VerdictKind::Declared, Some("allow.txt:4".into()))
    );
    assert_eq!(
        verdict(
            &set,
            ("198.51.100.7", None),
            ("10.0.0.9", Some(&coredns)),
            53,
            Protocol::Udp
        )
        .0,
        VerdictKind::Declared
    );
    // Labels: every pair must match; no ports means every port.
    assert_eq!(
        verdict(
            &set,
            ("10.0.1.1", Some(&checkout)),
            ("10.0.2.1", Some(&api)),
            12345,
            tcp
        )
        .0,
        VerdictKind::Declared
    );
    assert_eq!(
        verdict(
            &set,
            ("10.0.1.1", Some(&checkout)),
            ("10.0.2.2", Some(&api_canary)),
            12345,
            tcp
        )
        .0,
        VerdictKind::Violation,
        "the canary is not tier=backend, but the metrics line governs it"
    );
}

#[test]
fn a_line_to_an_address_governs_the_source_pods_egress() {
    let mut declared = DeclaredPolicies::default();
    declared.load_allow_list("allow.txt", LIST).unwrap();
    let set = declared.compile();
    let influxdb = pod("analytics", "influxdb", &[]);
    let tcp = Protocol::Tcp;
    // Egress of analytics pods: 203.0.113.0/24:443 allowed, others not.
    assert_eq!(
        verdict(
            &set,
            ("10.0.0.2", Some(&influxdb)),
            ("203.0.113.50", None),
            443,
            tcp
        ),
        (VerdictKind::Declared, Some("allow.txt:6".into()))
    );
    assert_eq!(
        verdict(
            &set,
            ("10.0.0.2", Some(&influxdb)),
            ("198.51.100.1", None),
            443,
            tcp
        )
        .0,
        VerdictKind::Violation
    );
    assert_eq!(
        verdict(
            &set,
            ("10.0.0.2", Some(&influxdb)),
            ("2001:db8::1", None),
            8050,
            Protocol::Udp
        )
        .0,
        VerdictKind::Declared
    );
}

#[test]
fn a_wrong_line_is_named_and_nothing_is_loaded() {
    let mut declared = DeclaredPolicies::default();
    declared
        .load_allow_list("allow.txt", "a/b -> c/d 80")
        .unwrap();
    let before = declared.clone();
    let text = "
a/b -> c/d 80
a/b c/d
* -> *
10.0.0.0/8 -> 192.168.0.0/16 443
a/b -> c/d 70000
a/b -> c/d 90-80
a/b -> c/d 53/icmp
a/b -> c/k=
a/b -> c/d http%
nonsense -> c/d
a/b -> 
";
    let errors = declared.load_allow_list("allow.txt", text).unwrap_err();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "allow.txt:3: expected `<source> -> <destination> [<port> ...]`",
            "allow.txt:4: the destination must be pods or an address, not `*`",
            "allow.txt:5: from an address or `*` to an address: one side must be pods",
            "allow.txt:6: \"70000\" in \"70000\" is not a port in 1..=65535",
            "allow.txt:7: \"90-80\": the range ends below its start",
            "allow.txt:8: \"icmp\" in \"53/icmp\" is not tcp, udp or sctp",
            "allow.txt:10: \"http%\" is not a port, a range or a port name",
            "allow.txt:11: \"nonsense\" is not `<namespace>/<pods>`, an address or a CIDR",
            "allow.txt:12: the destination is missing",
        ]
    );
    assert!(matches!(errors[0], EdgeSetError::AllowList { line: 3, .. }));
    assert_eq!(declared, before, "nothing changed");
}

#[test]
fn reloading_a_list_replaces_its_lines_and_keeps_other_sources() {
    let mut declared = DeclaredPolicies::default();
    declared
        .load_allow_list("a.txt", "x/y -> z/w 1\nx/y -> z/w 2\nx/y -> z/w 3")
        .unwrap();
    declared.load_allow_list("b.txt", "x/y -> z/w 4").unwrap();
    declared.load_allow_list("a.txt", "x/y -> z/w 5").unwrap();
    let names: Vec<&str> = declared.policies().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a.txt:1", "b.txt:1"]);
}
