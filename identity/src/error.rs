//! The crate's error: [`IdentityError`].

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

/// The error underneath an [`IdentityError`], kept as its `source()`
/// (shared, so that the error stays `Clone`).
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync>;

/// What the identity client and producer reject. Nothing already held is
/// changed by input that fails. The underlying error, where there is one,
/// is the `source()`.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A baseline that is not a readable MaxMind DB.
    #[error("the baseline is not a readable MMDB: {source}")]
    Mmdb {
        /// The MMDB reader's error.
        #[source]
        source: ErrorSource,
    },
    /// A baseline that is an MMDB but not an edgewise identity database.
    #[error("the baseline is not an edgewise identity database: {0}")]
    NotIdentity(String),
    /// A record of the baseline that cannot be used.
    #[error("baseline record {network}: {problem}")]
    Record {
        /// The network the record is stored under.
        network: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A delta line that cannot be used.
    #[error("delta line {line}: {problem}")]
    Delta {
        /// 1-based line number in its input.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// Writing an MMDB failed.
    #[error("writing the MMDB: {source}")]
    Write {
        /// The MMDB writer's error.
        #[source]
        source: ErrorSource,
    },
    /// A file the transport needs (CA, certificate, key, token) cannot be
    /// read (feature `http`).
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The server answered with an error status (feature `http`).
    #[error("{url}: the server answered {status}")]
    Status {
        /// What was asked for.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// No answer, or not all of it, came in time (feature `http`).
    #[error("{url}: timed out ({source})")]
    Timeout {
        /// What was asked for.
        url: String,
        /// The HTTP client's error, naming which wait ran out.
        #[source]
        source: ErrorSource,
    },
    /// Any other failure of the HTTP transport: refused, TLS, a bad
    /// answer, a setting that cannot be used (feature `http`).
    #[error("{url}: {problem}")]
    Transport {
        /// What was asked for (or the setting's value).
        url: String,
        /// What went wrong.
        problem: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<ErrorSource>,
    },
}
