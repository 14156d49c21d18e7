//! From graph files (`edgewise run --graph-out DIR` writes `graph.json`,
//! one per day is a week) to each namespace's egress: its tier, how many
//! destinations, and the NetworkPolicies of the pilot tier.
//!
//! ```sh
//! cargo run -p edgewise-advise --example allowlists -- day-1/graph.json day-2/graph.json
//! ```

use std::process::ExitCode;

use edgewise_advise::observation::from_graph;
use edgewise_advise::{Prefixes, Settings, Tier, analyze, policies};

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: allowlists GRAPH.json...");
        return ExitCode::from(2);
    }
    let mut observations = Vec::new();
    for path in &files {
        let read = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| from_graph(path, &bytes).map_err(|e| e.to_string()));
        match read {
            Ok(more) => observations.extend(more),
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let report = match analyze(&observations, &Settings::default(), &Prefixes::default()) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for group in &report.groups {
        println!(
            "{} tier {}: {}",
            group.source, group.tier, group.tier_reason
        );
    }
    let pilot = policies::generate(&report, &[Tier::A], 600);
    print!("{}", policies::yaml(&pilot.network_policies));
    ExitCode::SUCCESS
}
