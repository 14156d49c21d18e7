//! The pipeline's decisions, driven through its public state machine:
//! records that wait for their facts, rules judged again when facts
//! change, bans that hold while the client keeps trying, each client's
//! own name.

use std::path::Path;
use std::time::Duration;

mod support;

use edgewise_capture::EventKind;
use edgewise_edge_set::EdgeKey;
use edgewise_ip_index::Protocol;
use edgewise_pipeline::{
    EdgeRecord, FqdnSource, Identities, Output, Pipeline, PipelineConfig, Record, RuleRecord, Rules,
};

use edgewise_time::UnixNanos;
use support::{event, ns, tcp};

const S: u64 = 1_000_000_000;

/// A DNS answer with id `id`: `name` A `ip`, TTL 300.
fn dns_answer(id: u16, name: &str, ip: [u8; 4]) -> Vec<u8> {
    let mut message = id.to_be_bytes().to_vec();
    message.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    for label in name.split('.') {
        message.push(u8::try_from(label.len()).unwrap());
        message.extend_from_slice(label.as_bytes());
    }
    message.extend_from_slice(&[0, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
    message.extend_from_slice(&ip);
    message
}

fn pipeline(rules: &str, config: PipelineConfig) -> Pipeline {
    Pipeline::new(
        config,
        Identities::None,
        edgewise_edge_set::DeclaredPolicies::default().compile(),
        Rules::parse(Path::new("rules.toml"), rules).unwrap(),
        UnixNanos::ZERO,
    )
}

/// Settings that report every edge at once (no settle window).
fn at_once() -> PipelineConfig {
    let mut pipeline_config = PipelineConfig::default();
    pipeline_config.settle = Duration::ZERO;
    pipeline_config
}

/// Everything decided so far; bans are answered as accepted.
fn drain(p: &mut Pipeline) -> Vec<Output> {
    let mut outputs = Vec::new();
    while let Some(output) = p.poll_output() {
        if let Output::Ban { edge, .. } = &output {
            p.ban_applied(*edge, true);
        }
        outputs.push(output);
    }
    outputs
}

fn edges(outputs: &[Output]) -> Vec<&EdgeRecord> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Record(Record::Edge(e)) => Some(e),
            _ => None,
        })
        .collect()
}

fn rule_records(outputs: &[Output]) -> Vec<&RuleRecord> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Record(Record::Rule(r)) => Some(r),
            _ => None,
        })
        .collect()
}

/// A handshake and a first payload from `client` to `server` at `t`.
fn connect(p: &mut Pipeline, client: &str, server: &str, banner: &[u8], seq: u32, t: u64) {
    let (syn, syn_ack) = (tcp(0x02, seq), tcp(0x12, seq + 1));
    p.handle_event(&event(EventKind::Syn, client, server, 6, &syn), ns(t));
    p.handle_event(
        &event(EventKind::SynAck, server, client, 6, &syn_ack),
        ns(t + 1),
    );
    p.handle_event(
        &event(EventKind::Banner, server, client, 6, banner),
        ns(t + 2),
    );
}

#[test]
fn the_first_record_waits_for_the_servers_answer_and_service() {
    let rules = r#"
[[rule]]
name = "ssh"
when = 'service == "ssh"'
action = "log"

[[rule]]
name = "answered"
when = 'ja4ts != ""'
action = "log"
"#;
    let mut p = pipeline(rules, PipelineConfig::default());
    connect(
        &mut p,
        "10.0.0.1:40000",
        "10.0.0.2:22",
        b"SSH-2.0-x\r\n",
        7,
        S,
    );
    let outputs = drain(&mut p);
    let records = edges(&outputs);
    assert_eq!(records.len(), 1, "one record, once settled");
    assert!(records[0].ja4ts.is_some() && !records[0].update);
    assert_eq!(records[0].service.as_deref(), Some("ssh"));
    // Each rule fires once for the edge, however often it is seen again.
    for n in 0..5 {
        connect(
            &mut p,
            "10.0.0.1:40001",
            "10.0.0.2:22",
            b"SSH-2.0-x\r\n",
            100 + n,
            5 * S,
        );
    }
    p.handle_timeout(ns(20 * S));
    let later = drain(&mut p);
    let fired: Vec<&str> = rule_records(&outputs)
        .iter()
        .chain(rule_records(&later).iter())
        .map(|r| r.rule.as_str())
        .collect();
    assert_eq!(
        fired,
        ["answered", "ssh"],
        "at the SYN-ACK, then at the banner"
    );
    assert!(edges(&later).is_empty(), "nothing changed");
}

#[test]
fn a_server_that_never_answers_is_reported_after_the_settle_window() {
    let mut p = pipeline("", PipelineConfig::default());
    let syn = tcp(0x02, 1);
    p.handle_event(
        &event(EventKind::Syn, "10.0.0.1:40000", "10.0.0.9:443", 6, &syn),
        ns(S),
    );
    assert!(edges(&drain(&mut p)).is_empty(), "held");
    assert_eq!(p.poll_timeout(), Some(ns(3 * S)));
    p.handle_timeout(ns(3 * S));
    let outputs = drain(&mut p);
    assert_eq!(edges(&outputs).len(), 1);
    assert!(edges(&outputs)[0].ja4ts.is_none());

    let mut p = pipeline("", at_once());
    p.handle_event(
        &event(EventKind::Syn, "10.0.0.1:40000", "10.0.0.9:443", 6, &syn),
        ns(S),
    );
    assert_eq!(edges(&drain(&mut p)).len(), 1, "settle 0: at once");
}

#[test]
fn each_client_gets_the_name_it_resolved() {
    let rules = r#"
[[rule]]
name = "partner"
when = 'dns.fqdn.matches("partner")'
action = "log"
"#;
    let mut config = PipelineConfig::default();
    config.settle = Duration::ZERO;
    let mut p = pipeline(rules, config);
    let a = dns_answer(1, "api.partner.example", [203, 0, 113, 5]);
    let b = dns_answer(2, "cdn.other.example", [203, 0, 113, 5]);
    p.handle_event(
        &event(
            EventKind::DnsResponse,
            "10.0.0.53:53",
            "10.0.0.1:5000",
            17,
            &a,
        ),
        ns(S),
    );
    p.handle_event(
        &event(
            EventKind::DnsResponse,
            "10.0.0.53:53",
            "10.0.0.2:5000",
            17,
            &b,
        ),
        ns(S),
    );
    let syn = tcp(0x02, 1);
    for (n, client) in ["10.0.0.1:40000", "10.0.0.2:40000", "10.0.0.3:40000"]
        .iter()
        .enumerate()
    {
        let syn = tcp(0x02, u32::try_from(n).unwrap());
        p.handle_event(
            &event(EventKind::Syn, client, "203.0.113.5:443", 6, &syn),
            ns(2 * S),
        );
    }
    let _ = syn;
    let outputs = drain(&mut p);
    let names: Vec<(String, Option<String>, Option<FqdnSource>)> = edges(&outputs)
        .iter()
        .filter(|e| e.dst.port == 443)
        .map(|e| (e.src.ip.to_string(), e.dst.fqdn.clone(), e.dst.fqdn_source))
        .collect();
    assert_eq!(
        names,
        [
            (
                "10.0.0.1".to_owned(),
                Some("api.partner.example".to_owned()),
                Some(FqdnSource::Client)
            ),
            (
                "10.0.0.2".to_owned(),
                Some("cdn.other.example".to_owned()),
                Some(FqdnSource::Client)
            ),
            (
                "10.0.0.3".to_owned(),
                Some("cdn.other.example".to_owned()),
                Some(FqdnSource::OtherClient)
            ),
        ]
    );
    let fired: Vec<String> = rule_records(&outputs)
        .iter()
        .map(|r| r.edge.src.to_string())
        .collect();
    assert_eq!(fired, ["10.0.0.1"], "rules see only the client's own name");
}

#[test]
fn a_name_resolved_after_the_edge_gives_an_update() {
    let mut p = pipeline("", at_once());
    let syn = tcp(0x02, 1);
    p.handle_event(
        &event(EventKind::Syn, "10.0.0.1:40000", "10.0.0.9:5432", 6, &syn),
        ns(S),
    );
    let answer = dns_answer(1, "db.example", [10, 0, 0, 9]);
    p.handle_event(
        &event(
            EventKind::DnsResponse,
            "10.0.0.53:53",
            "10.0.0.1:5000",
            17,
            &answer,
        ),
        ns(2 * S),
    );
    let outputs = drain(&mut p);
    let to_db: Vec<_> = edges(&outputs)
        .into_iter()
        .filter(|e| e.dst.port == 5432)
        .map(|e| (e.update, e.dst.fqdn.clone()))
        .collect();
    assert_eq!(
        to_db,
        [(false, None), (true, Some("db.example".to_owned()))]
    );
    assert_eq!(p.stats(ns(3 * S)).edge_updates, 1);
}

#[test]
fn an_answer_over_tcp_split_across_segments_and_seen_twice_names_the_edge_once() {
    let mut p = pipeline("", at_once());
    let answer = dns_answer(7, "db.example", [10, 0, 0, 9]);
    let mut framed = u16::try_from(answer.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&answer);
    let (first, second) = framed.split_at(10);
    let segment = |data, seq| {
        let mut e = event(
            EventKind::DnsSegment,
            "10.0.0.53:53",
            "10.0.0.1:41000",
            6,
            data,
        );
        e.seq = seq;
        e
    };
    // The server's SYN-ACK (sequence number 999) frames the stream from
    // its first byte, 1000.
    let syn_ack = tcp(0x12, 999);
    p.handle_event(
        &event(
            EventKind::SynAck,
            "10.0.0.53:53",
            "10.0.0.1:41000",
            6,
            &syn_ack,
        ),
        ns(S),
    );
    // The second hook sees the first segment again: its bytes are known.
    for (data, seq) in [(first, 1000), (first, 1000), (second, 1010)] {
        p.handle_event(&segment(data, seq), ns(S));
    }
    let syn = tcp(0x02, 1);
    p.handle_event(
        &event(EventKind::Syn, "10.0.0.1:40000", "10.0.0.9:5432", 6, &syn),
        ns(2 * S),
    );
    let outputs = drain(&mut p);
    let answers: Vec<_> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Record(Record::Dns(dns)) => Some(serde_json::to_value(dns).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["transport"], "tcp");
    let to_db: Vec<_> = edges(&outputs)
        .into_iter()
        .filter(|e| e.dst.port == 5432)
        .map(|e| e.dst.fqdn.clone())
        .collect();
    assert_eq!(to_db, [Some("db.example".to_owned())]);
}

fn ban_rules(ttl: u64) -> String {
    format!(
        r#"
[[rule]]
name = "no-db"
when = "dst_port == 5432"
action = "drop"
ttl_seconds = {ttl}
"#
    )
}

fn db_edge() -> EdgeKey {
    EdgeKey {
        src: "10.0.0.1".parse().unwrap(),
        dst: "10.0.0.9".parse().unwrap(),
        port: 5432,
        protocol: Protocol::Tcp,
    }
}

/// An enforcing pipeline with `rules` that saw 10.0.0.1 connect to the
/// database at 1 s.
fn client_of_the_db(rules: &str) -> Pipeline {
    let mut config = PipelineConfig::default();
    config.enforce = true;
    let mut p = pipeline(rules, config);
    let syn = tcp(0x02, 1);
    p.handle_event(
        &event(EventKind::Syn, "10.0.0.1:40000", "10.0.0.9:5432", 6, &syn),
        ns(S),
    );
    p
}

#[test]
fn a_ban_holds_while_the_client_keeps_trying_and_lifts_a_ttl_after() {
    let mut p = client_of_the_db(&ban_rules(8));
    let outputs = drain(&mut p);
    assert!(
        matches!(outputs[0], Output::Ban { edge, ttl } if edge == db_edge() && ttl == Duration::from_secs(8))
    );
    let rule = rule_records(&outputs);
    assert!(
        rule.len() == 1 && rule[0].enforced,
        "enforced once the kernel took it"
    );

    // Blocked attempts every second for a minute: the ban never lapses.
    for second in 2..62 {
        p.handle_timeout(ns(second * S));
        p.handle_blocked(db_edge(), 3, ns(second * S));
        let outputs = drain(&mut p);
        assert!(
            !outputs.iter().any(|o| matches!(o, Output::Unban { .. })),
            "lifted at {second} s"
        );
        assert!(
            outputs
                .iter()
                .any(|o| matches!(o, Output::Record(Record::Drop(d)) if d.packets == 3))
        );
    }
    assert_eq!(p.stats(ns(62 * S)).packets_dropped_by_rule["no-db"], 180);
    // The attempts stop: lifted once the TTL passed without one.
    p.handle_timeout(ns(68 * S));
    assert!(
        !drain(&mut p)
            .iter()
            .any(|o| matches!(o, Output::Unban { .. }))
    );
    assert_eq!(p.poll_timeout(), Some(ns(69 * S)));
    p.handle_timeout(ns(69 * S));
    let outputs = drain(&mut p);
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Unban { edge } if *edge == db_edge()))
    );
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Record(Record::Unban(u)) if u.reason == "ttl"))
    );
    // A later attempt that reaches the pipeline bans again.
    let syn = tcp(0x02, 99);
    p.handle_event(
        &event(EventKind::Syn, "10.0.0.1:40001", "10.0.0.9:5432", 6, &syn),
        ns(80 * S),
    );
    assert!(
        drain(&mut p)
            .iter()
            .any(|o| matches!(o, Output::Ban { .. }))
    );
}

#[test]
fn a_rule_that_stops_matching_lifts_its_ban() {
    let mut p = client_of_the_db(&ban_rules(300));
    drain(&mut p);
    let rules = Rules::parse(Path::new("rules.toml"), "").unwrap();
    p.replace_rules(rules, ns(2 * S));
    let outputs = drain(&mut p);
    assert!(outputs.iter().any(|o| matches!(o, Output::Unban { .. })));
    assert!(outputs.iter().any(|o| matches!(o, Output::Record(Record::Unban(u)) if u.reason == "no_match" && u.rule.is_none())));

    // The same rule under a new file: nothing changes, nothing is said.
    let mut p = client_of_the_db(&ban_rules(300));
    drain(&mut p);
    p.replace_rules(
        Rules::parse(Path::new("rules.toml"), &ban_rules(300)).unwrap(),
        ns(2 * S),
    );
    assert!(drain(&mut p).is_empty());
}

#[test]
fn an_allow_wins_and_a_refused_ban_is_not_enforced() {
    let rules = format!(
        "{}\n[[rule]]\nname = \"but-this-client\"\nwhen = 'src_ip == \"10.0.0.2\"'\naction = \"allow\"\n",
        ban_rules(30)
    );
    let mut p = pipeline(&rules, {
        let mut pipeline_config = PipelineConfig::default();
        pipeline_config.enforce = true;
        pipeline_config
    });
    let syn = tcp(0x02, 1);
    p.handle_event(
        &event(EventKind::Syn, "10.0.0.1:50000", "10.0.0.9:5432", 6, &syn),
        ns(S),
    );
    p.handle_event(
        &event(EventKind::Syn, "10.0.0.2:50000", "10.0.0.9:5432", 6, &syn),
        ns(S),
    );
    let mut outputs = Vec::new();
    while let Some(output) = p.poll_output() {
        if let Output::Ban { edge, .. } = &output {
            p.ban_applied(*edge, false);
        }
        outputs.push(output);
    }
    let bans: Vec<EdgeKey> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Ban { edge, .. } => Some(*edge),
            _ => None,
        })
        .collect();
    assert_eq!(bans, [db_edge()]);
    let rules: Vec<(String, bool, bool)> = rule_records(&outputs)
        .iter()
        .map(|r| (r.rule.clone(), r.enforced, r.overridden))
        .collect();
    // The banned edge's drop record waited for the kernel's refusal.
    assert_eq!(
        rules,
        [
            ("no-db".to_owned(), false, true),
            ("but-this-client".to_owned(), false, false),
            ("no-db".to_owned(), false, false),
        ]
    );
    assert_eq!(p.stats(ns(2 * S)).bans_failed, 1);
}

#[test]
fn an_adopted_ban_is_lifted_by_its_ttl() {
    let mut p = pipeline("", {
        let mut pipeline_config = PipelineConfig::default();
        pipeline_config.enforce = true;
        pipeline_config
    });
    p.adopt_ban(db_edge(), Duration::from_secs(5), ns(S));
    assert_eq!(p.stats(ns(S)).bans_adopted, 1);
    assert_eq!(p.stats(ns(S)).bans_held, 1);
    p.handle_timeout(ns(5 * S));
    assert!(drain(&mut p).is_empty());
    p.handle_timeout(ns(6 * S));
    assert!(
        drain(&mut p)
            .iter()
            .any(|o| matches!(o, Output::Unban { .. }))
    );
    assert_eq!(p.stats(ns(7 * S)).bans_held, 0);
}

#[test]
fn a_packet_seen_by_two_hooks_or_retransmitted_counts_once() {
    let mut p = pipeline("", PipelineConfig::default());
    let syn = tcp(0x02, 7);
    let answer = dns_answer(0x1234, "db.example", [10, 0, 0, 9]);
    let events = [
        event(EventKind::Syn, "10.0.0.1:50000", "10.0.0.9:5432", 6, &syn),
        event(
            EventKind::DnsResponse,
            "10.0.0.53:53",
            "10.0.0.1:40000",
            17,
            &answer,
        ),
    ];
    let mut dns = 0;
    for at in [1_000, 1_500_000_000, 3_000_000_000] {
        for event in &events {
            p.handle_event(event, ns(at));
        }
        dns += drain(&mut p)
            .iter()
            .filter(|o| matches!(o, Output::Record(Record::Dns(_))))
            .count();
    }
    assert_eq!(dns, 2, "once, then again after the window");
    let stats = p.stats(ns(4 * S));
    assert_eq!(stats.events["syn"], 2);
    assert_eq!(stats.duplicate_events, 2);
    let graph = p.drain(ns(4 * S));
    let to_db = graph.edges.iter().find(|e| e.port == 5432).unwrap();
    assert_eq!(to_db.flows, 2);
}

#[test]
fn flow_samples_and_banners_are_oriented_towards_the_server() {
    let mut p = pipeline("", at_once());
    let syn_ack = tcp(0x12, 1);
    p.handle_event(
        &event(
            EventKind::FlowSample,
            "10.0.0.9:443",
            "10.0.0.1:40000",
            6,
            &[],
        ),
        ns(1),
    );
    p.handle_event(
        &event(
            EventKind::SynAck,
            "10.0.0.7:50500",
            "10.0.0.2:40100",
            6,
            &syn_ack,
        ),
        ns(2),
    );
    p.handle_event(
        &event(
            EventKind::Banner,
            "10.0.0.2:40100",
            "10.0.0.7:50500",
            6,
            b"GET / HTTP/1.1\r\n",
        ),
        ns(3),
    );
    p.handle_event(
        &event(
            EventKind::FlowSample,
            "10.0.0.7:50500",
            "10.0.0.2:40100",
            6,
            &[],
        ),
        ns(4),
    );
    let outputs = drain(&mut p);
    let seen: Vec<(String, String)> = edges(&outputs)
        .iter()
        .filter(|e| !e.update)
        .map(|e| {
            (
                format!("{}:{}", e.src.ip, e.src.port),
                format!("{}:{}", e.dst.ip, e.dst.port),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("10.0.0.1:40000".to_owned(), "10.0.0.9:443".to_owned()),
            ("10.0.0.2:40100".to_owned(), "10.0.0.7:50500".to_owned()),
        ]
    );
}

#[test]
fn behaviour_and_networks_reach_the_rules() {
    let rules = r#"
[[rule]]
name = "scan"
when = "flow.unique_dst_ports > 20 && flow.dst_port_entropy > 4.0"
action = "log"

[[rule]]
name = "pod to outside"
when = "net.src_pod && net.dst_external"
action = "log"
"#;
    let mut config = PipelineConfig::default();
    config.settle = Duration::ZERO;
    config.pod_cidrs = vec!["10.42.0.0/16".parse().unwrap()];
    let mut p = pipeline(rules, config);
    for port in 1000..1030u16 {
        let syn = tcp(0x02, u32::from(port));
        let server = format!("10.42.0.9:{port}");
        p.handle_event(
            &event(EventKind::Syn, "10.42.0.66:40000", &server, 6, &syn),
            ns(S + u64::from(port)),
        );
    }
    let syn = tcp(0x02, 1);
    p.handle_event(
        &event(
            EventKind::Syn,
            "10.42.0.5:40000",
            "198.51.100.7:443",
            6,
            &syn,
        ),
        ns(2 * S),
    );
    let outputs = drain(&mut p);
    let fired: Vec<(String, u16)> = rule_records(&outputs)
        .iter()
        .map(|r| (r.rule.clone(), r.edge.port))
        .collect();
    assert_eq!(
        fired.iter().filter(|(r, _)| r == "scan").count(),
        10,
        "the 21st to the 30th port: {fired:?}"
    );
    assert!(fired.contains(&("pod to outside".to_owned(), 443)));
}

/// A fact that flaps (a server's JA4TS under SYN cookies) gives at most
/// one update a second per edge, and the last one carries the latest facts.
#[test]
fn a_flapping_fact_gives_one_update_a_second_with_the_latest_facts() {
    let mut p = pipeline("", at_once());
    let syn = tcp(0x02, 1);
    p.handle_event(
        &event(EventKind::Syn, "10.0.0.1:40000", "10.0.0.2:80", 6, &syn),
        ns(S),
    );
    for n in 0..100u32 {
        let mut syn_ack = tcp(0x12, 1000 + n);
        // Two windows, alternately: two JA4TS values.
        syn_ack[14..16]
            .copy_from_slice(&(if n % 2 == 0 { 65_000u16 } else { 29_200 }).to_be_bytes());
        let at = S + u64::from(n) * 5_000_000; // within half a second
        p.handle_event(
            &event(
                EventKind::SynAck,
                "10.0.0.2:80",
                "10.0.0.1:40000",
                6,
                &syn_ack,
            ),
            ns(at),
        );
    }
    let during = drain(&mut p);
    let updates = edges(&during).iter().filter(|e| e.update).count();
    assert_eq!(updates, 0, "none within the second after the first record");
    p.handle_timeout(ns(2 * S));
    let after = drain(&mut p);
    let last = edges(&after);
    assert_eq!(last.len(), 1, "one update at the interval");
    assert!(last[0].update);
    assert!(
        last[0]
            .ja4ts
            .as_deref()
            .is_some_and(|f| f.starts_with("29200")),
        "{:?}",
        last[0].ja4ts
    );
}

/// A drop rule added by a reload bans the edges it matches at once, and
/// its record says the kernel took the ban.
#[test]
fn a_drop_rule_added_by_a_reload_bans_at_once() {
    let mut p = client_of_the_db("");
    drain(&mut p);
    p.replace_rules(
        Rules::parse(Path::new("rules.toml"), &ban_rules(60)).unwrap(),
        ns(2 * S),
    );
    let outputs = drain(&mut p);
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Ban { edge, .. } if *edge == db_edge()))
    );
    let rules = rule_records(&outputs);
    assert!(rules.len() == 1 && rules[0].enforced, "{rules:?}");
}
