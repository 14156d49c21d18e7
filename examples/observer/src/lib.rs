//! The `edgewise` reference observer, as a library: each command's pipeline
//! lives here so that tests and benches run exactly what the binary runs.
//!
//! - [`fingerprints`]: capture file -> JA4T / JA4TS records.
//! - [`dns`]: capture file -> DNS responses, parsed, with the addresses each
//!   one maps to its question name.

pub mod dns;
pub mod fingerprints;

use std::io;

use edgewise_packet::CaptureError;

/// Why a command that reads a capture and prints lines failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The capture could not be read.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
}
