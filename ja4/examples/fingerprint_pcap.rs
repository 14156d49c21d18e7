//! Fingerprints every SYN (JA4T) and SYN-ACK (JA4TS) of a pcap or pcapng
//! file, one line each.
//!
//! ```sh
//! cargo run -p edgewise-ja4 --example fingerprint_pcap -- capture.pcap
//! ```

use std::fs::File;
use std::io::BufReader;
use std::process::ExitCode;

use edgewise_ja4::{Ja4t, Ja4ts};
use edgewise_packet::{CaptureReader, Transport, decode};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: fingerprint_pcap CAPTURE.pcap");
        return ExitCode::from(2);
    };
    let reader = File::open(&path)
        .map_err(|e| e.to_string())
        .and_then(|file| CaptureReader::new(BufReader::new(file)).map_err(|e| e.to_string()));
    let reader = match reader {
        Ok(reader) => reader,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The iterator copies each frame; `next_frame` lends it instead.
    for frame in reader {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let Ok(packet) = decode(frame.link, &frame.data) else {
            continue;
        };
        let Transport::Tcp {
            src_port,
            dst_port,
            flags,
            segment,
            ..
        } = packet.transport()
        else {
            continue;
        };
        let (src, dst) = (packet.src, packet.dst);
        let fingerprint = if flags.is_syn() {
            Ja4t::from_syn(segment).map(|ja4t| format!("JA4T  {ja4t}"))
        } else if flags.is_syn_ack() {
            Ja4ts::from_syn_ack(segment).map(|ja4ts| format!("JA4TS {ja4ts}"))
        } else {
            continue;
        };
        match fingerprint {
            Ok(line) => println!(
                "frame {} {src}:{src_port} > {dst}:{dst_port} {line}",
                frame.number
            ),
            Err(e) => eprintln!("frame {}: {e}", frame.number),
        }
    }
    ExitCode::SUCCESS
}
