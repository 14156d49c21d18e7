//! Writes a week of a cluster's egress (see `edgewise_advise::testing`):
//! `make-week DIR [TEAMS]` (TEAMS small namespaces, 24 by default).

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: make-week DIR [TEAMS]");
        return ExitCode::FAILURE;
    };
    let teams = match std::env::args().nth(2).map(|t| t.parse::<u32>()) {
        None => 24,
        Some(Ok(teams)) if (1..=50_000).contains(&teams) => teams,
        Some(_) => {
            eprintln!("make-week: TEAMS is a number from 1 to 50000");
            return ExitCode::FAILURE;
        }
    };
    let dir = std::path::Path::new(&dir);
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("make-week: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (name, bytes) in edgewise_advise::testing::week_of(teams) {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, bytes) {
            eprintln!("make-week: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
