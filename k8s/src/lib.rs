//! Kubernetes ingestion for edgewise: kube-rs watchers that keep every
//! object ip-index, edge-set and the Service catalog need, so that a
//! daemon follows its cluster without exported files.
//!
//! - [`state`]: [`ClusterState`], the objects held by kind, relists
//!   replacing a kind whole, served as one `List` of Kubernetes JSON (the
//!   form the sans-IO crates read: k8s-openapi writes what the API server
//!   serves, so the conversion is the crates' own readers).
//! - [`watch`]: [`ClusterWatch`], one watcher per [`Kind`] (list, then
//!   watch with bookmarks; relist on 410 Gone; backoff on errors), and
//!   [`kube_config`], the configuration as kubectl finds it.
//! - `testing` (feature): a fake API server speaking the list and watch
//!   protocol, for tests where no real one can run.

#![forbid(unsafe_code)]

// The edgewise crates whose types this crate's API uses, so that a user
// names them at the version this crate was built with.
#[cfg(feature = "testing")]
pub use edgewise_http_server as http_server;

pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod watch;

pub use state::{Changes, ClusterState, JOURNAL, Kind, ObjectChange};
pub use watch::{ClusterWatch, Synced, WatchError, kube_config};
