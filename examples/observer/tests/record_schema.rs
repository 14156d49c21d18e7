//! The daemon's record lines against their JSON Schema
//! (`schemas/record.schema.json`): every line of the demo's replay
//! validates, carries the schema tag, the node and the time in RFC 3339;
//! lines that break the contract are refused by the same schema.

mod common;

use common::{assert_records_match_schema, edgewise, record_schema};

fn demo(file: &str) -> String {
    format!("{}/../../demo/{file}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_line_of_the_demo_replay_validates() {
    let (out, err, ok) = edgewise(&["replay", "--node-name", "node-7"]);
    assert!(ok, "{err}");
    let types = assert_records_match_schema(&out);
    for kind in ["edge", "dns", "rule", "stats"] {
        assert!(types.get(kind).is_some_and(|n| *n > 0), "{kind}: {types:?}");
    }
    for line in out.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["schema"], "edgewise.record/v1");
        assert_eq!(record["node"], "node-7");
    }
}

#[test]
fn a_replay_without_a_node_name_names_the_host() {
    let capture = demo("handshakes.pcap");
    let (out, err, ok) = edgewise(&["replay", &capture]);
    assert!(ok, "{err}");
    assert_records_match_schema(&out);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["node"], host.trim());
}

#[test]
fn lines_that_break_the_contract_are_refused() {
    let schema = record_schema();
    let (out, _, _) = edgewise(&["replay"]);
    let edge: serde_json::Value = out
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|record| record["type"] == "edge")
        .unwrap();
    assert_eq!(schema.check(&edge), Ok(()));
    let broken = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut record = edge.clone();
        change(&mut record);
        schema.check(&record)
    };
    let refusals = [
        broken(&|r| drop(r.as_object_mut().unwrap().remove("node"))),
        broken(&|r| r["schema"] = "edgewise.record/v2".into()),
        broken(&|r| r["time"] = "yesterday".into()),
        broken(&|r| r["verdict"] = "maybe".into()),
        broken(&|r| r["src"]["ip"] = "10.0.0.300".into()),
        broken(&|r| r["undocumented"] = true.into()),
        broken(&|r| r["type"] = "edges".into()),
    ];
    for (at, refusal) in refusals.iter().enumerate() {
        assert!(refusal.is_err(), "change {at} was accepted");
    }
}
