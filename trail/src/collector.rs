//! The collector: `POST /slices` into the store, `/metrics`, `/healthz`.
//!
//! - **Requests** are served by `edgewise-http-server` (its limits, TLS
//!   and bearer tokens). An upload is read within
//!   [`CollectorConfig::max_body_bytes`], inflated within
//!   [`CollectorConfig::max_slice_bytes`] and checked
//!   ([`SliceUpload::decode`]) on the handler's thread, at most
//!   [`DECODING`] at once (one more gets 503, so memory stays bounded); a
//!   bad one gets 400 with the reason, and nothing is stored.
//! - **Writers** own the store's connections ([`POSTGRES_WRITERS`] on
//!   Postgres, so that two batches use two backends; one on SQLite): each
//!   takes every upload waiting (up to [`MAX_BATCH_EDGES`] edges) and
//!   merges them in one transaction, so the store sees few large batches
//!   however many agents post at once. Concurrent batches take row locks
//!   in one order (tables in one order, rows sorted by key), so they wait
//!   for each other but never deadlock. Each request is answered after the commit: 200 with
//!   `{"outcome": "merged" | "duplicate" | "expired", "edges": N}`, or 503
//!   when the store failed (nothing of the batch was kept; the agent
//!   sends again). A request that finds the writer's queue full gets 503
//!   at once: agents keep their spool, the collector keeps its memory.
//! - **Health** comes from the store, not from this process's memory, so
//!   every replica reports the same: every [`HEALTH_EVERY`] the writer
//!   reads the agents (lag since their last window, silent ones) and the
//!   last good digest, and applies retention once an hour.
//!
//! - **More routes** ([`CollectorConfig::also`]): any request the collector
//!   does not answer itself goes to another service on the same listener
//!   (`edgewise collect` serves the web view of the trail there).
//!
//! Replicas share nothing but the store: run as many as the agents need.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use edgewise_http_server::{
    BearerTokens, Head, Limits, Method, Reply, Request, Server, Service, StartError, StatusCode,
    TlsFiles,
};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::TrailError;
use crate::rows::Value;
use crate::schema::Type;
use crate::store::{Outcome, Store, StoreUrl};
use crate::upload::SliceUpload;

/// The most edges one transaction merges.
pub const MAX_BATCH_EDGES: usize = 100_000;

/// Writers on Postgres: two batches at once use two backends (measured
/// 1.45x one writer's rate on two cores; a third made merges no faster).
/// SQLite has one writer.
pub const POSTGRES_WRITERS: usize = 2;

/// How often the writer reads health from the store.
pub const HEALTH_EVERY: Duration = Duration::from_secs(15);

/// How often retention runs.
const RETAIN_EVERY: Duration = Duration::from_secs(3600);

/// Uploads waiting for the writer before requests are told to come back.
const QUEUE: usize = 256;

/// Uploads inflated and parsed at once; one more is told to come back, so
/// that memory stays bounded (each may take `max_slice_bytes`).
pub const DECODING: usize = 4;

/// How long a request waits for its batch to commit.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// The collector's settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CollectorConfig {
    /// The store.
    pub store: StoreUrl,
    /// Days kept (0: everything).
    pub retain_days: u32,
    /// Agents silent for more than this many of their export intervals
    /// are reported silent.
    pub silent_after_windows: u32,
    /// The most bytes of a request body (gzipped).
    pub max_body_bytes: u64,
    /// The most bytes of an upload once inflated.
    pub max_slice_bytes: u64,
    /// Bearer tokens agents must present (none: anyone may post).
    pub tokens: Option<std::path::PathBuf>,
    /// TLS.
    pub tls: Option<TlsFiles>,
    /// The server's limits.
    pub limits: Limits,
    /// Where the requests the collector does not answer itself go.
    pub also: Option<AlsoServe>,
}

/// A service answering the requests the collector does not (its own
/// paths are `/slices`, `/healthz` and `/metrics`).
#[derive(Clone)]
pub struct AlsoServe(pub Arc<dyn Service>);

impl std::fmt::Debug for AlsoServe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlsoServe(..)")
    }
}

impl CollectorConfig {
    /// Defaults for `store`: 90 days, silent after 3 windows, 16 MiB
    /// bodies, 128 MiB inflated, no tokens, no TLS.
    pub fn new(store: StoreUrl) -> Self {
        Self {
            store,
            retain_days: 90,
            silent_after_windows: 3,
            max_body_bytes: 16 << 20,
            max_slice_bytes: 128 << 20,
            tokens: None,
            tls: None,
            // Agents hold a connection only while they post (the idle
            // timeout closes it between windows); one refused at accept
            // keeps its slice and tries again.
            limits: {
                let mut limits = Limits::default();
                limits.body_timeout = Duration::from_secs(60);
                limits
            },
            also: None,
        }
    }
}

/// Why the collector did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// The store cannot be opened.
    #[error("store {url}: {source}")]
    Store {
        /// The store (without a password).
        url: String,
        /// Why.
        source: TrailError,
    },
    /// The token file cannot be used.
    #[error(transparent)]
    Tokens(#[from] edgewise_http_server::TokenError),
    /// The listener did not start.
    #[error(transparent)]
    Listen(#[from] StartError),
}

/// An agent's health as the store tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AgentHealth {
    lag_seconds: i64,
    silent: bool,
}

#[derive(Debug, Default)]
struct Health {
    agents: BTreeMap<String, AgentHealth>,
    digest_last_success_ms: i64,
    store_up: bool,
}

#[derive(Debug, Default)]
struct Counters {
    outcomes: Mutex<BTreeMap<&'static str, u64>>,
    rows: Mutex<BTreeMap<&'static str, u64>>,
    store_errors: AtomicU64,
    batches: AtomicU64,
    unauthorized: AtomicU64,
    health: Mutex<Health>,
}

impl Counters {
    fn count(&self, outcome: &'static str) {
        *self
            .outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(outcome)
            .or_default() += 1;
    }
}

type Answer = Result<(Outcome, usize), String>;

struct Job {
    upload: SliceUpload,
    answer: SyncSender<Answer>,
}

struct Endpoints {
    jobs: SyncSender<Job>,
    counters: Arc<Counters>,
    also: Option<AlsoServe>,
    tokens: Option<BearerTokens>,
    max_body_bytes: u64,
    max_slice_bytes: u64,
    decoding: AtomicUsize,
}

/// A running collector (see the module docs).
#[derive(Debug)]
pub struct Collector {
    server: Option<Server>,
    writers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    /// Opens the store (migrating it) and listens on `address`.
    ///
    /// # Errors
    /// [`CollectorError`] naming the store, token file or address.
    pub fn start(address: SocketAddr, config: &CollectorConfig) -> Result<Self, CollectorError> {
        let writers = match config.store {
            StoreUrl::Postgres(_) => POSTGRES_WRITERS,
            StoreUrl::Sqlite(_) => 1,
        };
        let stores = (0..writers)
            .map(|_| Store::open(&config.store, config.retain_days))
            .collect::<Result<Vec<Store>, TrailError>>()
            .map_err(|source| CollectorError::Store {
                url: config.store.to_string(),
                source,
            })?;
        let tokens = config
            .tokens
            .as_deref()
            .map(BearerTokens::load)
            .transpose()?;
        let (jobs, queue) = std::sync::mpsc::sync_channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let queue = Arc::new(Mutex::new(queue));
        let mut threads = Vec::new();
        for (index, store) in stores.into_iter().enumerate() {
            let mut writer = Writer {
                store,
                counters: Arc::clone(&counters),
                silent_after: config.silent_after_windows,
                chores: index == 0,
                next_health: Instant::now(),
                next_retain: Instant::now(),
            };
            let (queue, stop) = (Arc::clone(&queue), Arc::clone(&stop));
            let thread = std::thread::Builder::new()
                .name(format!("edgewise-collect-{index}"))
                .spawn(move || writer.run(&queue, &stop))
                .map_err(|e| CollectorError::Listen(StartError::Bind(e)))?;
            threads.push(thread);
        }
        let endpoints = Endpoints {
            jobs,
            counters,
            also: config.also.clone(),
            tokens,
            max_body_bytes: config.max_body_bytes,
            max_slice_bytes: config.max_slice_bytes,
            decoding: AtomicUsize::new(0),
        };
        let server = Server::start(
            address,
            config.limits,
            config.tls.clone(),
            Arc::new(endpoints),
        )?;
        Ok(Self {
            server: Some(server),
            writers: threads,
            stop,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server
            .as_ref()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), Server::local_addr)
    }

    /// Whether the listener or the writer ended without being asked to.
    pub fn failed(&self) -> bool {
        self.server.as_ref().is_some_and(Server::failed)
            || self.writers.iter().any(JoinHandle::is_finished)
    }

    /// Stops listening, lets the batch in flight commit, and returns.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
        self.stop.store(true, Ordering::Relaxed);
        for writer in self.writers.drain(..) {
            let _ = writer.join();
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Service for Endpoints {
    fn body_limit(&self, method: &Method, path: &str) -> u64 {
        if method == Method::POST && path == "/slices" {
            self.max_body_bytes
        } else if let Some(AlsoServe(also)) = &self.also {
            also.body_limit(method, path)
        } else {
            0
        }
    }

    fn admit(&self, head: &Head) -> Option<Reply> {
        match (&head.method, head.path.as_str()) {
            (&Method::GET, "/healthz") => {
                let up = self
                    .counters
                    .health
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .store_up;
                Some(if up {
                    Reply::text(StatusCode::OK, "ok\n")
                } else {
                    Reply::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the store is unreachable\n",
                    )
                })
            }
            (&Method::GET, "/metrics") => Some(Reply::ok(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                render_metrics(&self.counters),
            )),
            (&Method::POST, "/slices") => {
                let Some(tokens) = &self.tokens else {
                    return None;
                };
                if tokens.admits(&head.headers) {
                    None
                } else {
                    self.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
                    Some(Reply::text(StatusCode::UNAUTHORIZED, "unauthorized\n"))
                }
            }
            (_, "/slices") => Some(Reply::text(StatusCode::METHOD_NOT_ALLOWED, "only POST\n")),
            _ => match &self.also {
                Some(AlsoServe(also)) => also.admit(head),
                None => Some(Reply::text(StatusCode::NOT_FOUND, "not found\n")),
            },
        }
    }

    fn handle(&self, request: Request) -> Reply {
        if request.head.path != "/slices"
            && let Some(AlsoServe(also)) = &self.also
        {
            return also.handle(request);
        }
        let gzip = request
            .head
            .headers
            .get(http::header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        if self.decoding.fetch_add(1, Ordering::AcqRel) >= DECODING {
            self.decoding.fetch_sub(1, Ordering::AcqRel);
            self.counters.count("busy");
            return Reply::text(StatusCode::SERVICE_UNAVAILABLE, "busy: send again later\n");
        }
        let decoded = SliceUpload::decode(&request.body, gzip, self.max_slice_bytes);
        self.decoding.fetch_sub(1, Ordering::AcqRel);
        let upload = match decoded {
            Ok(upload) => upload,
            Err(error) => {
                self.counters.count("refused");
                return Reply::text(StatusCode::BAD_REQUEST, format!("{error}\n"));
            }
        };
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        match self.jobs.try_send(Job { upload, answer }) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.count("busy");
                return Reply::text(StatusCode::SERVICE_UNAVAILABLE, "busy: send again later\n");
            }
        }
        match answered.recv_timeout(ANSWER_WITHIN) {
            Ok(Ok((outcome, edges))) => Reply::ok(
                "application/json",
                serde_json::json!({"outcome": outcome.as_str(), "edges": edges}).to_string(),
            ),
            Ok(Err(error)) => Reply::text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the store failed, nothing was kept: {error}\n"),
            ),
            Err(_) => Reply::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store did not answer in time: send again\n",
            ),
        }
    }
}

struct Writer {
    store: Store,
    counters: Arc<Counters>,
    silent_after: u32,
    /// The writer that reads health and applies retention (one of them).
    chores: bool,
    next_health: Instant,
    next_retain: Instant,
}

impl Writer {
    /// Takes the uploads waiting (up to [`MAX_BATCH_EDGES`] edges), or
    /// none after a short wait; `None` when the queue is closed.
    fn batch(queue: &Mutex<Receiver<Job>>, wait: Duration) -> Option<Vec<Job>> {
        let queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
        let first = match queue.recv_timeout(wait) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => return Some(Vec::new()),
            Err(RecvTimeoutError::Disconnected) => return None,
        };
        let mut edges = first.upload.slice.edges.len();
        let mut batch = vec![first];
        while edges < MAX_BATCH_EDGES {
            let Ok(job) = queue.try_recv() else { break };
            edges += job.upload.slice.edges.len();
            batch.push(job);
        }
        Some(batch)
    }

    fn run(&mut self, queue: &Mutex<Receiver<Job>>, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let wait = self.next_health.saturating_duration_since(Instant::now());
            let Some(batch) = Self::batch(queue, wait.min(Duration::from_millis(200))) else {
                return;
            };
            if !batch.is_empty() {
                self.write(batch);
            }
            if !self.chores {
                continue;
            }
            if Instant::now() >= self.next_health {
                self.next_health = Instant::now() + HEALTH_EVERY;
                self.read_health();
            }
            if Instant::now() >= self.next_retain {
                self.next_retain = Instant::now() + RETAIN_EVERY;
                match self.store.retain(now_ms()) {
                    Ok(0) => {}
                    Ok(dropped) => tracing::info!(dropped, "retention: old days dropped"),
                    Err(error) => {
                        tracing::warn!(%error, "retention failed; trying again in an hour");
                    }
                }
            }
        }
    }

    fn write(&mut self, batch: Vec<Job>) {
        let (uploads, answers): (Vec<SliceUpload>, Vec<SyncSender<Answer>>) = batch
            .into_iter()
            .map(|job| (job.upload, job.answer))
            .unzip();
        match self.store.write(&uploads, now_ms()) {
            Ok(written) => {
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
                {
                    let mut rows = self
                        .counters
                        .rows
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    for (table, n) in &written.rows {
                        *rows.entry(table).or_default() += *n as u64;
                    }
                }
                for ((outcome, answer), upload) in
                    written.outcomes.iter().zip(&answers).zip(&uploads)
                {
                    self.counters.count(outcome.as_str());
                    let _ = answer.try_send(Ok((*outcome, upload.slice.edges.len())));
                }
                self.set_store_up(true);
                if written.outcomes.contains(&Outcome::Merged) && self.knows_no_agent() {
                    // The first slices: say so at the next turn, not in 15 s.
                    self.next_health = Instant::now();
                }
            }
            Err(error) => {
                self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, slices = uploads.len(), "a batch was not stored; its agents send it again");
                for answer in &answers {
                    let _ = answer.try_send(Err(error.to_string()));
                }
                self.set_store_up(false);
                // Let a restarting store come back before the next batch.
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    fn knows_no_agent(&self) -> bool {
        self.counters
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .agents
            .is_empty()
    }

    fn set_store_up(&self, up: bool) {
        self.counters
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .store_up = up;
    }

    fn read_health(&mut self) {
        let now = now_ms();
        let agents = self.store.query(
            "SELECT agent, last_seen, window_end, interval_ms FROM agents ORDER BY last_seen DESC LIMIT 10000",
            &[],
            &[Type::Text, Type::Int, Type::Int, Type::Int],
        );
        let digest = self.store.query(
            "SELECT CAST(coalesce(max(ran_at), 0) AS BIGINT) FROM digest_runs WHERE ok = 1",
            &[],
            &[Type::Int],
        );
        let mut health = self
            .counters
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match (agents, digest) {
            (Ok(agents), Ok(digest)) => {
                health.store_up = true;
                health.agents = agents
                    .into_iter()
                    .filter_map(|row| match row.as_slice() {
                        [
                            Value::Text(agent),
                            Value::Int(last),
                            Value::Int(end),
                            Value::Int(interval),
                        ] => {
                            let silent_after =
                                interval.saturating_mul(i64::from(self.silent_after));
                            Some((
                                agent.clone(),
                                AgentHealth {
                                    lag_seconds: (now - end).max(0) / 1000,
                                    silent: now - last > silent_after.max(1000),
                                },
                            ))
                        }
                        _ => None,
                    })
                    .collect();
                if let Some([Value::Int(ms)]) = digest.first().map(Vec::as_slice) {
                    health.digest_last_success_ms = *ms;
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                health.store_up = false;
                tracing::warn!(%error, "the store's health cannot be read");
            }
        }
    }
}

fn render_metrics(counters: &Counters) -> String {
    let mut registry = Registry::with_prefix("edgewise_collector");
    let outcomes = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
    for (outcome, n) in counters
        .outcomes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        outcomes
            .get_or_create(&vec![("outcome", *outcome)])
            .inc_by(*n);
    }
    registry.register(
        "slices",
        "Slices received, by outcome (merged, duplicate, expired, refused, busy)",
        outcomes,
    );
    let rows = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
    for (table, n) in counters
        .rows
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        rows.get_or_create(&vec![("table", *table)]).inc_by(*n);
    }
    registry.register("rows_upserted", "Rows upserted, by table", rows);
    let simple = [
        (
            "store_errors",
            "Batches the store failed (their agents send again)",
            &counters.store_errors,
        ),
        ("batches", "Batches committed", &counters.batches),
        (
            "unauthorized",
            "Uploads without an accepted token",
            &counters.unauthorized,
        ),
    ];
    for (name, help, value) in simple {
        let counter = Counter::<u64>::default();
        counter.inc_by(value.load(Ordering::Relaxed));
        registry.register(name, help, counter);
    }
    let health = counters
        .health
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let lag = Family::<Vec<(&'static str, String)>, Gauge>::default();
    for (agent, state) in &health.agents {
        lag.get_or_create(&vec![("agent", agent.clone())])
            .set(state.lag_seconds);
    }
    registry.register(
        "agent_lag_seconds",
        "Seconds since the end of each agent's latest window merged",
        lag,
    );
    let gauges = [
        (
            "agents",
            "Agents that ever sent a slice",
            i64::try_from(health.agents.len()).unwrap_or(i64::MAX),
        ),
        (
            "agents_silent",
            "Agents silent for longer than the set number of their export intervals",
            i64::try_from(health.agents.values().filter(|a| a.silent).count()).unwrap_or(i64::MAX),
        ),
        (
            "store_up",
            "1 when the store answered its last query",
            i64::from(health.store_up),
        ),
        (
            "digest_last_success_timestamp_seconds",
            "When the last digest ran without error (Unix seconds; 0: never)",
            health.digest_last_success_ms / 1000,
        ),
    ];
    for (name, help, value) in gauges {
        let gauge = Gauge::<i64>::default();
        gauge.set(value);
        registry.register(name, help, gauge);
    }
    let mut text = String::new();
    let _ = encode(&mut text, &registry);
    text
}
