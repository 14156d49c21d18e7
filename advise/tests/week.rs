//! The advice on a week of a synthetic cluster (`edgewise_advise::testing`):
//! tiers, baseline, confidence, rotating names, and policies that parse
//! and hold the same week's flows.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use edgewise_advise::policies::{Policies, generate, yaml};
use edgewise_advise::{
    Observation, Prefixes, Report, Settings, Target, Tier, analyze, observation::from_graph,
    testing::week,
};
use edgewise_pipeline::Rules;
use edgewise_pipeline::rules::{DnsInput, IdentityInput, K8sInput, RuleInput};
use serde::Deserialize;

/// The week's files, generated once for every test.
fn files() -> &'static [(String, Vec<u8>)] {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(week)
}

fn days(n: usize) -> Vec<Observation> {
    files()
        .iter()
        .filter(|(name, _)| name.starts_with("day-"))
        .take(n)
        .flat_map(|(name, bytes)| from_graph(name, bytes).unwrap())
        .collect()
}

fn prefixes() -> Prefixes {
    let (_, bytes) = files()
        .iter()
        .find(|(name, _)| name == "prefixes.json")
        .unwrap();
    Prefixes::from_json("prefixes.json", bytes).unwrap()
}

fn report(n: usize, prefixes: &Prefixes) -> Report {
    analyze(&days(n), &Settings::default(), prefixes).unwrap()
}

fn group<'a>(report: &'a Report, namespace: &str) -> &'a edgewise_advise::Group {
    report
        .groups
        .iter()
        .find(|g| g.source.namespace == namespace)
        .unwrap_or_else(|| panic!("{namespace} is a source"))
}

#[test]
fn namespaces_fall_into_their_tiers_around_the_dns_baseline() {
    let report = report(8, &Prefixes::default());
    assert_eq!(report.days.len(), 8);
    assert_eq!(report.groups.len(), 33);
    let baseline: Vec<String> = report
        .baseline
        .iter()
        .map(|b| b.target.to_string())
        .collect();
    assert_eq!(baseline, ["kube-system/Deployment/coredns"]);
    assert_eq!(report.baseline[0].used_by, 33);
    let tiers: BTreeMap<&str, Tier> = report
        .groups
        .iter()
        .map(|g| (g.source.namespace.as_str(), g.tier))
        .collect();
    assert_eq!(tiers["pilot"], Tier::A);
    for team in 1..=24 {
        assert_eq!(
            tiers[format!("team-{team:02}").as_str()],
            Tier::B,
            "team-{team:02}"
        );
    }
    for moderate in ["analytics", "ingest", "search"] {
        assert_eq!(tiers[moderate], Tier::C, "{moderate}");
        assert_eq!(
            group(&report, moderate).fan_out.external,
            4,
            "four names, 12 addresses"
        );
    }
    assert_eq!(tiers["torrent"], Tier::D);
    assert!(group(&report, "torrent").fan_out.external >= 130);
    let pilot = group(&report, "pilot");
    assert_eq!(pilot.fan_out.destinations, 2);
    assert!(
        pilot.tier_reason.contains("at most 2"),
        "{}",
        pilot.tier_reason
    );
}

#[test]
fn confidence_is_low_before_a_week_and_where_something_new_came_late() {
    let early = report(6, &Prefixes::default());
    assert!(early.groups.iter().all(|g| g.confidence.level == "low"));
    assert!(
        group(&early, "pilot").confidence.reasons[0].contains("observed for 6 days"),
        "{:?}",
        group(&early, "pilot").confidence
    );
    let week = report(8, &Prefixes::default());
    let low: Vec<&str> = week
        .groups
        .iter()
        .filter(|g| g.confidence.level == "low")
        .map(|g| g.source.namespace.as_str())
        .collect();
    assert_eq!(low, ["billing", "torrent"]);
    let billing = group(&week, "billing");
    assert_eq!(
        edgewise_advise::render::date(billing.last_new_day),
        "2026-11-07"
    );
    assert!(billing.confidence.reasons[0].contains("sftp.bank.example"));
    let day = week
        .days
        .iter()
        .position(|&d| d == billing.last_new_day)
        .unwrap();
    assert_eq!(
        billing.new_per_day[day], 1,
        "the CronJob's destination, on day 6"
    );
}

#[test]
fn a_rotating_cdn_is_allowed_by_name_never_by_its_addresses() {
    let without = report(8, &Prefixes::default());
    let media = group(&without, "media");
    assert!(
        media
            .destinations
            .iter()
            .filter(|d| d.target.is_external())
            .all(|d| d.rotates)
    );
    assert_eq!(
        media.names_only,
        ["assets.cdn.example.net", "img.cdn.example.net"]
    );
    assert!(media.blocks.is_empty(), "{:?}", media.blocks);
    let policies = generate(&without, &[Tier::B], 300);
    let text = yaml(&policies.network_policies);
    assert!(
        !text.contains("203.0.113."),
        "no single CDN address in any NetworkPolicy"
    );
    assert!(
        policies
            .notes
            .iter()
            .any(|n| n.contains("assets.cdn.example.net rotates"))
    );
    let cilium = yaml(&policies.cilium);
    assert!(
        cilium.contains("matchPattern: \"*.cdn.example.net\""),
        "{cilium}"
    );
    assert!(!cilium.contains("203.0.113."));
    assert!(yaml(&policies.calico).contains("\"*.cdn.example.net\""));
    assert!(
        policies
            .rules_drop
            .contains(r#"dns.fqdn.endsWith(".cdn.example.net")"#)
    );

    // With the CDN's published range, the NetworkPolicy gets the range,
    // and the report says how much of it was never seen.
    let with = report(8, &prefixes());
    let block = &group(&with, "media").blocks[0];
    assert_eq!(block.cidr.to_string(), "203.0.113.0/24");
    assert_eq!((block.seen, block.covers), (16, 256.0));
    assert!((block.unseen_share - 0.9375).abs() < 1e-9);
    let markdown = edgewise_advise::render::markdown(&with);
    assert!(
        markdown.contains("| 203.0.113.0/24 | range example-cdn | 16 | 256 | 93.8% | 443/tcp |")
    );
}

#[test]
fn tier_d_never_gets_a_list() {
    let report = report(8, &Prefixes::default());
    let policies = generate(&report, &[Tier::A, Tier::B, Tier::C, Tier::D], 300);
    assert!(!policies.sources.contains(&"torrent".to_owned()));
    assert!(
        policies
            .notes
            .iter()
            .any(|n| n.starts_with("torrent: tier D"))
    );
    assert_eq!(policies.network_policies.len(), 32);
}

/// The fields of a CiliumNetworkPolicy the generator writes, as the CRD
/// (cilium.io/v2) names and types them.
#[expect(
    dead_code,
    reason = "fields are there to be type-checked by deserializing"
)]
mod cilium {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(super) struct Spec {
        pub(super) endpoint_selector: super::Selector,
        pub(super) egress: Vec<Egress>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[expect(clippy::struct_field_names, reason = "the CRD's names")]
    pub(super) struct Egress {
        #[serde(default)]
        pub(super) to_endpoints: Vec<super::Selector>,
        #[serde(default, rename = "toFQDNs")]
        pub(super) to_fqdns: Vec<Fqdn>,
        #[serde(default, rename = "toCIDRSet")]
        pub(super) to_cidr_set: Vec<Cidr>,
        #[serde(default)]
        pub(super) to_ports: Vec<PortRule>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(super) struct Fqdn {
        pub(super) match_name: Option<String>,
        pub(super) match_pattern: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Cidr {
        pub(super) cidr: ipnet::IpNet,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct PortRule {
        pub(super) ports: Vec<Port>,
        pub(super) rules: Option<L7>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Port {
        pub(super) port: String,
        pub(super) protocol: Protocol,
    }

    #[derive(Deserialize)]
    pub(super) enum Protocol {
        #[serde(rename = "TCP")]
        Tcp,
        #[serde(rename = "UDP")]
        Udp,
        #[serde(rename = "SCTP")]
        Sctp,
        #[serde(rename = "ANY")]
        Any,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct L7 {
        pub(super) dns: Vec<Fqdn>,
    }
}

/// The fields of a Calico NetworkPolicy (projectcalico.org/v3) the
/// generator writes.
mod calico {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Spec {
        pub(super) selector: String,
        pub(super) types: Vec<String>,
        pub(super) egress: Vec<Rule>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Rule {
        pub(super) action: Action,
        pub(super) protocol: Option<Protocol>,
        pub(super) destination: Entity,
    }

    #[derive(Deserialize)]
    pub(super) enum Action {
        Allow,
        Deny,
        Log,
        Pass,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "UPPERCASE")]
    pub(super) enum Protocol {
        Tcp,
        Udp,
        Sctp,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(super) struct Entity {
        pub(super) selector: Option<String>,
        pub(super) namespace_selector: Option<String>,
        #[serde(default)]
        pub(super) ports: Vec<u16>,
        #[serde(default)]
        pub(super) domains: Vec<String>,
        #[serde(default)]
        pub(super) nets: Vec<ipnet::IpNet>,
    }
}

/// A Kubernetes object of the generator: its header and `spec`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Document<Spec> {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
    namespace: String,
    #[expect(dead_code, reason = "checked for its type only")]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Selector {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    #[serde(default)]
    #[expect(dead_code, reason = "checked for its type only")]
    match_expressions: Vec<serde_json::Value>,
}

fn all_tiers() -> Policies {
    generate(&report(8, &prefixes()), &[Tier::A, Tier::B, Tier::C], 300)
}

#[test]
fn the_generated_yaml_parses_into_its_types() {
    let policies = all_tiers();
    let parsed: Vec<k8s_openapi::api::networking::v1::NetworkPolicy> =
        serde_saphyr::from_multiple(&yaml(&policies.network_policies)).unwrap();
    assert_eq!(parsed.len(), 32);
    let pilot = parsed
        .iter()
        .find(|p| p.metadata.namespace.as_deref() == Some("pilot"))
        .unwrap();
    let spec = pilot.spec.as_ref().unwrap();
    assert_eq!(
        spec.policy_types.as_deref(),
        Some(&["Egress".to_owned()][..])
    );
    let egress = spec.egress.as_ref().unwrap();
    // Its own namespace, DNS, and the API's one address.
    assert_eq!(egress.len(), 3);
    let dns = &egress[1].to.as_ref().unwrap()[0];
    assert_eq!(
        dns.pod_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["k8s-app"],
        "kube-dns"
    );
    let api = &egress[2].to.as_ref().unwrap()[0];
    assert_eq!(api.ip_block.as_ref().unwrap().cidr, "198.51.100.10/32");

    let cilium: Vec<Document<cilium::Spec>> =
        serde_saphyr::from_multiple(&yaml(&policies.cilium)).unwrap();
    assert_eq!(cilium.len(), 32);
    for policy in &cilium {
        assert_eq!(
            (policy.api_version.as_str(), policy.kind.as_str()),
            ("cilium.io/v2", "CiliumNetworkPolicy")
        );
        assert_eq!(policy.metadata.name, "edgewise-egress");
        assert!(policy.spec.endpoint_selector.match_labels.is_empty());
        for rule in &policy.spec.egress {
            for fqdn in &rule.to_fqdns {
                assert!(fqdn.match_name.is_some() != fqdn.match_pattern.is_some());
            }
            for ports in &rule.to_ports {
                for port in &ports.ports {
                    assert!(port.port.parse::<u16>().is_ok());
                    let _ = &port.protocol;
                }
                if let Some(l7) = &ports.rules {
                    assert_eq!(l7.dns[0].match_pattern.as_deref(), Some("*"));
                }
            }
        }
        // Where there are names, Cilium's DNS proxy sees the lookups.
        if policy.spec.egress.iter().any(|r| !r.to_fqdns.is_empty()) {
            assert!(
                policy
                    .spec
                    .egress
                    .iter()
                    .any(|r| r.to_ports.iter().any(|p| p.rules.is_some())),
                "{}",
                policy.metadata.namespace
            );
        }
    }
    let calico: Vec<Document<calico::Spec>> =
        serde_saphyr::from_multiple(&yaml(&policies.calico)).unwrap();
    assert_eq!(calico.len(), 32);
    for policy in &calico {
        assert_eq!(
            (policy.api_version.as_str(), policy.kind.as_str()),
            ("projectcalico.org/v3", "NetworkPolicy")
        );
        assert_eq!(
            (policy.spec.selector.as_str(), &policy.spec.types[..]),
            ("all()", &["Egress".to_owned()][..])
        );
        for rule in &policy.spec.egress {
            assert!(matches!(rule.action, calico::Action::Allow));
            let d = &rule.destination;
            assert!(
                d.ports.is_empty() || rule.protocol.is_some(),
                "ports need a protocol"
            );
            let _ = (&d.selector, &d.namespace_selector, &d.domains, &d.nets);
        }
    }
    let billing = calico
        .iter()
        .find(|p| p.metadata.namespace == "billing")
        .unwrap();
    assert!(
        billing
            .spec
            .egress
            .iter()
            .any(|r| r.destination.domains == ["sftp.bank.example"])
    );
}

fn input(o: &Observation, fqdn: &str) -> RuleInput {
    let (dst_kind, dst_namespace, dst_workload, dst_name) = match &o.target {
        Target::Workload {
            namespace, name, ..
        } => ("Pod", namespace.as_str(), name.as_str(), ""),
        Target::Service { namespace, name } => ("Service", namespace.as_str(), "", name.as_str()),
        _ => ("", "", "", ""),
    };
    RuleInput {
        identity: IdentityInput {
            k8s: K8sInput {
                src_kind: "Pod".into(),
                src_namespace: o.namespace.clone(),
                dst_kind: dst_kind.into(),
                dst_namespace: dst_namespace.into(),
                dst_workload: dst_workload.into(),
                dst_name: dst_name.into(),
                ..K8sInput::default()
            },
        },
        dst_ip: o.ip.to_string(),
        dst_port: i64::from(o.port),
        proto: o.protocol.as_str().to_owned(),
        dns: DnsInput {
            fqdn: fqdn.to_owned(),
        },
        ..RuleInput::default()
    }
}

#[test]
fn the_edgewise_rules_load_and_hold_the_week() {
    let policies = all_tiers();
    for (file, text) in [
        ("rules-log.toml", &policies.rules_log),
        ("rules-drop.toml", &policies.rules_drop),
    ] {
        let rules = Rules::parse(Path::new(file), text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rules.rules().len(), 32, "{file}");
        for o in days(8) {
            let fqdn = match &o.target {
                Target::Name { name } => name.as_str(),
                _ => "",
            };
            let outcome = rules.evaluate(&input(&o, fqdn));
            assert_eq!(outcome.errors().count(), 0, "{o:?}");
            let matched: Vec<&str> = (0..rules.rules().len())
                .filter(|&i| outcome.matched(i))
                .map(|i| rules.rules()[i].name.as_str())
                .collect();
            assert!(matched.is_empty(), "{file}: {o:?} matched {matched:?}");
        }
    }
    // Egress outside a list is what the rule catches.
    let rules = Rules::parse(Path::new("rules-drop.toml"), &policies.rules_drop).unwrap();
    let mut stray = days(1)
        .into_iter()
        .find(|o| o.namespace == "team-01")
        .unwrap();
    stray.target = Target::Address {
        ip: "192.0.2.250".parse().unwrap(),
    };
    stray.ip = "192.0.2.250".parse().unwrap();
    stray.port = 8443;
    let outcome = rules.evaluate(&input(&stray, ""));
    let index = rules
        .rules()
        .iter()
        .position(|r| r.name == "egress-allowlist/team-01")
        .unwrap();
    assert!(outcome.matched(index));
    assert_eq!(outcome.ban(&rules).map(|(i, _)| i), Some(index));
}
