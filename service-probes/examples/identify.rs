//! Identifies servers from the first bytes they sent, as `nmap -sV` does
//! with its NULL probe: the database is read from a path (Debian's nmap
//! package installs it), each banner is given as an argument, with `\r`
//! and `\n` written as escapes.
//!
//! ```sh
//! cargo run -p edgewise-service-probes --example identify -- \
//!     /usr/share/nmap/nmap-service-probes 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n'
//! ```

use std::process::ExitCode;

use edgewise_service_probes::Database;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), banners) = (args.next(), args.collect::<Vec<_>>()) else {
        eprintln!("usage: identify NMAP-SERVICE-PROBES BANNER...");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let database = match Database::parse(&bytes) {
        Ok(database) => database,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Lines the parser could not use are reported by number and skipped.
    for error in database.line_errors() {
        eprintln!("{path}: {error}");
    }
    for banner in banners {
        let bytes = banner.replace("\\r", "\r").replace("\\n", "\n");
        match database.identify_banner(bytes.as_bytes()) {
            Some(found) => {
                let version = &found.version;
                println!(
                    "{} product={} version={} info={} (probe {}, line {}{})",
                    found.service,
                    version.product.as_deref().unwrap_or("-"),
                    version.version.as_deref().unwrap_or("-"),
                    version.info.as_deref().unwrap_or("-"),
                    found.probe,
                    found.line,
                    if found.soft { ", soft match" } else { "" }
                );
            }
            None => println!("unknown"),
        }
    }
    ExitCode::SUCCESS
}
