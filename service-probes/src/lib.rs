//! nmap's service database (`nmap-service-probes`) in Rust: what a
//! server is, from the first bytes it sent (the NULL probe) or from its
//! answer to a request of a known shape (`GetRequest`, `GenericLines`).
//! Sans-IO: the database comes in as bytes ([`Database::parse`]), a
//! banner as a slice, the answer as an [`Identification`].
//!
//! The file is nmap's data, under the Nmap Public Source License: it is
//! loaded from a path the user gives (Debian's `nmap` package puts it at
//! `/usr/share/nmap/nmap-service-probes`), never bundled.
//!
//! - **Parsing** ([`parse`]): `Probe`, `match`, `softmatch`, `ports`,
//!   `sslports`, `rarity`, `fallback`, `totalwaitms`, `tcpwrappedms` and
//!   `Exclude`; a line that cannot be used is reported with its number
//!   and skipped ([`LineError`]); a file without a probe is an error.
//! - **Patterns** are Perl-compatible and match bytes: they are compiled
//!   with PCRE2 (the `pcre2` crate; nmap itself moved to PCRE2 in 7.95),
//!   in its byte mode with JIT where available, each only when a banner
//!   first reaches it. A pattern PCRE2 refuses is counted and never
//!   matches ([`Database::pattern_errors`]).
//! - **Prefilter** ([`prefix`]): a pattern anchored on a literal prefix
//!   (`^SSH-`, `^220 `) is only tried on banners that start with it
//!   (candidates are looked up by the banner's first bytes), and a
//!   pattern that needs a literal somewhere (`Server: nginx/`) only on
//!   banners that hold it (every such literal of the database is found
//!   in one Aho-Corasick pass per banner), so a banner meets tens of
//!   patterns, not thousands.
//! - **Matching** ([`Database::identify`]) follows nmap: the probe's
//!   matches in file order, then its fallbacks' (and the NULL probe's for
//!   a TCP probe); the first hard match wins; a softmatch names the
//!   service and only hard matches of that service are tried after it.
//! - **Version templates** ([`template`]): `p/ v/ i/ h/ o/ d/ cpe:/` with
//!   `$1`..`$9`, `$P()`, `$SUBST()` and `$I()`.

#![forbid(unsafe_code)]

mod database;
pub mod parse;
pub mod prefix;
pub mod template;

pub use database::{Database, Exchange, Identification, Probe, ProbeMatch, Protocol};
pub use parse::{LineError, ProbeDefinition};

/// Why a database could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbesError {
    /// The file held no usable `Probe` line.
    #[error("no probe in the file ({} lines refused; the first: {})", errors.len(), errors.first().map_or_else(|| "none".to_owned(), ToString::to_string))]
    NoProbe {
        /// The lines refused.
        errors: Vec<LineError>,
    },
}
