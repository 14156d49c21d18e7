//! JA4T and JA4TS passive TCP fingerprints, sans-IO and allocation-free.
//!
//! JA4T fingerprints the TCP stack of a client from its SYN; JA4TS fingerprints
//! a server from its SYN-ACK, plus the timing of SYN-ACK retransmissions and a
//! final RST. Both read as `window_options_mss_wscale`, for example
//! `64240_2-1-3-1-1-4_1460_8` (Windows 10 opening a connection).
//!
//! JA4T and JA4TS are part of FoxIO's JA4+ suite, published under the FoxIO
//! License 1.1 and described by FoxIO as patent pending; JA4+ is FoxIO's
//! trademark. This crate is a clean-room implementation written from the
//! observed behaviour of FoxIO's reference (no FoxIO code was used) and checked
//! against FoxIO's published expected outputs. Check the licence before using
//! these fingerprints commercially.
//!
//! One documented deviation: a SYN or SYN-ACK that also carries the ECN bits
//! ECE/CWR is fingerprinted like any other (Linux with `tcp_ecn=1` and many
//! Apple stacks open connections that way); the reference skips them.
//!
//! ```
//! use edgewise_ja4::Ja4t;
//!
//! // A SYN from Windows 10: window 64240, MSS 1460, NOP, WS 8, NOP, NOP, SACK-permitted.
//! let syn = [
//!     0xd4, 0x31, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x80, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
//!     0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x08, 0x01, 0x01, 0x04, 0x02,
//! ];
//! let ja4t = Ja4t::from_syn(&syn)?;
//! assert_eq!(ja4t.to_string(), "64240_2-1-3-1-1-4_1460_8");
//! # Ok::<(), edgewise_ja4::Ja4Error>(())
//! ```
//!
//! Modules: [`tcp`] (the checked header view), [`options`] (the option walk),
//! [`fingerprint`] (values and strings), [`tracker`] (per-connection JA4TS),
//! [`tls`] (TLS hellos, JA4 and JA4S).

#![forbid(unsafe_code)]

mod error;
pub mod fingerprint;
pub mod options;
pub mod tcp;
pub mod tls;
pub mod tracker;

pub use edgewise_time as time;
pub use error::Ja4Error;
pub use fingerprint::{Ja4t, Ja4ts, TcpFingerprint};
pub use options::{OptionSummary, OptionsStop};
pub use tcp::{TcpFlags, TcpHeader};
pub use tracker::{Ja4Tracker, Observation, TrackerConfig, TrackerStats};

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use core::fmt::Write;

    use edgewise_time::UnixNanos;

    use crate::{Ja4Tracker, TcpHeader, TrackerConfig};

    /// Feeds arbitrary bytes through the header view, the option walk, both
    /// fingerprints and the tracker; must never panic.
    pub fn tcp_header(data: &[u8]) {
        let mut out = String::new();
        if let Ok(header) = TcpHeader::new_checked(data) {
            let _ = write!(out, "{}", crate::TcpFingerprint::of(&header));
            let mut tracker = Ja4Tracker::new(TrackerConfig {
                capacity: 4,
                ..TrackerConfig::default()
            });
            let ip = core::net::IpAddr::from([10, 0, 0, 1]);
            for step in 0..3u64 {
                if let Some(obs) =
                    tracker.observe(ip, ip, &header, UnixNanos::from_nanos(step * 1_500_000_000))
                {
                    let _ = write!(out, "{obs:?}");
                }
            }
        }
        let _ = crate::Ja4t::from_syn(data);
        let _ = crate::Ja4ts::from_syn_ack(data);
        let _ = crate::OptionSummary::walk(data);
    }

    /// Feeds arbitrary bytes as a flow's first bytes through the record
    /// layer, both hellos (also as bare bodies), JA4, JA4S and the raw
    /// forms; must never panic.
    pub fn tls_hello(data: &[u8]) {
        use crate::tls::{self, ClientHello, Hello, Ja4, Ja4s, Order, ServerHello, Transport};
        let mut out = String::new();
        let mut scratch = [0u8; 4096];
        let client = |hello: &ClientHello<'_>, out: &mut String| {
            let _ = Ja4::of(hello, Transport::Tcp).map(|j| out.push_str(j.as_str()));
            for order in [Order::Sorted, Order::Original] {
                let _ = write!(out, "{}", Ja4::raw(hello, Transport::Quic, order));
            }
        };
        let server = |hello: &ServerHello<'_>, out: &mut String| {
            out.push_str(Ja4s::of(hello, Transport::Tcp).as_str());
            let _ = write!(out, "{}", Ja4s::raw(hello, Transport::Dtls));
        };
        match tls::parse_first(data, &mut scratch) {
            Ok(Hello::Client(hello)) => client(&hello, &mut out),
            Ok(Hello::Server(hello)) => server(&hello, &mut out),
            _ => {}
        }
        if let Ok(hello) = ClientHello::parse(data) {
            client(&hello, &mut out);
        }
        if let Ok(hello) = ServerHello::parse(data) {
            server(&hello, &mut out);
        }
    }
}
