//! Reads the DNS answers (UDP, from port 53) of a pcap or pcapng file into
//! an [`FqdnStore`], prints each name the answers resolved and the
//! addresses it resolved to, then what the store holds.
//!
//! ```sh
//! cargo run -p edgewise-fqdn-store --example names_from_pcap -- dns.pcap
//! ```

use std::fs::File;
use std::io::BufReader;
use std::process::ExitCode;

use edgewise_fqdn_store::time::UnixNanos;
use edgewise_fqdn_store::{FqdnStore, Message, Resolution};
use edgewise_packet::{CaptureReader, Transport, decode};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: names_from_pcap CAPTURE.pcap");
        return ExitCode::from(2);
    };
    let reader = File::open(&path)
        .map_err(|e| e.to_string())
        .and_then(|file| CaptureReader::new(BufReader::new(file)).map_err(|e| e.to_string()));
    let mut reader = match reader {
        Ok(reader) => reader,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut store = FqdnStore::default();
    let mut last_seen = UnixNanos::ZERO;
    while let Some(frame) = reader.next_frame() {
        let Ok(frame) = frame else { break };
        let Ok(packet) = decode(frame.link, frame.data) else {
            continue;
        };
        let Transport::Udp {
            src_port: 53,
            payload,
            ..
        } = packet.transport()
        else {
            continue;
        };
        // Time is passed in: here, the capture's own clock (Unix time).
        last_seen = frame.time;
        // A response that does not parse is an error of its own; the store
        // holds what it held.
        if let Err(e) = store.record(payload, frame.time) {
            eprintln!("frame {}: {e}", frame.number);
            continue;
        }
        if let Ok(resolution) = Message::parse(payload).map(Resolution::new) {
            let Ok(resolution) = resolution else { continue };
            let addresses: Vec<String> = resolution
                .addresses()
                .map(|a| format!("{} (ttl {})", a.ip, a.ttl))
                .collect();
            if !addresses.is_empty() {
                println!("{} -> {}", resolution.question(), addresses.join(", "));
            }
        }
    }
    let stats = store.stats();
    println!(
        "store: {} mappings, {} addresses, {} names (at {} ns)",
        stats.mappings,
        stats.addresses,
        stats.names,
        last_seen.as_nanos()
    );
    ExitCode::SUCCESS
}
