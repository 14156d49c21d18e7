//! The identity and policy server over TLS with bearer tokens, against
//! followers that do everything right and ones that do not: the right CA
//! and token follow both channels; a wrong token gets 401 and nothing
//! else; a server certificate from another CA, or one that expired, is
//! refused by the follower and counted by the server; a client
//! certificate is asked for when the server has a client CA; a rewritten
//! certificate is served and a broken rewrite keeps the old one; and a
//! follower that stops reading is cut and the server's memory is not its
//! buffer.

#![cfg(feature = "http")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgewise_identity::http::{
    FollowConfig, FollowEvent, IdentityServer, ServerConfig, StreamClient, TlsFiles, Transport,
    follow,
};
use edgewise_identity::{
    IdentityClient, IdentityDelta, PolicyBaseline, PolicyClient, PolicyDocument, PolicyProducer,
    Producer, Upsert, Version,
};
use edgewise_ip_index::{ClusterObject, ObjectKind};
use edgewise_test_support::pki::Pki;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgewise-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pod(n: u32) -> ClusterObject {
    ClusterObject::new(ObjectKind::Pod, Some("shop"), &format!("web-{n}"))
}

fn delta(seq: u64, n: u32) -> IdentityDelta {
    IdentityDelta {
        epoch: 5,
        seq,
        upserts: vec![Upsert {
            ip: "10.1.0.1".parse().unwrap(),
            identity: pod(n),
        }],
        removes: Vec::new(),
    }
}

fn server(pki: &Pki, cert: &(PathBuf, PathBuf), tokens: &Path, client_ca: bool) -> IdentityServer {
    IdentityServer::bind(
        "127.0.0.1:0",
        &Producer::new(5).baseline(),
        PolicyProducer::new(5).baseline(),
        {
            let mut server_config = ServerConfig::default();
            server_config.heartbeat = Duration::from_millis(50);
            server_config.tls = Some(TlsFiles {
                cert: cert.0.clone(),
                key: cert.1.clone(),
                client_ca: client_ca.then(|| pki.ca.clone()),
            });
            server_config.tokens = Some(tokens.to_owned());
            server_config
        },
    )
    .unwrap()
}

/// Follows `config` on a thread; the events, and a stop flag.
fn start<C: StreamClient + Send + 'static>(
    mut client: C,
    config: FollowConfig,
) -> (Arc<Mutex<Vec<FollowEvent>>>, Arc<AtomicBool>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let transport = Transport::new(&config).unwrap();
    let (seen, stopping) = (Arc::clone(&events), Arc::clone(&stop));
    std::thread::spawn(move || {
        follow(&mut client, &config, &transport, &stopping, |_, event| {
            seen.lock().unwrap().push(event.clone());
        });
    });
    (events, stop)
}

fn wait(events: &Mutex<Vec<FollowEvent>>, what: &str, found: impl Fn(&FollowEvent) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if events.lock().unwrap().iter().any(&found) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no {what}: {:?}", events.lock().unwrap());
}

fn config(server: &IdentityServer, ca: &Path, token: &Path) -> FollowConfig {
    {
        let mut follow_config =
            FollowConfig::new(format!("https://127.0.0.1:{}", server.local_addr().port()));
        follow_config.ca = Some(ca.to_owned());
        follow_config.token_file = Some(token.to_owned());
        follow_config.initial_backoff = Duration::from_millis(20);
        follow_config.max_backoff = Duration::from_millis(200);
        follow_config
    }
}

#[test]
fn the_right_ca_and_token_follow_both_channels_and_others_are_refused() {
    let dir = scratch("stream-security");
    let pki = Pki::new(&dir);
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "# agents\nagent-token\n").unwrap();
    let right = dir.join("right");
    std::fs::write(&right, "agent-token\n").unwrap();
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, "guess\n").unwrap();
    let server = server(&pki, &pki.server, &tokens, false);

    // Identities and policies, over TLS with the token.
    let identities = IdentityClient::default();
    let reader = identities.reader();
    let (events, stop) = start(identities, config(&server, &pki.ca, &right));
    let policy_client = PolicyClient::default();
    let (policy_events, policy_stop) = start(policy_client, config(&server, &pki.ca, &right));
    wait(&events, "baseline", |e| {
        matches!(e, FollowEvent::BaselineLoaded(_))
    });
    wait(&policy_events, "policy baseline", |e| {
        matches!(e, FollowEvent::BaselineLoaded(_))
    });
    server.publish(&delta(1, 1));
    let mut producer = PolicyProducer::new(5);
    let policy = producer
        .update([PolicyDocument {
            key: "AllowList/ops".into(),
            body: "shop/web -> shop/db 5432\n".into(),
        }])
        .unwrap();
    server.publish_policies(&policy, producer.baseline());
    wait(&events, "the delta", |e| {
        *e == FollowEvent::Applied(Version { epoch: 5, seq: 1 })
    });
    wait(&policy_events, "the policy delta", |e| {
        *e == FollowEvent::Applied(Version { epoch: 5, seq: 1 })
    });
    let snapshot = reader.snapshot();
    let found = snapshot.lookup("10.1.0.1".parse().unwrap()).unwrap();
    assert_eq!(found.name, "web-1");
    drop(snapshot);

    // A wrong token: 401 and nothing else, for the follower and for a raw
    // request.
    let (refused, refused_stop) =
        start(IdentityClient::default(), config(&server, &pki.ca, &wrong));
    wait(
        &refused,
        "a 401",
        |e| matches!(e, FollowEvent::Disconnected(why) if why.contains("401")),
    );
    assert!(
        !refused.lock().unwrap().iter().any(|e| matches!(
            e,
            FollowEvent::BaselineLoaded(_) | FollowEvent::Connected { .. }
        )),
        "nothing but the refusal"
    );

    // The wrong CA: the follower refuses the server, which counts it.
    let (untrusting, untrusting_stop) = start(
        IdentityClient::default(),
        config(&server, &pki.other_ca, &right),
    );
    wait(
        &untrusting,
        "a refused certificate",
        |e| matches!(e, FollowEvent::Disconnected(why) if why.to_lowercase().contains("certificate")),
    );
    let metrics = server.metrics_text();
    let failures = metric(&server, "edgewise_stream_http_tls_handshake_failures_total");
    assert!(failures >= 1, "{metrics}");
    assert!(
        metrics.contains("edgewise_stream_unauthorized_total"),
        "{metrics}"
    );

    // An expired certificate: refused by the follower.
    let expired = self::server(&pki, &pki.expired, &tokens, false);
    let (late, late_stop) = start(IdentityClient::default(), config(&expired, &pki.ca, &right));
    wait(
        &late,
        "a refused expired certificate",
        |e| matches!(e, FollowEvent::Disconnected(why) if why.to_lowercase().contains("expired")),
    );

    for stop in [stop, policy_stop, refused_stop, untrusting_stop, late_stop] {
        stop.store(true, Ordering::Relaxed);
    }
    drop((server, expired));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_client_certificate_is_asked_for_when_the_server_has_a_client_ca() {
    let dir = scratch("stream-mtls");
    let pki = Pki::new(&dir);
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "agent-token\n").unwrap();
    let server = server(&pki, &pki.server, &tokens, true);
    let without = config(&server, &pki.ca, &tokens);
    let (refused, stop_refused) = start(IdentityClient::default(), without.clone());
    wait(&refused, "a refused handshake", |e| {
        matches!(e, FollowEvent::Disconnected(_))
    });
    let mut with = without;
    with.client_cert = Some(pki.client.clone());
    let (events, stop) = start(IdentityClient::default(), with);
    wait(&events, "a baseline", |e| {
        matches!(e, FollowEvent::BaselineLoaded(_))
    });
    stop.store(true, Ordering::Relaxed);
    stop_refused.store(true, Ordering::Relaxed);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_follower_that_stops_reading_is_cut_while_the_others_keep_up() {
    let server = IdentityServer::bind(
        "127.0.0.1:0",
        &Producer::new(5).baseline(),
        PolicyBaseline::default(),
        {
            let mut server_config = ServerConfig::default();
            server_config.heartbeat = Duration::from_millis(50);
            server_config.write_timeout = Duration::from_secs(1);
            server_config.max_lag = 64;
            server_config
        },
    )
    .unwrap();
    // The deaf follower: asks for the stream and never reads.
    let mut deaf = TcpStream::connect(server.local_addr()).unwrap();
    deaf.write_all(b"GET /identities/deltas HTTP/1.1\r\nHost: e\r\n\r\n")
        .unwrap();
    let reader_client = IdentityClient::default();
    let reader = reader_client.reader();
    let (events, stop) = start(reader_client, {
        let mut follow_config = FollowConfig::new(format!("http://{}", server.local_addr()));
        follow_config.initial_backoff = Duration::from_millis(20);
        follow_config
    });
    wait(&events, "a baseline", |e| {
        matches!(e, FollowEvent::BaselineLoaded(_))
    });
    // Big deltas, far more than socket buffers hold.
    let big = "x".repeat(64 * 1024);
    for seq in 1..=400u64 {
        let mut d = delta(seq, u32::try_from(seq).unwrap());
        d.upserts[0].identity.name = format!("{big}{seq}");
        server.publish(&d);
        if seq % 50 == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while reader.snapshot().version() != Some(Version { epoch: 5, seq: 400 }) {
        assert!(Instant::now() < deadline, "the reading follower kept up");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The deaf one is cut: its connection ends once nothing was taken for
    // the write timeout.
    deaf.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut sink = vec![0; 1 << 20];
    let cut_by = Instant::now() + Duration::from_secs(20);
    loop {
        match deaf.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(Instant::now() < cut_by, "the deaf follower was never cut"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.followers() > 1 {
        assert!(
            Instant::now() < deadline,
            "{} followers",
            server.followers()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
}

fn metric(server: &IdentityServer, name: &str) -> u64 {
    server
        .metrics_text()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_rewritten_certificate_is_served_and_a_broken_rewrite_keeps_the_old_one() {
    let dir = scratch("stream-reload");
    let pki = Pki::new(&dir.join("first"));
    let next = Pki::new(&dir.join("next"));
    let cert = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::copy(&pki.server.0, &cert.0).unwrap();
    std::fs::copy(&pki.server.1, &cert.1).unwrap();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "agent-token\n").unwrap();
    let server = server(&pki, &cert, &tokens, false);
    let (first, stop_first) = start(IdentityClient::default(), config(&server, &pki.ca, &tokens));
    wait(&first, "a baseline", |e| {
        matches!(e, FollowEvent::BaselineLoaded(_))
    });

    // A broken rewrite (half a file): the old certificate stays.
    std::fs::write(&cert.0, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&server, "edgewise_stream_http_tls_reload_errors_total") == 0 {
        assert!(Instant::now() < deadline, "{}", server.metrics_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (still, stop_still) = start(IdentityClient::default(), config(&server, &pki.ca, &tokens));
    wait(&still, "a baseline with the old certificate", |e| {
        matches!(e, FollowEvent::BaselineLoaded(_))
    });

    // A rotation to a certificate of another CA: new connections get it.
    std::fs::copy(&next.server.1, &cert.1).unwrap();
    std::fs::copy(&next.server.0, &cert.0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&server, "edgewise_stream_http_tls_reloads_total") == 0 {
        assert!(Instant::now() < deadline, "{}", server.metrics_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (rotated, stop_rotated) = start(
        IdentityClient::default(),
        config(&server, &next.ca, &tokens),
    );
    wait(&rotated, "a baseline with the new certificate", |e| {
        matches!(e, FollowEvent::BaselineLoaded(_))
    });
    for stop in [stop_first, stop_still, stop_rotated] {
        stop.store(true, Ordering::Relaxed);
    }
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}
