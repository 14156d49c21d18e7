//! Learn which names IP addresses were resolved from, by reading DNS
//! responses off the wire: a zero-copy DNS parser and a TTL- and
//! memory-bounded IP -> FQDN store, sans-IO.
//!
//! Egress rules by domain need, for a connection's destination address, the
//! name the workload asked for. This crate never makes a lookup of its own:
//! it reads the responses the caller captured (UDP payloads, or TCP streams
//! through [`tcp`]), applies one strict [mapping rule](resolution), and keeps
//! the result in an [`FqdnStore`] whose every dimension is bounded.
//!
//! ```
//! use core::net::IpAddr;
//! use edgewise_fqdn_store::time::UnixNanos;
//! use edgewise_fqdn_store::{FqdnStore, NameMatcher, Recorded};
//!
//! // A response for "api.example.com" A, through a CNAME to "edge.cdn.net".
//! let response: &[u8] = &[
//!     0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0, // header: 1 question, 2 answers
//!     3, b'a', b'p', b'i', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0,
//!     0, 1, 0, 1, // type A, class IN
//!     0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 14, // -> CNAME, TTL 60, 14 bytes of data:
//!     4, b'e', b'd', b'g', b'e', 3, b'c', b'd', b'n', 3, b'n', b'e', b't', 0,
//!     0xc0, 45, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 7, // edge.cdn.net A, TTL 3600
//! ];
//! let mut store = FqdnStore::default();
//! let now = UnixNanos::from_secs(1_700_000_000);
//! assert_eq!(store.record(response, now)?, Recorded::Mapped(1));
//! let ip: IpAddr = "192.0.2.7".parse().unwrap();
//! assert_eq!(store.lookup(ip, now).collect::<Vec<_>>(), ["api.example.com"]);
//! assert!(NameMatcher::pattern("*.example.com").unwrap().matches("api.example.com"));
//! # Ok::<(), edgewise_fqdn_store::DnsError>(())
//! ```
//!
//! Modules: [`wire`] (the parser), [`resolution`] (the mapping rule),
//! [`store`] (the bounded store), [`tcp`] (length framing over TCP),
//! [`matcher`] (exact, pattern and regex matchers).

#![forbid(unsafe_code)]

#[cfg(feature = "hickory-differential")]
mod differential;
mod error;
pub mod matcher;
pub mod resolution;
pub mod store;
pub mod tcp;
pub mod wire;

pub use edgewise_time as time;
pub use error::{DnsError, MatcherError};
pub use matcher::{NameMatcher, Pattern};
pub use resolution::{Address, MAX_CNAME_HOPS, Resolution, Unmapped};
pub use store::{FqdnStore, Recorded, StoreConfig, StoreStats};
pub use tcp::{Segment, StreamsConfig, TcpDnsStream, TcpDnsStreams};
pub use wire::{Message, Name, NameText, Rcode, Record, RecordData, RecordType};

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{FqdnStore, Message, Resolution, StoreConfig};

    #[cfg(feature = "hickory-differential")]
    pub use crate::differential::check as differential;
    use edgewise_time::UnixNanos;

    /// Parses, resolves, records and looks up; must never panic, and a
    /// rejected message must leave the store unchanged.
    pub fn parse_and_record(data: &[u8]) {
        // Caps above what one message can hold (65,535 bytes, 16 per A
        // record at least), so every mapped address must look up.
        let mut store = FqdnStore::new(StoreConfig {
            max_mappings: 1 << 16,
            max_ips_per_name: 1 << 16,
            ..StoreConfig::default()
        });
        let before = store.len();
        let result = store.record(data, UnixNanos::from_nanos(1));
        if result.is_err() {
            assert_eq!(store.len(), before);
        }
        if let Ok(message) = Message::parse(data) {
            for record in message
                .answers()
                .chain(message.authorities())
                .chain(message.additionals())
            {
                let _ = record.name.to_string();
            }
            if let Ok(resolution) = Resolution::new(message) {
                for address in resolution.addresses() {
                    assert!(
                        store
                            .lookup(address.ip, UnixNanos::from_nanos(1))
                            .next()
                            .is_some()
                    );
                }
            }
        }
    }
}
