//! The daemon's HTTP listener on loopback: health before and after the
//! observers are ready, metrics and graph after a publish, and the audit
//! webhook's guards (bearer token, body cap, per-peer rate limit) in front
//! of the secret reads it hands to the pipeline, attributed to workloads.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use edgewise_edge_set::ServiceGraph;
use edgewise_observer::daemon::config::Settings;
use edgewise_observer::daemon::http::{HttpServer, Shared};
use edgewise_pipeline::{Identities, Pipeline, PipelineConfig, Rules, StatsRecord};
use edgewise_time::UnixNanos;

const SECRET_GET: &str = r#"{"kind": "Event", "apiVersion": "audit.k8s.io/v1",
  "stage": "ResponseComplete", "verb": "get", "auditID": "a-1",
  "user": {"username": "system:serviceaccount:shop:checkout"},
  "objectRef": {"resource": "secrets", "namespace": "shop", "name": "stripe-key"},
  "responseStatus": {"code": 200}}"#;

/// One HTTP/1.1 request; the status code and body.
fn request(address: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .write_all(format!("{head}\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let _ = stream.write_all(body);
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

fn post(address: SocketAddr, token: Option<&str>, body: &str) -> u16 {
    let auth = token.map_or(String::new(), |t| format!("\r\nAuthorization: Bearer {t}"));
    let head = format!(
        "POST /audit HTTP/1.1\r\nContent-Length: {}{auth}",
        body.len()
    );
    request(address, &head, body.as_bytes()).0
}

fn start(tag: &str) -> (HttpServer, Arc<Shared>, std::path::PathBuf) {
    let token = std::env::temp_dir().join(format!("edgewise-token-{tag}-{}", std::process::id()));
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let (server, shared) = serve(&Settings {
        audit_token_file: Some(token.clone()),
        ..Settings::default()
    });
    (server, shared, token)
}

/// The listener with `settings` on a free loopback port.
fn serve(settings: &Settings) -> (HttpServer, Arc<Shared>) {
    let shared = Arc::new(Shared::new(settings).unwrap());
    let server = HttpServer::start(
        "127.0.0.1:0".parse().unwrap(),
        settings,
        Arc::clone(&shared),
    )
    .unwrap();
    (server, shared)
}

#[test]
fn health_metrics_and_graph() {
    let (server, shared, token) = start("health");
    let address = server.address();
    assert_eq!(request(address, "GET /healthz HTTP/1.1", b"").0, 503);
    shared.set_ready();
    assert_eq!(
        request(address, "GET /healthz HTTP/1.1", b""),
        (200, "ok\n".to_owned())
    );

    let mut stats = StatsRecord::default();
    stats.events.insert("syn", 7);
    stats.edges_by_verdict.insert("violation", 2);
    stats.lost_events = 3;
    stats.events_lost.insert("ring_full", 3);
    stats.events_lost.insert("parse_limit", 1);
    shared.publish(ServiceGraph::new(), &stats);
    let (code, metrics) = request(address, "GET /metrics HTTP/1.1", b"");
    assert_eq!(code, 200);
    for line in [
        "edgewise_events_total{kind=\"syn\"} 7",
        "edgewise_edges_seen_total{verdict=\"violation\"} 2",
        "edgewise_lost_events_total 3",
        "edgewise_events_lost_total{cause=\"ring_full\"} 3",
        "edgewise_events_lost_total{cause=\"parse_limit\"} 1",
        "# EOF",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    let (code, graph) = request(address, "GET /graph HTTP/1.1", b"");
    assert_eq!(code, 200);
    let graph: serde_json::Value = serde_json::from_str(&graph).unwrap();
    assert_eq!(graph["schema"], "edgewise.graph/v1", "{graph}");
    assert_eq!(request(address, "GET /nope HTTP/1.1", b"").0, 404);
    std::fs::remove_file(token).unwrap();
}

#[test]
fn the_audit_webhook_guards_its_door_and_hands_secret_reads_on() {
    let (server, shared, token) = start("audit");
    let address = server.address();
    assert_eq!(post(address, None, SECRET_GET), 401, "no token");
    assert_eq!(
        post(address, Some("s3cret-tokeN"), SECRET_GET),
        401,
        "wrong token"
    );
    assert_eq!(post(address, Some("s3cret"), SECRET_GET), 401, "a prefix");
    assert!(
        shared.take_audits().is_empty(),
        "nothing unauthorised got in"
    );

    // The API server retries: the same batch twice.
    assert_eq!(post(address, Some("s3cret-token"), SECRET_GET), 200);
    assert_eq!(post(address, Some("s3cret-token"), SECRET_GET), 200);
    let head =
        "POST /audit HTTP/1.1\r\nAuthorization: Bearer s3cret-token\r\nContent-Length: 9000000";
    assert_eq!(
        request(address, head, b"{}").0,
        413,
        "an announced body over the cap"
    );

    let batches = shared.take_audits();
    assert_eq!(batches.len(), 2);
    let objects =
        std::env::temp_dir().join(format!("edgewise-audit-objects-{}", std::process::id()));
    std::fs::write(
        &objects,
        r#"{"kind": "Pod", "metadata": {"name": "checkout-0", "namespace": "shop", "uid": "2",
            "ownerReferences": [{"kind": "StatefulSet", "name": "checkout", "controller": true}]},
            "spec": {"serviceAccountName": "checkout"},
            "status": {"phase": "Running", "podIP": "10.0.0.2"}}"#,
    )
    .unwrap();
    let index = edgewise_observer::resolve::load_index(std::slice::from_ref(&objects)).unwrap();
    let mut pipeline = Pipeline::new(
        PipelineConfig::default(),
        Identities::Index(Box::new(index)),
        edgewise_edge_set::DeclaredPolicies::default().compile(),
        Rules::default(),
        UnixNanos::ZERO,
    );
    let mut batches = batches.into_iter();
    let reads = pipeline.secret_reads(batches.next().unwrap(), UnixNanos::from_nanos(1));
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].secret, "shop/stripe-key");
    assert_eq!(reads[0].service_account.as_deref(), Some("shop/checkout"));
    assert_eq!(reads[0].workloads, ["shop/StatefulSet/checkout"]);
    assert!(
        pipeline
            .secret_reads(batches.next().unwrap(), UnixNanos::from_nanos(2))
            .is_empty(),
        "the retried batch is a repeat"
    );
    assert_eq!(
        pipeline
            .stats(UnixNanos::from_nanos(3))
            .secret_reads
            .repeats
            .get("api"),
        Some(&1)
    );

    // The rest of the burst, then the bucket is empty.
    let codes: Vec<u16> = (0..30)
        .map(|_| post(address, Some("s3cret-token"), "{}"))
        .collect();
    assert!(codes.contains(&429), "{codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 429), "{codes:?}");
    std::fs::remove_file(objects).unwrap();
    std::fs::remove_file(token).unwrap();
}

/// With `graph_token_file`, `/graph` answers only a token of the file
/// (401 with a bearer challenge otherwise); the probes stay open. With
/// `listen_tls_*`, the listener speaks TLS only.
#[test]
fn the_graph_can_ask_for_a_token_and_the_listener_can_speak_tls() {
    let dir = std::env::temp_dir().join(format!("edgewise-graph-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("graph-tokens");
    std::fs::write(&tokens, "# dashboards\nviewer-token\n").unwrap();
    let (server, shared) = serve(&Settings {
        graph_token_file: Some(tokens),
        ..Settings::default()
    });
    let address = server.address();
    shared.set_ready();
    shared.publish(ServiceGraph::new(), &StatsRecord::default());
    let (code, body) = request(address, "GET /graph HTTP/1.1", b"");
    assert_eq!((code, body.as_str()), (401, "unauthorized\n"));
    let (code, body) = request(
        address,
        "GET /graph HTTP/1.1\r\nAuthorization: Bearer viewer-token",
        b"",
    );
    assert_eq!(code, 200);
    assert!(body.contains("edgewise.graph/v1"), "{body}");
    // The view's data and the records need the token; the page does not
    // (it holds no data, and asks for the token).
    for path in ["/graph/view", "/records"] {
        let (code, _) = request(address, &format!("GET {path} HTTP/1.1"), b"");
        assert_eq!(code, 401, "{path}");
    }
    let (code, body) = request(
        address,
        "GET /graph/view?granularity=namespace HTTP/1.1\r\nAuthorization: Bearer viewer-token",
        b"",
    );
    assert_eq!(code, 200);
    assert!(body.contains("edgewise.view/v1"), "{body}");
    let (code, page) = request(address, "GET /ui HTTP/1.1", b"");
    assert_eq!(code, 200);
    assert!(page.contains("<script src=\"/ui/app.js\""), "{page}");
    assert_eq!(request(address, "GET /healthz HTTP/1.1", b"").0, 200);
    drop(server);

    let pki = edgewise_test_support::pki::Pki::new(&dir.join("pki"));
    let (server, _) = serve(&Settings {
        listen_tls_cert: Some(pki.server.0.clone()),
        listen_tls_key: Some(pki.server.1.clone()),
        ..Settings::default()
    });
    // A plain request gets no HTTP answer from a TLS listener.
    let (code, _) = request(server.address(), "GET /healthz HTTP/1.1", b"");
    assert_eq!(code, 0);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}
