//! The identity MMDB: written, read back by this crate and by libmaxminddb's
//! `mmdblookup`, and checked on the way in.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use edgewise_identity::{Baseline, IdentityError, Version, unix_time};
use edgewise_ip_index::IpIndex;
use edgewise_test_support::{have, skip};

fn cluster_baseline() -> Baseline {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ip-index/tests/fixtures/cluster.json");
    let mut index = IpIndex::default();
    let report = index.load(&std::fs::read(path).unwrap());
    assert_eq!(report.errors, []);
    let snapshot = index.snapshot();
    Baseline::new(
        Version { epoch: 7, seq: 42 },
        snapshot
            .objects()
            .map(|(ip, object)| (ip, Arc::clone(object))),
    )
}

#[test]
fn a_baseline_reads_back_equal_and_builds_byte_identical() {
    let baseline = cluster_baseline();
    assert!(
        baseline.len() >= 8,
        "pods, services and nodes of both families"
    );
    let bytes = baseline.to_mmdb(unix_time(1_795_000_000)).unwrap();
    let read = Baseline::from_mmdb(&bytes).unwrap();
    assert_eq!(read, baseline);
    assert_eq!(read.version(), Version { epoch: 7, seq: 42 });
    let influxdb = read.get("10.42.1.159".parse().unwrap()).unwrap();
    assert_eq!(influxdb.display.as_ref(), "analytics/influxdb-0");
    assert_eq!(influxdb.app(), Some("influxdb"));
    assert_eq!(influxdb.named_ports[0].port, 8086);
    let v6 = read.get("fd00:42:1::159".parse().unwrap()).unwrap();
    assert_eq!(v6, influxdb);
    assert_eq!(bytes, baseline.to_mmdb(unix_time(1_795_000_000)).unwrap());
    // The maxminddb crate's own lookup agrees, IPv4-mapped included.
    let reader = maxminddb::Reader::from_source(&bytes[..]).unwrap();
    let record: edgewise_ip_index::ClusterObject = reader
        .lookup("::ffff:10.42.1.159".parse().unwrap())
        .unwrap()
        .decode()
        .unwrap()
        .unwrap();
    assert_eq!(&record, &**influxdb);
    assert_eq!(
        reader.metadata().description["edgewise.schema"],
        edgewise_identity::BASELINE_SCHEMA
    );
}

#[test]
fn mmdblookup_reads_what_we_write() {
    if !have("mmdblookup") {
        skip("mmdblookup is not installed (apt-get install mmdb-bin)");
        return;
    }
    let bytes = cluster_baseline()
        .to_mmdb(unix_time(1_795_000_000))
        .unwrap();
    let path = std::env::temp_dir().join(format!("edgewise-identity-{}.mmdb", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let lookup = |ip: &str, path_in_record: &[&str]| {
        let output = Command::new("mmdblookup")
            .arg("--file")
            .arg(&path)
            .args(["--ip", ip])
            .args(path_in_record)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(lookup("10.42.1.159", &["display"]).contains("\"analytics/influxdb-0\" <utf8_string>"));
    assert!(
        lookup("fd00:42:1::159", &["workload", "kind"]).contains("\"StatefulSet\" <utf8_string>")
    );
    assert!(lookup("10.42.1.159", &["named_ports", "0", "port"]).contains("8086 <uint"));
    assert!(lookup("192.168.56.12", &["kind"]).contains("\"Node\" <utf8_string>"));
    let metadata = Command::new("mmdblookup")
        .arg("--file")
        .arg(&path)
        .arg("--verbose")
        .args(["--ip", "10.42.1.159"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&metadata.stdout);
    assert!(text.contains("edgewise-identity"), "{text}");
    // An address with no record is not found.
    let missing = Command::new("mmdblookup")
        .arg("--file")
        .arg(&path)
        .args(["--ip", "10.99.0.1"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("Could not find an entry"),
        "{missing:?}"
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn what_is_not_an_identity_mmdb_is_refused() {
    assert!(matches!(
        Baseline::from_mmdb(b"not an mmdb"),
        Err(IdentityError::Mmdb { .. })
    ));

    let mut other = mmdb_writer::Writer::new("GeoLite2-City");
    other
        .insert(
            "10.0.0.1/32".parse::<mmdb_writer::ipnet::IpNet>().unwrap(),
            &42u32,
        )
        .unwrap();
    let error = Baseline::from_mmdb(&other.to_bytes().unwrap()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the baseline is not an edgewise identity database: database_type is \"GeoLite2-City\", not \"edgewise-identity\""
    );

    let versionless = mmdb_writer::Writer::new("edgewise-identity");
    let error = Baseline::from_mmdb(&versionless.to_bytes().unwrap()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no number under \"edgewise.epoch\""),
        "{error}"
    );

    let newer = mmdb_writer::Writer::builder("edgewise-identity")
        .description(&[
            ("edgewise.schema", "edgewise.identity-baseline/v2"),
            ("edgewise.epoch", "1"),
            ("edgewise.seq", "1"),
        ])
        .build();
    let error = Baseline::from_mmdb(&newer.to_bytes().unwrap()).unwrap_err();
    assert!(
        error.to_string().contains(
            "edgewise.schema is \"edgewise.identity-baseline/v2\", not \"edgewise.identity-baseline/v1\""
        ),
        "{error}"
    );

    let identity_db = |network: &str, record: &serde_json::Value| {
        let mut writer = mmdb_writer::Writer::builder("edgewise-identity")
            .description(&[("edgewise.epoch", "1"), ("edgewise.seq", "1")])
            .build();
        writer
            .insert(
                network.parse::<mmdb_writer::ipnet::IpNet>().unwrap(),
                record,
            )
            .unwrap();
        Baseline::from_mmdb(&writer.to_bytes().unwrap())
    };
    let pod = serde_json::json!({"kind": "Pod", "name": "a", "display": "ns/a"});
    assert!(identity_db("10.0.0.1/32", &pod).is_ok());
    let error = identity_db("10.0.0.0/24", &pod).unwrap_err();
    assert_eq!(
        error.to_string(),
        "baseline record 10.0.0.0/24: a network wider than one address"
    );
    let error = identity_db(
        "10.0.0.1/32",
        &serde_json::json!({"kind": "Planet", "name": "a", "display": "a"}),
    )
    .unwrap_err();
    assert!(
        matches!(&error, IdentityError::Record { network, .. } if network == "10.0.0.1/32"),
        "{error}"
    );
}
