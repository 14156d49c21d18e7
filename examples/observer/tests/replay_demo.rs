//! `edgewise replay` on the bundled demo (`demo/cluster/`: real traffic
//! between namespaces posing as pods, recorded by `scenario.sh generate`):
//! every edge with its identities, names and verdict, the rules' records,
//! the DNS records, the counters, the graph files and the summary table.
//! Then the settings' paths: an explicit file without objects, a config
//! file, and inputs that must stop it with a clear message.

mod common;

use std::collections::BTreeSet;

use common::{EdgeSeen, edges_of, edgewise, records};
use edgewise_test_support::ScratchDir;

fn scratch(name: &str) -> ScratchDir {
    ScratchDir::new(&format!("replay-{name}"))
}

fn demo(file: &str) -> String {
    format!("{}/../../demo/cluster/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn edge(
    src: &str,
    dst: &str,
    port: u16,
    proto: &str,
    verdict: &str,
    fqdn: Option<&str>,
) -> EdgeSeen {
    (
        src.to_owned(),
        dst.to_owned(),
        port,
        proto.to_owned(),
        verdict.to_owned(),
        fqdn.map(str::to_owned),
    )
}

/// The demo's edges, as `scenario.sh traffic` makes them.
fn demo_edges() -> BTreeSet<EdgeSeen> {
    let (frontend, checkout, postgres) = (
        "shop/frontend-7d9f8c6b5-x0",
        "shop/checkout-7d9f8c6b5-x1",
        "shop/postgres-0",
    );
    let (telegraf, influxdb, dns) = (
        "analytics/telegraf-n3",
        "analytics/influxdb-0",
        "kube-system/coredns-7d9f8c6b5-x5",
    );
    let checkout_name = Some("checkout.shop.svc.cluster.local");
    let postgres_name = Some("postgres.shop.svc.cluster.local");
    [
        edge(frontend, dns, 53, "udp", "declared", None),
        edge(checkout, dns, 53, "udp", "declared", None),
        edge(telegraf, dns, 53, "udp", "declared", None),
        edge(frontend, checkout, 8080, "tcp", "declared", checkout_name),
        edge(frontend, checkout, 2222, "tcp", "declared", checkout_name),
        edge(checkout, postgres, 5432, "tcp", "declared", postgres_name),
        edge(
            telegraf,
            influxdb,
            8086,
            "tcp",
            "declared",
            Some("influxdb.analytics.svc.cluster.local"),
        ),
        edge(frontend, postgres, 5432, "tcp", "violation", postgres_name),
        edge(
            frontend,
            "api.partner.example",
            443,
            "tcp",
            "not_governed",
            Some("api.partner.example"),
        ),
    ]
    .into_iter()
    .collect()
}

#[test]
fn the_bundled_demo_gives_every_edge_with_identities_names_verdicts_and_rules() {
    let dir = scratch("demo");
    let (stdout, stderr, ok) = edgewise(&["replay", "--graph-out", dir.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(edges_of(&stdout), demo_edges());

    let violation = records(&stdout, "edge")
        .find(|e| e["verdict"] == "violation")
        .unwrap();
    assert_eq!(violation["policy"], "shop/postgres-ingress");
    assert_eq!(
        violation["service"], "postgresql",
        "from the client's first bytes"
    );
    assert!(violation["ja4t"].as_str().unwrap().starts_with("64240_"));
    assert_eq!(
        violation["summary"],
        "shop/frontend-7d9f8c6b5-x0 connects to shop/postgres-0:5432 (10.42.1.12)"
    );
    assert_eq!(
        violation["src"]["identity"]["workload"]["kind"],
        "Deployment"
    );

    let rules: BTreeSet<(String, String, bool, String, u64)> = records(&stdout, "rule")
        .map(|r| {
            (
                r["rule"].as_str().unwrap().to_owned(),
                r["action"].as_str().unwrap().to_owned(),
                r["enforced"].as_bool().unwrap(),
                r["edge"]["dst"].as_str().unwrap().to_owned(),
                r["edge"]["port"].as_u64().unwrap(),
            )
        })
        .collect();
    let rule = |name: &str, action: &str, dst: &str, port| {
        (
            name.to_owned(),
            action.to_owned(),
            false,
            dst.to_owned(),
            port,
        )
    };
    assert_eq!(
        rules,
        [
            rule("undeclared-database-access", "drop", "10.42.1.12", 5432),
            rule("partner-egress", "log", "203.0.113.7", 443),
            rule("monitoring-exception", "allow", "10.42.1.53", 53),
            rule("monitoring-exception", "allow", "10.42.1.159", 8086),
        ]
        .into_iter()
        .collect(),
        "a replay enforces nothing"
    );

    let questions: BTreeSet<String> = records(&stdout, "dns")
        .map(|d| d["question"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(questions.len(), 4, "{questions:?}");
    assert!(questions.contains("api.partner.example"));

    let stats = records(&stdout, "stats").last().expect("a last stats line");
    assert_eq!(stats["edges_seen"], 9);
    assert_eq!(stats["edges_by_verdict"]["violation"], 1);
    assert_eq!(stats["dns_responses"], 5);
    assert_eq!(stats["bans_requested"], 1);
    assert_eq!(stats["parse_errors"], serde_json::json!({}));

    assert!(
        stderr.contains("edges     9 (declared 7, not_governed 1, violation 1)"),
        "{stderr}"
    );
    let dot = std::fs::read_to_string(dir.join("graph.dot")).unwrap();
    assert!(dot.contains(
        "\"shop/Deployment/frontend\" -> \"shop/StatefulSet/postgres\" [label=\"5432/tcp\\n1 flow\\nviolation\""
    ), "{dot}");
    assert!(dir.join("graph-workload.json").exists());
    // The demo's graph file (what `edgewise ui --graph` opens) is this
    // replay's, byte for byte.
    assert_eq!(
        std::fs::read_to_string(dir.join("graph.json")).unwrap(),
        std::fs::read_to_string(demo("graph.json")).unwrap(),
        "demo/cluster/graph.json is stale: copy the replay's --graph-out graph.json over it"
    );
}

#[test]
fn a_capture_alone_gives_addresses_and_names_and_a_config_file_sets_the_output() {
    let dir = scratch("config");
    let output = dir.join("lines.jsonl");
    let config = dir.join("edgewise.toml");
    std::fs::write(
        &config,
        format!(
            "output = {:?}\nstats_interval_seconds = 0\n",
            output.to_str().unwrap()
        ),
    )
    .unwrap();
    let (stdout, stderr, ok) = edgewise(&[
        "replay",
        &demo("capture.pcap"),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.is_empty(), "the lines went to the file");
    let lines = std::fs::read_to_string(&output).unwrap();
    let edges = edges_of(&lines);
    assert_eq!(edges.len(), 9);
    assert!(
        edges.iter().all(|e| e.4 == "not_governed"),
        "no policies: nothing governs"
    );
    assert!(edges.contains(&edge(
        "10.42.1.10",
        "postgres.shop.svc.cluster.local",
        5432,
        "tcp",
        "not_governed",
        Some("postgres.shop.svc.cluster.local")
    )));
    assert_eq!(records(&lines, "rule").count(), 0);
}

#[test]
fn inputs_that_cannot_be_used_stop_it_with_the_place_named() {
    let dir = scratch("errors");
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"typo\"\nwhen = 'dst_prot == 22'\naction = \"drop\"\n",
    )
    .unwrap();
    let (_, stderr, ok) = edgewise(&["replay", "--rules", rules.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("rule \"typo\": at column 1: unknown variable \"dst_prot\""),
        "{stderr}"
    );

    let (_, stderr, ok) = edgewise(&["replay", "--observe-mode", "ebpf"]);
    assert!(!ok);
    assert!(stderr.contains("unknown attach mode \"ebpf\""), "{stderr}");

    // A setting only a live run uses is refused, not ignored.
    let (_, stderr, ok) = edgewise(&["replay", "--observe-interfaces", "eth0"]);
    assert!(!ok);
    assert!(
        stderr.contains("setting observe_interfaces: only edgewise run uses it"),
        "{stderr}"
    );
    let (_, stderr, ok) = edgewise(&["replay", "--pace", "0"]);
    assert!(!ok);
    assert!(stderr.contains("setting pace: must be above 0"), "{stderr}");

    let not_pcap = dir.join("not.pcap");
    std::fs::write(&not_pcap, "hello").unwrap();
    let (_, stderr, ok) = edgewise(&["replay", not_pcap.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("not.pcap"), "{stderr}");

    let (_, stderr, ok) = edgewise(&["replay", "--objects", "/nonexistent.json"]);
    assert!(!ok);
    assert!(stderr.contains("/nonexistent.json"), "{stderr}");
}

#[test]
fn identities_from_the_identity_clients_mmdb_give_the_same_edges() {
    let dir = scratch("mmdb");
    let mmdb = dir.join("identity.mmdb");
    let (_, stderr, ok) = edgewise(&[
        "identity",
        "build",
        "--objects",
        &demo("objects.json"),
        "--out",
        mmdb.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let (stdout, stderr, ok) = edgewise(&[
        "replay",
        &demo("capture.pcap"),
        "--identity-mmdb",
        mmdb.to_str().unwrap(),
        "--policies",
        &demo("policies.json"),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(edges_of(&stdout), demo_edges());
}

/// Identities and policies both from `edgewise identity serve` (follow
/// mode): the same edges and verdicts as from the files.
#[test]
fn identities_from_the_identity_stream_give_the_same_edges() {
    use std::io::BufRead;
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_edgewise"))
        .args(["identity", "serve", "--objects", &demo("objects.json")])
        .args(["--policies", &demo("policies.json")])
        .args(["--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let (stdout, stderr, ok) =
        edgewise(&["replay", &demo("capture.pcap"), "--identity-stream", &url]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(ok, "{stderr}");
    assert_eq!(edges_of(&stdout), demo_edges(), "{stderr}");
}

/// Facts that come after the SYN (the server's JA4TS, the service of the
/// first payload) are on the edge's record, and rules on them fire once
/// per matching edge.
#[test]
fn records_carry_the_facts_that_come_after_the_syn_and_rules_on_them_fire_once() {
    let dir = scratch("facts");
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        r#"
[[rule]]
name = "ssh"
when = 'service == "ssh"'
action = "log"

[[rule]]
name = "answered"
when = 'ja4ts != ""'
action = "log"

[[rule]]
name = "partner"
when = 'dns.fqdn.matches("partner")'
action = "log"
"#,
    )
    .unwrap();
    let (stdout, stderr, ok) = edgewise(&["replay", "--rules", rules.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let tcp: Vec<serde_json::Value> = records(&stdout, "edge")
        .filter(|e| e["proto"] == "tcp" && e["update"] == false)
        .collect();
    assert_eq!(tcp.len(), 6, "{stdout}");
    for edge in &tcp {
        assert!(edge["ja4ts"].is_string(), "every server answered: {edge}");
        assert!(edge["service"].is_string(), "every server spoke: {edge}");
    }
    let fired = |name: &str| {
        records(&stdout, "rule")
            .filter(|r| r["rule"] == name && r["matched"] == true)
            .map(|r| r["summary"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(fired("ssh").len(), 1, "{:?}", fired("ssh"));
    assert_eq!(fired("answered").len(), 6);
    assert_eq!(fired("partner").len(), 1);
    assert!(fired("partner")[0].contains("api.partner.example"));
    let stopped = records(&stdout, "rule")
        .filter(|r| r["matched"] == false)
        .count();
    assert_eq!(stopped, 0, "no fact went away");
}

/// A rule that fails at run time is counted for its rule and named in the
/// end summary.
#[test]
fn a_rule_failing_at_run_time_is_counted_and_shown_by_name() {
    let dir = scratch("rule-errors");
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"team\"\nwhen = 'src_label[\"team\"] == \"x\"'\naction = \"log\"\n",
    )
    .unwrap();
    let (stdout, stderr, ok) = edgewise(&["replay", "--rules", rules.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let stats = records(&stdout, "stats").last().unwrap();
    assert!(
        stats["rule_errors_by_rule"]["team"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert!(stderr.contains("rule errs team "), "{stderr}");
}

/// Debian's copy of nmap's service database, or a skip with the reason.
fn service_probes() -> Option<&'static str> {
    let path = edgewise_observer::services::DEBIAN_SERVICE_PROBES;
    if std::path::Path::new(path).is_file() {
        return Some(path);
    }
    common::skip(&format!("{path} is absent (apt-get install nmap)"));
    None
}

#[test]
fn nmaps_database_puts_product_and_version_in_records_rules_and_the_graph() {
    let Some(probes) = service_probes() else {
        return;
    };
    let dir = scratch("probes");
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"openssh\"\nwhen = 'service_product == \"OpenSSH\" && service_version == \"9.6\"'\naction = \"log\"\n",
    )
    .unwrap();
    let (stdout, stderr, ok) = edgewise(&[
        "replay",
        "--service-probes",
        probes,
        "--rules",
        rules.to_str().unwrap(),
        "--graph-out",
        dir.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let ssh: Vec<serde_json::Value> = records(&stdout, "edge")
        .filter(|e| e["dst"]["port"] == 2222)
        .collect();
    assert!(!ssh.is_empty(), "{stdout}");
    for edge in &ssh {
        assert_eq!(edge["service"], "ssh", "{edge}");
        assert_eq!(edge["service_product"], "OpenSSH", "{edge}");
        assert_eq!(edge["service_version"], "9.6", "{edge}");
    }
    let fired: Vec<serde_json::Value> = records(&stdout, "rule")
        .filter(|r| r["rule"] == "openssh" && r["matched"] == true)
        .collect();
    assert_eq!(fired.len(), 1, "{stdout}");
    let graph: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("graph.json")).unwrap()).unwrap();
    let services: Vec<&serde_json::Value> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["services"].as_array().unwrap())
        .filter(|s| s["port"] == 2222)
        .collect();
    assert_eq!(services.len(), 1, "{graph}");
    assert_eq!(services[0]["product"], "OpenSSH");
    assert_eq!(services[0]["version"], "9.6");
    let stats = records(&stdout, "stats").last().unwrap();
    assert!(
        stats["service_matches"]["hard"].as_u64() >= Some(1),
        "{stats}"
    );

    // A database that is not one stops it with the file named.
    let bad = dir.join("bad-probes");
    std::fs::write(&bad, "nothing here\n").unwrap();
    let (_, stderr, ok) = edgewise(&["replay", "--service-probes", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("bad-probes"), "{stderr}");
}
