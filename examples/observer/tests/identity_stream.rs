//! The identity stream over loopback HTTP, as deployed: `edgewise identity
//! serve` re-reading an objects file, a node agent's client following it,
//! the producer killed and restarted with a new epoch, and the client
//! resyncing; readers never see a torn state throughout.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edgewise_identity::http::{FollowConfig, Transport, follow};
use edgewise_identity::{IdentityClient, IdentityReader, Version};

/// Two pods whose `generation` label moves together in every write.
fn write_objects(path: &Path, generation: u32) {
    let pod = |name: &str, ip: &str| {
        format!(
            r#"{{"kind": "Pod", "metadata": {{"name": "{name}", "namespace": "ns", "uid": "{name}",
                 "labels": {{"generation": "{generation}"}}}},
               "status": {{"phase": "Running", "podIP": "{ip}",
                 "conditions": [{{"type": "Ready", "status": "True"}}]}}}}"#
        )
    };
    let text = format!(
        r#"{{"kind": "List", "items": [{}, {}]}}"#,
        pod("a", "10.1.0.1"),
        pod("b", "fd00:1::1")
    );
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(partial, path).unwrap();
}

/// A server process, killed when dropped (also when the test fails).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `edgewise identity serve` and returns it with its address.
fn serve(objects: &Path, listen: &str, epoch: u64) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgewise"))
        .args(["identity", "serve", "--objects"])
        .arg(objects)
        .args([
            "--listen",
            listen,
            "--epoch",
            &epoch.to_string(),
            "--interval-ms",
            "20",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (Server(child), address)
}

fn generation(reader: &IdentityReader) -> (Option<Version>, Option<String>, Option<String>) {
    let snapshot = reader.snapshot();
    let label = |ip: &str| {
        snapshot
            .lookup(ip.parse().unwrap())
            .and_then(|o| o.labels.get("generation").cloned())
    };
    (snapshot.version(), label("10.1.0.1"), label("fd00:1::1"))
}

fn wait_for(
    reader: &IdentityReader,
    what: &str,
    done: impl Fn(&(Option<Version>, Option<String>, Option<String>)) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = generation(reader);
        if done(&seen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited 20 s for {what}; last seen {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_client_follows_the_producer_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("edgewise-identity-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let objects = dir.join("objects.json");
    write_objects(&objects, 0);
    let (server, address) = serve(&objects, "127.0.0.1:0", 100);

    let mut client = IdentityClient::default();
    let reader = client.reader();
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let stop = Arc::clone(&stop);
        let mut config = FollowConfig::new(format!("http://{address}"));
        config.initial_backoff = Duration::from_millis(20);
        config.max_backoff = Duration::from_millis(200);
        std::thread::spawn(move || {
            let transport = Transport::new(&config).unwrap();
            follow(&mut client, &config, &transport, &stop, |_, _| {});
        })
    };
    let watcher = {
        let reader = reader.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut looks = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (_, a, b) = generation(&reader);
                assert_eq!(a, b, "a torn state: the pods' labels moved in one delta");
                looks += 1;
            }
            looks
        })
    };

    wait_for(&reader, "the first baseline", |(v, a, _)| {
        v.is_some_and(|v| v.epoch == 100) && a.as_deref() == Some("0")
    });
    for g in 1..=20 {
        write_objects(&objects, g);
        let want = g.to_string();
        wait_for(&reader, "a delta", |(_, a, _)| {
            a.as_deref() == Some(want.as_str())
        });
    }
    let before_restart = generation(&reader).0.unwrap();
    assert_eq!(before_restart.epoch, 100);
    assert!(
        before_restart.seq >= 21,
        "one delta per change: {before_restart:?}"
    );

    // The producer dies; the cluster changes meanwhile; a new producer
    // starts on the same address with a new epoch.
    drop(server);
    write_objects(&objects, 21);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        generation(&reader).1.as_deref(),
        Some("20"),
        "the last good state is served while the producer is down"
    );
    let (restarted, _) = serve(&objects, &address, 200);
    wait_for(&reader, "the resync to the new epoch", |(v, a, _)| {
        v.is_some_and(|v| v.epoch == 200) && a.as_deref() == Some("21")
    });
    write_objects(&objects, 22);
    wait_for(&reader, "a delta of the new epoch", |(v, a, _)| {
        v.is_some_and(|v| v.epoch == 200 && v.seq >= 2) && a.as_deref() == Some("22")
    });

    stop.store(true, Ordering::Relaxed);
    drop(restarted);
    follower.join().unwrap();
    assert!(watcher.join().unwrap() > 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// In process: a stream that is reopened (here because it reached its
/// maximum age) resumes from the version held, without a new baseline, and
/// misses nothing published meanwhile.
#[test]
fn a_reopened_stream_resumes_without_a_baseline() {
    use std::sync::Mutex;

    use edgewise_identity::http::{FollowEvent, IdentityServer, ServerConfig};
    use edgewise_identity::{Producer, Upsert};
    use edgewise_ip_index::{ClusterObject, ObjectKind};

    let object = |g: u32| ClusterObject::new(ObjectKind::Pod, Some("ns"), &format!("pod-{g}"));
    let producer = Producer::new(9);
    let server = IdentityServer::bind(
        "127.0.0.1:0",
        &producer.baseline(),
        edgewise_identity::PolicyBaseline::default(),
        {
            let mut server_config = ServerConfig::default();
            server_config.heartbeat = Duration::from_millis(20);
            server_config
        },
    )
    .unwrap();
    let mut client = IdentityClient::default();
    let reader = client.reader();
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(Mutex::new(Vec::new()));
    let follower = {
        let stop = Arc::clone(&stop);
        let events = Arc::clone(&events);
        let mut config = FollowConfig::new(format!("http://{}", server.local_addr()));
        config.initial_backoff = Duration::from_millis(10);
        config.max_stream_age = Duration::from_millis(150);
        std::thread::spawn(move || {
            let transport = Transport::new(&config).unwrap();
            follow(&mut client, &config, &transport, &stop, |_, event| {
                events.lock().unwrap().push(event.clone());
            });
        })
    };
    for seq in 1..=40u32 {
        server.publish(&edgewise_identity::IdentityDelta {
            epoch: 9,
            seq: u64::from(seq),
            upserts: vec![Upsert {
                ip: "10.9.0.1".parse().unwrap(),
                identity: object(seq),
            }],
            removes: Vec::new(),
        });
        std::thread::sleep(Duration::from_millis(15));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while reader.snapshot().version() != Some(Version { epoch: 9, seq: 40 }) {
        assert!(
            Instant::now() < deadline,
            "never caught up: {:?}",
            reader.snapshot().version()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    drop(server);
    follower.join().unwrap();
    let events = events.lock().unwrap();
    let baselines = events
        .iter()
        .filter(|e| matches!(e, FollowEvent::BaselineLoaded(_)))
        .count();
    let resumed = events
        .iter()
        .filter(|e| matches!(e, FollowEvent::Connected { resumed: true, .. }))
        .count();
    assert!(
        resumed >= 2,
        "the 600 ms of publishing outlive several 150 ms streams: {events:?}"
    );
    assert_eq!(
        baselines, 1,
        "only the first session needed a baseline: {events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, FollowEvent::Resync(_))),
        "nothing was missed: {events:?}"
    );
}

/// `edgewise identity follow` of a new `identity serve` of `objects`
/// (written at generation 1), its output piped: (server, follower).
fn follow_cli(objects: &Path) -> (Server, Server) {
    write_objects(objects, 1);
    let (server, address) = serve(objects, "127.0.0.1:0", 5);
    let follower = Server(
        Command::new(env!("CARGO_BIN_EXE_edgewise"))
            .args(["identity", "follow", "--url", &format!("http://{address}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    (server, follower)
}

/// `edgewise identity follow` prints a line per event, each valid against
/// `schemas/identity-event.schema.json`: connected, the baseline, then a
/// delta when the objects change.
#[test]
fn follow_prints_a_schema_line_per_event() {
    let dir = edgewise_test_support::ScratchDir::new("identity-follow");
    let objects = dir.join("objects.json");
    let (_server, mut follower) = follow_cli(&objects);
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = follower.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut until = |event: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {event} event in {seen:?}"));
            let done = line.contains(&format!(r#""event":"{event}""#));
            seen.push(line);
            if done {
                return;
            }
        }
    };
    until("baseline");
    write_objects(&objects, 2);
    until("delta");
    drop(follower);
    let text = seen.join("\n");
    common::schema("identity-event").assert_lines(&text);
    assert!(seen[0].starts_with(r#"{"schema":"edgewise.identity-event/v1","event":"connected""#));
}

/// A follower whose reader went away (`edgewise identity follow | head -1`)
/// stops at its next line instead of following on, and exits 0.
#[test]
fn follow_ends_when_nobody_reads_its_output() {
    let dir = edgewise_test_support::ScratchDir::new("identity-follow-closed");
    let objects = dir.join("objects.json");
    let (_server, mut follower) = follow_cli(&objects);
    let mut stdout = BufReader::new(follower.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains(r#""event":"connected""#), "{first}");
    drop(stdout);
    // The next event (the baseline, or this delta) meets a closed pipe.
    write_objects(&objects, 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = follower.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still following with nobody reading"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

/// Both streams of `edgewise identity serve` open with a `hello` event
/// valid against `schemas/identity-hello.schema.json`.
#[test]
fn each_stream_opens_with_a_tagged_hello() {
    use std::io::Write as _;
    let dir = edgewise_test_support::ScratchDir::new("identity-hello");
    let objects = dir.join("objects.json");
    write_objects(&objects, 1);
    let (_server, address) = serve(&objects, "127.0.0.1:0", 3);
    let schema = common::schema("identity-hello");
    for path in ["/identities/deltas", "/policies/deltas"] {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: edgewise\r\n\r\n").unwrap();
        let mut lines = BufReader::new(stream).lines();
        let mut hello = false;
        let data = loop {
            let line = lines.next().expect("the stream ended").unwrap();
            hello |= line == "event: hello";
            if let Some(data) = line.strip_prefix("data: ").filter(|_| hello) {
                break data.to_owned();
            }
        };
        let value: serde_json::Value = serde_json::from_str(&data).unwrap();
        schema
            .check(&value)
            .unwrap_or_else(|e| panic!("{path}: {e}: {data}"));
        assert_eq!(value["epoch"], 3, "{path}: {data}");
    }
}
