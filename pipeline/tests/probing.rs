//! The active prober's limits, decided by the pipeline: servers outside
//! the probe networks are never handed out, sessions start at most at the
//! configured rate, a server is probed at most once a day, never while a
//! ban holds on it, and not once its first bytes identified it; what a
//! session finds reaches records and the graph marked active.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

mod support;

use edgewise_capture::EventKind;
use edgewise_edge_set::ServiceSource;
use edgewise_pipeline::{
    Identities, Output, Pipeline, PipelineConfig, ProbeConfig, ProbeFinding, Record, Rules,
};

use edgewise_time::UnixNanos;
use support::{event, ns, tcp};

const S: u64 = 1_000_000_000;

fn pipeline(rate: f64, rules: &str) -> Pipeline {
    let mut config = PipelineConfig::default();
    config.settle = Duration::ZERO;
    config.enforce = true;
    config.probe = Some(ProbeConfig::new(vec!["10.1.0.0/16".parse().unwrap()], rate));
    Pipeline::new(
        config,
        Identities::None,
        edgewise_edge_set::DeclaredPolicies::default().compile(),
        Rules::parse(Path::new("rules.toml"), rules).unwrap(),
        UnixNanos::ZERO,
    )
}

/// A flow sample of a connection from a client to `server`.
fn sample(p: &mut Pipeline, server: &str, now: u64) {
    p.handle_event(
        &event(EventKind::FlowSample, "10.9.0.1:40000", server, 6, &[]),
        ns(now),
    );
}

/// The servers handed out for probing by `now`, and everything else.
fn probes(p: &mut Pipeline, now: u64) -> (Vec<SocketAddr>, Vec<Output>) {
    p.handle_timeout(ns(now));
    let mut probed = Vec::new();
    let mut other = Vec::new();
    while let Some(output) = p.poll_output() {
        match output {
            Output::Probe { server } => probed.push(server),
            Output::Ban { edge, .. } => {
                p.ban_applied(edge, true);
                other.push(output);
            }
            output => other.push(output),
        }
    }
    (probed, other)
}

#[test]
fn only_servers_inside_the_probe_networks_are_probed_and_each_once_a_day() {
    let mut p = pipeline(100.0, "");
    sample(&mut p, "10.1.0.5:7000", S);
    sample(&mut p, "192.0.2.9:7000", S);
    sample(&mut p, "10.2.0.5:7000", S);
    sample(&mut p, "10.1.0.5:7000", S + 1);
    // Not before its first bytes had time to name it.
    assert!(probes(&mut p, 2 * S).0.is_empty());
    assert_eq!(p.poll_timeout(), Some(ns(3 * S)));
    let (probed, _) = probes(&mut p, 3 * S);
    assert_eq!(probed, ["10.1.0.5:7000".parse::<SocketAddr>().unwrap()]);
    // Seen again within the day: not again; after it: again.
    sample(&mut p, "10.1.0.5:7000", 3600 * S);
    assert!(probes(&mut p, 3603 * S).0.is_empty());
    sample(&mut p, "10.1.0.5:7000", 86_404 * S);
    assert_eq!(probes(&mut p, 86_406 * S).0.len(), 1);
    let stats = p.stats(ns(86_407 * S));
    assert_eq!(stats.probes.get("outside"), Some(&2), "{:?}", stats.probes);
    assert_eq!(stats.probes.get("started"), Some(&2));
}

#[test]
fn sessions_start_at_most_at_the_rate() {
    let mut p = pipeline(2.0, "");
    for i in 0..50u16 {
        sample(&mut p, &format!("10.1.0.{}:{}", 1 + i / 10, 7000 + i), S);
    }
    // Polled every 10 ms for twelve seconds: none in the first two (the
    // wait for first bytes), then 2 a second over ten seconds.
    let mut handed = Vec::new();
    for step in 0..1200u64 {
        let now = S + step * 10_000_000;
        let (probed, _) = probes(&mut p, now);
        handed.extend(probed.into_iter().map(|server| (now, server)));
    }
    assert_eq!(handed.len(), 20, "{handed:?}");
    for pair in handed.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= S / 2, "{pair:?}");
    }
    assert!(p.poll_timeout().is_some(), "the rest still wait");
}

#[test]
fn a_banned_server_and_an_identified_one_are_not_probed() {
    let rules = r#"
[[rule]]
name = "cut"
when = 'dst_port == 9000'
action = "drop"
"#;
    let mut p = pipeline(100.0, rules);
    let syn = tcp(0x02, 1);
    p.handle_event(
        &event(EventKind::Syn, "10.9.0.1:40000", "10.1.0.7:9000", 6, &syn),
        ns(S),
    );
    let (_, outputs) = probes(&mut p, S);
    assert!(
        outputs.iter().any(|o| matches!(o, Output::Ban { .. })),
        "{outputs:?}"
    );
    sample(&mut p, "10.1.0.7:9000", 2 * S);
    // An identified server: its banner named it before its probe was due.
    sample(&mut p, "10.1.0.8:2222", 2 * S);
    let banner = b"SSH-2.0-OpenSSH_9.6\r\n";
    p.handle_event(
        &event(
            EventKind::Banner,
            "10.1.0.8:2222",
            "10.9.0.1:40001",
            6,
            banner,
        ),
        ns(2 * S),
    );
    let (probed, _) = probes(&mut p, 4 * S);
    // The prefix names ssh, but only a database's hard match identifies.
    assert_eq!(probed, ["10.1.0.8:2222".parse::<SocketAddr>().unwrap()]);
    let stats = p.stats(ns(4 * S));
    assert_eq!(stats.probes.get("banned"), Some(&1), "{:?}", stats.probes);
}

#[test]
fn a_finding_reaches_records_and_the_graph_marked_active() {
    let mut p = pipeline(100.0, "");
    let server: SocketAddr = "10.1.0.9:6000".parse().unwrap();
    sample(&mut p, "10.1.0.9:6000", S);
    assert_eq!(probes(&mut p, 3 * S).0, [server]);
    p.probe_result(
        server,
        Some(ProbeFinding {
            service: "redis".into(),
            product: Some("Redis key-value store".into()),
            version: Some("7.0.15".into()),
            soft: false,
        }),
        ns(3 * S),
    );
    let (_, outputs) = probes(&mut p, 10 * S);
    let edge = outputs
        .iter()
        .rev()
        .find_map(|o| match o {
            Output::Record(Record::Edge(e)) => Some(e),
            _ => None,
        })
        .expect("an edge record");
    assert_eq!(edge.service.as_deref(), Some("redis"));
    assert_eq!(
        edge.service_product.as_deref(),
        Some("Redis key-value store")
    );
    let slice = p.drain(ns(11 * S));
    let node = slice
        .nodes
        .iter()
        .find(|n| n.endpoint.ip == server.ip())
        .unwrap();
    assert_eq!(node.services[0].source, ServiceSource::Active);
    let json = serde_json::to_value(&node.services[0]).unwrap();
    assert_eq!(json["source"], "active");
    // Nothing found: counted, nothing learnt.
    p.probe_result("10.1.0.10:6001".parse().unwrap(), None, ns(12 * S));
    assert_eq!(p.stats(ns(12 * S)).probes.get("no_match"), Some(&1));
}
