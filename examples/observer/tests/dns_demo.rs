//! `edgewise dns` on the bundled capture of real dnsmasq traffic
//! (`demo/generate-dns.sh`) and on the shared malformed captures.

mod common;

use common::edgewise;
use serde_json::Value;

fn run(file: &str) -> (Vec<Value>, String) {
    let (stdout, stderr, ok) = edgewise(&["dns", file]);
    assert!(ok, "{stderr}");
    let lines = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (lines, stderr)
}

fn demo() -> Vec<Value> {
    run(concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo/dns.pcap")).0
}

fn asked(lines: &[Value], name: &str, record_type: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|line| line["question"]["name"] == name && line["question"]["type"] == record_type)
        .cloned()
        .collect()
}

#[test]
fn a_cname_chain_maps_to_the_question_name() {
    let lines = demo();
    let [www] = &asked(&lines, "www.example.com", "A")[..] else {
        panic!("one answer for www")
    };
    let types: Vec<_> = www["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["CNAME", "CNAME", "A"]);
    assert_eq!(www["answers"][0]["data"], "edge.cdn.example.com");
    assert_eq!(
        www["resolved"],
        serde_json::json!({"192.0.2.10": "www.example.com"})
    );
    assert_eq!(
        (www["transport"].as_str(), www["rcode"].as_str()),
        (Some("udp"), Some("NOERROR"))
    );
}

#[test]
fn ipv6_mixed_case_nxdomain_and_skipped_types() {
    let lines = demo();
    let [aaaa] = &asked(&lines, "influxdb.analytics.svc.cluster.local", "AAAA")[..] else {
        panic!()
    };
    assert_eq!(
        aaaa["resolved"],
        serde_json::json!({"fd00:42::159": "influxdb.analytics.svc.cluster.local"})
    );
    let [nx] = &asked(&lines, "nope.analytics.svc.cluster.local", "A")[..] else {
        panic!()
    };
    assert_eq!(
        (
            nx["rcode"].as_str(),
            nx["answers"].as_array().unwrap().len()
        ),
        (Some("NXDOMAIN"), 0)
    );
    for (name, record_type) in [
        ("example.com", "TXT"),
        ("example.com", "MX"),
        ("_http._tcp.influxdb.analytics.svc.cluster.local", "SRV"),
    ] {
        let [line] = &asked(&lines, name, record_type)[..] else {
            panic!("{record_type}")
        };
        assert_eq!(line["answers"][0]["type"], record_type);
        assert!(
            line["answers"][0].get("data").is_none(),
            "no data for {record_type}"
        );
        assert_eq!(line["resolved"], serde_json::json!({}));
    }
}

#[test]
fn truncated_over_udp_then_whole_over_tcp() {
    let lines = demo();
    let many = asked(&lines, "many.analytics.svc.cluster.local", "A");
    assert_eq!(many.len(), 2);
    assert_eq!(
        (
            many[0]["transport"].as_str(),
            many[0]["truncated"].as_bool()
        ),
        (Some("udp"), Some(true))
    );
    assert_eq!(
        (
            many[1]["transport"].as_str(),
            many[1]["truncated"].as_bool()
        ),
        (Some("tcp"), Some(false))
    );
    assert_eq!(many[1]["resolved"].as_object().unwrap().len(), 60);
}

#[test]
fn hostile_answers_map_nothing_extra() {
    let lines = demo();
    let [bank] = &asked(&lines, "bank.example.com", "A")[..] else {
        panic!()
    };
    assert_eq!(bank["answers"].as_array().unwrap().len(), 2);
    assert_eq!(
        bank["resolved"],
        serde_json::json!({"192.0.2.80": "bank.example.com"}),
        "evil.example.net ignored"
    );
    let errors: Vec<_> = lines
        .iter()
        .filter(|line| line.get("error").is_some())
        .collect();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("points forward")
    );
    assert_eq!(errors[0]["transport"], "udp");
}

#[test]
fn tcp_framing_two_in_one_segment_and_one_across_two() {
    let lines = demo();
    let split = asked(&lines, "split.example.com", "A");
    let resolved: Vec<_> = split
        .iter()
        .map(|line| {
            line["resolved"]
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone()
        })
        .collect();
    assert_eq!(resolved, ["192.0.2.91", "192.0.2.92", "192.0.2.93"]);
    assert_eq!(
        split[0]["frame"], split[1]["frame"],
        "two messages from one segment"
    );
    assert!(
        split[2]["frame"].as_u64() > split[1]["frame"].as_u64(),
        "the split one completes later"
    );
    assert!(split.iter().all(|line| line["transport"] == "tcp"));
}

#[test]
fn malformed_shared_captures_print_errors() {
    let Some(dir) = common::vectors_dir("dns") else {
        return;
    };
    for file in ["dns-zlip-1.pcap", "dns-zlip-2.pcap", "dns-zlip-3.pcap"] {
        let (lines, stderr) = run(dir.join(file).to_str().unwrap());
        // The UDP length field says 8 (no payload): an empty message.
        assert_eq!(lines.len(), 1, "{file}");
        assert_eq!(lines[0]["frame"], 1);
        assert!(
            lines[0]["error"]
                .as_str()
                .unwrap()
                .contains("header truncated"),
            "{file}"
        );
        assert!(stderr.contains("header-truncated"));
    }
}
