//! The producer's side: `GET /baseline` (the identity MMDB at the current
//! version) and `GET /deltas` (a server-sent events stream).
//!
//! The stream starts with a `hello` event, `{"epoch": E, "seq": S,
//! "resumed": bool}`. A client that gives the version it holds
//! (`/deltas?epoch=E&seq=S`) gets the deltas after it replayed from the
//! server's bounded history when they are all still there (`resumed`);
//! otherwise it gets only what is published from then on and fetches a
//! baseline. Then one `delta` event per delta (data: the delta's JSON line),
//! and a `: keepalive` comment whenever nothing was sent for the heartbeat
//! interval. The response is delimited by the connection's close (no
//! chunking, so every event is on the wire as soon as it is written).

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use edgewise_ip_index::{ClusterObject, ip_key, ip_of};

use super::sse::{write_event, write_heartbeat};
use crate::{Baseline, IdentityDelta, IdentityError, Version};

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
    mmdb: Option<(Version, Arc<Vec<u8>>)>,
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
    http: Arc<tiny_http::Server>,
    address: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl IdentityServer {
    /// Listens on `address` (`127.0.0.1:0` picks a port) and serves
    /// `baseline` until deltas are published.
    ///
    /// # Errors
    /// [`IdentityError::Transport`] when the address cannot be bound.
    pub fn bind(
        address: &str,
        baseline: &Baseline,
        config: ServerConfig,
    ) -> Result<Self, IdentityError> {
        let http = tiny_http::Server::http(address).map_err(|e| IdentityError::Transport {
            url: address.to_owned(),
            problem: e.to_string(),
        })?;
        let bound = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| IdentityError::Transport {
                url: address.to_owned(),
                problem: "not an IP listener".to_owned(),
            })?;
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
        let http = Arc::new(http);
        let accept = {
            let http = Arc::clone(&http);
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for request in http.incoming_requests() {
                    let shared = Arc::clone(&shared);
                    std::thread::spawn(move || handle(&shared, request));
                }
            })
        };
        Ok(Self {
            shared,
            http,
            address: bound,
            accept: Some(accept),
        })
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
        self.http.unblock();
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn handle(shared: &Shared, request: tiny_http::Request) {
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    match path {
        "/baseline" => {
            let response = match baseline_bytes(shared) {
                Ok(bytes) => tiny_http::Response::from_data(bytes.to_vec()),
                Err(error) => {
                    tiny_http::Response::from_string(error.to_string()).with_status_code(500)
                }
            };
            let _ = request.respond(response);
        }
        "/deltas" => {
            let _ = stream(shared, request, held_version(query));
        }
        _ => {
            let _ = request
                .respond(tiny_http::Response::from_string("not found\n").with_status_code(404));
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

fn baseline_bytes(shared: &Shared) -> Result<Arc<Vec<u8>>, IdentityError> {
    let (version, entries) = {
        let state = shared.lock();
        if let Some((version, bytes)) = &state.mmdb
            && *version == state.version
        {
            return Ok(Arc::clone(bytes));
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
    let bytes = Arc::new(baseline.to_mmdb(SystemTime::now())?);
    let mut state = shared.lock();
    if state.version == version {
        state.mmdb = Some((version, Arc::clone(&bytes)));
    }
    Ok(bytes)
}

fn stream(shared: &Shared, request: tiny_http::Request, held: Option<Version>) -> io::Result<()> {
    let mut out = request.into_writer();
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
    )?;
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
    write_event(&mut out, "hello", &hello)?;
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
                return Ok(());
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
        if lines.is_empty() {
            write_heartbeat(&mut out)?;
        }
        for line in lines {
            write_event(&mut out, "delta", &line)?;
        }
    }
}
