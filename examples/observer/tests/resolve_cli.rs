//! `edgewise resolve` as a user runs it.

mod common;

use std::path::PathBuf;

use common::edgewise;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../ip-index/tests/fixtures")
        .join(name)
}

#[test]
fn resolves_peers_in_order_from_several_object_files() {
    let cluster = fixture("cluster.json");
    let watch = fixture("watch-ip-reuse.jsonl");
    let (stdout, stderr, ok) = edgewise(&[
        "resolve",
        "--objects",
        cluster.to_str().unwrap(),
        "--objects",
        watch.to_str().unwrap(),
        "10.42.1.159:8086",
        "10.43.0.86:8086",
        "[fd00:42:1::159]:8086",
        "10.42.1.77:443",
        "198.51.100.7:443",
        "not-a-peer",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        "analytics/influxdb-0:8086 (10.42.1.159)\n\
         analytics/influxdb:8086 (10.43.0.86)\n\
         analytics/influxdb-0:8086 (fd00:42:1::159)\n\
         shop/checkout-5b7c8d9f6-bbbbb:443 (10.42.1.77)\n\
         198.51.100.7:443\n\
         not-a-peer\n"
    );
}

#[test]
fn internet_peers_stay_as_given() {
    let cluster = fixture("cluster.json");
    let (stdout, _, ok) = edgewise(&[
        "resolve",
        "--internet",
        "--objects",
        cluster.to_str().unwrap(),
        "10.42.1.159:8086",
    ]);
    assert!(ok);
    assert_eq!(stdout, "10.42.1.159:8086\n");
}

#[test]
fn a_malformed_object_fails_the_command_naming_it() {
    let dir = std::env::temp_dir().join(format!("edgewise-resolve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"kind": "Pod", "metadata": {"name": "web", "namespace": "shop"}, "status": {"podIP": "10.0.0.999"}}"#,
    )
    .unwrap();
    let (stdout, stderr, ok) =
        edgewise(&["resolve", "--objects", bad.to_str().unwrap(), "10.0.0.1:80"]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(!ok);
    assert_eq!(stdout, "");
    assert!(
        stderr
            .contains("document 1: Pod shop/web: status.podIP \"10.0.0.999\" is not an IP address"),
        "{stderr}"
    );
}
