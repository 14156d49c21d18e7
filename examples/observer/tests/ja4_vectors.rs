//! Conformance against FoxIO's published JA4T / JA4TS expected outputs
//! (`shared/vectors/ja4/manifest.tsv`), through the same pipeline as
//! `edgewise fingerprints`.
//!
//! Both directions are checked: every in-scope row (carrier `direct`,
//! `loopback-null` or `tunnel`: 145 rows) must be produced, and every record
//! we produce beyond the manifest must be one of our documented deviations
//! (an ECN-flagged SYN or SYN-ACK), not a stray fingerprint.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;

use edgewise_ja4::{TcpFlags, TrackerConfig};
use edgewise_observer::fingerprints::{FingerprintRecord, Record, fingerprint_capture};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    pcap: String,
    frame: u64,
    src: SocketAddr,
    dst: SocketAddr,
    kind: String,
    expected: String,
}

/// The manifest writes `ip:port` with IPv6 unbracketed (`::1:57722`).
fn endpoint(text: &str) -> SocketAddr {
    let (ip, port) = text.rsplit_once(':').expect("ip:port");
    SocketAddr::new(ip.parse().expect("ip"), port.parse().expect("port"))
}

fn in_scope_rows(manifest: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = manifest
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            matches!(f[6], "direct" | "loopback-null" | "tunnel").then(|| Row {
                pcap: f[0].to_string(),
                frame: f[1].parse().expect("frame"),
                src: endpoint(f[2]),
                dst: endpoint(f[3]),
                kind: f[7].to_string(),
                expected: f[8].to_string(),
            })
        })
        .collect();
    rows.sort();
    rows
}

fn run(path: &std::path::Path) -> Vec<FingerprintRecord> {
    let mut records = Vec::new();
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    fingerprint_capture(BufReader::new(file), TrackerConfig::default(), |r| {
        if let Record::Tcp(r) = r {
            records.push(*r);
        }
    })
    .unwrap_or_else(|(_, e)| panic!("{}: {e}", path.display()));
    records
}

#[test]
fn every_in_scope_manifest_row_matches_and_nothing_else_is_emitted() {
    let Some(dir) = common::vectors_dir("ja4") else {
        return;
    };
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).expect("manifest");
    let rows = in_scope_rows(&manifest);
    assert_eq!(
        rows.len(),
        145,
        "the manifest README promises 145 in-scope rows"
    );

    let mut by_pcap: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in &rows {
        by_pcap.entry(&row.pcap).or_default().push(row);
    }
    // Every capture is run, including those with no in-scope row, so that a
    // stray fingerprint anywhere is caught.
    let pcaps = common::capture_files(&dir.join("pcap"));

    let mut failures = Vec::new();
    let mut matched = 0;
    for pcap in &pcaps {
        let records = run(&dir.join("pcap").join(pcap));
        let expected = by_pcap.get(pcap.as_str()).cloned().unwrap_or_default();
        for row in &expected {
            let hit = records.iter().any(|r| {
                r.frame == row.frame
                    && r.kind() == row.kind
                    && r.fingerprint() == row.expected
                    && r.src == row.src
                    && r.dst == row.dst
            });
            if hit {
                matched += 1;
            } else {
                let got: Vec<String> = records
                    .iter()
                    .filter(|r| r.frame == row.frame)
                    .map(|r| format!("{} {}", r.kind(), r.fingerprint()))
                    .collect();
                failures.push(format!(
                    "{pcap} frame {}: want {} {}, got {got:?}",
                    row.frame, row.kind, row.expected
                ));
            }
        }
        for record in &records {
            let listed = expected.iter().any(|row| row.frame == record.frame);
            let ecn = record.flags.0 & (TcpFlags::ECE | TcpFlags::CWR) != 0;
            if !listed && !ecn {
                failures.push(format!(
                    "{pcap} frame {}: unexpected {} {} ({} -> {}, flags {:?})",
                    record.frame,
                    record.kind(),
                    record.fingerprint(),
                    record.src,
                    record.dst,
                    record.flags
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(matched, 145);
}
