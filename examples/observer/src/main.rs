//! `edgewise`: the reference observer's command-line entry point.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use edgewise_observer::fingerprints::{FingerprintsError, write_fingerprints};

/// Identity-aware east-west and egress network observer.
#[derive(Parser)]
#[command(name = "edgewise", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print JA4T / JA4TS fingerprints of a pcap or pcapng file, one JSON
    /// object per line: {"frame", "kind", "fingerprint", "src", "dst"}.
    Fingerprints {
        /// The capture file (`-` for standard input).
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Fingerprints { file } => fingerprints(&file),
    }
}

fn fingerprints(file: &PathBuf) -> ExitCode {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = if file.as_os_str() == "-" {
        write_fingerprints(BufReader::new(io::stdin()), &mut out)
    } else {
        match File::open(file) {
            Ok(f) => write_fingerprints(BufReader::new(f), &mut out),
            Err(e) => {
                eprintln!("edgewise: cannot open {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
    };
    let flushed = out.flush();
    match (result, flushed) {
        (Err(FingerprintsError::Output(e)), _) | (Ok(_), Err(e))
            if e.kind() == io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        (Ok(_), Ok(())) => ExitCode::SUCCESS,
        (Ok(_), Err(e)) => {
            eprintln!("edgewise: writing output: {e}");
            ExitCode::FAILURE
        }
        (Err(e), _) => {
            eprintln!("edgewise: {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}
