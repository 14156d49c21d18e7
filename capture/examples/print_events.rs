//! Attaches the observers to one interface (ingress and egress) and prints
//! each event they send: what kind, which way, the addresses and how many
//! bytes came with it. Needs root (or `CAP_BPF` and `CAP_NET_ADMIN`); Ctrl-C
//! or a time limit ends it, and the programs are detached on the way out.
//!
//! ```sh
//! sudo cargo run -p edgewise-capture --example print_events -- eth0 [SECONDS]
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use edgewise_capture::{Capture, CaptureConfig};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(interface) = args.next() else {
        eprintln!("usage: print_events INTERFACE [SECONDS]");
        return ExitCode::from(2);
    };
    let seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
    let mut config = CaptureConfig::default();
    config.ingress = vec![interface.clone()];
    config.egress = vec![interface];
    let mut capture = match Capture::attach(&config) {
        Ok(capture) => capture,
        Err(e) => {
            eprintln!("attach: {e}");
            return ExitCode::FAILURE;
        }
    };
    for attachment in capture.attachments() {
        eprintln!("attached: {attachment:?}");
    }
    let deadline = Instant::now().checked_add(Duration::from_secs(seconds));
    while deadline.is_none_or(|deadline| Instant::now() < deadline) {
        let polled = capture.poll(Duration::from_millis(200), |event| match event {
            Ok(event) => println!(
                "{:?} {:?} {} > {} {} bytes",
                event.kind,
                event.direction,
                event.src,
                event.dst,
                event.data.len()
            ),
            Err(e) => eprintln!("undecodable record: {e}"),
        });
        if let Err(e) = polled {
            eprintln!("poll: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Ok(counters) = capture.counters() {
        eprintln!("lost: {:?}", counters.lost_by_cause());
    }
    ExitCode::SUCCESS
}
