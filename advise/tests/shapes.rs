//! Smaller shapes than the week: sources by `service-identity`, Services
//! and nodes as destinations, a stable name's addresses, settings out of
//! range.

use std::collections::BTreeMap;
use std::path::Path;

use edgewise_advise::policies::{generate, yaml};
use edgewise_advise::{
    AdviseError, Granularity, Observation, Prefixes, Settings, Target, Tier, analyze,
};
use edgewise_ip_index::Protocol;

const DAY: i64 = 86_400_000;
const MONDAY: i64 = 1_793_577_600_000;

fn seen(namespace: &str, identity: &str, target: Target, ip: &str, port: u16) -> Observation {
    Observation {
        day: MONDAY,
        namespace: namespace.to_owned(),
        service_identity: identity.to_owned(),
        target,
        ip: ip.parse().unwrap(),
        labels: BTreeMap::new(),
        port,
        protocol: Protocol::Tcp,
        flows: 1,
        first_seen_ms: MONDAY + 1,
        last_seen_ms: MONDAY + 2,
    }
}

fn shop() -> Vec<Observation> {
    let db = Target::Service {
        namespace: "data".into(),
        name: "postgres".into(),
    };
    let node = Target::Node {
        name: "node-1".into(),
    };
    let api = Target::Name {
        name: "api.partner.example".into(),
    };
    let mut all = vec![
        seen("shop", "web", db.clone(), "10.96.0.20", 5432),
        seen("shop", "web", api.clone(), "192.0.2.10", 443),
        seen("shop", "web", api, "192.0.2.11", 443),
        seen("shop", "", node, "172.18.0.2", 10250),
        seen(
            "shop",
            "web",
            Target::Workload {
                namespace: "shop".into(),
                workload_kind: "Deployment".into(),
                name: "cart".into(),
            },
            "10.42.0.9",
            8080,
        ),
    ];
    // The same again a week later: a horizon of 8 days.
    let later: Vec<Observation> = all
        .iter()
        .map(|o| Observation {
            day: o.day + 7 * DAY,
            first_seen_ms: o.first_seen_ms + 7 * DAY,
            last_seen_ms: o.last_seen_ms + 7 * DAY,
            ..o.clone()
        })
        .collect();
    all.extend(later);
    all
}

#[test]
fn sources_split_by_service_identity_and_get_selectors_of_their_own() {
    let mut settings = Settings::default();
    settings.granularity = Granularity::ServiceIdentity;
    let report = analyze(&shop(), &settings, &Prefixes::default()).unwrap();
    let names: Vec<String> = report.groups.iter().map(|g| g.source.to_string()).collect();
    assert_eq!(names, ["shop", "shop+web"]);
    assert!(report.baseline.is_empty(), "nothing two sources share");
    let web = &report.groups[1];
    assert_eq!(
        web.fan_out.destinations, 2,
        "its own namespace is not egress"
    );
    assert_eq!((web.fan_out.services, web.fan_out.external), (1, 1));
    assert_eq!(web.horizon_days, 8);
    assert_eq!(web.confidence.level, "high");
    let stable = web
        .destinations
        .iter()
        .find(|d| matches!(d.target, Target::Name { .. }))
        .unwrap();
    assert!(!stable.rotates, "both addresses from the first day");
    let blocks: Vec<String> = web.blocks.iter().map(|b| b.cidr.to_string()).collect();
    assert_eq!(
        blocks,
        ["192.0.2.10/31"],
        "a stable name's two neighbours: nothing unseen"
    );
    let policies = generate(&report, &[Tier::A, Tier::B, Tier::C], 60);
    let nps = yaml(&policies.network_policies);
    assert!(nps.contains("name: edgewise-egress-web"), "{nps}");
    assert!(nps.contains("service-identity: web"));
    assert!(nps.contains("operator: DoesNotExist"));
    assert!(nps.contains("cidr: 192.0.2.10/31") && nps.contains("cidr: 172.18.0.2/32"));
    let calico = yaml(&policies.calico);
    assert!(
        calico.contains("selector: \"!has(service-identity)\"")
            || calico.contains("selector: '!has(service-identity)'"),
        "{calico}"
    );
    assert!(
        policies
            .notes
            .iter()
            .any(|n| n.contains("Service data/postgres")),
        "{:?}",
        policies.notes
    );
    let rules = edgewise_pipeline::Rules::parse(Path::new("r.toml"), &policies.rules_drop).unwrap();
    assert_eq!(rules.rules().len(), 2);
    assert!(
        policies.rules_drop.contains(
            r#""service-identity" in src_label && src_label["service-identity"] == "web""#
        )
    );
    assert!(
        policies
            .rules_drop
            .contains(r#"!("service-identity" in src_label)"#)
    );
    assert!(policies.rules_drop.contains("ttl_seconds = 60"));
}

#[test]
fn settings_out_of_range_are_refused_by_name() {
    /// A setting put out of range, and the name the error gives.
    type Change = (fn(&mut Settings), &'static str);
    let changes: [Change; 5] = [
        (|s| s.baseline_share = 1.5, "baseline_share = 1.5"),
        (|s| s.baseline_share = 0.0, "baseline_share = 0"),
        (|s| s.cidr_widest_v4 = 33, "cidr_widest_v4"),
        (|s| s.min_days = 0, "min_days"),
        (|s| s.broad_min_external = 3, "broad_min_external"),
    ];
    for (change, expected) in changes {
        let mut settings = Settings::default();
        change(&mut settings);
        let error = analyze(&shop(), &settings, &Prefixes::default()).unwrap_err();
        assert!(matches!(error, AdviseError::Settings(_)));
        assert!(error.to_string().contains(expected), "{error}");
    }
    assert!(matches!(
        analyze(&[], &Settings::default(), &Prefixes::default()),
        Err(AdviseError::Empty)
    ));
    assert_eq!(Tier::parse_list("b, pilot,B").unwrap(), [Tier::A, Tier::B]);
}

#[test]
fn identities_that_clean_up_alike_get_policies_of_their_own_names() {
    let mut settings = Settings::default();
    settings.granularity = Granularity::ServiceIdentity;
    let dns = Target::Workload {
        namespace: "kube-system".into(),
        workload_kind: "Deployment".into(),
        name: "coredns".into(),
    };
    let mut all = Vec::new();
    for identity in ["a.b", "a-b"] {
        let mut o = seen("shop", identity, dns.clone(), "10.42.0.10", 53);
        o.protocol = Protocol::Udp;
        all.push(o);
    }
    let report = analyze(&all, &settings, &Prefixes::default()).unwrap();
    let policies = generate(&report, &[Tier::A], 300);
    let names: Vec<&str> = policies
        .network_policies
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["edgewise-egress-a-b", "edgewise-egress-a-b-2"]);
    // DNS seen over UDP is allowed over TCP too.
    let ports = &policies.network_policies[0]["spec"]["egress"][1]["ports"];
    assert_eq!(
        ports,
        &serde_json::json!([{"port": 53, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}])
    );
}

#[test]
fn odd_names_stand_as_addresses_and_clocks_far_apart_are_refused() {
    assert_eq!(
        Target::of_name("API.Example.COM."),
        Some(Target::Name {
            name: "api.example.com".into()
        })
    );
    for odd in ["", "a b.example", "a..b", "x\"y.example", &"a".repeat(64)] {
        assert_eq!(Target::of_name(odd), None, "{odd:?}");
    }
    let mut old = seen(
        "shop",
        "",
        Target::Node { name: "n".into() },
        "172.18.0.2",
        22,
    );
    old.day = 0;
    let error = analyze(
        &[
            old,
            seen(
                "shop",
                "",
                Target::Node { name: "n".into() },
                "172.18.0.2",
                22,
            ),
        ],
        &Settings::default(),
        &Prefixes::default(),
    )
    .unwrap_err();
    assert!(matches!(error, AdviseError::Span { .. }), "{error}");
    assert!(
        error.to_string().contains("1970-01-01 to 2026-11-02"),
        "{error}"
    );
}

#[test]
fn a_namespace_that_only_talks_to_itself_is_a_pilot_watched_from_its_first_day() {
    let cart = Target::Workload {
        namespace: "quiet".into(),
        workload_kind: "Deployment".into(),
        name: "cart".into(),
    };
    let first = seen("quiet", "", cart, "10.42.0.9", 8080);
    let later = Observation {
        day: first.day + 7 * DAY,
        first_seen_ms: first.first_seen_ms + 7 * DAY,
        last_seen_ms: first.last_seen_ms + 7 * DAY,
        ..first.clone()
    };
    let report = analyze(&[first, later], &Settings::default(), &Prefixes::default()).unwrap();
    let quiet = &report.groups[0];
    assert_eq!(quiet.fan_out.destinations, 0);
    assert_eq!((quiet.tier, quiet.horizon_days), (Tier::A, 8));
    assert_eq!(quiet.confidence.level, "high", "{:?}", quiet.confidence);
    let policies = generate(&report, &[Tier::A], 300);
    assert_eq!(
        policies.network_policies[0]["spec"]["egress"],
        serde_json::json!([{"to": [{"podSelector": {}}]}])
    );
}
