//! [`ClusterWatch`]: kube-rs watchers for every [`Kind`], on a runtime of
//! their own thread, keeping a [`ClusterState`].
//!
//! Each kind is listed, then watched from the list's resourceVersion with
//! bookmarks (kube-runtime's watcher); a 410 Gone or a watch that cannot
//! resume relists the kind, which replaces it whole when done
//! ([`ClusterState::relist_done`]); errors back off (kube-runtime's
//! default backoff, up to a minute) and are counted. The caller polls
//! [`ClusterWatch::snapshot_if_changed`] and is told when every kind has
//! been listed once ([`ClusterWatch::synced`]).

use std::fmt::Debug;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::state::{Changes, ClusterState, Kind};

/// Why the cluster cannot be watched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// No usable configuration: the kubeconfig named, in-cluster, or
    /// `$KUBECONFIG` / `~/.kube/config`.
    #[error("no Kubernetes configuration: {0}")]
    Config(String),
    /// The client could not be built from it.
    #[error("a Kubernetes client: {0}")]
    Client(String),
    /// The watch thread could not start.
    #[error("the watch thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The client configuration, as kubectl finds it: `kubeconfig` when given,
/// else in-cluster (a pod's service account), else `$KUBECONFIG` or
/// `~/.kube/config`.
///
/// # Errors
/// [`WatchError::Config`] naming what could not be read.
pub async fn kube_config(kubeconfig: Option<&Path>) -> Result<kube::Config, WatchError> {
    match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| WatchError::Config(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| WatchError::Config(format!("{}: {e}", path.display())))
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| WatchError::Config(e.to_string())),
    }
}

/// How [`ClusterWatch::wait_synced`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    /// Every kind is listed.
    Listed,
    /// Not yet, when the time was up.
    TimedOut,
    /// This many failed attempts, and not listed.
    Failing(u64),
}

/// The watchers (see the module docs). Dropping it stops them.
pub struct ClusterWatch {
    state: Arc<Mutex<ClusterState>>,
    errors: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Debug for ClusterWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterWatch").finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<ClusterState>) -> std::sync::MutexGuard<'_, ClusterState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ClusterWatch {
    /// Starts watching with the configuration from `kubeconfig` (see
    /// [`kube_config`]).
    ///
    /// # Errors
    /// [`WatchError`] when no configuration or client can be had.
    pub fn start(kubeconfig: Option<&Path>) -> Result<Self, WatchError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(WatchError::Thread)?;
        let client = runtime.block_on(async {
            let config = kube_config(kubeconfig).await?;
            Client::try_from(config).map_err(|e| WatchError::Client(e.to_string()))
        })?;
        let state = Arc::new(Mutex::new(ClusterState::default()));
        let errors = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = {
            let (state, errors) = (Arc::clone(&state), Arc::clone(&errors));
            std::thread::Builder::new()
                .name("edgewise-k8s".to_owned())
                .spawn(move || {
                    runtime.block_on(async move {
                        let watchers = futures::future::join_all([
                            watch::<Pod>(&client, Kind::Pod, &state, &errors).boxed(),
                            watch::<Service>(&client, Kind::Service, &state, &errors).boxed(),
                            watch::<EndpointSlice>(&client, Kind::EndpointSlice, &state, &errors)
                                .boxed(),
                            watch::<Node>(&client, Kind::Node, &state, &errors).boxed(),
                            watch::<Namespace>(&client, Kind::Namespace, &state, &errors).boxed(),
                            watch::<NetworkPolicy>(&client, Kind::NetworkPolicy, &state, &errors)
                                .boxed(),
                        ]);
                        tokio::select! {
                            _ = watchers => {}
                            _ = stopped => {}
                        }
                    });
                })
                .map_err(WatchError::Thread)?
        };
        Ok(Self {
            state,
            errors,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Whether every kind has been listed once.
    pub fn synced(&self) -> bool {
        lock(&self.state).synced()
    }

    /// Waits until every kind is listed ([`Synced::Listed`]), `timeout`
    /// passed ([`Synced::TimedOut`]), or `max_errors` failed attempts were
    /// met first ([`Synced::Failing`]).
    pub fn wait_synced(&self, timeout: std::time::Duration, max_errors: u64) -> Synced {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.synced() {
                return Synced::Listed;
            }
            if self.errors() >= max_errors {
                return Synced::Failing(self.errors());
            }
            if std::time::Instant::now() >= deadline {
                return Synced::TimedOut;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Watch errors met (each retried after a backoff).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Relists done after the first list (410 Gone and the like).
    pub fn relists(&self) -> u64 {
        lock(&self.state).relists()
    }

    /// What changed since `seen` (which is moved on; see
    /// [`ClusterState::changes_since`]).
    pub fn changes(&self, seen: &mut Option<u64>) -> Changes {
        let state = lock(&self.state);
        let changes = state.changes_since(*seen);
        *seen = Some(state.version());
        changes
    }

    /// Every object as one `List` document and the version it is of.
    pub fn everything(&self) -> (Vec<u8>, u64) {
        let state = lock(&self.state);
        (state.to_json_list(), state.version())
    }

    /// The objects of `kind` now.
    pub fn objects(&self, kind: Kind) -> Vec<Arc<serde_json::Value>> {
        lock(&self.state).objects(kind).cloned().collect()
    }

    /// Every object as one `List` document, when anything changed since
    /// `seen` (which is moved on).
    pub fn snapshot_if_changed(&self, seen: &mut Option<u64>) -> Option<Vec<u8>> {
        let state = lock(&self.state);
        if *seen == Some(state.version()) {
            return None;
        }
        *seen = Some(state.version());
        Some(state.to_json_list())
    }
}

impl Drop for ClusterWatch {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Follows one kind until the runtime stops.
async fn watch<K>(client: &Client, kind: Kind, state: &Mutex<ClusterState>, errors: &AtomicU64)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Serialize + Send + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let json = |object: &K| serde_json::to_value(object).unwrap_or_default();
    let name = kind.as_str();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(object)) => lock(state).apply(kind, json(&object)),
            Ok(Event::Delete(object)) => lock(state).delete(kind, &json(&object)),
            Ok(Event::Init) => {
                tracing::info!(kind = name, "listing");
                lock(state).relist_start(kind);
            }
            Ok(Event::InitApply(object)) => lock(state).relist_apply(kind, json(&object)),
            Ok(Event::InitDone) => {
                let mut state = lock(state);
                state.relist_done(kind);
                tracing::info!(kind = name, objects = state.count(kind), "listed");
            }
            Err(error) => {
                errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(kind = name, %error, "watch failed; backing off");
            }
        }
    }
}
