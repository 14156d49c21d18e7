//! The wire form of an export: one [`GraphSlice`] with the agent's
//! sequence number and export interval, as gzipped JSON
//! (`edgewise.slice/v1`).
//!
//! A slice is told apart by its agent, window and sequence number
//! ([`SliceKey`]): the collector merges each key once, so a slice sent
//! twice or late changes nothing the second time. [`SliceUpload::decode`]
//! is where the collector meets untrusted bytes: the gzip stream is cut at
//! a size the caller gives, and [`SliceUpload::check`] refuses what no
//! agent sends (an agent name that is not a node name, a window backwards
//! or longer than a day, strings past their bounds).

use std::io::Read;

use edgewise_edge_set::GraphSlice;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use crate::TrailError;

/// The format tag of an upload.
pub const FORMAT: &str = "edgewise.slice/v1";

/// The longest window a slice may cover (a day, in nanoseconds).
pub const MAX_WINDOW_NS: u64 = 86_400 * 1_000_000_000;

/// The longest string an upload may carry (a name, an FQDN, a policy).
pub const MAX_STRING: usize = 1024;

/// One slice as an agent sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceUpload {
    /// Always [`FORMAT`].
    pub format: String,
    /// The agent's sequence number (kept across restarts in its spool).
    pub seq: u64,
    /// How often the agent exports, in milliseconds: the collector calls
    /// an agent silent after a number of these without a slice.
    pub interval_ms: u64,
    /// The slice (its agent and window included).
    pub slice: GraphSlice,
}

/// What makes a slice one: merged at most once per key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SliceKey {
    /// The agent.
    pub agent: String,
    /// The window's start, Unix nanoseconds.
    pub window_start_ns: u64,
    /// The window's end.
    pub window_end_ns: u64,
    /// The agent's sequence number.
    pub seq: u64,
}

impl SliceUpload {
    /// An upload of `slice`.
    pub fn new(seq: u64, interval_ms: u64, slice: GraphSlice) -> Self {
        Self {
            format: FORMAT.to_owned(),
            seq,
            interval_ms,
            slice,
        }
    }

    /// Its key.
    pub fn key(&self) -> SliceKey {
        SliceKey {
            agent: self.slice.agent.clone(),
            window_start_ns: self.slice.window.start_ns,
            window_end_ns: self.slice.window.end_ns,
            seq: self.seq,
        }
    }

    /// The gzipped JSON sent on the wire.
    ///
    /// # Errors
    /// [`TrailError::Encode`] (serializing cannot fail for a slice; this
    /// is the gzip writer's error).
    pub fn encode(&self) -> Result<Vec<u8>, TrailError> {
        // One write of the whole text: flate2 zeroes its output buffer's
        // spare room at every write, which many small writes from the
        // serializer turn into most of the cost.
        let json = serde_json::to_vec(self).map_err(|e| TrailError::Encode(e.to_string()))?;
        let mut encoder = GzEncoder::new(Vec::with_capacity(json.len() / 8), Compression::fast());
        std::io::Write::write_all(&mut encoder, &json)
            .map_err(|e| TrailError::Encode(e.to_string()))?;
        encoder
            .finish()
            .map_err(|e| TrailError::Encode(e.to_string()))
    }

    /// Reads an upload of `body`, gzipped when `gzip` (at most `max_bytes`
    /// once inflated), and checks it.
    ///
    /// # Errors
    /// [`TrailError::Upload`] saying what is wrong: too large, not gzip,
    /// not JSON of this form, or refused by [`SliceUpload::check`].
    pub fn decode(body: &[u8], gzip: bool, max_bytes: u64) -> Result<Self, TrailError> {
        let mut json = Vec::new();
        let read = if gzip {
            GzDecoder::new(body)
                .take(max_bytes.saturating_add(1))
                .read_to_end(&mut json)
        } else {
            body.take(max_bytes.saturating_add(1))
                .read_to_end(&mut json)
        };
        read.map_err(|e| TrailError::Upload(format!("not gzip: {e}")))?;
        if json.len() as u64 > max_bytes {
            return Err(TrailError::Upload(format!(
                "larger than {max_bytes} bytes once inflated"
            )));
        }
        let upload: Self = serde_json::from_slice(&json)
            .map_err(|e| TrailError::Upload(format!("not an {FORMAT} upload: {e}")))?;
        upload.check()?;
        Ok(upload)
    }

    /// Refuses what no agent sends (see the module docs).
    ///
    /// # Errors
    /// [`TrailError::Upload`] naming the first problem.
    pub fn check(&self) -> Result<(), TrailError> {
        let refuse = |why: String| Err(TrailError::Upload(why));
        if self.format != FORMAT {
            return refuse(format!("format {:?}, not {FORMAT}", self.format));
        }
        if !is_agent_name(&self.slice.agent) {
            return refuse(format!(
                "agent {:?}: a node name is 1 to 253 of a-z, 0-9, '-', '.', '_'",
                self.slice.agent
            ));
        }
        let window = self.slice.window;
        if window.end_ns < window.start_ns || window.end_ns - window.start_ns > MAX_WINDOW_NS {
            return refuse(format!(
                "window {}..{} runs backwards or longer than a day",
                window.start_ns, window.end_ns
            ));
        }
        for edge in &self.slice.edges {
            if edge.first_seen_ns > edge.last_seen_ns {
                return refuse(format!(
                    "edge {} -> {}: first seen after last seen",
                    edge.src.ip, edge.dst.ip
                ));
            }
            let strings = [&edge.src, &edge.dst]
                .into_iter()
                .flat_map(|end| {
                    let identity = end.identity.as_deref();
                    [
                        end.fqdn.as_deref(),
                        identity.map(|o| o.name.as_str()),
                        identity.and_then(|o| o.namespace.as_deref()),
                        identity.map(|o| &*o.display),
                    ]
                })
                .chain([edge
                    .verdict
                    .as_ref()
                    .and_then(|verdict| verdict.policy.as_deref())]);
            if strings.flatten().any(|s| s.len() > MAX_STRING) {
                return refuse(format!(
                    "edge {} -> {}: a name longer than {MAX_STRING} bytes",
                    edge.src.ip, edge.dst.ip
                ));
            }
        }
        let long_fact = self.slice.nodes.iter().any(|node| {
            node.client_fingerprints
                .iter()
                .chain(&node.server_fingerprints)
                .chain(node.services.iter().map(|service| &service.name))
                .any(|s| s.len() > MAX_STRING)
        });
        if long_fact {
            return refuse(format!(
                "a fingerprint or service longer than {MAX_STRING} bytes"
            ));
        }
        Ok(())
    }
}

/// A Kubernetes node name (DNS subdomain), or a host name: 1 to 253 of
/// `a-z`, `0-9`, `-`, `.`, `_`. Agents' names end up in SQL values and
/// in the `agents` lists of edges, which are comma-separated.
pub fn is_agent_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
}

#[cfg(test)]
mod tests {
    use edgewise_edge_set::Window;

    use super::*;

    fn upload(agent: &str) -> SliceUpload {
        SliceUpload::new(
            1,
            30_000,
            GraphSlice {
                agent: agent.to_owned(),
                window: Window {
                    start_ns: 1,
                    end_ns: 2,
                },
                edges: Vec::new(),
                nodes: Vec::new(),
            },
        )
    }

    #[test]
    fn an_upload_round_trips_through_gzip() {
        let sent = upload("node-1");
        let body = sent.encode().unwrap();
        assert_eq!(SliceUpload::decode(&body, true, 1 << 20).unwrap(), sent);
    }

    #[test]
    fn a_gzip_bomb_is_cut_at_the_limit() {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        std::io::Write::write_all(&mut encoder, &vec![b' '; 10 << 20]).unwrap();
        let body = encoder.finish().unwrap();
        let error = SliceUpload::decode(&body, true, 1 << 20).unwrap_err();
        assert!(error.to_string().contains("larger than"), "{error}");
    }

    #[test]
    fn agent_names_that_could_break_a_list_are_refused() {
        for bad in ["", "a,b", "Node", "a%b", "a'b", &"x".repeat(254)] {
            let body = upload(bad).encode().unwrap();
            assert!(
                SliceUpload::decode(&body, true, 1 << 20).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_backwards_window_is_refused() {
        let mut sent = upload("node-1");
        sent.slice.window = Window {
            start_ns: 5,
            end_ns: 4,
        };
        assert!(sent.check().is_err());
    }
}
