//! Both sides of the identity stream in one process: the cluster side builds
//! a baseline MMDB from a cluster's objects, then a delta when a pod comes;
//! the node side loads the baseline, applies the delta (as JSON lines, the
//! wire form) and looks addresses up while it does.
//!
//! ```sh
//! kubectl get pods,services,nodes -A -o json > objects.json
//! cargo run -p edgewise-identity --example baseline_and_deltas -- objects.json 10.42.1.159
//! ```

use std::process::ExitCode;

use edgewise_identity::ip_index::IpIndex;
use edgewise_identity::{Baseline, DeltaLimits, IdentityClient, Producer, read_delta, unix_time};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), addresses) = (args.next(), args.collect::<Vec<_>>()) else {
        eprintln!("usage: baseline_and_deltas OBJECTS.json ADDRESS...");
        return ExitCode::from(2);
    };
    let json = match std::fs::read(&path) {
        Ok(json) => json,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Cluster side: the objects, a producer (epoch 1), the baseline file.
    let mut index = IpIndex::default();
    for error in index.load(&json).errors {
        eprintln!("{path}: {error}");
    }
    let mut producer = Producer::new(1);
    producer.update_from_index(&index.snapshot());
    let mmdb = match producer.baseline().to_mmdb(unix_time(0)) {
        Ok(mmdb) => mmdb,
        Err(e) => {
            eprintln!("baseline: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "baseline: {} bytes, version {:?}",
        mmdb.len(),
        producer.version()
    );

    // Node side: load the baseline; lookups never wait for the writer.
    let mut client = IdentityClient::default();
    match Baseline::from_mmdb(&mmdb) {
        Ok(baseline) => println!("loaded: {:?}", client.load_baseline(baseline)),
        Err(e) => {
            eprintln!("baseline: {e}");
            return ExitCode::FAILURE;
        }
    }
    let reader = client.reader();

    // A pod comes: the producer diffs the new state into one delta, sent as
    // a JSON line; the client applies it in order.
    index.load(
        br#"{"kind": "Pod", "metadata": {"name": "newcomer", "namespace": "demo", "uid": "n1"},
            "status": {"phase": "Running", "podIP": "10.250.0.9"}}"#,
    );
    if let Some(delta) = producer.update_from_index(&index.snapshot()) {
        let line = delta.to_line();
        println!("delta: {line}");
        match read_delta(line.as_bytes(), 1, &DeltaLimits::default()) {
            Ok(delta) => println!("applied: {:?}", client.apply(delta)),
            Err(e) => eprintln!("delta: {e}"),
        }
    }

    let snapshot = reader.snapshot();
    for text in addresses.iter().map(String::as_str).chain(["10.250.0.9"]) {
        match text.parse() {
            Ok(ip) => match snapshot.lookup(ip) {
                Some(identity) => println!("{text} -> {}", identity.display),
                None => println!("{text} -> unknown"),
            },
            Err(e) => eprintln!("{text}: {e}"),
        }
    }
    ExitCode::SUCCESS
}
