//! The crate's error: [`IdentityError`].

use thiserror::Error;

/// What the identity client and producer reject. Nothing already held is
/// changed by input that fails.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A baseline that is not a readable MaxMind DB.
    #[error("the baseline is not a readable MMDB: {0}")]
    Mmdb(String),
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
    #[error("writing the MMDB: {0}")]
    Write(String),
    /// The HTTP transport failed (feature `http`).
    #[error("{url}: {problem}")]
    Transport {
        /// What was asked for.
        url: String,
        /// What went wrong.
        problem: String,
    },
}
