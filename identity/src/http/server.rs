//! The producer's side: `GET /baseline` (the identity MMDB at the current
//! version), `GET /deltas` (a server-sent events stream) and `GET /healthz`
//! (`ok` while it serves).
//!
//! The stream starts with a `hello` event, `{"epoch": E, "seq": S,
//! "resumed": bool}`. A client that gives the version it holds
//! (`/deltas?epoch=E&seq=S`) gets the deltas after it replayed from the
//! server's bounded history when they are all still there (`resumed`);
//! otherwise it gets only what is published from then on and fetches a
//! baseline. Then one `delta` event per delta (data: the delta's JSON line),
//! and a `: keepalive` comment whenever nothing was sent for the heartbeat
//! interval. Every event is on the wire as soon as it is written (one
//! chunk each).
//!
//! It is served by `edgewise-http-server`, so its listener has the same
//! limits as the daemon's: no request body is accepted (a request
//! announcing one is refused unread), headers, connections and writes are
//! bounded (a stream whose client stops reading is ended), and dropping the
//! server ends every stream in bounded time. Each stream is fed by a
//! thread of its own, as many as the connection cap allows at most.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use edgewise_http_server::{Head, Limits, Method, Reply, Request, Server, Service, StatusCode};
use edgewise_ip_index::{ClusterObject, ip_key, ip_of};

use super::sse::{write_event, write_heartbeat};
use crate::{Baseline, IdentityDelta, IdentityError, Version};

/// Events buffered per stream before its feeder waits for the client.
const STREAM_BUFFER: usize = 64;

/// Settings of an [`IdentityServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Deltas kept for clients that reconnect (default 4,096).
    pub history: usize,
    /// A keepalive comment after this long without an event (default 5 s).
    pub heartbeat: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            history: 4096,
            heartbeat: Duration::from_secs(5),
        }
    }
}

struct State {
    version: Version,
    entries: BTreeMap<u128, Arc<ClusterObject>>,
    /// The last deltas, oldest first, as JSON lines.
    history: VecDeque<(Version, Arc<str>)>,
    /// How many deltas were ever published (the next one's position).
    published: u64,
    mmdb: Option<(Version, Bytes)>,
    closed: bool,
}

struct Shared {
    config: ServerConfig,
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicked request thread leaves the state whole (every change
        // is a few assignments), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves a producer's baseline and delta stream over HTTP (see the module
/// docs). Dropping it stops accepting and ends every stream.
pub struct IdentityServer {
    shared: Arc<Shared>,
    http: Option<Server>,
    address: SocketAddr,
}

impl IdentityServer {
    /// Listens on `address` (`127.0.0.1:0` picks a port) and serves
    /// `baseline` until deltas are published.
    ///
    /// # Errors
    /// [`IdentityError::Transport`] when the address is not one or cannot
    /// be bound.
    pub fn bind(
        address: &str,
        baseline: &Baseline,
        config: ServerConfig,
    ) -> Result<Self, IdentityError> {
        let fail = |problem: String| IdentityError::Transport {
            url: address.to_owned(),
            problem,
        };
        let socket: SocketAddr = address
            .parse()
            .map_err(|e| fail(format!("not an address: {e}")))?;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State {
                version: baseline.version(),
                entries: baseline
                    .iter()
                    .map(|(ip, o)| (ip_key(ip), Arc::clone(o)))
                    .collect(),
                history: VecDeque::new(),
                published: 0,
                mmdb: None,
                closed: false,
            }),
            changed: Condvar::new(),
        });
        let service = Arc::new(Endpoints(Arc::clone(&shared)));
        let http =
            Server::start(socket, Limits::default(), service).map_err(|e| fail(e.to_string()))?;
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

    /// The version served.
    pub fn version(&self) -> Version {
        self.shared.lock().version
    }

    /// Publishes the producer's next delta to every stream.
    pub fn publish(&self, delta: &IdentityDelta) {
        let line: Arc<str> = delta.to_line().into();
        let mut state = self.shared.lock();
        for ip in &delta.removes {
            state.entries.remove(&ip_key(*ip));
        }
        for upsert in &delta.upserts {
            state
                .entries
                .insert(ip_key(upsert.ip), Arc::new(upsert.identity.clone()));
        }
        state.version = delta.version();
        state.history.push_back((delta.version(), line));
        while state.history.len() > self.shared.config.history {
            state.history.pop_front();
        }
        state.published += 1;
        drop(state);
        self.shared.changed.notify_all();
    }
}

impl Drop for IdentityServer {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        // Ends the streams whose feeders saw the close, within the grace.
        drop(self.http.take());
    }
}

/// What the listener serves.
struct Endpoints(Arc<Shared>);

impl Service for Endpoints {
    fn body_limit(&self, _method: &Method, _path: &str) -> u64 {
        0
    }

    fn admit(&self, head: &Head) -> Option<Reply> {
        match (&head.method, head.path.as_str()) {
            (&Method::GET, "/healthz") => Some(Reply::text(StatusCode::OK, "ok\n")),
            (&Method::GET, "/baseline" | "/deltas") => None,
            (_, "/baseline" | "/deltas") => {
                Some(Reply::text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n"))
            }
            _ => Some(Reply::text(StatusCode::NOT_FOUND, "not found\n")),
        }
    }

    fn handle(&self, request: Request) -> Reply {
        let shared = &self.0;
        if request.head.path == "/baseline" {
            return match baseline_bytes(shared) {
                Ok(bytes) => Reply::ok("application/octet-stream", bytes),
                Err(error) => Reply::text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
            };
        }
        let held = held_version(&request.head.query);
        let (sender, chunks) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        let shared = Arc::clone(shared);
        let feeder = std::thread::Builder::new()
            .name("edgewise-identity-stream".to_owned())
            .spawn(move || stream(&shared, &sender, held));
        match feeder {
            Ok(_) => Reply::Stream {
                content_type: "text/event-stream",
                chunks,
            },
            Err(error) => Reply::text(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
        }
    }
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

fn baseline_bytes(shared: &Shared) -> Result<Bytes, IdentityError> {
    let (version, entries) = {
        let state = shared.lock();
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
    let mut state = shared.lock();
    if state.version == version {
        state.mmdb = Some((version, bytes.clone()));
    }
    Ok(bytes)
}

/// Feeds one stream until the client is gone or the server closes.
fn stream(shared: &Shared, out: &tokio::sync::mpsc::Sender<Bytes>, held: Option<Version>) {
    let send = |bytes: Vec<u8>| out.blocking_send(Bytes::from(bytes)).is_ok();
    let (hello, mut next) = {
        let state = shared.lock();
        let oldest = state.published - state.history.len() as u64;
        // Resume when every delta after the held version is in the history.
        let resume_from = held
            .filter(|held| held.epoch == state.version.epoch)
            .and_then(|held| {
                if held.seq == state.version.seq {
                    return Some(state.published);
                }
                let position = state
                    .history
                    .iter()
                    .position(|(v, _)| v.seq == held.seq + 1)?;
                Some(oldest + position as u64)
            });
        let hello = format!(
            r#"{{"epoch":{},"seq":{},"resumed":{}}}"#,
            state.version.epoch,
            state.version.seq,
            resume_from.is_some()
        );
        (hello, resume_from.unwrap_or(state.published))
    };
    let mut event = Vec::new();
    let _ = write_event(&mut event, "hello", &hello);
    if !send(event) {
        return;
    }
    loop {
        let lines: Vec<Arc<str>> = {
            let mut state = shared.lock();
            if state.published <= next && !state.closed {
                state = shared
                    .changed
                    .wait_timeout(state, shared.config.heartbeat)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if state.closed {
                return;
            }
            let oldest = state.published - state.history.len() as u64;
            // A stream that fell behind the history skips ahead; the client
            // sees the gap and fetches a baseline.
            let start = next.max(oldest);
            next = state.published;
            state
                .history
                .iter()
                .skip(usize::try_from(start - oldest).unwrap_or(usize::MAX))
                .map(|(_, line)| Arc::clone(line))
                .collect()
        };
        let mut chunk = Vec::new();
        if lines.is_empty() {
            let _ = write_heartbeat(&mut chunk);
        }
        for line in lines {
            let _ = write_event(&mut chunk, "delta", &line);
        }
        if !send(chunk) {
            return;
        }
    }
}
