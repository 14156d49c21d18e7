//! [`ClusterState`]: the objects the watchers hold, by kind, as the JSON
//! the API server serves (k8s-openapi writes it), ready for ip-index,
//! edge-set and the Service catalog, which read Kubernetes JSON.
//!
//! A watch restart (the first list, or a relist after a 410 Gone) is
//! buffered and replaces the kind's objects whole when it is done: objects
//! that still exist stay, objects deleted meanwhile go, and readers never
//! see a half-listed kind. A kind is synced once its first list is done.
//!
//! Each change is also kept in a bounded journal ([`JOURNAL`] entries), so
//! that a reader that keeps its own state (the identity producer) applies
//! what changed since it last looked ([`ClusterState::changes_since`])
//! instead of reading everything again. A relist, or a reader further
//! behind than the journal, is told to read everything
//! ([`Changes::Everything`]): the journal never hides a change.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use serde_json::Value;

/// Changes the journal keeps.
pub const JOURNAL: usize = 16_384;

/// One change of the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectChange {
    /// The object's kind.
    pub kind: Kind,
    /// The object as applied, or as it was when deleted.
    pub object: Arc<Value>,
    /// Whether it was deleted.
    pub deleted: bool,
}

/// What changed since a reader's version.
#[derive(Debug, Clone, PartialEq)]
pub enum Changes {
    /// Nothing.
    Nothing,
    /// These, in order.
    Since(Vec<ObjectChange>),
    /// Too much to say change by change (a relist, a reader further
    /// behind than the journal, a first look): read every object.
    Everything,
}

/// A kind the watchers follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Pods: addresses, owners, labels, service accounts.
    Pod,
    /// Services: ClusterIPs, selectors, ports.
    Service,
    /// EndpointSlices: a Service's ready backends.
    EndpointSlice,
    /// Nodes: their addresses.
    Node,
    /// Namespaces: their labels (NetworkPolicy namespace selectors).
    Namespace,
    /// NetworkPolicies.
    NetworkPolicy,
}

impl Kind {
    /// Every kind watched.
    pub const ALL: [Kind; 6] = [
        Kind::Pod,
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Node,
        Kind::Namespace,
        Kind::NetworkPolicy,
    ];

    /// The `kind` of its objects.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Node => "Node",
            Kind::Namespace => "Namespace",
            Kind::NetworkPolicy => "NetworkPolicy",
        }
    }
}

/// The objects held (see the module docs).
#[derive(Debug, Default)]
pub struct ClusterState {
    objects: BTreeMap<(Kind, String), Arc<Value>>,
    relisting: BTreeMap<Kind, BTreeMap<String, Arc<Value>>>,
    synced: BTreeSet<Kind>,
    version: u64,
    relists: u64,
    /// Changes after `floor`, each with the version it made.
    journal: VecDeque<(u64, ObjectChange)>,
    floor: u64,
}

/// An object's identity: its uid, else `namespace/name`.
fn key_of(value: &Value) -> String {
    let meta = value.get("metadata");
    let field = |name: &str| meta.and_then(|m| m.get(name)).and_then(Value::as_str);
    match field("uid") {
        Some(uid) if !uid.is_empty() => uid.to_owned(),
        _ => format!(
            "{}/{}",
            field("namespace").unwrap_or(""),
            field("name").unwrap_or("")
        ),
    }
}

/// `value` with its `kind` set (a list's items may not say it).
fn with_kind(kind: Kind, mut value: Value) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.insert("kind".to_owned(), Value::from(kind.as_str()));
    }
    value
}

impl ClusterState {
    fn record(&mut self, kind: Kind, object: Arc<Value>, deleted: bool) {
        self.version += 1;
        if self.journal.len() >= JOURNAL
            && let Some((version, _)) = self.journal.pop_front()
        {
            self.floor = version;
        }
        self.journal.push_back((
            self.version,
            ObjectChange {
                kind,
                object,
                deleted,
            },
        ));
    }

    /// An object was added or changed.
    pub fn apply(&mut self, kind: Kind, value: Value) {
        let value = Arc::new(with_kind(kind, value));
        self.objects
            .insert((kind, key_of(&value)), Arc::clone(&value));
        self.record(kind, value, false);
    }

    /// An object was deleted.
    pub fn delete(&mut self, kind: Kind, value: &Value) {
        if let Some(old) = self.objects.remove(&(kind, key_of(value))) {
            self.record(kind, old, true);
        }
    }

    /// What changed after `seen` (a version this state gave); `None`: a
    /// reader that has seen nothing yet.
    pub fn changes_since(&self, seen: Option<u64>) -> Changes {
        match seen {
            Some(seen) if seen == self.version => Changes::Nothing,
            Some(seen) if seen >= self.floor && seen < self.version => Changes::Since(
                self.journal
                    .iter()
                    .filter(|(version, _)| *version > seen)
                    .map(|(_, change)| change.clone())
                    .collect(),
            ),
            _ => Changes::Everything,
        }
    }

    /// The objects of `kind`.
    pub fn objects(&self, kind: Kind) -> impl Iterator<Item = &Arc<Value>> {
        self.objects
            .range((kind, String::new())..)
            .take_while(move |((k, _), _)| *k == kind)
            .map(|(_, value)| value)
    }

    /// A list of `kind` starts (the first, or a relist).
    pub fn relist_start(&mut self, kind: Kind) {
        self.relisting.insert(kind, BTreeMap::new());
    }

    /// An object of the list under way.
    pub fn relist_apply(&mut self, kind: Kind, value: Value) {
        let value = with_kind(kind, value);
        self.relisting
            .entry(kind)
            .or_default()
            .insert(key_of(&value), Arc::new(value));
    }

    /// The list of `kind` is done: it replaces the kind's objects.
    pub fn relist_done(&mut self, kind: Kind) {
        let listed = self.relisting.remove(&kind).unwrap_or_default();
        self.objects.retain(|(k, _), _| *k != kind);
        for (key, value) in listed {
            self.objects.insert((kind, key), value);
        }
        if !self.synced.insert(kind) {
            self.relists += 1;
        }
        self.version += 1;
        // Readers take everything after a relist.
        self.journal.clear();
        self.floor = self.version;
    }

    /// Whether every kind has been listed once.
    pub fn synced(&self) -> bool {
        Kind::ALL.iter().all(|kind| self.synced.contains(kind))
    }

    /// A number that changes with every change held.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Lists done after a kind's first (410 Gone, a dropped watch that
    /// could not resume).
    pub fn relists(&self) -> u64 {
        self.relists
    }

    /// Objects held of `kind`.
    pub fn count(&self, kind: Kind) -> usize {
        self.objects.keys().filter(|(k, _)| *k == kind).count()
    }

    /// Every object as one Kubernetes `List` document.
    pub fn to_json_list(&self) -> Vec<u8> {
        let items: Vec<&Value> = self.objects.values().map(|v| &**v).collect();
        serde_json::to_vec(&serde_json::json!({"kind": "List", "apiVersion": "v1", "items": items}))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, ip: &str) -> Value {
        serde_json::json!({"metadata": {"name": uid, "namespace": "x", "uid": uid},
                           "status": {"podIP": ip}})
    }

    #[test]
    fn a_relist_keeps_what_exists_and_forgets_what_went() {
        let mut state = ClusterState::default();
        state.relist_start(Kind::Pod);
        state.relist_apply(Kind::Pod, pod("a", "10.0.0.1"));
        state.relist_apply(Kind::Pod, pod("b", "10.0.0.2"));
        state.relist_done(Kind::Pod);
        assert_eq!(state.count(Kind::Pod), 2);
        assert!(!state.synced(), "only pods listed");
        // A relist while b was deleted and c added: a stays, b goes.
        state.relist_start(Kind::Pod);
        state.relist_apply(Kind::Pod, pod("a", "10.0.0.1"));
        assert_eq!(state.count(Kind::Pod), 2, "unchanged until done");
        state.relist_apply(Kind::Pod, pod("c", "10.0.0.2"));
        state.relist_done(Kind::Pod);
        let list: Value = serde_json::from_slice(&state.to_json_list()).unwrap();
        let uids: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["metadata"]["uid"].as_str().unwrap())
            .collect();
        assert_eq!(uids, ["a", "c"]);
        assert_eq!(list["items"][0]["kind"], "Pod");
        assert_eq!(state.relists(), 1);
    }

    #[test]
    fn the_journal_says_what_changed_and_everything_after_a_relist() {
        let mut state = ClusterState::default();
        assert_eq!(state.changes_since(None), Changes::Everything);
        state.relist_start(Kind::Pod);
        state.relist_done(Kind::Pod);
        let seen = state.version();
        assert_eq!(state.changes_since(Some(seen)), Changes::Nothing);
        state.apply(Kind::Pod, pod("a", "10.0.0.1"));
        state.delete(Kind::Pod, &pod("a", "10.0.0.1"));
        state.delete(Kind::Pod, &pod("never", "10.0.0.9"));
        let Changes::Since(changes) = state.changes_since(Some(seen)) else {
            panic!("two changes");
        };
        assert_eq!(changes.len(), 2);
        assert!(!changes[0].deleted && changes[1].deleted);
        assert_eq!(changes[1].object["metadata"]["uid"], "a");
        let later = state.version();
        state.relist_start(Kind::Pod);
        state.relist_done(Kind::Pod);
        assert_eq!(state.changes_since(Some(later)), Changes::Everything);

        let seen = state.version();
        for n in 0..=JOURNAL {
            state.apply(Kind::Pod, pod(&n.to_string(), "10.0.0.2"));
        }
        assert_eq!(
            state.changes_since(Some(seen)),
            Changes::Everything,
            "further behind than the journal"
        );
        assert_eq!(state.objects(Kind::Pod).count(), JOURNAL + 1);
        assert_eq!(state.objects(Kind::Service).count(), 0);
    }
}
