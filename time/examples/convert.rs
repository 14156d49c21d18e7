//! Turns kernel (monotonic) times into Unix time with an offset measured
//! once, as a driver does with the stamps of eBPF events.
//!
//! ```sh
//! cargo run -p edgewise-time --example convert -- UNIX_NS MONOTONIC_NS EVENT_NS...
//! ```
//!
//! `UNIX_NS` and `MONOTONIC_NS` are the two clocks read together (on Linux,
//! `date +%s%N` and `CLOCK_MONOTONIC`); each `EVENT_NS` is a kernel stamp.

use std::process::ExitCode;
use std::time::Duration;

use edgewise_time::{MonotonicNanos, MonotonicOffset, UnixNanos};

fn main() -> ExitCode {
    let numbers: Result<Vec<u64>, _> = std::env::args().skip(1).map(|a| a.parse()).collect();
    let numbers = match numbers {
        Ok(numbers) if numbers.len() >= 3 => numbers,
        Ok(_) => {
            eprintln!("usage: convert UNIX_NS MONOTONIC_NS EVENT_NS...");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("convert: not a count of nanoseconds: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The two clocks, read together once.
    let unix = UnixNanos::from_nanos(numbers[0]);
    let offset = MonotonicOffset::new(unix, MonotonicNanos::from_nanos(numbers[1]));
    for &stamp in &numbers[2..] {
        let at = offset.to_unix(MonotonicNanos::from_nanos(stamp));
        // `at` is a UnixNanos: a store asking for "now" takes it, and would
        // refuse the MonotonicNanos it came from at compile time.
        let after = at.saturating_duration_since(unix);
        println!(
            "{stamp} monotonic -> {} unix ({} after the reading)",
            at.as_nanos(),
            seconds(after)
        );
    }
    ExitCode::SUCCESS
}

/// A duration as seconds with milliseconds.
fn seconds(duration: Duration) -> String {
    format!("{}.{:03} s", duration.as_secs(), duration.subsec_millis())
}
