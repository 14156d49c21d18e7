//! Writes a week of a cluster's egress (see `edgewise_advise::testing`):
//! `make-week DIR`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: make-week DIR");
        return ExitCode::FAILURE;
    };
    let dir = std::path::Path::new(&dir);
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("make-week: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (name, bytes) in edgewise_advise::testing::week() {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, bytes) {
            eprintln!("make-week: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
