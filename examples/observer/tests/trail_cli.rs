//! The trail as a user runs it: `edgewise collect` on SQLite and on
//! Postgres, the bundled demo replayed into it with `--export`, and
//! `edgewise trail query` and `digest` (with a webhook) on what it
//! stored. The namespace edges must be the capture's namespace pairs, with
//! the flows, first and last seen of the replay's own graph.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{edgewise, schema};
use edgewise_test_support::postgres::TestDatabase;
use edgewise_trail::rows::Value;
use edgewise_trail::schema::Type;
use edgewise_trail::{Store, StoreUrl};

fn scratch(name: &str) -> edgewise_test_support::ScratchDir {
    edgewise_test_support::ScratchDir::new(&format!("trail-cli-{name}"))
}

/// `edgewise collect` on a port of its own choosing.
struct Collect {
    child: Child,
    address: SocketAddr,
}

impl Collect {
    fn start(store: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgewise"))
            .args([
                "collect",
                "--listen",
                "127.0.0.1:0",
                "--store",
                store,
                "--retain-days",
                "0",
            ])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("the collector said where it listens")
                .unwrap();
            if let Some(rest) = line.split("collecting on ").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Self { child, address }
    }
}

impl Drop for Collect {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Per (source, destination) namespace: flows, first and last seen (ms),
/// from the replay's graph.json.
fn pairs_of_graph(path: &Path) -> BTreeMap<(String, String), (i64, i64, i64)> {
    let graph: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut pairs: BTreeMap<(String, String), (i64, i64, i64)> = BTreeMap::new();
    for edge in graph["edges"].as_array().unwrap() {
        let ns = |end: &str| {
            edge[end]["identity"]["namespace"]
                .as_str()
                .map(str::to_owned)
        };
        let (Some(src), Some(dst)) = (ns("src"), ns("dst")) else {
            continue;
        };
        if src == dst {
            continue;
        }
        let ms = |key: &str| i64::try_from(edge[key].as_u64().unwrap() / 1_000_000).unwrap();
        let flows = i64::try_from(edge["flows"].as_u64().unwrap()).unwrap();
        let entry = pairs.entry((src, dst)).or_insert((0, i64::MAX, 0));
        entry.0 += flows;
        entry.1 = entry.1.min(ms("first_seen_ns"));
        entry.2 = entry.2.max(ms("last_seen_ns"));
    }
    pairs
}

fn pairs_of_store(url: &StoreUrl) -> BTreeMap<(String, String), (i64, i64, i64)> {
    let mut store = Store::open(url, 0).unwrap();
    let rows = store
        .query(
            "SELECT src_ns, dst_ns, CAST(sum(flow_count) AS BIGINT), min(first_seen), max(last_seen) \
             FROM namespace_edges GROUP BY src_ns, dst_ns",
            &[],
            &[Type::Text, Type::Text, Type::Int, Type::Int, Type::Int],
        )
        .unwrap();
    rows.into_iter()
        .map(|row| match row.as_slice() {
            [
                Value::Text(src),
                Value::Text(dst),
                Value::Int(flows),
                Value::Int(first),
                Value::Int(last),
            ] => ((src.clone(), dst.clone()), (*flows, *first, *last)),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn replay_into(address: SocketAddr, dir: &Path) -> (String, bool) {
    let (_, stderr, ok) = edgewise(&[
        "replay",
        "--export",
        &format!("http://{address}"),
        "--export-spool-dir",
        dir.join("spool").to_str().unwrap(),
        "--graph-out",
        dir.to_str().unwrap(),
        "--output",
        "/dev/null",
        "--node-name",
        "demo-node",
    ]);
    (stderr, ok)
}

/// A webhook that answers `status` and hands over the body it got.
fn webhook(status: u16) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        stream
            .write_all(
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
        let _ = sender.send(String::from_utf8(body).unwrap());
    });
    (url, receiver)
}

fn the_demo_lands_in(store: &str, url: &StoreUrl, name: &str) {
    let dir = scratch(name);
    // The demo was captured on 2026-11-23: the view reads far enough back.
    let collect = Collect::start(store, &["--view-hours", "1000000"]);
    let (stderr, ok) = replay_into(collect.address, &dir);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("exported  1 slices merged"), "{stderr}");
    the_view_of_the_trail_is_the_replays(collect.address, &dir.join("graph.json"));
    let expected = pairs_of_graph(&dir.join("graph.json"));
    assert!(
        expected.len() >= 2,
        "the demo crosses namespaces: {expected:?}"
    );
    assert_eq!(pairs_of_store(url), expected);

    // Loading the same capture again changes nothing.
    let (stderr, ok) = replay_into(collect.address, &dir);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("0 slices merged, 1 already merged"),
        "{stderr}"
    );
    assert_eq!(pairs_of_store(url), expected);

    let query = |args: &[&str]| {
        let mut all = vec!["trail", "--store", store, "query"];
        all.extend(args);
        let (stdout, stderr, ok) = edgewise(&all);
        assert!(ok, "{stderr}");
        schema("trail-row").assert_lines(&stdout);
        stdout
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .collect::<Vec<_>>()
    };
    let edges = query(&["edges", "--namespace", "shop", "--since", "10000d"]);
    assert!(
        edges.iter().any(|e| e["src"] == "shop/Deployment/frontend"),
        "{edges:?}"
    );
    let violations = query(&["violations", "--since", "10000d"]);
    assert!(
        violations
            .iter()
            .any(|v| v["src"] == "shop/Deployment/frontend"
                && v["dst"] == "shop/StatefulSet/postgres"),
        "{violations:?}"
    );
    let egress = query(&["egress", "--namespace", "shop"]);
    assert!(
        egress.iter().any(|e| e["dst_namespace"] == "kube-system"),
        "{egress:?}"
    );

    let (hook, body) = webhook(200);
    let (stdout, stderr, ok) = edgewise(&[
        "trail", "--store", store, "digest", "--since", "10000d", "--json", "--post", &hook,
    ]);
    assert!(ok, "{stderr}");
    schema("trail-digest").assert_document(&stdout);
    let digest: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        !digest["new_edges"].as_array().unwrap().is_empty(),
        "{digest}"
    );
    assert!(
        !digest["new_violations"].as_array().unwrap().is_empty(),
        "{digest}"
    );
    let posted: serde_json::Value = serde_json::from_str(&body.recv().unwrap()).unwrap();
    assert!(
        posted["text"].as_str().unwrap().contains("New violations"),
        "{posted}"
    );

    let (hook, _body) = webhook(500);
    let (_, stderr, ok) = edgewise(&["trail", "--store", store, "digest", "--post", &hook]);
    assert!(!ok && stderr.contains("answered 500"), "{stderr}");
    let mut direct = Store::open(url, 0).unwrap();
    let runs = direct
        .query(
            "SELECT ok FROM digest_runs ORDER BY ran_at, ok DESC",
            &[],
            &[Type::Int],
        )
        .unwrap();
    assert_eq!(runs, [vec![Value::Int(1)], vec![Value::Int(0)]]);

    let metrics = http(
        collect.address,
        "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(
        metrics.contains("edgewise_collector_slices_total{outcome=\"merged\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edgewise_collector_slices_total{outcome=\"duplicate\"} 1"),
        "{metrics}"
    );
    for line in [
        "edgewise_collector_agents 1",
        "edgewise_collector_agent_lag_seconds{agent=\"demo-node\"}",
        "edgewise_collector_store_up 1",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
}

#[test]
fn the_demo_replayed_into_sqlite_gives_its_namespace_pairs() {
    let dir = scratch("sqlite-store");
    let path = dir.join("trail.db");
    the_demo_lands_in(
        &format!("sqlite:{}", path.display()),
        &StoreUrl::Sqlite(path),
        "sqlite",
    );
}

#[test]
fn the_demo_replayed_into_postgres_gives_its_namespace_pairs() {
    let db = match TestDatabase::create("trail_cli") {
        Ok(db) => db,
        Err(why) => return edgewise_test_support::skip(&why),
    };
    the_demo_lands_in(&db.url, &StoreUrl::Postgres(db.url.clone()), "postgres");
}

/// The collector's `/graph/view` (read from the store every 10 s) draws
/// what the replay's own graph file draws: the same groups, edges, ports,
/// verdicts, policies, names and flows.
fn the_view_of_the_trail_is_the_replays(collector: SocketAddr, graph: &Path) {
    use edgewise_edge_set::{Granularity, ServiceGraph, ViewOptions, view_json};
    let slice =
        edgewise_edge_set::render::read_graph_json("replay", &std::fs::read(graph).unwrap())
            .unwrap();
    let drawn = |json: &serde_json::Value| -> Vec<String> {
        json["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} -> {} {} {} {} {}",
                    e["src"], e["dst"], e["verdict"], e["ports"], e["fqdns"], e["flows"]
                )
            })
            .collect()
    };
    for granularity in [Granularity::Workload, Granularity::Namespace] {
        let options = ViewOptions::new(granularity.clone());
        let expected = drawn(&view_json(&ServiceGraph::from_slice(&slice), &options));
        assert!(expected.len() >= 5, "{expected:?}");
        let request = format!(
            "GET /graph/view?granularity={} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            granularity.name()
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let got = loop {
            let answer = http(collector, &request);
            let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
            let got = serde_json::from_str(body)
                .map(|json| drawn(&json))
                .unwrap_or_default();
            if got == expected || std::time::Instant::now() > deadline {
                break got;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        };
        assert_eq!(got, expected, "by {}", granularity.name());
    }
    let page = http(
        collector,
        "GET /ui HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("/ui/app.js"),
        "{page}"
    );
}

fn http(address: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn the_collector_refuses_what_no_agent_sends() {
    let dir = scratch("refusals");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "s3cret\n").unwrap();
    let store = format!("sqlite:{}", dir.join("trail.db").display());
    let collect = Collect::start(
        &store,
        &[
            "--token-file",
            tokens.to_str().unwrap(),
            "--max-body-bytes",
            "4096",
        ],
    );
    let post = |headers: &str, body: &str| {
        http(
            collect.address,
            &format!(
                "POST /slices HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n{headers}\r\n{body}",
                body.len()
            ),
        )
    };
    let no_token = post("", "{}");
    assert!(no_token.starts_with("HTTP/1.1 401"), "{no_token}");
    let not_json = post("authorization: Bearer s3cret\r\n", "{}");
    assert!(
        not_json.starts_with("HTTP/1.1 400") && not_json.contains("edgewise.slice/v1"),
        "{not_json}"
    );
    let bad_agent = post(
        "authorization: Bearer s3cret\r\n",
        r#"{"format":"edgewise.slice/v1","seq":0,"interval_ms":1,"slice":{"agent":"a,b","window":{"start_ns":0,"end_ns":1},"edges":[],"nodes":[]}}"#,
    );
    assert!(
        bad_agent.starts_with("HTTP/1.1 400") && bad_agent.contains("node name"),
        "{bad_agent}"
    );
    let too_large = post("authorization: Bearer s3cret\r\n", &"x".repeat(5000));
    assert!(too_large.starts_with("HTTP/1.1 413"), "{too_large}");
    let (_, stderr, ok) = edgewise(&["trail", "query", "new"]);
    assert!(!ok && stderr.contains("--store"), "{stderr}");
    let (_, stderr, ok) = edgewise(&["trail", "--store", "mysql://x", "query", "new"]);
    assert!(!ok && stderr.contains("is not a store"), "{stderr}");
    let (_, stderr, ok) = edgewise(&["trail", "--store", &store, "query", "new", "--since", "7y"]);
    assert!(!ok && stderr.contains("is not a duration"), "{stderr}");
}
