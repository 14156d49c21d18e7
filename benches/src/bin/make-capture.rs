//! Writes the synthetic capture to a file, for whole-process measurements:
//! `make-capture FRAMES OUT.pcap`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(frames), Some(out)) = (args.get(1).and_then(|n| n.parse().ok()), args.get(2)) else {
        eprintln!("usage: make-capture FRAMES OUT.pcap");
        return ExitCode::FAILURE;
    };
    match std::fs::write(out, edgewise_benches::synthetic_capture(frames)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make-capture: {out}: {e}");
            ExitCode::FAILURE
        }
    }
}
