//! Secret reads by service accounts, from the Kubernetes API server's audit
//! webhook (`audit.k8s.io/v1` `EventList` bodies, or one bare `Event`).
//!
//! Kept: events at stage `ResponseComplete` whose verb is `get`, `list` or
//! `watch`, on core-group `secrets` (no subresource), by a user
//! `system:serviceaccount:NAMESPACE:NAME`, that were allowed: the response
//! code is 2xx and the authorizer's decision annotation, when present, is
//! `allow`. Only names are kept, never values (a `Metadata`-level policy
//! sends none, and nothing else is read from the body).
//!
//! Everything in the body is untrusted: the body size and the events per
//! body are capped ([`AuditLimits`]), names must be Kubernetes names, and
//! every event that is dropped is counted by [`AuditDrop`] reason, never a
//! panic. A read is attributed to every workload running as the service
//! account (see [`crate::IpIndex::workloads_of_service_account`]), never
//! narrowed to one.

use serde::Deserialize;
use serde_json::Value;

use crate::IpIndex;
use crate::kube::parse_timestamp;
use crate::object::{Timestamp, Workload};

/// Bounds on one audit body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditLimits {
    /// Largest body read (8 MiB by default); a larger one is dropped whole.
    pub max_body_bytes: usize,
    /// Most events read from one body (4,096 by default; the API server's
    /// webhook batches hold 400 by default); the rest are dropped.
    pub max_events: usize,
}

impl Default for AuditLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 << 20,
            max_events: 4096,
        }
    }
}

/// Why an audit event (or a whole body) was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditDrop {
    /// The body is larger than [`AuditLimits::max_body_bytes`] (counted once).
    BodyTooLarge,
    /// The body is not JSON, or neither an `EventList` nor an `Event`
    /// (counted once).
    MalformedBody,
    /// Beyond [`AuditLimits::max_events`] (counted per event).
    TooManyEvents,
    /// An event with a field of the wrong JSON type.
    MalformedEvent,
    /// Not at stage `ResponseComplete`.
    Stage,
    /// Not `get`, `list` or `watch`.
    Verb,
    /// Not core-group `secrets`.
    NotSecrets,
    /// Not a service account.
    NotServiceAccount,
    /// Denied, failed, or not shown to be allowed.
    Denied,
    /// A namespace or name that is not a Kubernetes name.
    BadName,
}

impl AuditDrop {
    /// Every reason label, in the order of [`AuditDrop::index`].
    pub const REASONS: [&'static str; 10] = [
        "body-too-large",
        "malformed-body",
        "too-many-events",
        "malformed-event",
        "stage",
        "verb",
        "not-secrets",
        "not-service-account",
        "denied",
        "bad-name",
    ];

    /// A dense index into [`AuditDrop::REASONS`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// A stable label for counting by reason.
    pub fn reason(self) -> &'static str {
        Self::REASONS[self.index()]
    }
}

/// The verb of a secret read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretVerb {
    /// One secret by name.
    Get,
    /// Every secret of a namespace (or of the cluster).
    List,
    /// A watch on secrets.
    Watch,
}

impl SecretVerb {
    /// The verb as the API server writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
        }
    }
}

/// One allowed secret read by a service account, before attribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretAccess {
    /// The secret's namespace (none for a cluster-wide list or watch).
    pub namespace: Option<String>,
    /// The secret's name (none for a list or watch of all).
    pub name: Option<String>,
    /// get, list or watch.
    pub verb: SecretVerb,
    /// The service account's namespace.
    pub account_namespace: String,
    /// The service account's name.
    pub account: String,
    /// `auditID`.
    pub audit_id: Option<String>,
    /// `stageTimestamp`, else `requestReceivedTimestamp`.
    pub time: Option<Timestamp>,
}

/// A secret read attributed to the workloads running as its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRead {
    /// The read.
    pub access: SecretAccess,
    /// Every workload with a pod running as the account (empty when none
    /// is known to the index).
    pub workloads: Vec<Workload>,
}

/// What one audit body gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditBatch {
    /// The reads kept, in body order.
    pub accesses: Vec<SecretAccess>,
    /// Drops, indexed by [`AuditDrop::index`].
    pub dropped: [u64; AuditDrop::REASONS.len()],
}

impl AuditBatch {
    /// Drops for one reason.
    pub fn dropped(&self, reason: AuditDrop) -> u64 {
        self.dropped[reason.index()]
    }

    /// Attributes every read to the workloads of its service account.
    pub fn attribute(self, index: &IpIndex) -> Vec<SecretRead> {
        self.accesses
            .into_iter()
            .map(|access| SecretRead {
                workloads: index
                    .workloads_of_service_account(&access.account_namespace, &access.account),
                access,
            })
            .collect()
    }

    fn drop_one(&mut self, reason: AuditDrop, count: u64) {
        self.dropped[reason.index()] += count;
    }
}

/// Reads one audit webhook body.
pub fn read_audit(body: &[u8], limits: &AuditLimits) -> AuditBatch {
    let mut batch = AuditBatch::default();
    if body.len() > limits.max_body_bytes {
        batch.drop_one(AuditDrop::BodyTooLarge, 1);
        return batch;
    }
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        batch.drop_one(AuditDrop::MalformedBody, 1);
        return batch;
    };
    let kind = map.get("kind").and_then(Value::as_str).map(str::to_owned);
    let events = match (kind.as_deref(), map.remove("items")) {
        (Some("EventList") | None, Some(Value::Array(items))) => items,
        (Some("Event"), None) => vec![Value::Object(map)],
        _ => {
            batch.drop_one(AuditDrop::MalformedBody, 1);
            return batch;
        }
    };
    let extra = events.len().saturating_sub(limits.max_events);
    batch.drop_one(AuditDrop::TooManyEvents, extra as u64);
    for event in events.into_iter().take(limits.max_events) {
        match read_event(event) {
            Ok(access) => batch.accesses.push(access),
            Err(reason) => batch.drop_one(reason, 1),
        }
    }
    batch
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawEvent {
    stage: Option<String>,
    verb: Option<String>,
    #[serde(rename = "auditID")]
    audit_id: Option<String>,
    user: Option<RawUser>,
    object_ref: Option<RawObjectRef>,
    response_status: Option<RawResponseStatus>,
    annotations: Option<std::collections::BTreeMap<String, String>>,
    stage_timestamp: Option<String>,
    request_received_timestamp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawUser {
    username: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawObjectRef {
    resource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    api_group: Option<String>,
    subresource: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawResponseStatus {
    code: Option<i64>,
}

const DECISION: &str = "authorization.k8s.io/decision";

fn read_event(event: Value) -> Result<SecretAccess, AuditDrop> {
    let event: RawEvent = serde_json::from_value(event).map_err(|_| AuditDrop::MalformedEvent)?;
    if event.stage.as_deref() != Some("ResponseComplete") {
        return Err(AuditDrop::Stage);
    }
    let verb = match event.verb.as_deref() {
        Some("get") => SecretVerb::Get,
        Some("list") => SecretVerb::List,
        Some("watch") => SecretVerb::Watch,
        _ => return Err(AuditDrop::Verb),
    };
    let object = event.object_ref.unwrap_or_default();
    let core_group = object.api_group.as_deref().is_none_or(str::is_empty);
    let no_subresource = object.subresource.as_deref().is_none_or(str::is_empty);
    if object.resource.as_deref() != Some("secrets") || !core_group || !no_subresource {
        return Err(AuditDrop::NotSecrets);
    }
    let username = event
        .user
        .and_then(|user| user.username)
        .unwrap_or_default();
    let (account_namespace, account) = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .ok_or(AuditDrop::NotServiceAccount)?;
    let decision = event.annotations.as_ref().and_then(|a| a.get(DECISION));
    let code = event.response_status.and_then(|status| status.code);
    let allowed =
        decision.is_none_or(|d| d == "allow") && code.is_some_and(|c| (200..300).contains(&c));
    if !allowed {
        return Err(AuditDrop::Denied);
    }
    let checked = |text: Option<String>| match text.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) if is_kubernetes_name(&text) => Ok(Some(text)),
        Some(_) => Err(AuditDrop::BadName),
    };
    if !is_kubernetes_name(account_namespace) || !is_kubernetes_name(account) {
        return Err(AuditDrop::BadName);
    }
    Ok(SecretAccess {
        namespace: checked(object.namespace)?,
        name: checked(object.name)?,
        verb,
        account_namespace: account_namespace.to_owned(),
        account: account.to_owned(),
        audit_id: event
            .audit_id
            .filter(|id| id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic())),
        time: event
            .stage_timestamp
            .or(event.request_received_timestamp)
            .as_deref()
            .and_then(parse_timestamp),
    })
}

/// A DNS subdomain name (RFC 1123): what Kubernetes allows for namespaces,
/// service accounts and secrets.
fn is_kubernetes_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    (1..=253).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}
