//! What the pipeline's test binaries share: capture events and TCP
//! headers built from text.

#![allow(
    dead_code,
    reason = "each test binary uses its own subset of these helpers, so `expect` would misfire"
)]

use edgewise_capture::{Direction, Event, EventKind};
use edgewise_time::UnixNanos;

/// A test's instant: `nanos` nanoseconds of Unix time.
pub(crate) fn ns(nanos: u64) -> UnixNanos {
    UnixNanos::from_nanos(nanos)
}

/// An event of `kind` from `src` to `dst` (`ip:port`), sequence number 0.
pub(crate) fn event<'a>(
    kind: EventKind,
    src: &str,
    dst: &str,
    protocol: u8,
    data: &'a [u8],
) -> Event<'a> {
    Event {
        kind,
        direction: Direction::Unknown,
        time: UnixNanos::ZERO,
        ifindex: 0,
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        protocol,
        wire_len: 60,
        seq: 0,
        data,
    }
}

/// A 20-byte TCP header with `flags` and sequence number `seq`.
pub(crate) fn tcp(flags: u8, seq: u32) -> Vec<u8> {
    let mut header = vec![0u8; 20];
    header[4..8].copy_from_slice(&seq.to_be_bytes());
    header[12] = 5 << 4;
    header[13] = flags;
    header[14..16].copy_from_slice(&64240u16.to_be_bytes());
    header
}
