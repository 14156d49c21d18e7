//! `edgewise`: the reference observer's command-line entry point.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use edgewise_observer::CommandError;
use edgewise_observer::dns::write_dns;
use edgewise_observer::fingerprints::write_fingerprints;
use edgewise_observer::resolve::{load_index, resolve_peers};

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
    /// Print every DNS response of a pcap or pcapng file (UDP and TCP, port
    /// 53), one JSON object per message: {"frame", "transport", "id",
    /// "rcode", "truncated", "question", "answers", "resolved"}, or
    /// {"frame", "transport", "error"} for a malformed message.
    Dns {
        /// The capture file (`-` for standard input).
        file: PathBuf,
    },
    /// Resolve peers such as `10.42.1.159:8086` or `[fd00::5]:443` to the
    /// pod, service or node that owns the address, from Kubernetes objects:
    /// `analytics/influxdb-0:8086 (10.42.1.159)`. Prints one line per peer,
    /// in order; unknown addresses and anything that is not `ip:port` stay
    /// as given.
    Resolve {
        /// Kubernetes JSON (`kubectl get pods,services,nodes -A -o json`,
        /// single objects or watch events); repeat for several files.
        #[arg(long = "objects", required = true)]
        objects: Vec<PathBuf>,
        /// Treat every peer as an internet peer (left as given).
        #[arg(long)]
        internet: bool,
        /// The peers.
        #[arg(required = true)]
        peers: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Fingerprints { file } => {
            print_lines(&file, |input, out| write_fingerprints(input, out).map(drop))
        }
        Command::Dns { file } => {
            let mut rejected = BTreeMap::new();
            let code = print_lines(&file, |input, out| {
                rejected = write_dns(input, out)?.rejected;
                Ok(())
            });
            for (reason, count) in rejected {
                eprintln!("edgewise: {count} malformed DNS messages ({reason})");
            }
            code
        }
        Command::Resolve {
            objects,
            internet,
            peers,
        } => match load_index(&objects) {
            Ok(index) => {
                let mut out = String::new();
                for line in resolve_peers(&index, &peers, internet) {
                    out.push_str(&line);
                    out.push('\n');
                }
                match io::stdout().lock().write_all(out.as_bytes()) {
                    Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                        eprintln!("edgewise: writing output: {e}");
                        ExitCode::FAILURE
                    }
                    _ => ExitCode::SUCCESS,
                }
            }
            Err(e) => {
                eprintln!("edgewise: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Runs a command that reads a capture (a file, or standard input for `-`)
/// and prints lines; a closed output pipe ends it quietly.
fn print_lines(
    file: &PathBuf,
    run: impl FnOnce(Box<dyn io::Read + Send>, &mut dyn Write) -> Result<(), CommandError>,
) -> ExitCode {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = if file.as_os_str() == "-" {
        run(Box::new(BufReader::new(io::stdin())), &mut out)
    } else {
        match File::open(file) {
            Ok(f) => run(Box::new(BufReader::new(f)), &mut out),
            Err(e) => {
                eprintln!("edgewise: cannot open {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
    };
    let flushed = out.flush();
    match (result, flushed) {
        (Err(CommandError::Output(e)), _) | (Ok(()), Err(e))
            if e.kind() == io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
        (Ok(()), Err(e)) => {
            eprintln!("edgewise: writing output: {e}");
            ExitCode::FAILURE
        }
        (Err(e), _) => {
            eprintln!("edgewise: {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}
