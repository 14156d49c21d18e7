//! The crate's error: [`EdgeSetError`]. Kubernetes JSON that cannot be used
//! is reported with ip-index's [`edgewise_ip_index::InputError`], which
//! names the object and field, in a [`crate::policy::LoadReport`].

use thiserror::Error;

/// What edge-set rejects.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EdgeSetError {
    /// A line of a hand-written allow-list that cannot be used.
    #[error("{file}:{line}: {problem}")]
    AllowList {
        /// Where the list came from (a file name).
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
}
