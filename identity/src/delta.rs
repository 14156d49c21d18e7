//! The delta stream's wire format: one JSON object per line.
//!
//! ```json
//! {"schema": "edgewise.identity-delta/v1", "epoch": 1732300000, "seq": 42,
//!  "upserts": [{"ip": "10.42.1.159", "identity": {"kind": "Pod", "namespace": "analytics", ...}}],
//!  "removes": ["10.42.1.77"]}
//! ```
//!
//! `schema` is [`DELTA_SCHEMA`] (`schemas/identity-delta.schema.json`):
//! lines are written with it, and read without it (lines written by hand,
//! or by producers before it) or with it; another tag is refused.
//! `identity` has the baseline's record schema (the JSON form of
//! [`ClusterObject`]). `upserts` and `removes` may be absent (empty);
//! unknown fields are ignored so that producers can add some. A delta names
//! each address at most once, and holds at most
//! [`DeltaLimits::max_entries`] entries in a line of at most
//! [`DeltaLimits::max_line_bytes`]; anything else is an
//! [`IdentityError::Delta`] naming the line, and the line is not applied.
//! Blank lines (heartbeats) are skipped.

use core::net::IpAddr;
use std::collections::HashSet;

use edgewise_ip_index::{ClusterObject, ip_key};
use serde::{Deserialize, Serialize};

use crate::IdentityError;
use crate::baseline::Version;

/// One address's new identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upsert {
    /// The address.
    pub ip: IpAddr,
    /// Its identity.
    pub identity: ClusterObject,
}

/// The schema tag of a delta line.
pub const DELTA_SCHEMA: &str = "edgewise.identity-delta/v1";

/// One step of a producer's history; as JSON, one line of the wire format
/// (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "DeltaWire<Upsert, IpAddr>")]
pub struct IdentityDelta {
    /// The producer's epoch.
    pub epoch: u64,
    /// The step's number: one more than the previous step of the epoch.
    pub seq: u64,
    /// Addresses with a new or changed identity.
    pub upserts: Vec<Upsert>,
    /// Addresses that no longer have one.
    pub removes: Vec<IpAddr>,
}

/// A delta as it is read (identities' and policies'): the tag is
/// optional, and checked by [`DeltaWire::checked`].
#[derive(Deserialize)]
pub(crate) struct DeltaWire<U, R> {
    #[serde(default)]
    schema: Option<String>,
    epoch: u64,
    seq: u64,
    #[serde(default = "Vec::new")]
    upserts: Vec<U>,
    #[serde(default = "Vec::new")]
    removes: Vec<R>,
}

impl<U, R> DeltaWire<U, R> {
    /// `(epoch, seq, upserts, removes)` when the tag is absent (written
    /// before tags, or by hand) or `expected`.
    pub(crate) fn checked(self, expected: &str) -> Result<(u64, u64, Vec<U>, Vec<R>), String> {
        check_schema(self.schema.as_deref(), expected)?;
        Ok((self.epoch, self.seq, self.upserts, self.removes))
    }
}

/// A delta as it is written: the tag first.
#[derive(Serialize)]
pub(crate) struct TaggedDelta<'a, U, R> {
    pub(crate) schema: &'static str,
    pub(crate) epoch: u64,
    pub(crate) seq: u64,
    pub(crate) upserts: &'a [U],
    pub(crate) removes: &'a [R],
}

/// A wire form's `schema` tag as read: absent or `expected`; anything else
/// is refused.
pub(crate) fn check_schema(found: Option<&str>, expected: &str) -> Result<(), String> {
    match found {
        Some(schema) if schema != expected => Err(format!("schema {schema:?}, not {expected:?}")),
        _ => Ok(()),
    }
}

impl TryFrom<DeltaWire<Upsert, IpAddr>> for IdentityDelta {
    type Error = String;

    fn try_from(wire: DeltaWire<Upsert, IpAddr>) -> Result<Self, String> {
        let (epoch, seq, upserts, removes) = wire.checked(DELTA_SCHEMA)?;
        Ok(Self {
            epoch,
            seq,
            upserts,
            removes,
        })
    }
}

impl Serialize for IdentityDelta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        TaggedDelta {
            schema: DELTA_SCHEMA,
            epoch: self.epoch,
            seq: self.seq,
            upserts: &self.upserts,
            removes: &self.removes,
        }
        .serialize(serializer)
    }
}

impl IdentityDelta {
    /// Where the delta stands.
    pub fn version(&self) -> Version {
        Version {
            epoch: self.epoch,
            seq: self.seq,
        }
    }

    /// The delta as one line of JSON (without the newline).
    pub fn to_line(&self) -> String {
        // Addresses, integers and string-keyed maps always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Bounds on one delta line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeltaLimits {
    /// The longest line accepted (default 16 MiB).
    pub max_line_bytes: usize,
    /// The most upserts and removes in one delta (default 100,000).
    pub max_entries: usize,
}

impl Default for DeltaLimits {
    fn default() -> Self {
        Self {
            max_line_bytes: 16 << 20,
            max_entries: 100_000,
        }
    }
}

/// Reads one delta line (`line` numbers it in errors).
///
/// # Errors
/// [`IdentityError::Delta`] (see the module docs).
pub fn read_delta(
    text: &[u8],
    line: usize,
    limits: &DeltaLimits,
) -> Result<IdentityDelta, IdentityError> {
    let fail = |problem: String| IdentityError::Delta { line, problem };
    if text.len() > limits.max_line_bytes {
        return Err(fail(format!(
            "{} bytes, more than the {} allowed",
            text.len(),
            limits.max_line_bytes
        )));
    }
    let delta: IdentityDelta = serde_json::from_slice(text).map_err(|e| fail(e.to_string()))?;
    let entries = delta.upserts.len() + delta.removes.len();
    if entries > limits.max_entries {
        return Err(fail(format!(
            "{entries} entries, more than the {} allowed",
            limits.max_entries
        )));
    }
    let mut seen = HashSet::with_capacity(entries);
    for ip in delta
        .upserts
        .iter()
        .map(|u| u.ip)
        .chain(delta.removes.iter().copied())
    {
        if !seen.insert(ip_key(ip)) {
            return Err(fail(format!("{ip} appears more than once")));
        }
    }
    Ok(delta)
}

/// Reads every delta of a JSON-lines input, in order; lines that fail are
/// reported and left out.
pub fn read_deltas(input: &[u8], limits: &DeltaLimits) -> (Vec<IdentityDelta>, Vec<IdentityError>) {
    let mut deltas = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in input.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match read_delta(line, index + 1, limits) {
            Ok(delta) => deltas.push(delta),
            Err(error) => errors.push(error),
        }
    }
    (deltas, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(line: &str) -> Result<IdentityDelta, IdentityError> {
        read_delta(line.as_bytes(), 3, &DeltaLimits::default())
    }

    #[test]
    fn lines_are_written_with_the_tag_and_read_with_or_without_it() {
        let delta = IdentityDelta {
            epoch: 7,
            seq: 2,
            upserts: Vec::new(),
            removes: vec!["10.42.1.159".parse().unwrap()],
        };
        let line = delta.to_line();
        assert_eq!(
            line,
            r#"{"schema":"edgewise.identity-delta/v1","epoch":7,"seq":2,"upserts":[],"removes":["10.42.1.159"]}"#
        );
        assert_eq!(read(&line).unwrap(), delta);
        let untagged = r#"{"epoch": 7, "seq": 2, "removes": ["10.42.1.159"]}"#;
        assert_eq!(read(untagged).unwrap(), delta);
    }

    #[test]
    fn another_tag_is_refused_naming_the_line() {
        let error = read(r#"{"schema": "edgewise.identity-delta/v2", "epoch": 7, "seq": 2}"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 3")
                && error.contains(
                    r#"schema "edgewise.identity-delta/v2", not "edgewise.identity-delta/v1""#
                ),
            "{error}"
        );
    }
}
