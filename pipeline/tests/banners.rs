//! What first bytes tell the pipeline, through its public state machine:
//! nmap-style service identification (a banner, and an answer paired with
//! the client's request), the per-server cache, TLS hellos across
//! segments, and the rule variables they fill. The service database here
//! is a few lines written for the test in nmap's format.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod support;

use edgewise_capture::{Event, EventKind};
use edgewise_edge_set::ServiceSeen;
use edgewise_ip_index::Protocol;
use edgewise_pipeline::{
    EdgeRecord, Identities, Output, Pipeline, PipelineConfig, Record, RuleRecord, Rules,
};
use edgewise_service_probes::Database;
use edgewise_time::UnixNanos;

const PROBES: &str = r"
Probe TCP NULL q||
totalwaitms 6000
match ssh m|^SSH-([\d.]+)-OpenSSH_([\w._-]+)[ \r\n]| p/OpenSSH/ v/$2/ i/protocol $1/
softmatch ftp m|^220 |

Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|
ports 80,8080
match http m|^HTTP/1\.[01] \d\d\d .*\r\nServer: nginx/([\d.]+)\r\n|s p/nginx/ v/$1/
";

/// A ClientHello for `example.com` offering `h2` (the fuzz seed the
/// repository keeps, one record of 239 bytes).
const CLIENT_HELLO: &[u8] = include_bytes!("../../fuzz/corpus/tls_hello/seed-client-one-record");
const SERVER_HELLO: &[u8] = include_bytes!("../../fuzz/corpus/tls_hello/seed-server-one-record");

const RULES: &str = r#"
[[rule]]
name = "old-ssh"
when = 'service_product == "OpenSSH" && service_version.startsWith("8.")'
action = "log"

[[rule]]
name = "example-over-tls"
when = 'tls.sni == "example.com" && tls.alpn == "h2" && ja4.startsWith("t13d")'
action = "log"
"#;

fn pipeline(database: bool) -> Pipeline {
    let mut p = Pipeline::new(
        {
            let mut pipeline_config = PipelineConfig::default();
            pipeline_config.settle = Duration::ZERO;
            pipeline_config
        },
        Identities::None,
        edgewise_edge_set::DeclaredPolicies::default().compile(),
        Rules::parse(Path::new("rules.toml"), RULES).unwrap(),
        UnixNanos::ZERO,
    );
    if database {
        p.set_service_probes(Arc::new(Database::parse(PROBES.as_bytes()).unwrap()));
    }
    p
}

fn banner<'a>(src: &str, dst: &str, seq: u32, data: &'a [u8]) -> Event<'a> {
    Event {
        seq,
        ..support::event(EventKind::Banner, src, dst, 6, data)
    }
}

/// Everything decided, after the time for updates has passed (an edge's
/// changed facts wait a second after its last record).
fn outputs(p: &mut Pipeline) -> Vec<Output> {
    let mut all: Vec<Output> = std::iter::from_fn(|| p.poll_output()).collect();
    p.handle_timeout(support::ns(60 * S));
    all.extend(std::iter::from_fn(|| p.poll_output()));
    all
}

fn last_edge(outputs: &[Output]) -> &EdgeRecord {
    outputs
        .iter()
        .rev()
        .find_map(|o| match o {
            Output::Record(Record::Edge(e)) => Some(e),
            _ => None,
        })
        .expect("an edge record")
}

fn matched_rules(outputs: &[Output]) -> Vec<&RuleRecord> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Record(Record::Rule(r)) if r.matched => Some(r),
            _ => None,
        })
        .collect()
}

const S: u64 = 1_000_000_000;

#[test]
fn a_banner_names_product_and_version_in_records_rules_and_the_graph() {
    let mut p = pipeline(true);
    let (server, client) = ("10.0.0.2:22", "10.0.0.1:40000");
    p.handle_event(
        &banner(server, client, 1, b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n"),
        support::ns(S),
    );
    let out = outputs(&mut p);
    let edge = last_edge(&out);
    assert_eq!(edge.service.as_deref(), Some("ssh"));
    assert_eq!(edge.service_product.as_deref(), Some("OpenSSH"));
    assert_eq!(edge.service_version.as_deref(), Some("8.9p1"));
    let json = serde_json::to_value(edge).unwrap();
    assert_eq!(json["service_product"], "OpenSSH");
    assert_eq!(
        matched_rules(&out)
            .iter()
            .map(|r| r.rule.as_str())
            .collect::<Vec<_>>(),
        ["old-ssh"]
    );
    let slice = p.drain(support::ns(2 * S));
    let node = slice
        .nodes
        .iter()
        .find(|n| n.endpoint.ip.to_string() == "10.0.0.2")
        .unwrap();
    assert_eq!(
        node.services,
        [ServiceSeen {
            product: Some("OpenSSH".into()),
            version: Some("8.9p1".into()),
            ..ServiceSeen::named(22, Protocol::Tcp, "ssh")
        }]
    );
}

#[test]
fn an_answer_is_matched_against_the_probe_the_request_has_the_shape_of() {
    let mut p = pipeline(true);
    let (server, client) = ("10.0.0.3:8080", "10.0.0.1:40001");
    p.handle_event(
        &banner(
            client,
            server,
            1,
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        support::ns(S),
    );
    p.handle_event(
        &banner(
            server,
            client,
            1,
            b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\n\r\n",
        ),
        support::ns(S + 1),
    );
    let out = outputs(&mut p);
    let edge = last_edge(&out);
    assert_eq!(edge.service.as_deref(), Some("http"));
    assert_eq!(edge.service_product.as_deref(), Some("nginx"));
    assert_eq!(edge.service_version.as_deref(), Some("1.24.0"));

    // Without the database: the name from the bytes' prefix only.
    let mut plain = pipeline(false);
    plain.handle_event(
        &banner(
            server,
            client,
            1,
            b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\n\r\n",
        ),
        support::ns(S),
    );
    let out = outputs(&mut plain);
    let edge = last_edge(&out);
    assert_eq!(edge.service.as_deref(), Some("http"));
    assert_eq!(edge.service_product, None);
}

#[test]
fn a_server_with_a_hard_match_is_not_matched_again_and_one_without_stops_being_tried() {
    let mut p = pipeline(true);
    for i in 0..5u16 {
        let client = format!("10.0.0.1:{}", 41_000 + i);
        p.handle_event(
            &banner("10.0.0.2:22", &client, 1, b"SSH-2.0-OpenSSH_9.6p1\r\n"),
            support::ns(S),
        );
        p.handle_event(
            &banner("10.0.0.4:7000", &client, 1, b"\x00\x01 nothing known\r\n"),
            support::ns(S),
        );
    }
    let stats = p.stats(support::ns(2 * S));
    assert_eq!(stats.service_matches.get("hard"), Some(&1));
    assert_eq!(stats.service_matches.get("none"), Some(&3));
    // A softmatch names the service and is tried again.
    p.handle_event(
        &banner("10.0.0.5:21", "10.0.0.1:42000", 1, b"220 welcome\r\n"),
        support::ns(S),
    );
    let out = outputs(&mut p);
    let edge = last_edge(&out);
    assert_eq!(edge.service.as_deref(), Some("ftp"));
    assert_eq!(edge.service_product, None);
}

#[test]
fn a_client_hello_across_two_segments_gives_sni_alpn_and_ja4_and_the_server_hello_ja4s() {
    let mut p = pipeline(true);
    let (client, server) = ("10.0.0.1:43000", "10.0.0.6:443");
    let start = u32::MAX - 50; // the sequence numbers wrap between the parts
    p.handle_event(
        &banner(client, server, start, &CLIENT_HELLO[..100]),
        support::ns(S),
    );
    assert!(
        std::iter::from_fn(|| p.poll_output())
            .all(|o| !matches!(o, Output::Record(Record::Edge(e)) if e.ja4.is_some())),
        "nothing before the hello is whole"
    );
    p.handle_event(
        &banner(
            client,
            server,
            start.wrapping_add(100),
            &CLIENT_HELLO[100..],
        ),
        support::ns(S + 1),
    );
    p.handle_event(&banner(server, client, 7, SERVER_HELLO), support::ns(S + 2));
    let out = outputs(&mut p);
    let edge = last_edge(&out);
    assert_eq!(
        edge.ja4.as_deref(),
        Some("t13d1516h2_8daaf6152771_e5627efa2ab1")
    );
    let tls = edge.tls.as_ref().unwrap();
    assert_eq!(
        (tls.sni.as_deref(), tls.alpn.as_deref()),
        (Some("example.com"), Some("h2"))
    );
    assert!(
        edge.ja4s.as_deref().unwrap().starts_with("t1203h2_c030_"),
        "{edge:?}"
    );
    assert_eq!(edge.service.as_deref(), Some("tls"));
    assert_eq!(
        matched_rules(&out)
            .iter()
            .map(|r| r.rule.as_str())
            .collect::<Vec<_>>(),
        ["example-over-tls"]
    );
    let slice = p.drain(support::ns(3 * S));
    let fingerprints = |ip: &str| {
        let node = slice
            .nodes
            .iter()
            .find(|n| n.endpoint.ip.to_string() == ip)
            .unwrap();
        (
            node.tls_client_fingerprints.clone(),
            node.tls_server_fingerprints.clone(),
        )
    };
    assert_eq!(
        fingerprints("10.0.0.1").0,
        ["t13d1516h2_8daaf6152771_e5627efa2ab1"]
    );
    // No DNS answer named the server: the graph names it by the SNI.
    let edge = slice
        .edges
        .iter()
        .find(|e| e.dst.ip.to_string() == "10.0.0.6")
        .unwrap();
    assert_eq!(edge.dst.fqdn.as_deref(), Some("example.com"));
    assert_eq!(fingerprints("10.0.0.6").1.len(), 1);
}

#[test]
fn a_hello_that_is_not_one_is_counted_by_reason() {
    let mut p = pipeline(false);
    let mut broken = CLIENT_HELLO.to_vec();
    broken[9..11].copy_from_slice(&[0xff, 0xff]); // the version, then a random cut short
    broken.truncate(60);
    broken[3..5].copy_from_slice(&55u16.to_be_bytes());
    p.handle_event(
        &banner("10.0.0.1:44000", "10.0.0.7:443", 1, &broken),
        support::ns(S),
    );
    let stats = p.stats(support::ns(S));
    assert_eq!(
        stats.tls_errors.values().sum::<u64>(),
        1,
        "{:?}",
        stats.tls_errors
    );
}
