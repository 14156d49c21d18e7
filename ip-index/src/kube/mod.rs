//! Kubernetes JSON as users have it, turned into [`Change`]s:
//! - a `List` (`kubectl get pods,services,nodes -A -o json`) or a typed list
//!   (`PodList`, whose items carry no `kind`);
//! - single objects;
//! - watch events, `{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR",
//!   "object": {...}}`, as the API server streams them;
//!
//! in any mix, one after another (whitespace- or newline-separated, as
//! `kubectl get -w -o json` and watch streams write them).
//!
//! Kinds other than Pod, Service and Node are skipped and counted; unknown
//! fields are ignored. An object of a known kind whose fields cannot be used
//! (a field of the wrong JSON type, an address that is not an IP, a
//! timestamp that is not RFC 3339, more than [`MAX_IPS_PER_OBJECT`]
//! addresses, a container port out of range, a name, namespace, label key
//! or value longer than Kubernetes allows, more than [`MAX_LABELS`]
//! labels) is an [`InputError`] naming it, and the rest of the input is
//! still read. A JSON syntax error ends the
//! reading.
//!
//! [`walk`] is the document walker underneath, open to other crates for the
//! kinds they read (edge-set reads NetworkPolicy and Namespace with it).

mod model;
mod time;

use core::net::IpAddr;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use self::model::{RawContainer, RawMeta, RawObject};
pub(crate) use self::time::parse_timestamp;
use crate::InputError;
use crate::object::{
    NamedPort, Node, Object, ObjectMeta, OwnerRef, Pod, PodPhase, Protocol, Service,
};

/// The most addresses one object may claim (Kubernetes gives a pod or a
/// service at most one per family, a node a handful).
pub const MAX_IPS_PER_OBJECT: usize = 16;

/// The most named container ports one pod may carry.
pub const MAX_NAMED_PORTS: usize = 64;

/// One change to apply to the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The object exists in this state (a listed object, `ADDED`,
    /// `MODIFIED`).
    Upsert(Object),
    /// The object is gone (`DELETED`; the object is its last state).
    Delete(Object),
}

/// Everything read from one input.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Objects {
    /// The changes, in input order.
    pub changes: Vec<Change>,
    /// Objects of other kinds, counted by kind.
    pub skipped_kinds: BTreeMap<String, usize>,
    /// `BOOKMARK` events (they change nothing).
    pub bookmarks: usize,
    /// What could not be used.
    pub errors: Vec<InputError>,
}

/// One object found in a Kubernetes JSON input, not converted yet: what
/// [`walk`] hands to its visitor.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundObject {
    /// 1-based position of its document in the input.
    pub document: usize,
    /// Its `kind`, or its list's kind without `List`; empty when neither
    /// says.
    pub kind: String,
    /// The object as JSON.
    pub value: Value,
    /// It came from a `DELETED` watch event.
    pub deleted: bool,
}

impl FoundObject {
    /// `namespace/name`, `name` or `<unnamed>`, read before the object is
    /// known to be well-formed.
    pub fn display_name(&self) -> String {
        let metadata = self.value.get("metadata");
        let field = |key| {
            metadata
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        match (field("namespace"), field("name")) {
            (Some(namespace), Some(name)) => format!("{namespace}/{name}"),
            (None, Some(name)) => name.to_owned(),
            (_, None) => "<unnamed>".to_owned(),
        }
    }

    /// An [`InputError::Object`] naming this object.
    pub fn error(&self, problem: String) -> InputError {
        InputError::Object {
            document: self.document,
            kind: self.kind.clone(),
            name: self.display_name(),
            problem,
        }
    }
}

/// What [`walk`] finds, in input order.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// An object (listed, single, or in a watch event).
    Object(FoundObject),
    /// A `BOOKMARK` watch event.
    Bookmark,
    /// A document that is not usable, a watch `ERROR`, or a syntax error
    /// (which ends the walk).
    Error(InputError),
}

/// Walks every document of `input` (lists, typed lists, single objects and
/// watch events, in any mix; see the module docs) and hands each object to
/// `visit`, of any kind. [`read_objects`] is built on it; other crates use
/// it for the kinds they read (NetworkPolicy, Namespace).
pub fn walk(input: &[u8], mut visit: impl FnMut(Found)) {
    let stream = serde_json::Deserializer::from_slice(input).into_iter::<Value>();
    for (index, document) in stream.enumerate() {
        let document_number = index + 1;
        match document {
            Ok(value) => walk_document(value, document_number, &mut visit),
            Err(error) => {
                visit(Found::Error(InputError::Syntax {
                    line: error.line(),
                    column: error.column(),
                    message: error.to_string(),
                }));
                break;
            }
        }
    }
}

/// Reads every document of `input` (see the module docs).
pub fn read_objects(input: &[u8]) -> Objects {
    let mut objects = Objects::default();
    walk(input, |found| match found {
        Found::Object(found) => read_object(&found, &mut objects),
        Found::Bookmark => objects.bookmarks += 1,
        Found::Error(error) => objects.errors.push(error),
    });
    objects
}

fn walk_document(value: Value, document: usize, visit: &mut impl FnMut(Found)) {
    let Value::Object(mut map) = value else {
        visit(Found::Error(InputError::Document {
            document,
            problem: format!("a JSON {}, not an object", json_type(&value)),
        }));
        return;
    };
    if let Some(event_type) = map.get("type").and_then(Value::as_str).map(str::to_owned)
        && map.contains_key("object")
    {
        let object = map.remove("object").unwrap_or(Value::Null);
        walk_event(&event_type, object, document, visit);
        return;
    }
    if let Some(items) = map.remove("items") {
        let Value::Array(items) = items else {
            visit(Found::Error(InputError::Document {
                document,
                problem: format!("`items` is a JSON {}, not an array", json_type(&items)),
            }));
            return;
        };
        // A typed list (`PodList`) leaves `kind` out of its items.
        let item_kind = map
            .get("kind")
            .and_then(Value::as_str)
            .and_then(|kind| kind.strip_suffix("List"))
            .unwrap_or("");
        for item in items {
            visit(Found::Object(found(item, item_kind, document, false)));
        }
        return;
    }
    if map.contains_key("kind") {
        visit(Found::Object(found(
            Value::Object(map),
            "",
            document,
            false,
        )));
        return;
    }
    visit(Found::Error(InputError::Document {
        document,
        problem: "neither an object with a `kind`, a list with `items`, nor a watch event"
            .to_owned(),
    }));
}

fn walk_event(event_type: &str, object: Value, document: usize, visit: &mut impl FnMut(Found)) {
    match event_type {
        "ADDED" | "MODIFIED" => visit(Found::Object(found(object, "", document, false))),
        "DELETED" => visit(Found::Object(found(object, "", document, true))),
        "BOOKMARK" => visit(Found::Bookmark),
        "ERROR" => {
            let message = object
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| object.to_string(), str::to_owned);
            visit(Found::Error(InputError::WatchError { document, message }));
        }
        other => visit(Found::Error(InputError::Document {
            document,
            problem: format!("unknown watch event type {other:?}"),
        })),
    }
}

fn found(value: Value, default_kind: &str, document: usize, deleted: bool) -> FoundObject {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or(default_kind)
        .to_owned();
    FoundObject {
        document,
        kind,
        value,
        deleted,
    }
}

fn read_object(found: &FoundObject, objects: &mut Objects) {
    if !matches!(found.kind.as_str(), "Pod" | "Service" | "Node") {
        let label = if found.kind.is_empty() {
            "<no kind>"
        } else {
            found.kind.as_str()
        };
        *objects.skipped_kinds.entry(label.to_owned()).or_default() += 1;
        return;
    }
    let change = if found.deleted {
        Change::Delete
    } else {
        Change::Upsert
    };
    let converted = RawObject::deserialize(&found.value)
        .map_err(|error| error.to_string())
        .and_then(|raw| convert(&found.kind, raw));
    match converted {
        Ok(object) => objects.changes.push(change(object)),
        Err(problem) => objects.errors.push(found.error(problem)),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn convert(kind: &str, raw: RawObject) -> Result<Object, String> {
    let spec = raw.spec.unwrap_or_default();
    let status = raw.status.unwrap_or_default();
    let namespaced = kind != "Node";
    let meta = convert_meta(raw.metadata.unwrap_or_default(), namespaced)?;
    match kind {
        "Pod" => {
            let mut ips = Vec::new();
            for (index, pod_ip) in status.pod_ips.into_iter().flatten().enumerate() {
                let text = pod_ip.ip.unwrap_or_default();
                push_ip(&mut ips, &text, &format!("status.podIPs[{index}].ip"))?;
            }
            if let Some(text) = status.pod_ip.filter(|s| !s.is_empty()) {
                push_ip(&mut ips, &text, "status.podIP")?;
            }
            let ready = status.conditions.into_iter().flatten().any(|condition| {
                condition.condition_type.as_deref() == Some("Ready")
                    && condition.status.as_deref() == Some("True")
            });
            let phase = match status.phase.as_deref() {
                Some("Running") => PodPhase::Running,
                Some("Succeeded") => PodPhase::Succeeded,
                Some("Failed") => PodPhase::Failed,
                Some("Pending") | None => PodPhase::Pending,
                Some(_) => PodPhase::Unknown,
            };
            let started = optional_timestamp(status.start_time, "status.startTime")?;
            Ok(Object::Pod(Pod {
                meta,
                ips,
                phase,
                ready,
                host_network: spec.host_network.unwrap_or(false),
                service_account: spec
                    .service_account_name
                    .or(spec.service_account)
                    .filter(|s| !s.is_empty()),
                node_name: spec.node_name.filter(|s| !s.is_empty()),
                started,
                named_ports: named_ports(spec.containers.unwrap_or_default())?,
                secret_volumes: crate::volumes::secret_volumes(spec.volumes.unwrap_or_default()),
            }))
        }
        "Service" => {
            let mut cluster_ips = Vec::new();
            for (index, text) in spec.cluster_ips.into_iter().flatten().enumerate() {
                if !is_headless(&text) {
                    push_ip(
                        &mut cluster_ips,
                        &text,
                        &format!("spec.clusterIPs[{index}]"),
                    )?;
                }
            }
            if let Some(text) = spec.cluster_ip.filter(|text| !is_headless(text)) {
                push_ip(&mut cluster_ips, &text, "spec.clusterIP")?;
            }
            Ok(Object::Service(Service { meta, cluster_ips }))
        }
        _ => {
            let mut internal_ips = Vec::new();
            for (index, address) in status.addresses.into_iter().flatten().enumerate() {
                if address.address_type.as_deref() == Some("InternalIP") {
                    let text = address.address.unwrap_or_default();
                    push_ip(
                        &mut internal_ips,
                        &text,
                        &format!("status.addresses[{index}].address"),
                    )?;
                }
            }
            Ok(Object::Node(Node { meta, internal_ips }))
        }
    }
}

/// The containers' named ports. Kubernetes requires a port number in
/// 1..=65535 and a protocol of TCP, UDP or SCTP; anything else is an error
/// naming the field.
fn named_ports(containers: Vec<RawContainer>) -> Result<Vec<NamedPort>, String> {
    let mut named = Vec::new();
    for (c, container) in containers.into_iter().enumerate() {
        for (p, port) in container.ports.into_iter().flatten().enumerate() {
            let field = format!("spec.containers[{c}].ports[{p}]");
            let Some(name) = port.name.filter(|name| !name.is_empty()) else {
                continue;
            };
            let number = port
                .container_port
                .and_then(|n| u16::try_from(n).ok())
                .filter(|&n| n != 0)
                .ok_or_else(|| format!("{field}.containerPort is not a port in 1..=65535"))?;
            let protocol = match port.protocol.as_deref() {
                None | Some("") => Protocol::Tcp,
                Some(text) => Protocol::parse(text)
                    .ok_or_else(|| format!("{field}.protocol {text:?} is not TCP, UDP or SCTP"))?,
            };
            if named.len() == MAX_NAMED_PORTS {
                return Err(format!("more than {MAX_NAMED_PORTS} named ports ({field})"));
            }
            named.push(NamedPort {
                name,
                port: number,
                protocol,
            });
        }
    }
    Ok(named)
}

/// The longest object name Kubernetes allows (a DNS subdomain, RFC 1123).
pub const MAX_NAME_BYTES: usize = 253;
/// The longest namespace, label name and label value (a DNS label).
pub const MAX_LABEL_BYTES: usize = 63;
/// The most labels an object may carry here (Kubernetes bounds them by
/// their total size; this keeps one object from costing more than that).
pub const MAX_LABELS: usize = 256;

/// `value` of `field` within Kubernetes' length limit.
fn check_length(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!(
            "{field} is {} bytes long, more than Kubernetes allows ({max})",
            value.len()
        ));
    }
    Ok(())
}

/// `None` (headless) and the empty string (ExternalName) claim no address.
fn is_headless(text: &str) -> bool {
    text.is_empty() || text == "None"
}

fn push_ip(ips: &mut Vec<IpAddr>, text: &str, field: &str) -> Result<(), String> {
    let ip: IpAddr = text
        .parse()
        .map_err(|_| format!("{field} {text:?} is not an IP address"))?;
    if !ips.contains(&ip) {
        if ips.len() == MAX_IPS_PER_OBJECT {
            return Err(format!(
                "more than {MAX_IPS_PER_OBJECT} addresses ({field})"
            ));
        }
        ips.push(ip);
    }
    Ok(())
}

fn optional_timestamp(
    text: Option<String>,
    field: &str,
) -> Result<Option<crate::object::Timestamp>, String> {
    match text.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => parse_timestamp(&text)
            .map(Some)
            .ok_or_else(|| format!("{field} {text:?} is not an RFC 3339 time")),
    }
}

fn convert_meta(raw: RawMeta, namespaced: bool) -> Result<ObjectMeta, String> {
    let name = raw
        .name
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "metadata.name is missing".to_owned())?;
    // The API server always sets a namespaced object's namespace; one
    // written by hand without it lives where kubectl would put it.
    let namespace = namespaced.then(|| {
        raw.namespace
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_owned())
    });
    check_length("metadata.name", &name, MAX_NAME_BYTES)?;
    if let Some(namespace) = &namespace {
        check_length("metadata.namespace", namespace, MAX_LABEL_BYTES)?;
    }
    let labels = raw.labels.unwrap_or_default();
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "metadata.labels has {} labels, more than {MAX_LABELS}",
            labels.len()
        ));
    }
    for (key, value) in &labels {
        // `prefix/name`: a DNS subdomain prefix and a name of 63 at most.
        let (prefix, label_name) = key.rsplit_once('/').unwrap_or(("", key));
        check_length("a label key's prefix", prefix, MAX_NAME_BYTES)?;
        check_length("a label key's name", label_name, MAX_LABEL_BYTES)?;
        check_length("a label value", value, MAX_LABEL_BYTES)?;
    }
    let owners = raw.owner_references.unwrap_or_default();
    let owner = owners
        .iter()
        .find(|owner| owner.controller == Some(true))
        .or_else(|| owners.first())
        .and_then(|owner| {
            Some(OwnerRef {
                kind: owner.kind.clone().filter(|s| !s.is_empty())?,
                name: owner.name.clone().filter(|s| !s.is_empty())?,
            })
        });
    Ok(ObjectMeta {
        namespace,
        name,
        uid: raw.uid.filter(|s| !s.is_empty()),
        resource_version: raw.resource_version.filter(|s| !s.is_empty()),
        labels,
        owner,
        created: optional_timestamp(raw.creation_timestamp, "metadata.creationTimestamp")?,
        terminating: raw.deletion_timestamp.is_some_and(|s| !s.is_empty()),
    })
}
