//! The `edgewise` reference observer, as a library: each command's pipeline
//! lives here so that tests and benches run exactly what the binary runs.
//!
//! - [`fingerprints`]: capture file -> JA4T / JA4TS records.
//! - [`dns`]: capture file -> DNS responses, parsed, with the addresses each
//!   one maps to its question name.
//! - [`resolve`]: Kubernetes objects + peer strings -> resolved peers.
//! - [`edges`]: Kubernetes objects + policies + flows -> a verdict per flow,
//!   and the graph.
//! - [`identity`]: Kubernetes objects -> identity MMDB; MMDB + deltas ->
//!   identities.
//! - [`serve`]: the cluster and files -> identity and policy streams for
//!   every agent; [`declared`]: declared edges as the stream's documents.
//! - [`daemon`]: `edgewise run` and `edgewise replay`, the full observer:
//!   capture events -> fingerprints, names, identities, edges, verdicts,
//!   rules -> records, graph, metrics, bans.
//! - [`observe`]: a running daemon's records, followed and filtered.
//! - [`ui`]: graph files -> the web view, with nothing else running.
//! - [`web`]: the web view, the graph and the records as a listener
//!   serves them (the daemon's, `edgewise ui`'s).

pub mod advise;
pub mod cluster;
pub mod daemon;
pub mod declared;
pub mod dns;
pub mod edges;
pub mod fingerprints;
pub mod identity;
pub mod observe;
pub mod resolve;
pub mod serve;
pub mod services;
pub mod trail;
pub mod ui;
pub mod web;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

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

/// A file that could not be read or written, named, with the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl FileError {
    /// A `map_err` adapter naming `path`.
    pub fn at(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self {
            path: path.to_owned(),
            source,
        }
    }
}

/// The schema tags of the observer's own JSON outputs: the `schema` field
/// of every line, `edgewise.NAME/v1` naming its JSON Schema
/// `schemas/NAME.schema.json`. A tag's version changes when a field
/// changes meaning or goes away; new fields keep it.
///
/// The other outputs' tags live with the code that writes them: the
/// daemon's records ([`edgewise_pipeline::RECORD_SCHEMA`]); the graph
/// files and the web view ([`edgewise_edge_set::render::GRAPH_SCHEMA`],
/// [`edgewise_edge_set::render::AGGREGATE_SCHEMA`],
/// [`edgewise_edge_set::VIEW_SCHEMA`]); the trail's slices, rows and
/// digest ([`edgewise_trail::upload::FORMAT`],
/// [`edgewise_trail::query::ROW_SCHEMA`],
/// [`edgewise_trail::digest::DIGEST_SCHEMA`]); advice
/// ([`edgewise_advise::render::ADVICE_SCHEMA`],
/// [`edgewise_advise::render::CHECK_SCHEMA`]); the identity and policy
/// streams ([`edgewise_identity::DELTA_SCHEMA`],
/// [`edgewise_identity::POLICY_DELTA_SCHEMA`],
/// [`edgewise_identity::POLICY_BASELINE_SCHEMA`], and
/// [`edgewise_identity::BASELINE_SCHEMA`] in the identity MMDB's
/// description).
pub mod schema {
    /// `edgewise dns`: one line per DNS message.
    pub const DNS: &str = "edgewise.dns/v1";
    /// `edgewise fingerprints`: one line per JA4T / JA4TS / JA4 / JA4S.
    pub const FINGERPRINT: &str = "edgewise.fingerprint/v1";
    /// `edgewise services`: one line per server.
    pub const SERVICE: &str = "edgewise.service/v1";
    /// `edgewise edges`: one line per flow with its verdict.
    pub const VERDICT: &str = "edgewise.verdict/v1";
    /// `edgewise identity follow`: one line per event of the stream.
    pub const IDENTITY_EVENT: &str = "edgewise.identity-event/v1";
    /// `edgewise identity lookup`: one line per address.
    pub const IDENTITY_LOOKUP: &str = "edgewise.identity-lookup/v1";
}

/// Writes one JSON object per line, each beginning with its `schema` tag,
/// and keeps the first output error: after it, further lines are dropped
/// (a closed pipe must not be written again), and [`JsonLines::finish`]
/// reports it.
pub(crate) struct JsonLines<'w, W: Write + ?Sized> {
    out: &'w mut W,
    /// `{"schema":"TAG"`
    prefix: Vec<u8>,
    /// The line being written.
    line: Vec<u8>,
    error: Option<io::Error>,
}

impl<'w, W: Write + ?Sized> JsonLines<'w, W> {
    /// Lines tagged `schema` (one of [`schema`]'s).
    pub(crate) fn new(out: &'w mut W, schema: &'static str) -> Self {
        let mut prefix = br#"{"schema":"#.to_vec();
        // A string always serializes.
        let _ = serde_json::to_writer(&mut prefix, schema);
        Self {
            out,
            prefix,
            line: Vec::with_capacity(512),
            error: None,
        }
    }

    /// Whether a write already failed (callers may skip building lines).
    pub(crate) fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Writes `line`, which must serialize as an object (a struct, or an
    /// enum of structs); one that does not is the error.
    pub(crate) fn write(&mut self, line: &impl serde::Serialize) {
        if self.error.is_some() {
            return;
        }
        self.line.clear();
        self.line.extend_from_slice(&self.prefix);
        if !append_fields(&mut self.line, line) {
            self.error = Some(io::Error::other("a line is not a JSON object"));
            return;
        }
        self.line.push(b'\n');
        self.error = self.out.write_all(&self.line).err();
    }

    pub(crate) fn finish(self) -> io::Result<()> {
        self.error.map_or(Ok(()), Err)
    }
}

/// Appends the fields of `value`, which must serialize as a JSON object,
/// to the object `line` holds open (its last field written, no comma after
/// it), and closes it: `{"a":1` and `{"b":2}` make `{"a":1,"b":2}`. False,
/// and the line unfinished, when `value` is not an object.
pub(crate) fn append_fields(line: &mut Vec<u8>, value: &impl serde::Serialize) -> bool {
    let start = line.len();
    if serde_json::to_writer(&mut *line, value).is_err() || line.get(start) != Some(&b'{') {
        return false;
    }
    if line.len() == start + 2 {
        // `{}`: nothing to add.
        line.truncate(start);
        line.push(b'}');
    } else {
        line[start] = b',';
    }
    true
}

#[cfg(test)]
mod tests {
    use super::append_fields;

    #[test]
    fn fields_join_the_open_object() {
        let mut line = br#"{"a":1"#.to_vec();
        assert!(append_fields(&mut line, &serde_json::json!({"b": "{"})));
        assert_eq!(line, br#"{"a":1,"b":"{"}"#);
        let mut line = br#"{"a":1"#.to_vec();
        assert!(append_fields(&mut line, &serde_json::json!({})));
        assert_eq!(line, br#"{"a":1}"#);
        assert!(!append_fields(&mut br#"{"a":1"#.to_vec(), &[1, 2]));
    }
}
