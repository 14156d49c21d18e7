//! The producer's side: two channels, identities and policies, each a
//! baseline and a delta stream:
//!
//! - `GET /identities/baseline`: the identity MMDB at the current version;
//!   `GET /identities/deltas`: its server-sent events stream.
//! - `GET /policies/baseline`: the policy documents as JSON
//!   ([`crate::policy`]); `GET /policies/deltas`: their stream.
//! - `GET /healthz`: `ok` while it serves; `GET /metrics`: followers,
//!   deltas sent, resumes, followers cut, baselines served, the largest
//!   lag, and the listener's counters (TLS handshake failures among them),
//!   in the Prometheus text format.
//!
//! A stream starts with a `hello` event, `{"schema": HELLO_SCHEMA,
//! "epoch": E, "seq": S, "resumed": bool}` ([`HELLO_SCHEMA`],
//! `schemas/identity-hello.schema.json`; a client takes a hello without
//! the tag as version 1 and refuses another tag). A client that gives the version it holds
//! (`deltas?epoch=E&seq=S`) gets the deltas after it from the server's
//! bounded history when they are all still there (`resumed`); otherwise it
//! gets what is published from then on and fetches a baseline. Then one
//! `delta` event per delta (data: the delta's JSON line), and a
//! `: keepalive` comment whenever nothing was sent for the heartbeat. A
//! client that sends `Accept-Encoding: gzip` gets the stream as gzip
//! (`Content-Encoding: gzip`), each chunk whole gzip members, so every
//! chunk can be read as soon as it arrives.
//! How followers are fanned out, batched and cut when they fall behind is
//! [`super::channel`]'s.
//!
//! With [`ServerConfig::tokens`], every baseline and stream needs
//! `Authorization: Bearer TOKEN` with a token of the file (read again when
//! it changes); anything else gets 401 and nothing more. `/healthz` and
//! `/metrics` stay open for probes and scrapers. With
//! [`ServerConfig::tls`], the listener speaks TLS only (see
//! `edgewise_http_server::tls`: certificates read again when they change,
//! client certificates when a client CA is set). At most
//! [`ServerConfig::max_followers`] streams are open at once; one more gets
//! 503. It is served by `edgewise-http-server`, with its limits: no request
//! body is accepted, headers, connections and writes are bounded, and
//! dropping the server ends every stream in bounded time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use edgewise_http_server::{
    BearerTokens, Head, Limits, Method, Reply, Request, Server, Service, StatsSource, StatusCode,
    TlsFiles,
};
use edgewise_ip_index::{ClusterObject, ip_key, ip_of};

use super::channel::{Channel, ChannelConfig};
use super::metrics::render_metrics;
use crate::policy::{PolicyBaseline, PolicyDelta};
use crate::{Baseline, IdentityDelta, IdentityError, Version};

/// The tag of a stream's `hello` event.
pub const HELLO_SCHEMA: &str = "edgewise.identity-hello/v1";

/// Settings of an [`IdentityServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Deltas kept per channel for followers that reconnect (default
    /// 4,096).
    pub history: usize,
    /// A follower more than this many deltas behind is cut and resyncs
    /// from a baseline (default 256).
    pub max_lag: usize,
    /// A keepalive comment after this long without an event (default 5 s).
    pub heartbeat: Duration,
    /// Streams open at once, both channels together (default 4,096).
    pub max_followers: usize,
    /// Connections one peer address may hold (0, the default: an eighth of
    /// the connection cap).
    pub max_connections_per_peer: usize,
    /// Threads serving connections (default 1).
    pub workers: usize,
    /// A follower whose connection takes nothing for this long (it stopped
    /// reading) is cut (default 10 s).
    pub write_timeout: Duration,
    /// Serve TLS from these files (default: in the clear).
    pub tls: Option<TlsFiles>,
    /// The bearer tokens accepted, one per line (default: no token asked).
    pub tokens: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            history: 4096,
            max_lag: 256,
            heartbeat: Duration::from_secs(5),
            max_followers: 4096,
            max_connections_per_peer: 0,
            workers: 1,
            write_timeout: Duration::from_secs(10),
            tls: None,
            tokens: None,
        }
    }
}

/// Connections beyond the followers, for probes, scrapers and baselines.
const SPARE_CONNECTIONS: usize = 64;

struct Identities {
    entries: BTreeMap<u128, Arc<ClusterObject>>,
    version: Version,
    mmdb: Option<(Version, Bytes)>,
}

struct Policies {
    baseline: PolicyBaseline,
    json: Option<(Version, Bytes)>,
}

pub(super) struct Shared {
    config: ServerConfig,
    pub(super) identities: Arc<Channel>,
    pub(super) policies: Arc<Channel>,
    identity_state: Mutex<Identities>,
    /// Held while an identity baseline is built: one build at a time, and
    /// the requests that waited take its result (see `identity_baseline`).
    building: Mutex<()>,
    policy_state: Mutex<Policies>,
    tokens: Option<BearerTokens>,
    pub(super) unauthorized: AtomicU64,
    pub(super) refused_followers: AtomicU64,
    pub(super) listener: OnceLock<StatsSource>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is a few assignments: a panic
    // elsewhere leaves them whole.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves a producer's identity and policy channels over HTTP (see the
/// module docs). Dropping it stops accepting and ends every stream.
pub struct IdentityServer {
    shared: Arc<Shared>,
    http: Option<Server>,
    address: SocketAddr,
}

impl IdentityServer {
    /// Listens on `address` (`127.0.0.1:0` picks a port) and serves
    /// `baseline` and `policies` until deltas are published.
    ///
    /// # Errors
    /// [`IdentityError::Transport`] when the address is not one or cannot
    /// be bound, or the token or TLS files cannot be used (naming the
    /// file).
    pub fn bind(
        address: &str,
        baseline: &Baseline,
        policies: PolicyBaseline,
        config: ServerConfig,
    ) -> Result<Self, IdentityError> {
        let fail = |problem: String| IdentityError::Transport {
            url: address.to_owned(),
            problem,
            source: None,
        };
        let socket: SocketAddr = address
            .parse()
            .map_err(|e| fail(format!("not an address: {e}")))?;
        let tokens = config
            .tokens
            .as_deref()
            .map(BearerTokens::load)
            .transpose()
            .map_err(|e| fail(e.to_string()))?;
        let channel = ChannelConfig {
            history: config.history.max(1),
            max_lag: config.max_lag.max(1),
            heartbeat: config.heartbeat,
        };
        let shared = Arc::new(Shared {
            identities: Arc::new(Channel::new(channel, baseline.version())),
            policies: Arc::new(Channel::new(channel, policies.version())),
            identity_state: Mutex::new(Identities {
                entries: baseline
                    .iter()
                    .map(|(ip, o)| (ip_key(ip), Arc::clone(o)))
                    .collect(),
                version: baseline.version(),
                mmdb: None,
            }),
            building: Mutex::new(()),
            policy_state: Mutex::new(Policies {
                baseline: policies,
                json: None,
            }),
            tokens,
            unauthorized: AtomicU64::new(0),
            refused_followers: AtomicU64::new(0),
            listener: OnceLock::new(),
            config,
        });
        let mut limits = Limits::default();
        limits.max_connections = shared.config.max_followers + SPARE_CONNECTIONS;
        limits.max_connections_per_peer = shared.config.max_connections_per_peer;
        limits.workers = shared.config.workers.max(1);
        limits.write_timeout = shared.config.write_timeout;
        let service = Arc::new(Endpoints(Arc::clone(&shared)));
        let http = Server::start(socket, limits, shared.config.tls.clone(), service)
            .map_err(|e| fail(e.to_string()))?;
        let _ = shared.listener.set(http.stats_source());
        Ok(Self {
            address: http.local_addr(),
            shared,
            http: Some(http),
        })
    }

    /// Whether the listener died (the caller must not go on blind).
    pub fn failed(&self) -> bool {
        self.http.as_ref().is_none_or(Server::failed)
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The identity version served.
    pub fn version(&self) -> Version {
        self.shared.identities.version()
    }

    /// The policy version served.
    pub fn policy_version(&self) -> Version {
        self.shared.policies.version()
    }

    /// Streams open now, both channels.
    pub fn followers(&self) -> usize {
        self.shared
            .identities
            .stats
            .followers
            .load(Ordering::Relaxed)
            + self.shared.policies.stats.followers.load(Ordering::Relaxed)
    }

    /// The metrics page as served at `/metrics`.
    pub fn metrics_text(&self) -> String {
        render_metrics(&self.shared)
    }

    /// Publishes the producer's next identity delta to every follower.
    pub fn publish(&self, delta: &IdentityDelta) {
        let line = delta.to_line();
        {
            let mut state = lock(&self.shared.identity_state);
            for ip in &delta.removes {
                state.entries.remove(&ip_key(*ip));
            }
            for upsert in &delta.upserts {
                state
                    .entries
                    .insert(ip_key(upsert.ip), Arc::new(upsert.identity.clone()));
            }
            state.version = delta.version();
        }
        self.shared.identities.publish(delta.version(), &line);
    }

    /// Publishes the policy producer's next delta to every follower.
    pub fn publish_policies(&self, delta: &PolicyDelta, current: PolicyBaseline) {
        lock(&self.shared.policy_state).baseline = current;
        self.shared
            .policies
            .publish(delta.version(), &delta.to_line());
    }
}

impl Drop for IdentityServer {
    fn drop(&mut self) {
        self.shared.identities.close();
        self.shared.policies.close();
        // Ends the streams that saw the close, within the grace.
        drop(self.http.take());
    }
}

/// What the listener serves.
struct Endpoints(Arc<Shared>);

/// A route's channel and what it asks of it.
#[derive(Clone, Copy)]
enum Route {
    Baseline(ChannelName),
    Deltas(ChannelName),
}

#[derive(Clone, Copy)]
enum ChannelName {
    Identities,
    Policies,
}

fn route(path: &str) -> Option<Route> {
    Some(match path {
        "/identities/baseline" => Route::Baseline(ChannelName::Identities),
        "/identities/deltas" => Route::Deltas(ChannelName::Identities),
        "/policies/baseline" => Route::Baseline(ChannelName::Policies),
        "/policies/deltas" => Route::Deltas(ChannelName::Policies),
        _ => return None,
    })
}

impl Shared {
    fn channel(&self, name: ChannelName) -> &Arc<Channel> {
        match name {
            ChannelName::Identities => &self.identities,
            ChannelName::Policies => &self.policies,
        }
    }

    fn followers(&self) -> usize {
        self.identities.stats.followers.load(Ordering::Relaxed)
            + self.policies.stats.followers.load(Ordering::Relaxed)
    }

    /// Whether the request carries an accepted token (always, without a
    /// token file). A rewritten token file is read again first.
    fn authorized(&self, head: &Head) -> bool {
        self.tokens
            .as_ref()
            .is_none_or(|tokens| tokens.admits(&head.headers))
    }
}

impl Service for Endpoints {
    fn body_limit(&self, _method: &Method, _path: &str) -> u64 {
        0
    }

    fn admit(&self, head: &Head) -> Option<Reply> {
        let shared = &self.0;
        let path = head.path.as_str();
        match (&head.method, path) {
            (&Method::GET, "/healthz") => return Some(Reply::text(StatusCode::OK, "ok\n")),
            (&Method::GET, "/metrics") => {
                return Some(Reply::ok(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    render_metrics(shared),
                ));
            }
            _ => {}
        }
        let Some(route) = route(path) else {
            return Some(Reply::text(StatusCode::NOT_FOUND, "not found\n"));
        };
        if head.method != Method::GET {
            return Some(Reply::text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n"));
        }
        if !shared.authorized(head) {
            shared.unauthorized.fetch_add(1, Ordering::Relaxed);
            return Some(Reply::text(StatusCode::UNAUTHORIZED, "unauthorized\n"));
        }
        if matches!(route, Route::Deltas(_)) && shared.followers() >= shared.config.max_followers {
            shared.refused_followers.fetch_add(1, Ordering::Relaxed);
            return Some(Reply::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many followers\n",
            ));
        }
        None
    }

    fn handle(&self, request: Request) -> Reply {
        let shared = &self.0;
        match route(&request.head.path) {
            Some(Route::Baseline(name)) => {
                shared
                    .channel(name)
                    .stats
                    .baselines
                    .fetch_add(1, Ordering::Relaxed);
                let bytes = match name {
                    ChannelName::Identities => identity_baseline(shared),
                    ChannelName::Policies => Ok(policy_baseline(shared)),
                };
                match bytes {
                    Ok(bytes) => Reply::ok("application/octet-stream", bytes),
                    Err(error) => Reply::text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
                }
            }
            Some(Route::Deltas(name)) => {
                let gzip = accepts_gzip(&request.head.headers);
                Reply::Stream {
                    content_type: "text/event-stream",
                    content_encoding: gzip.then_some("gzip"),
                    chunks: shared
                        .channel(name)
                        .follow(held_version(&request.head.query), gzip),
                }
            }
            None => Reply::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

/// Whether `Accept-Encoding` lists gzip (and not with `q=0`).
fn accepts_gzip(headers: &edgewise_http_server::HeaderMap) -> bool {
    headers
        .get_all("accept-encoding")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let gzip = parts
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case("gzip"));
            let refused = parts.any(|param| {
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            gzip && !refused
        })
}

/// `epoch=E&seq=S`, when both are there.
fn held_version(query: &str) -> Option<Version> {
    let mut epoch = None;
    let mut seq = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("epoch", value)) => epoch = value.parse().ok(),
            Some(("seq", value)) => seq = value.parse().ok(),
            _ => {}
        }
    }
    Some(Version {
        epoch: epoch?,
        seq: seq?,
    })
}

/// The identity MMDB at the current version: from the cache, or built.
/// Builds are one at a time (a large table takes seconds): requests that
/// arrive meanwhile wait and then take the cached result when the version
/// has not moved, so a thousand followers resyncing at once cost one
/// build, not a thousand.
fn identity_baseline(shared: &Shared) -> Result<Bytes, IdentityError> {
    let _building = lock(&shared.building);
    let (version, entries) = {
        let state = lock(&shared.identity_state);
        if let Some((version, bytes)) = &state.mmdb
            && *version == state.version
        {
            return Ok(bytes.clone());
        }
        let entries: Vec<(u128, Arc<ClusterObject>)> = state
            .entries
            .iter()
            .map(|(k, v)| (*k, Arc::clone(v)))
            .collect();
        (state.version, entries)
    };
    // Encoding a large table takes a while: not under the lock.
    let baseline = Baseline::new(version, entries.into_iter().map(|(k, v)| (ip_of(k), v)));
    let bytes = Bytes::from(baseline.to_mmdb(SystemTime::now())?);
    let mut state = lock(&shared.identity_state);
    if state.version == version {
        state.mmdb = Some((version, bytes.clone()));
    }
    Ok(bytes)
}

fn policy_baseline(shared: &Shared) -> Bytes {
    let mut state = lock(&shared.policy_state);
    let version = state.baseline.version();
    if let Some((cached, bytes)) = &state.json
        && *cached == version
    {
        return bytes.clone();
    }
    let bytes = Bytes::from(state.baseline.to_json());
    state.json = Some((version, bytes.clone()));
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_taken_when_accepted_and_not_when_refused() {
        let with = |value: &str| {
            let mut headers = edgewise_http_server::HeaderMap::new();
            headers.insert("accept-encoding", value.parse().unwrap());
            accepts_gzip(&headers)
        };
        assert!(with("gzip"));
        assert!(with("br, GZIP;q=0.5"));
        assert!(!with("gzip;q=0"));
        assert!(!with("identity"));
        assert!(!accepts_gzip(&edgewise_http_server::HeaderMap::new()));
    }
}
