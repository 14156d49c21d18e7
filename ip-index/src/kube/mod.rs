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
//! addresses) is an [`InputError`] naming it, and the rest of the input is
//! still read. A JSON syntax error ends the reading.

mod model;
mod time;

use core::net::IpAddr;
use std::collections::BTreeMap;

use serde_json::Value;

use self::model::{RawMeta, RawObject};
pub(crate) use self::time::parse_timestamp;
use crate::InputError;
use crate::object::{Node, Object, ObjectMeta, OwnerRef, Pod, PodPhase, Service};

/// The most addresses one object may claim (Kubernetes gives a pod or a
/// service at most one per family, a node a handful).
pub const MAX_IPS_PER_OBJECT: usize = 16;

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

/// Reads every document of `input` (see the module docs).
pub fn read_objects(input: &[u8]) -> Objects {
    let mut objects = Objects::default();
    let stream = serde_json::Deserializer::from_slice(input).into_iter::<Value>();
    for (index, document) in stream.enumerate() {
        let document_number = index + 1;
        match document {
            Ok(value) => read_document(value, document_number, &mut objects),
            Err(error) => {
                objects.errors.push(InputError::Syntax {
                    line: error.line(),
                    column: error.column(),
                    message: error.to_string(),
                });
                break;
            }
        }
    }
    objects
}

fn read_document(value: Value, document: usize, objects: &mut Objects) {
    let Value::Object(mut map) = value else {
        objects.errors.push(InputError::Document {
            document,
            problem: format!("a JSON {}, not an object", json_type(&value)),
        });
        return;
    };
    if let Some(event_type) = map.get("type").and_then(Value::as_str).map(str::to_owned)
        && map.contains_key("object")
    {
        let object = map.remove("object").unwrap_or(Value::Null);
        read_event(&event_type, object, document, objects);
        return;
    }
    if let Some(items) = map.remove("items") {
        let Value::Array(items) = items else {
            objects.errors.push(InputError::Document {
                document,
                problem: format!("`items` is a JSON {}, not an array", json_type(&items)),
            });
            return;
        };
        // A typed list (`PodList`) leaves `kind` out of its items.
        let item_kind = map
            .get("kind")
            .and_then(Value::as_str)
            .and_then(|kind| kind.strip_suffix("List"))
            .filter(|kind| !kind.is_empty())
            .map(str::to_owned);
        for item in items {
            read_object(
                item,
                item_kind.as_deref(),
                document,
                objects,
                Change::Upsert,
            );
        }
        return;
    }
    if map.contains_key("kind") {
        read_object(Value::Object(map), None, document, objects, Change::Upsert);
        return;
    }
    objects.errors.push(InputError::Document {
        document,
        problem: "neither an object with a `kind`, a list with `items`, nor a watch event"
            .to_owned(),
    });
}

fn read_event(event_type: &str, object: Value, document: usize, objects: &mut Objects) {
    match event_type {
        "ADDED" | "MODIFIED" => read_object(object, None, document, objects, Change::Upsert),
        "DELETED" => read_object(object, None, document, objects, Change::Delete),
        "BOOKMARK" => objects.bookmarks += 1,
        "ERROR" => {
            let message = object
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| object.to_string(), str::to_owned);
            objects
                .errors
                .push(InputError::WatchError { document, message });
        }
        other => objects.errors.push(InputError::Document {
            document,
            problem: format!("unknown watch event type {other:?}"),
        }),
    }
}

fn read_object(
    value: Value,
    default_kind: Option<&str>,
    document: usize,
    objects: &mut Objects,
    change: fn(Object) -> Change,
) {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .or(default_kind)
        .unwrap_or("")
        .to_owned();
    if !matches!(kind.as_str(), "Pod" | "Service" | "Node") {
        let label = if kind.is_empty() {
            "<no kind>"
        } else {
            kind.as_str()
        };
        *objects.skipped_kinds.entry(label.to_owned()).or_default() += 1;
        return;
    }
    let name = display_name(&value);
    let fail = |problem: String| InputError::Object {
        document,
        kind: kind.clone(),
        name: name.clone(),
        problem,
    };
    let raw = match serde_json::from_value::<RawObject>(value) {
        Ok(raw) => raw,
        Err(error) => {
            objects.errors.push(fail(error.to_string()));
            return;
        }
    };
    match convert(&kind, raw) {
        Ok(object) => objects.changes.push(change(object)),
        Err(problem) => objects.errors.push(fail(problem)),
    }
}

/// `namespace/name` (or what there is of it) for error messages, read before
/// the object is known to be well-formed.
fn display_name(value: &Value) -> String {
    let metadata = value.get("metadata");
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
        labels: raw.labels.unwrap_or_default(),
        owner,
        created: optional_timestamp(raw.creation_timestamp, "metadata.creationTimestamp")?,
        terminating: raw.deletion_timestamp.is_some_and(|s| !s.is_empty()),
    })
}
