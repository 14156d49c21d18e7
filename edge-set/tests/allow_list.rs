//! The hand-written allow-list format.

mod support;

use edgewise_edge_set::{DeclaredPolicies, EdgeSetError, PolicySet, VerdictKind};
use edgewise_ip_index::Protocol;
use support::{ask, pod, with_port};

const LIST: &str = "
# who may talk to whom
frontend/web          -> analytics/influxdb   8086
monitoring/prometheus -> */*                  metrics   # every pod's metrics port
*                     -> kube-system/coredns  53/udp 53/tcp
analytics/*           -> 203.0.113.0/24       443
shop/app=checkout     -> payments/app=api,tier=backend
analytics/influxdb    -> 2001:db8::/32        8000-8100/udp
";

fn compiled() -> PolicySet {
    let mut declared = DeclaredPolicies::default();
    assert_eq!(declared.load_allow_list("allow.txt", LIST), Ok(6));
    declared.compile()
}

#[test]
fn lines_become_ingress_or_egress_policies() {
    let set = compiled();
    let web = pod("frontend", "web", &[]);
    let influxdb = with_port(
        pod("analytics", "influxdb", &[]),
        "metrics",
        9100,
        Protocol::Tcp,
    );
    let prometheus = pod("monitoring", "prometheus", &[]);
    let coredns = pod("kube-system", "coredns", &[]);
    let checkout = pod("shop", "checkout", &[("app", "checkout")]);
    let api = pod("payments", "api", &[("app", "api"), ("tier", "backend")]);
    let api_canary = pod(
        "payments",
        "api-canary",
        &[("app", "api"), ("tier", "canary")],
    );
    let (tcp, udp) = (Protocol::Tcp, Protocol::Udp);
    let declared = |line: &str| (VerdictKind::Declared, Some(format!("allow.txt:{line}")));
    let cases = [
        (
            (Some(&web), &influxdb),
            8086,
            tcp,
            declared("3"),
            "a workload by name",
        ),
        (
            (Some(&prometheus), &influxdb),
            9100,
            tcp,
            declared("4"),
            "a named port",
        ),
        ((None, &coredns), 53, udp, declared("5"), "`*` is anyone"),
        (
            (Some(&checkout), &api),
            12345,
            tcp,
            declared("7"),
            "labels, every port",
        ),
    ];
    for ((src, dst), port, protocol, expected, why) in cases {
        assert_eq!(
            ask(
                &set,
                ("10.0.0.1", src),
                ("10.0.0.2", Some(dst)),
                port,
                protocol
            ),
            expected,
            "{why}"
        );
    }
    // The destinations are now governed for ingress (the metrics line to
    // `*/*` governs every pod): what no line allows is a violation.
    for ((src, dst), port, why) in [
        ((Some(&web), &influxdb), 22, "not the listed port"),
        (
            (Some(&checkout), &api_canary),
            12345,
            "tier=canary is not tier=backend",
        ),
    ] {
        assert_eq!(
            ask(&set, ("10.0.0.1", src), ("10.0.0.2", Some(dst)), port, tcp).0,
            VerdictKind::Violation,
            "{why}"
        );
    }
}

#[test]
fn a_line_to_an_address_governs_the_source_pods_egress() {
    let set = compiled();
    let influxdb = pod("analytics", "influxdb", &[]);
    let from_influxdb = |dst, port, protocol| {
        ask(
            &set,
            ("10.0.0.2", Some(&influxdb)),
            (dst, None),
            port,
            protocol,
        )
    };
    assert_eq!(
        from_influxdb("203.0.113.50", 443, Protocol::Tcp),
        (VerdictKind::Declared, Some("allow.txt:6".into()))
    );
    assert_eq!(
        from_influxdb("198.51.100.1", 443, Protocol::Tcp).0,
        VerdictKind::Violation
    );
    assert_eq!(
        from_influxdb("2001:db8::1", 8050, Protocol::Udp).0,
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
