//! Loads a cluster's objects (`kubectl get pods,services,nodes -A -o json`,
//! or any Kubernetes JSON list or object) and resolves peers as an operator
//! reads them.
//!
//! ```sh
//! kubectl get pods,services,endpointslices,nodes -A -o json > objects.json
//! cargo run -p edgewise-ip-index --example resolve -- objects.json 10.42.1.159:8086
//! ```

use std::process::ExitCode;
use std::time::SystemTime;

use edgewise_ip_index::time::UnixNanos;
use edgewise_ip_index::{IpIndex, PeerResolver};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), peers) = (args.next(), args.collect::<Vec<_>>()) else {
        eprintln!("usage: resolve OBJECTS.json PEER...");
        return ExitCode::from(2);
    };
    let json = match std::fs::read(&path) {
        Ok(json) => json,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut index = IpIndex::default();
    let report = index.load(&json);
    // An object that cannot be used is reported and skipped; the rest load.
    for error in &report.errors {
        eprintln!("{path}: {error}");
    }
    let mut resolver = PeerResolver::new(index.reader());
    // The resolver reads no clock: time is passed in.
    let now = UnixNanos::from_system_time(SystemTime::now());
    for peer in peers {
        // Peers are typed (`SocketAddr`); `resolve_peer_str` takes a string
        // as tools print it and returns anything else unchanged.
        match peer.parse() {
            Ok(address) => println!("{}", resolver.resolve_peer(address, now)),
            Err(_) => println!("{}", resolver.resolve_peer_str(&peer, false, now)),
        }
    }
    ExitCode::SUCCESS
}
