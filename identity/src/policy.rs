//! Declared edges on the identity stream's rails: the documents an agent
//! compiles its policies from (NetworkPolicies, Namespaces for their
//! labels, hand-written allow-lists), as a baseline plus epoch/seq deltas.
//!
//! The stream carries documents, not compiled policies: each is a
//! [`PolicyDocument`] keyed by kind and name (`NetworkPolicy/NS/NAME`,
//! `Namespace/NAME`, `AllowList/NAME`), its body the Kubernetes JSON or the
//! allow-list text as the producer read it. The agent compiles them with
//! `edgewise-edge-set` exactly as it compiles files, so a verdict from the
//! stream and one from files are the same.
//!
//! - [`PolicyProducer`]: successive document sets diffed into
//!   [`PolicyDelta`]s (seq one more each), a [`PolicyBaseline`] on demand.
//! - [`PolicyClient`]: the agent's copy. The version rules are the identity
//!   client's ([`crate::client`]): in order applies, a duplicate or an older
//!   epoch is ignored, a gap or a newer epoch needs a baseline. A client
//!   that needs one keeps its last good documents; a delta is applied
//!   whole or not at all.
//!
//! Wire forms: a delta is one JSON line, `{"schema", "epoch", "seq",
//! "upserts": [{"key", "body"}], "removes": ["key"]}`; a baseline is one
//! JSON document, `{"schema", "epoch", "seq", "documents": [{"key",
//! "body"}]}`. `schema` is [`POLICY_DELTA_SCHEMA`] or
//! [`POLICY_BASELINE_SCHEMA`] (`schemas/policy-delta.schema.json`,
//! `schemas/policy-baseline.schema.json`): written always, and read when
//! absent or equal; another tag is refused. A key must
//! start with one of the three kinds and a document (or a delta) names a
//! key at most once; anything else is an [`IdentityError::Delta`] and
//! nothing is applied.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::delta::{DeltaWire, TaggedDelta, check_schema};
use crate::{DeltaLimits, IdentityError, Version};

/// What a document is, from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// A NetworkPolicy's JSON.
    NetworkPolicy,
    /// A Namespace's JSON (its labels).
    Namespace,
    /// An allow-list's text.
    AllowList,
}

impl DocumentKind {
    /// The key prefix of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NetworkPolicy => "NetworkPolicy",
            Self::Namespace => "Namespace",
            Self::AllowList => "AllowList",
        }
    }

    /// The kind a key names, if any.
    pub fn of_key(key: &str) -> Option<Self> {
        let (kind, name) = key.split_once('/')?;
        if name.is_empty() {
            return None;
        }
        [Self::NetworkPolicy, Self::Namespace, Self::AllowList]
            .into_iter()
            .find(|k| k.as_str() == kind)
    }
}

/// One document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDocument {
    /// `KIND/NAME` (see the module docs).
    pub key: String,
    /// The JSON or allow-list text.
    pub body: String,
}

impl PolicyDocument {
    /// The document's kind (every document read or made has one).
    pub fn kind(&self) -> Option<DocumentKind> {
        DocumentKind::of_key(&self.key)
    }
}

/// The schema tag of a policy delta line.
pub const POLICY_DELTA_SCHEMA: &str = "edgewise.policy-delta/v1";

/// The schema tag of a policy baseline.
pub const POLICY_BASELINE_SCHEMA: &str = "edgewise.policy-baseline/v1";

/// One step of the policy producer's history; as JSON, a delta line of the
/// wire form (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "DeltaWire<PolicyDocument, String>")]
pub struct PolicyDelta {
    /// The producer's epoch.
    pub epoch: u64,
    /// One more than the previous step of the epoch.
    pub seq: u64,
    /// New or changed documents.
    pub upserts: Vec<PolicyDocument>,
    /// Keys of documents that are gone.
    pub removes: Vec<String>,
}

impl TryFrom<DeltaWire<PolicyDocument, String>> for PolicyDelta {
    type Error = String;

    fn try_from(wire: DeltaWire<PolicyDocument, String>) -> Result<Self, String> {
        let (epoch, seq, upserts, removes) = wire.checked(POLICY_DELTA_SCHEMA)?;
        Ok(Self {
            epoch,
            seq,
            upserts,
            removes,
        })
    }
}

impl Serialize for PolicyDelta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        TaggedDelta {
            schema: POLICY_DELTA_SCHEMA,
            epoch: self.epoch,
            seq: self.seq,
            upserts: &self.upserts,
            removes: &self.removes,
        }
        .serialize(serializer)
    }
}

impl PolicyDelta {
    /// Where the delta stands.
    pub fn version(&self) -> Version {
        Version {
            epoch: self.epoch,
            seq: self.seq,
        }
    }

    /// The delta as one line of JSON (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Checks keys: every one of a known kind, none twice.
fn check_keys<'a>(keys: impl Iterator<Item = &'a str>, limits: &DeltaLimits) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for key in keys {
        if seen.len() >= limits.max_entries {
            return Err(format!("more than {} documents", limits.max_entries));
        }
        if DocumentKind::of_key(key).is_none() {
            return Err(format!(
                "{key:?} is not a NetworkPolicy, Namespace or AllowList key"
            ));
        }
        if !seen.insert(key) {
            return Err(format!("{key:?} twice"));
        }
    }
    Ok(())
}

/// Reads one delta line (`line` numbers it in errors).
///
/// # Errors
/// [`IdentityError::Delta`] for a line over the limit, not JSON of the
/// shape, or with a key of no known kind or named twice.
pub fn read_policy_delta(
    input: &[u8],
    line: usize,
    limits: &DeltaLimits,
) -> Result<PolicyDelta, IdentityError> {
    let fail = |problem: String| IdentityError::Delta { line, problem };
    if input.len() > limits.max_line_bytes {
        return Err(fail(format!("longer than {} bytes", limits.max_line_bytes)));
    }
    let delta: PolicyDelta = serde_json::from_slice(input).map_err(|e| fail(e.to_string()))?;
    check_keys(
        delta
            .upserts
            .iter()
            .map(|d| d.key.as_str())
            .chain(delta.removes.iter().map(String::as_str)),
        limits,
    )
    .map_err(fail)?;
    Ok(delta)
}

/// Every document at one version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyBaseline {
    version: Version,
    documents: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct BaselineWire {
    #[serde(default)]
    schema: Option<String>,
    epoch: u64,
    seq: u64,
    documents: Vec<PolicyDocument>,
}

impl PolicyBaseline {
    /// The documents at `version`.
    pub fn new(version: Version, documents: impl IntoIterator<Item = PolicyDocument>) -> Self {
        Self {
            version,
            documents: documents.into_iter().map(|d| (d.key, d.body)).collect(),
        }
    }

    /// Its version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Its documents, by key.
    pub fn documents(&self) -> impl Iterator<Item = PolicyDocument> + '_ {
        self.documents.iter().map(|(key, body)| PolicyDocument {
            key: key.clone(),
            body: body.clone(),
        })
    }

    /// How many documents it holds.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// The baseline as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&BaselineWire {
            schema: Some(POLICY_BASELINE_SCHEMA.to_owned()),
            epoch: self.version.epoch,
            seq: self.version.seq,
            documents: self.documents().collect(),
        })
        .unwrap_or_default()
    }

    /// Reads a baseline (a truncated one is not JSON and is refused).
    ///
    /// # Errors
    /// [`IdentityError::Delta`] (line 1) when it is not a baseline.
    pub fn from_json(input: &[u8], limits: &DeltaLimits) -> Result<Self, IdentityError> {
        let fail = |problem: String| IdentityError::Delta { line: 1, problem };
        let wire: BaselineWire = serde_json::from_slice(input)
            .map_err(|e| fail(format!("not a policy baseline: {e}")))?;
        check_schema(wire.schema.as_deref(), POLICY_BASELINE_SCHEMA).map_err(fail)?;
        check_keys(wire.documents.iter().map(|d| d.key.as_str()), limits).map_err(fail)?;
        Ok(Self::new(
            Version {
                epoch: wire.epoch,
                seq: wire.seq,
            },
            wire.documents,
        ))
    }
}

/// Diffs document sets into deltas (as [`crate::Producer`] does
/// identities). A producer that restarts takes a new, greater epoch.
#[derive(Debug, Clone)]
pub struct PolicyProducer {
    version: Version,
    state: BTreeMap<String, String>,
}

impl PolicyProducer {
    /// A producer of `epoch` with no documents at seq 0.
    pub fn new(epoch: u64) -> Self {
        Self {
            version: Version { epoch, seq: 0 },
            state: BTreeMap::new(),
        }
    }

    /// The version of the last state.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Takes every current document (a later one of the same key wins)
    /// and returns the delta from the last state, if anything changed.
    pub fn update(
        &mut self,
        current: impl IntoIterator<Item = PolicyDocument>,
    ) -> Option<PolicyDelta> {
        let next: BTreeMap<String, String> = current.into_iter().map(|d| (d.key, d.body)).collect();
        let (changed, gone) = crate::producer::diff(&self.state, &next);
        let removes: Vec<String> = gone.into_iter().cloned().collect();
        let upserts: Vec<PolicyDocument> = changed
            .into_iter()
            .map(|(key, body)| PolicyDocument {
                key: key.clone(),
                body: body.clone(),
            })
            .collect();
        self.state = next;
        if upserts.is_empty() && removes.is_empty() {
            return None;
        }
        self.version.seq += 1;
        Some(PolicyDelta {
            epoch: self.version.epoch,
            seq: self.version.seq,
            upserts,
            removes,
        })
    }

    /// The current documents as a baseline.
    pub fn baseline(&self) -> PolicyBaseline {
        PolicyBaseline {
            version: self.version,
            documents: self.state.clone(),
        }
    }
}

/// What [`PolicyClient::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// Applied: the documents changed.
    Applied,
    /// Already held, or of an older epoch: ignored.
    Ignored,
    /// A gap or a newer epoch: a baseline is needed; nothing changed.
    NeedsBaseline,
}

/// The agent's copy of the documents (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct PolicyClient {
    version: Option<Version>,
    synced: bool,
    documents: BTreeMap<String, String>,
}

impl PolicyClient {
    /// The version held (none before the first baseline).
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// Whether the last baseline and every delta since were applied
    /// without a gap.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The documents held.
    pub fn documents(&self) -> impl Iterator<Item = PolicyDocument> + '_ {
        self.documents.iter().map(|(key, body)| PolicyDocument {
            key: key.clone(),
            body: body.clone(),
        })
    }

    /// Takes a baseline, unless it is older than what is held.
    pub fn load_baseline(&mut self, baseline: PolicyBaseline) -> bool {
        if self.version.is_some_and(|held| baseline.version < held) {
            return false;
        }
        self.version = Some(baseline.version);
        self.documents = baseline.documents;
        self.synced = true;
        true
    }

    /// Applies a delta by the version rules.
    pub fn apply(&mut self, delta: PolicyDelta) -> PolicyOutcome {
        let version = delta.version();
        let Some(held) = self.version else {
            return PolicyOutcome::NeedsBaseline;
        };
        if version <= held {
            return PolicyOutcome::Ignored;
        }
        if !self.synced || version.epoch != held.epoch || version.seq != held.seq + 1 {
            self.synced = false;
            return PolicyOutcome::NeedsBaseline;
        }
        for key in &delta.removes {
            self.documents.remove(key);
        }
        for document in delta.upserts {
            self.documents.insert(document.key, document.body);
        }
        self.version = Some(version);
        PolicyOutcome::Applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(key: &str, body: &str) -> PolicyDocument {
        PolicyDocument {
            key: key.to_owned(),
            body: body.to_owned(),
        }
    }

    #[test]
    fn the_wire_forms_carry_their_tags_and_refuse_another() {
        let limits = DeltaLimits::default();
        let mut producer = PolicyProducer::new(7);
        let delta = producer.update([doc("Namespace/shop", "{}")]).unwrap();
        let line = delta.to_line();
        assert!(
            line.starts_with(r#"{"schema":"edgewise.policy-delta/v1","epoch":7,"#),
            "{line}"
        );
        assert_eq!(
            read_policy_delta(line.as_bytes(), 1, &limits).unwrap(),
            delta
        );
        let untagged = r#"{"epoch": 7, "seq": 1, "removes": ["Namespace/shop"]}"#;
        assert!(read_policy_delta(untagged.as_bytes(), 1, &limits).is_ok());
        let other = line.replace("policy-delta/v1", "policy-delta/v2");
        let error = read_policy_delta(other.as_bytes(), 4, &limits).unwrap_err();
        assert!(error.to_string().contains("line 4: schema"), "{error}");

        let baseline = producer.baseline().to_json();
        let text = String::from_utf8(baseline.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"schema":"edgewise.policy-baseline/v1","#),
            "{text}"
        );
        assert_eq!(
            PolicyBaseline::from_json(&baseline, &limits).unwrap().len(),
            1
        );
        let other = text.replace("policy-baseline/v1", "identity-delta/v1");
        let error = PolicyBaseline::from_json(other.as_bytes(), &limits).unwrap_err();
        assert!(
            error.to_string().contains(
                r#"schema "edgewise.identity-delta/v1", not "edgewise.policy-baseline/v1""#
            ),
            "{error}"
        );
    }

    #[test]
    fn deltas_follow_the_producer_and_a_gap_needs_a_baseline() {
        let mut producer = PolicyProducer::new(7);
        let first = producer
            .update([
                doc("NetworkPolicy/shop/a", "{}"),
                doc("Namespace/shop", "{}"),
            ])
            .unwrap();
        assert!(
            producer
                .update([
                    doc("NetworkPolicy/shop/a", "{}"),
                    doc("Namespace/shop", "{}")
                ])
                .is_none()
        );
        let second = producer.update([doc("AllowList/ops", "a -> b")]).unwrap();
        assert_eq!(second.removes.len(), 2);

        let mut client = PolicyClient::default();
        assert_eq!(client.apply(first.clone()), PolicyOutcome::NeedsBaseline);
        let baseline = PolicyBaseline::from_json(
            &PolicyProducer::new(7).baseline().to_json(),
            &DeltaLimits::default(),
        )
        .unwrap();
        assert!(client.load_baseline(baseline));
        assert_eq!(client.apply(first.clone()), PolicyOutcome::Applied);
        assert_eq!(client.apply(first), PolicyOutcome::Ignored);
        assert_eq!(client.apply(second.clone()), PolicyOutcome::Applied);
        assert_eq!(
            client.documents().collect::<Vec<_>>(),
            [doc("AllowList/ops", "a -> b")]
        );

        let mut gap = second.clone();
        gap.seq += 2;
        assert_eq!(client.apply(gap), PolicyOutcome::NeedsBaseline);
        assert!(!client.synced());
        assert_eq!(
            client.documents().count(),
            1,
            "the last good documents stay"
        );
        let restarted = PolicyProducer::new(8).baseline();
        assert!(client.load_baseline(restarted));
        assert!(client.synced());
    }

    #[test]
    fn bad_keys_and_truncated_baselines_are_refused_whole() {
        let limits = DeltaLimits::default();
        let line = br#"{"epoch":1,"seq":1,"upserts":[{"key":"Pod/x","body":"{}"}]}"#;
        assert!(read_policy_delta(line, 3, &limits).is_err());
        let twice = br#"{"epoch":1,"seq":1,"upserts":[{"key":"Namespace/x","body":"{}"}],"removes":["Namespace/x"]}"#;
        let error = read_policy_delta(twice, 3, &limits)
            .unwrap_err()
            .to_string();
        assert!(error.contains("twice"), "{error}");
        let mut producer = PolicyProducer::new(1);
        producer.update([doc("Namespace/a", "{\"kind\":\"Namespace\"}")]);
        let json = producer.baseline().to_json();
        assert!(PolicyBaseline::from_json(&json[..json.len() - 3], &limits).is_err());
        assert_eq!(
            PolicyBaseline::from_json(&json, &limits).unwrap(),
            producer.baseline()
        );
    }
}
