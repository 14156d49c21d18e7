//! [`FakeApiServer`]: a Kubernetes API server for tests, where no real one
//! can run. It speaks the list and watch protocol the way the real one
//! does, over HTTP on loopback (served by `edgewise-http-server`):
//! - `GET /api/v1/pods` (and services, nodes, namespaces,
//!   `/apis/discovery.k8s.io/v1/endpointslices`,
//!   `/apis/networking.k8s.io/v1/networkpolicies`): a `…List` with the
//!   collection's `resourceVersion`;
//! - `?watch=true&resourceVersion=R`: a chunked stream of `WatchEvent`s
//!   (`ADDED`, `MODIFIED`, `DELETED` after R, then as they happen), a
//!   `BOOKMARK` every half second, the stream ending after `timeoutSeconds`
//!   or when [`FakeApiServer::drop_watches`] says so; a resourceVersion
//!   older than the last [`FakeApiServer::compact`] gets an `ERROR` event
//!   with a 410 `Status` (Expired), as etcd compaction gives.
//!
//! Objects are JSON values (tests build them with k8s-openapi and
//! `serde_json::to_value`); every change gets the next resourceVersion.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgewise_http_server::{Limits, Method, Reply, Request, Server, Service, StatusCode};
use serde_json::{Value, json};

/// A collection: its path, its objects' `kind` and `apiVersion`.
const COLLECTIONS: [(&str, &str, &str); 6] = [
    ("/api/v1/pods", "Pod", "v1"),
    ("/api/v1/services", "Service", "v1"),
    ("/api/v1/nodes", "Node", "v1"),
    ("/api/v1/namespaces", "Namespace", "v1"),
    (
        "/apis/discovery.k8s.io/v1/endpointslices",
        "EndpointSlice",
        "discovery.k8s.io/v1",
    ),
    (
        "/apis/networking.k8s.io/v1/networkpolicies",
        "NetworkPolicy",
        "networking.k8s.io/v1",
    ),
];

#[derive(Debug, Default)]
struct Store {
    version: u64,
    /// By kind, then `namespace/name`.
    objects: BTreeMap<&'static str, BTreeMap<String, Value>>,
    /// (resourceVersion, kind, type, object), oldest first.
    events: Vec<(u64, &'static str, &'static str, Value)>,
    /// Watches from before this resourceVersion get 410 Gone.
    compacted: u64,
    /// Bumped to end every open watch.
    generation: u64,
}

#[derive(Debug, Default)]
struct Shared {
    store: Mutex<Store>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fake (see the module docs).
pub struct FakeApiServer {
    shared: Arc<Shared>,
    server: Server,
}

fn kind_of(path: &str) -> Option<(&'static str, &'static str, &'static str)> {
    COLLECTIONS.iter().copied().find(|(p, _, _)| *p == path)
}

fn name_of(object: &Value) -> String {
    let meta = &object["metadata"];
    format!(
        "{}/{}",
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("")
    )
}

impl FakeApiServer {
    /// A fake on a free loopback port, empty.
    ///
    /// # Panics
    /// When it cannot listen (a test's environment is broken).
    pub fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let server = Server::start(
            "127.0.0.1:0".parse().expect("an address"),
            Limits::default(),
            None,
            Arc::new(Api(Arc::clone(&shared))),
        )
        .expect("the fake API server listens");
        Self { shared, server }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.local_addr())
    }

    /// Writes a kubeconfig for it to `path`.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn write_kubeconfig(&self, path: &Path) {
        std::fs::write(path, kubeconfig(&self.url())).expect("write the kubeconfig");
    }

    /// Adds or replaces an object (its `kind` says where).
    ///
    /// # Panics
    /// For a kind it does not serve.
    pub fn apply(&self, object: Value) {
        let kind = object["kind"].as_str().unwrap_or("").to_owned();
        let (_, kind, _) = COLLECTIONS
            .iter()
            .copied()
            .find(|(_, k, _)| *k == kind)
            .expect("a kind the fake serves");
        let mut store = self.shared.lock();
        store.version += 1;
        let version = store.version;
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let name = name_of(&object);
        let kind_objects = store.objects.entry(kind).or_default();
        let kind_event = if kind_objects.insert(name, object.clone()).is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        store.events.push((version, kind, kind_event, object));
        drop(store);
        self.shared.changed.notify_all();
    }

    /// Deletes an object (by kind, namespace and name).
    pub fn delete(&self, object: &Value) {
        let kind = object["kind"].as_str().unwrap_or("");
        let Some((_, kind, _)) = COLLECTIONS.iter().copied().find(|(_, k, _)| *k == kind) else {
            return;
        };
        let mut store = self.shared.lock();
        let Some(mut gone) = store
            .objects
            .get_mut(kind)
            .and_then(|objects| objects.remove(&name_of(object)))
        else {
            return;
        };
        store.version += 1;
        let version = store.version;
        gone["metadata"]["resourceVersion"] = json!(version.to_string());
        store.events.push((version, kind, "DELETED", gone));
        drop(store);
        self.shared.changed.notify_all();
    }

    /// Forgets the history: a watch resuming from before now gets 410.
    pub fn compact(&self) {
        let mut store = self.shared.lock();
        store.compacted = store.version + 1;
        store.events.clear();
    }

    /// Ends every open watch stream (a dropped connection).
    pub fn drop_watches(&self) {
        self.shared.lock().generation += 1;
        self.shared.changed.notify_all();
    }
}

/// A kubeconfig for a server at `url` (no credentials).
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
    )
}

/// The fake's routes.
struct Api(Arc<Shared>);

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

impl Service for Api {
    fn body_limit(&self, _method: &Method, _path: &str) -> u64 {
        0
    }

    fn admit(&self, head: &edgewise_http_server::Head) -> Option<Reply> {
        match (&head.method, kind_of(&head.path)) {
            (&Method::GET, Some(_)) => None,
            _ => Some(Reply::text(StatusCode::NOT_FOUND, "not found\n")),
        }
    }

    fn handle(&self, request: Request) -> Reply {
        let Some((_, kind, api_version)) = kind_of(&request.head.path) else {
            return Reply::text(StatusCode::NOT_FOUND, "not found\n");
        };
        let query = request.head.query.as_str();
        let watching = matches!(query_value(query, "watch"), Some("true" | "1"));
        if !watching {
            let store = self.0.lock();
            let items: Vec<&Value> = store
                .objects
                .get(kind)
                .map(|objects| objects.values().collect())
                .unwrap_or_default();
            let list = json!({
                "kind": format!("{kind}List"),
                "apiVersion": api_version,
                "metadata": {"resourceVersion": store.version.to_string()},
                "items": items,
            });
            return Reply::ok(
                "application/json",
                serde_json::to_vec(&list).unwrap_or_default(),
            );
        }
        let from: u64 = query_value(query, "resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let timeout = query_value(query, "timeoutSeconds")
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(290), Duration::from_secs);
        let (sender, chunks) = tokio::sync::mpsc::channel(64);
        let shared = Arc::clone(&self.0);
        std::thread::spawn(move || stream(&shared, kind, api_version, from, timeout, &sender));
        Reply::channel("application/json", chunks)
    }
}

fn line(value: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// One watch: what happened after `from`, then changes as they come.
fn stream(
    shared: &Shared,
    kind: &'static str,
    api_version: &'static str,
    from: u64,
    timeout: Duration,
    out: &tokio::sync::mpsc::Sender<Bytes>,
) {
    let send = |value: &Value| out.blocking_send(line(value)).is_ok();
    let deadline = Instant::now() + timeout;
    let mut store = shared.lock();
    if from != 0 && from < store.compacted {
        let gone = json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {from} ({})", store.compacted),
            "reason": "Expired", "code": 410}});
        drop(store);
        let _ = send(&gone);
        return;
    }
    let generation = store.generation;
    let mut next = from;
    loop {
        // Events are kept in resourceVersion order: skip to those after
        // `next` instead of walking the whole history at every wake.
        let after = store
            .events
            .partition_point(|(version, ..)| *version <= next);
        let events: Vec<Value> = store.events[after..]
            .iter()
            .filter(|(_, k, _, _)| *k == kind)
            .map(|(_, _, kind_event, object)| json!({"type": kind_event, "object": object}))
            .collect();
        next = store.version;
        let bookmark = json!({"type": "BOOKMARK", "object": {
            "kind": kind, "apiVersion": api_version,
            "metadata": {"resourceVersion": next.to_string()}}});
        drop(store);
        for event in &events {
            if !send(event) {
                return;
            }
        }
        if events.is_empty() && !send(&bookmark) {
            return;
        }
        store = shared.lock();
        if store.generation != generation || Instant::now() >= deadline {
            return;
        }
        store = shared
            .changed
            .wait_timeout(store, Duration::from_millis(500))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        if store.generation != generation {
            return;
        }
    }
}
