//! The crate's errors: [`InputError`] for Kubernetes JSON that cannot be
//! used. Each names the document and, when it can, the object (kind and
//! `namespace/name`) and the field at fault.

use thiserror::Error;

/// Why (part of) a Kubernetes JSON input was rejected. A rejected object
/// changes nothing in the index; the other objects of the input still apply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InputError {
    /// The input is not JSON; reading stops here (later documents cannot be
    /// found reliably after a syntax error).
    #[error("not JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser expected.
        message: String,
    },
    /// A JSON document that is neither an object, a list nor a watch event.
    #[error("document {document}: {problem}")]
    Document {
        /// 1-based position of the document in the input.
        document: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// An object of a known kind with a field that cannot be used.
    #[error("document {document}: {kind} {name}: {problem}")]
    Object {
        /// 1-based position of the document in the input.
        document: usize,
        /// The object's kind.
        kind: String,
        /// `namespace/name`, `name`, or `<unnamed>`.
        name: String,
        /// What is wrong, naming the field.
        problem: String,
    },
    /// A watch event of type `ERROR` (such as `410 Gone`: the watcher must
    /// list again).
    #[error("document {document}: the watch stream reported an error: {message}")]
    WatchError {
        /// 1-based position of the document in the input.
        document: usize,
        /// The `Status` message (or the whole status when it has none).
        message: String,
    },
}
