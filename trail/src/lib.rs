//! The durable edge trail: what every agent saw, merged once into a store
//! a platform team can query for months.
//!
//! In data-flow order:
//! - [`upload`]: the wire form of one exported slice
//!   ([`SliceUpload`], `edgewise.slice/v1`, gzipped JSON) and the checks
//!   the collector applies to it;
//! - [`spool`] and [`export`]: the agent side. Every drained slice is
//!   written to a bounded spool directory first, then sent in order over
//!   HTTPS with a bearer token; a collector that is away only delays it;
//! - [`collector`]: `POST /slices`, batching writers in front of the
//!   store, `/metrics` and `/healthz`;
//! - [`schema`] and [`rows`]: the tables and how a slice becomes rows
//!   (sans-IO, one merge rule per column shared by Rust and SQL);
//! - [`store`]: Postgres or SQLite, each batch in one transaction, a
//!   slice merged at most once;
//! - [`query`] and [`digest`]: the recipes users run, and the daily
//!   digest with its webhook; [`history`]: the egress per day and source
//!   that `edgewise advise` reads; [`graph`]: the trail read back as a
//!   graph (the collector's web view).
//!
//! Unlike the sans-IO crates, this one does I/O (files, sockets, the
//! database): it is where the trail's state lives.

#![forbid(unsafe_code)]

// The edgewise crates whose types this crate's API uses, so that a user
// names them at the version this crate was built with.
pub use edgewise_edge_set as edge_set;
pub use edgewise_http_server as http_server;
pub use edgewise_identity as identity;
pub use edgewise_ip_index as ip_index;

pub mod collector;
pub mod digest;
pub mod export;
pub mod graph;
pub mod history;
pub mod query;
pub mod rows;
pub mod schema;
pub mod spool;
pub mod store;
pub mod time;
pub mod upload;

pub use store::{Outcome, Store, StoreUrl};
pub use upload::SliceUpload;

/// What can go wrong with the trail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrailError {
    /// A store URL that is neither `postgres://...` nor `sqlite:PATH`.
    #[error("{0:?} is not a store: give postgres://USER@HOST/DB or sqlite:PATH")]
    StoreUrl(String),
    /// The store failed (unreachable, a statement refused); nothing of
    /// the batch was written.
    #[error("{engine}: {message}")]
    Store {
        /// `postgres` or `sqlite`.
        engine: &'static str,
        /// What it said.
        message: String,
    },
    /// The store's schema is newer than this build.
    #[error(
        "the store's schema is version {found}, newer than this edgewise knows ({known}): upgrade edgewise"
    )]
    Schema {
        /// The store's version.
        found: i64,
        /// This build's newest.
        known: i64,
    },
    /// An upload refused (it says why).
    #[error("slice refused: {0}")]
    Upload(String),
    /// An upload that could not be encoded.
    #[error("slice not encoded: {0}")]
    Encode(String),
    /// The spool directory failed.
    #[error("spool {path}: {source}")]
    Spool {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A duration that is not a number and a unit.
    #[error("{0:?} is not a duration: give a number and s, m, h, d or w (such as 24h or 7d)")]
    Duration(String),
    /// The collector or a webhook could not be reached or refused.
    #[error("{url}: {problem}")]
    Send {
        /// Where.
        url: String,
        /// What happened.
        problem: String,
    },
}
