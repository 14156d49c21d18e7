//! Reads a pcap or pcapng file and prints one line per TCP or UDP packet:
//! time, addresses, ports, TCP flags and payload length.
//!
//! ```sh
//! cargo run -p edgewise-packet --example flows -- capture.pcap
//! ```

use std::fs::File;
use std::io::BufReader;
use std::process::ExitCode;

use edgewise_packet::{CaptureReader, Transport, decode};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: flows CAPTURE.pcap");
        return ExitCode::from(2);
    };
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reader = match CaptureReader::new(BufReader::new(file)) {
        Ok(reader) => reader,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    while let Some(frame) = reader.next_frame() {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        // A frame that does not decode (an ARP, a cut header) is skipped.
        let Ok(packet) = decode(frame.link, frame.data) else {
            continue;
        };
        let (src, dst) = (packet.src, packet.dst);
        match packet.transport() {
            Transport::Tcp {
                src_port,
                dst_port,
                flags,
                payload,
                ..
            } => println!(
                "{} {src}:{src_port} > {dst}:{dst_port} tcp [{flags}] {} bytes",
                frame.time.as_nanos(),
                payload.len()
            ),
            Transport::Udp {
                src_port,
                dst_port,
                payload,
                ..
            } => println!(
                "{} {src}:{src_port} > {dst}:{dst_port} udp {} bytes",
                frame.time.as_nanos(),
                payload.len()
            ),
            _ => {}
        }
    }
    ExitCode::SUCCESS
}
