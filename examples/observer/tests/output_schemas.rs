//! Every JSON output against its JSON Schema under `schemas/`: each file
//! compiles and names the tag the code writes; the CLI outputs of the
//! demo's files (`dns`, `fingerprints`, `edges`, `identity lookup`, the
//! graph files of `replay` and `edges`), the web view's graph, the trail's
//! slices and the identity and policy wire forms validate; and each schema refuses a line that breaks it (another
//! tag, an unknown field). The records, trail, advise, services and
//! identity-follow outputs are validated where their tests make them
//! (`record_schema.rs`, `trail_cli.rs`, `advise_cli.rs`,
//! `services_cli.rs`, `identity_stream.rs`).

mod common;

use std::path::Path;

use common::{edgewise, schema};
use edgewise_test_support::ScratchDir;

fn demo(file: &str) -> String {
    format!("{}/../../demo/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> ScratchDir {
    ScratchDir::new(&format!("schemas-{name}"))
}

/// The first `"schema": {"const": TAG}` in a schema document (`format`
/// for the trail's slices).
fn tag_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Object(map) => map
            .get("properties")
            .and_then(|p| p.get("schema").or_else(|| p.get("format")))
            .and_then(|s| s.get("const"))
            .and_then(|c| c.as_str().map(str::to_owned))
            .or_else(|| map.values().find_map(tag_of)),
        serde_json::Value::Array(items) => items.iter().find_map(tag_of),
        _ => None,
    }
}

#[test]
fn each_schema_file_compiles_and_names_the_tag_the_code_writes() {
    let tags = [
        edgewise_pipeline::RECORD_SCHEMA,
        edgewise_observer::schema::DNS,
        edgewise_observer::schema::FINGERPRINT,
        edgewise_observer::schema::SERVICE,
        edgewise_observer::schema::VERDICT,
        edgewise_observer::schema::IDENTITY_LOOKUP,
        edgewise_observer::schema::IDENTITY_EVENT,
        edgewise_edge_set::render::GRAPH_SCHEMA,
        edgewise_edge_set::render::AGGREGATE_SCHEMA,
        edgewise_edge_set::VIEW_SCHEMA,
        edgewise_trail::upload::FORMAT,
        edgewise_identity::DELTA_SCHEMA,
        edgewise_identity::http::HELLO_SCHEMA,
        edgewise_identity::POLICY_DELTA_SCHEMA,
        edgewise_identity::POLICY_BASELINE_SCHEMA,
        edgewise_trail::query::ROW_SCHEMA,
        edgewise_trail::digest::DIGEST_SCHEMA,
        edgewise_advise::render::ADVICE_SCHEMA,
        edgewise_advise::render::CHECK_SCHEMA,
    ];
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let mut named = Vec::new();
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let name = file.strip_suffix(".schema.json").expect("NAME.schema.json");
        let document: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(document["$id"], file.as_str(), "{file}'s $id");
        schema(name);
        if let Some(tag) = tag_of(&document) {
            assert_eq!(tag, format!("edgewise.{name}/v1"), "{file}'s tag");
            named.push(tag);
        }
    }
    for tag in tags {
        assert!(named.iter().any(|t| t == tag), "no schema file for {tag}");
    }
    assert_eq!(
        named.len(),
        tags.len(),
        "a schema file no code names: {named:?}"
    );
}

/// `line` changed by `change` is refused by the schema `name`.
fn refused(name: &str, line: &str, change: impl Fn(&mut serde_json::Value)) -> bool {
    refused_by(&schema(name), line, change)
}

fn refused_by(
    schema: &common::Schema,
    line: &str,
    change: impl Fn(&mut serde_json::Value),
) -> bool {
    let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
    change(&mut value);
    schema.check(&value).is_err()
}

/// Every line validates, and the first one, given another tag or an
/// unknown field, does not.
fn assert_lines_and_refusals(name: &str, lines: &str) {
    let schema = schema(name);
    assert!(schema.assert_lines(lines) > 0, "no {name} lines");
    let first = lines.lines().next().unwrap();
    assert!(
        refused_by(&schema, first, |v| v["schema"] =
            format!("edgewise.{name}/v2").into()),
        "{name}: another tag was accepted"
    );
    assert!(
        refused_by(&schema, first, |v| v["undocumented"] = true.into()),
        "{name}: an unknown field was accepted"
    );
}

#[test]
fn dns_lines_validate_answers_and_errors() {
    let (out, err, ok) = edgewise(&["dns", &demo("dns.pcap")]);
    assert!(ok, "{err}");
    assert_lines_and_refusals("dns", &out);
    assert!(out.lines().any(|l| l.contains(r#""error":"#)), "{out}");
    assert!(
        out.lines().any(|l| l.contains(r#""resolved":{"1"#)),
        "{out}"
    );
    let first = out.lines().next().unwrap();
    assert!(refused("dns", first, |v| {
        v["resolved"] = serde_json::json!({"not an address": "x"});
    }));
}

#[test]
fn fingerprint_lines_validate_tcp_and_tls() {
    let mut kinds = std::collections::BTreeSet::new();
    for capture in ["handshakes.pcap", "cluster/capture.pcap"] {
        let (out, err, ok) = edgewise(&["fingerprints", &demo(capture)]);
        assert!(ok, "{err}");
        assert_lines_and_refusals("fingerprint", &out);
        for line in out.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            kinds.insert(value["kind"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        kinds.contains("ja4t") && kinds.contains("ja4ts"),
        "{kinds:?}"
    );

    // TLS hellos, with their SNI and ALPN: FoxIO's captures.
    let Some(dir) = common::vectors_dir("ja4") else {
        return;
    };
    let dir = dir.join("pcap");
    let mut named = 0;
    for capture in common::capture_files(&dir) {
        let (out, _, _) = edgewise(&["fingerprints", dir.join(&capture).to_str().unwrap()]);
        schema("fingerprint").assert_lines(&out);
        for line in out.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            kinds.insert(value["kind"].as_str().unwrap().to_owned());
            named += usize::from(value.get("sni").is_some());
        }
    }
    assert!(kinds.contains("ja4") && kinds.contains("ja4s"), "{kinds:?}");
    assert!(named > 0, "no hello with a server name");
}

#[test]
fn verdict_lines_and_the_graph_files_validate() {
    let dir = scratch("edges");
    let (out, err, ok) = edgewise(&[
        "edges",
        "--objects",
        &demo("cluster/objects.json"),
        "--policies",
        &demo("edges/policies.json"),
        "--flows",
        &demo("edges/flows.jsonl"),
        "--graph-out",
        dir.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_lines_and_refusals("verdict", &out);
    assert!(refused("verdict", out.lines().next().unwrap(), |v| {
        v["verdict"] = "maybe".into();
    }));
    assert_graph_files(&dir);
}

#[test]
fn the_replay_s_graph_files_its_slice_and_its_view_validate() {
    use edgewise_edge_set::{Granularity, ServiceGraph, ViewOptions, view_json};
    let dir = scratch("replay");
    let (_, err, ok) = edgewise(&["replay", "--graph-out", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_graph_files(&dir);
    let graph = std::fs::read_to_string(dir.join("graph.json")).unwrap();
    assert!(graph.contains(r#""services""#) && graph.contains(r#""verdict": "declared""#));

    let slice = edgewise_edge_set::render::read_graph_json("node-a", graph.as_bytes()).unwrap();
    let upload = edgewise_trail::SliceUpload::new(3, 60_000, slice.clone());
    let wire = serde_json::to_string(&upload).unwrap();
    schema("slice").assert_document(&wire);
    assert!(refused("slice", &wire, |v| v["slice"]["agent"] = "".into()));
    assert!(refused("slice", &wire, |v| v["format"] = "edgewise.slice/v2".into()));

    for granularity in [Granularity::Workload, Granularity::Namespace] {
        let options = ViewOptions::new(granularity);
        let view = view_json(&ServiceGraph::from_slice(&slice), &options).to_string();
        schema("view").assert_document(&view);
        assert!(refused("view", &view, |v| v["groups"][0]["kind"] = "team".into()));
    }
}

fn assert_graph_files(dir: &Path) {
    let graph = std::fs::read_to_string(dir.join("graph.json")).unwrap();
    schema("graph").assert_document(&graph);
    let aggregated = std::fs::read_to_string(dir.join("graph-workload.json")).unwrap();
    schema("aggregate").assert_document(&aggregated);
    let compact = |text: &str| {
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(text).unwrap()).unwrap()
    };
    assert!(refused("graph", &compact(&graph), |v| {
        v["edges"][0]["src"]["ip"] = "10.0.0.300".into();
    }));
    assert!(refused("aggregate", &compact(&aggregated), |v| {
        v["edges"][0]["flows"] = (-1).into();
    }));
}

#[test]
fn identity_lookup_lines_validate() {
    let dir = scratch("lookup");
    let mmdb = dir.join("id.mmdb");
    let (_, err, ok) = edgewise(&[
        "identity",
        "build",
        "--objects",
        &demo("cluster/objects.json"),
        "--out",
        mmdb.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (out, err, ok) = edgewise(&[
        "identity",
        "lookup",
        "--mmdb",
        mmdb.to_str().unwrap(),
        "10.42.1.10",
        "198.51.100.1",
    ]);
    assert!(ok, "{err}");
    assert_lines_and_refusals("identity-lookup", &out);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["ip"], "10.42.1.10");
    assert_eq!(lines[0]["identity"]["kind"], "Pod");
    assert_eq!(lines[1]["identity"], serde_json::Value::Null);
    assert!(refused(
        "identity-lookup",
        out.lines().next().unwrap(),
        |v| {
            v["identity"]["kind"] = "Deployment".into();
        }
    ));
}

#[test]
fn identity_and_policy_wire_forms_validate() {
    use edgewise_identity::{PolicyDocument, PolicyProducer, Producer};
    let objects = std::fs::read(demo("cluster/objects.json")).unwrap();
    let mut index = edgewise_ip_index::IpIndex::default();
    assert_eq!(index.load(&objects).errors, []);
    let snapshot = index.snapshot();
    let mut producer = Producer::new(7);
    let all: Vec<_> = snapshot.objects().map(|(ip, o)| (ip, o.clone())).collect();
    let first = producer.update(all.iter().cloned()).expect("a first delta");
    let second = producer
        .update(all.iter().skip(1).cloned())
        .expect("a removal");
    let lines = format!("{}\n{}\n", first.to_line(), second.to_line());
    assert_lines_and_refusals("identity-delta", &lines);
    assert!(!first.upserts.is_empty() && !second.removes.is_empty());

    let mut policies = PolicyProducer::new(7);
    let document = |key: &str| PolicyDocument {
        key: key.to_owned(),
        body: "{}".to_owned(),
    };
    let delta = policies
        .update([document("Namespace/shop"), document("AllowList/ops")])
        .unwrap();
    assert_lines_and_refusals("policy-delta", &delta.to_line());
    let baseline = String::from_utf8(policies.baseline().to_json()).unwrap();
    schema("policy-baseline").assert_document(&baseline);
    assert!(refused("policy-baseline", &baseline, |v| {
        v["documents"][0]["key"] = "Secret/shop/x".into();
    }));
}
