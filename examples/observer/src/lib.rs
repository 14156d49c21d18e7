//! The `edgewise` reference observer, as a library: each command's pipeline
//! lives here so that tests and benches run exactly what the binary runs.
//!
//! - [`fingerprints`]: capture file -> JA4T / JA4TS records.

pub mod fingerprints;
