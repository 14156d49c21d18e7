//! Conformance of JA4 and JA4S against FoxIO's published expected outputs
//! (`shared/vectors/ja4/`: their Python tool's per stream in
//! `expected-python/`, their Wireshark plugin's per frame in
//! `expected-wireshark/`), through the same path as `edgewise
//! fingerprints` (the replay's banner events, a flow's first bytes put back
//! together, the hello fingerprinted).
//!
//! Every `JA4.1` and `JA4S` of TLS over TCP (`t...`) either reference
//! gives must be produced, with the server name, and nothing else may be:
//! - QUIC (`q...`) is out of scope (its Initial packets are encrypted), as
//!   the vectors' README says;
//! - hellos that follow a SOCKS or HTTP CONNECT handshake count like
//!   any other (the sensors keep a few payloads after a proxy handshake);
//! - JA4S the Python tool does not list on streams it lists a JA4 for
//!   count when the Wireshark plugin gives them (its output is among the
//!   vectors);
//! - [`RUST_ONLY`]: two hellos only FoxIO's Rust tool gives (its published
//!   snapshots, not among the vectors): a JA4S the Python tool misses and
//!   the JA4 of a hello after HTTP CONNECT;
//! - [`BEYOND_THE_REFERENCES`]: one ServerHello no reference fingerprints,
//!   because the capture lost its stream's ClientHello (the server
//!   acknowledges client bytes the file does not hold); the ServerHello
//!   itself is whole in the file, and fingerprinted.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufReader;
use std::net::{IpAddr, SocketAddr};

use edgewise_ja4::TrackerConfig;
use edgewise_observer::fingerprints::{Record, TlsHello, fingerprint_capture};
use serde_json::Value;

/// Hellos only FoxIO's Rust tool gives (its snapshots
/// `ja4__insta@tls-handshake.pcapng.snap` and
/// `ja4__insta@https-connect.pcap.snap`): (pcap, kind, client port,
/// fingerprint).
const RUST_ONLY: [(&str, &str, u16, &str); 2] = [
    (
        "tls-handshake.pcapng",
        "ja4s",
        50167,
        "t120400_c030_4e8089b08790",
    ),
    (
        "https-connect.pcap",
        "ja4",
        54723,
        "t12i860500_e18388e7f3a3_a1e935682795",
    ),
];

/// (pcap, kind, client port, fingerprint): see the module docs.
const BEYOND_THE_REFERENCES: [(&str, &str, u16, &str); 1] = [(
    "socks4-https.pcap",
    "ja4s",
    50606,
    "t120200_c027_fee41c0d62a8",
)];

/// The client's port of a hello: its sender's for a JA4, its receiver's
/// for a JA4S.
fn client_port(seen: &Seen) -> u16 {
    if seen.1 == "ja4" {
        seen.2.port()
    } else {
        seen.3.port()
    }
}

/// A frame the Wireshark plugin fingerprints that we do not match:
/// (pcap, frame, its JA4S, what we gave at that frame).
type WiresharkMiss = (String, u64, String, Option<(u64, Seen)>);

/// (pcap, kind, sender, receiver, fingerprint, server name).
type Seen = (
    String,
    &'static str,
    SocketAddr,
    SocketAddr,
    String,
    Option<String>,
);

fn expected(dir: &std::path::Path, pcap: &str) -> BTreeSet<Seen> {
    let path = dir.join("expected-python").join(format!("{pcap}.json"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return BTreeSet::new();
    };
    let streams: Vec<Value> = serde_json::from_str(&text).expect("expected JSON");
    let mut seen = BTreeSet::new();
    for stream in streams {
        let end = |ip: &str, port: &str| -> SocketAddr {
            let ip: IpAddr = stream[ip].as_str().expect("ip").parse().expect("ip");
            SocketAddr::new(
                ip,
                stream[port].as_str().expect("port").parse().expect("port"),
            )
        };
        let (client, server) = (end("src", "srcport"), end("dst", "dstport"));
        let domain = stream["domain"]
            .as_str()
            .filter(|d| !d.is_empty())
            .map(str::to_owned);
        if let Some(ja4) = stream["JA4.1"].as_str().filter(|f| f.starts_with('t')) {
            seen.insert((
                pcap.to_owned(),
                "ja4",
                client,
                server,
                ja4.to_owned(),
                domain,
            ));
        }
        if let Some(ja4s) = stream["JA4S"].as_str().filter(|f| f.starts_with('t')) {
            seen.insert((
                pcap.to_owned(),
                "ja4s",
                server,
                client,
                ja4s.to_owned(),
                None,
            ));
        }
    }
    seen
}

/// The Wireshark plugin's JA4S (TLS over TCP) per frame.
fn wireshark_ja4s(dir: &std::path::Path, pcap: &str) -> Vec<(u64, String)> {
    let path = dir.join("expected-wireshark").join(format!("{pcap}.json"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let packets: Vec<Value> = serde_json::from_str(&text).expect("expected JSON");
    packets
        .iter()
        .filter_map(|p| {
            let layers = &p["_source"]["layers"];
            let ja4s = layers["ja4.ja4s"][0]
                .as_str()
                .filter(|f| f.starts_with('t'))?;
            let frame = layers["frame.number"][0].as_str()?.parse().ok()?;
            Some((frame, ja4s.to_owned()))
        })
        .collect()
}

fn produced(dir: &std::path::Path, pcap: &str) -> (BTreeSet<Seen>, Vec<(u64, Seen)>) {
    let path = dir.join("pcap").join(pcap);
    let file = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut frames = Vec::new();
    fingerprint_capture(BufReader::new(file), TrackerConfig::default(), |r| {
        if let Record::Tls(r) = r {
            let name = match &r.hello {
                TlsHello::Client { server_name, .. } => server_name.clone(),
                TlsHello::Server { .. } => None,
            };
            let seen = (
                pcap.to_owned(),
                r.kind(),
                r.src,
                r.dst,
                r.fingerprint().to_owned(),
                name,
            );
            frames.push((r.frame, seen));
        }
    })
    .unwrap_or_else(|(_, e)| panic!("{}: {e}", path.display()));
    (frames.iter().map(|(_, s)| s.clone()).collect(), frames)
}

#[test]
fn every_tls_hello_of_the_expected_outputs_and_nothing_else() {
    let Some(dir) = common::vectors_dir("ja4") else {
        return;
    };
    let pcaps = common::capture_files(&dir.join("pcap"));
    let (mut want_all, mut got_all) = (BTreeSet::new(), BTreeSet::new());
    let mut wireshark_missing: Vec<WiresharkMiss> = Vec::new();
    let mut by_wireshark = 0;
    for pcap in &pcaps {
        let (got, frames) = produced(&dir, pcap);
        let mut want = expected(&dir, pcap);
        for (frame, ja4s) in wireshark_ja4s(&dir, pcap) {
            // The frame that completes our hello is the one the plugin
            // names (its ServerHello's last segment).
            match frames.iter().find(|(f, s)| *f == frame && s.1 == "ja4s") {
                Some((_, seen)) if seen.4 == ja4s => {
                    by_wireshark += usize::from(want.insert(seen.clone()));
                }
                found => wireshark_missing.push((pcap.clone(), frame, ja4s, found.cloned())),
            }
        }
        for (name, kind, port, fingerprint) in RUST_ONLY.iter().chain(&BEYOND_THE_REFERENCES) {
            if let Some(seen) = got.iter().find(|s| {
                s.0 == *name && s.1 == *kind && client_port(s) == *port && s.4 == *fingerprint
            }) {
                want.insert(seen.clone());
            }
        }
        want_all.extend(want);
        got_all.extend(got);
    }
    let missing: Vec<_> = want_all.difference(&got_all).collect();
    let extra: Vec<_> = got_all.difference(&want_all).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && wireshark_missing.is_empty(),
        "{} expected, {} produced\nmissing {}:\n{missing:#?}\nextra {}:\n{extra:#?}\n\
         Wireshark frames not matched: {wireshark_missing:#?}",
        want_all.len(),
        got_all.len(),
        missing.len(),
        extra.len()
    );
    // The hellos only FoxIO's Rust tool gives, and the one beyond every
    // reference, were found.
    assert!(
        RUST_ONLY
            .iter()
            .chain(&BEYOND_THE_REFERENCES)
            .all(|(name, kind, port, _)| {
                got_all
                    .iter()
                    .any(|s| s.0 == *name && s.1 == *kind && client_port(s) == *port)
            })
    );
    let clients = got_all.iter().filter(|s| s.1 == "ja4").count();
    let servers = got_all.len() - clients;
    println!(
        "{clients} JA4 and {servers} JA4S matched ({by_wireshark} JA4S given by the \
         Wireshark plugin only)"
    );
}
