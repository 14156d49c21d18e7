//! The daemon's HTTP listener (`--listen`, off by default), on a thread of
//! its own:
//!
//! - `GET /healthz`: `200 ok` once the observers are attached, `503`
//!   before.
//! - `GET /metrics`: the counters in the Prometheus text (`OpenMetrics`)
//!   format (prometheus-client), as of the last stats tick.
//! - `GET /graph`: the service graph so far (`edgewise.graph/v1` JSON), as
//!   of the last stats tick.
//! - `POST /audit`: the Kubernetes API server's audit webhook
//!   (`audit.k8s.io/v1` event lists). It needs `Authorization: Bearer
//!   TOKEN` with the token of `--audit-token-file` (compared in constant
//!   time; without a token file the webhook is off and answers 404). Each
//!   peer address may send 10 requests a second (bursts of 20; 429 past
//!   that), and a body over 8 MiB is refused (413) unread. Secret reads
//!   become `secret_read` records, attributed to the workloads running as
//!   the service account.

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use edgewise_edge_set::ServiceGraph;
use edgewise_edge_set::render::graph_json;
use edgewise_ip_index::{AuditBatch, AuditDrop, AuditLimits, read_audit};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use subtle::ConstantTimeEq;
use tiny_http::{Header, Method, Request, Response, Server};

use super::DaemonError;
use super::config::{ConfigError, Settings};
use edgewise_pipeline::StatsRecord;

type Labels = Vec<(&'static str, String)>;

/// The metrics, set from each stats record.
struct Metrics {
    registry: Registry,
    events: Family<Labels, Counter>,
    parse_errors: Family<Labels, Counter>,
    edges_by_verdict: Family<Labels, Counter>,
    rule_matches: Family<Labels, Counter>,
    lost_events: Counter,
    edges: Gauge,
    dns_responses: Counter,
    dns_mappings: Gauge,
    rule_errors: Counter,
    bans_held: Gauge,
    bans_adopted: Counter,
    bans_lifted: Family<Labels, Counter>,
    edge_updates: Counter,
    packets_dropped: Family<Labels, Counter>,
    audit_dropped: Family<Labels, Counter>,
    secret_reads: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("edgewise");
        let metrics = Self {
            events: Family::default(),
            parse_errors: Family::default(),
            edges_by_verdict: Family::default(),
            rule_matches: Family::default(),
            lost_events: Counter::default(),
            edges: Gauge::default(),
            dns_responses: Counter::default(),
            dns_mappings: Gauge::default(),
            rule_errors: Counter::default(),
            bans_held: Gauge::default(),
            bans_adopted: Counter::default(),
            bans_lifted: Family::default(),
            edge_updates: Counter::default(),
            packets_dropped: Family::default(),
            audit_dropped: Family::default(),
            secret_reads: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "events",
            "Capture events handled, by kind",
            metrics.events.clone(),
        );
        registry.register(
            "parse_errors",
            "Records, packets or messages that could not be used, by reason",
            metrics.parse_errors.clone(),
        );
        registry.register(
            "edges_seen",
            "Edges seen, by NetworkPolicy verdict",
            metrics.edges_by_verdict.clone(),
        );
        registry.register(
            "rule_matches",
            "Rule matches, by action",
            metrics.rule_matches.clone(),
        );
        registry.register(
            "lost_events",
            "Events the kernel lost because the ring buffer was full",
            metrics.lost_events.clone(),
        );
        registry.register("edges", "Edges held", metrics.edges.clone());
        registry.register(
            "dns_responses",
            "DNS responses read",
            metrics.dns_responses.clone(),
        );
        registry.register(
            "dns_mappings",
            "Address to name mappings held",
            metrics.dns_mappings.clone(),
        );
        registry.register(
            "rule_errors",
            "Rule expressions that failed",
            metrics.rule_errors.clone(),
        );
        registry.register(
            "bans_held",
            "Edges banned in the kernel now",
            metrics.bans_held.clone(),
        );
        registry.register(
            "bans_adopted",
            "Bans found in the kernel at start and adopted",
            metrics.bans_adopted.clone(),
        );
        registry.register(
            "bans_lifted",
            "Bans lifted, by reason (ttl, no_match, allowed)",
            metrics.bans_lifted.clone(),
        );
        registry.register(
            "edge_updates",
            "Edge records written again because an edge's facts changed",
            metrics.edge_updates.clone(),
        );
        registry.register(
            "packets_dropped",
            "Packets the kernel dropped for banned edges, by the rule holding the ban (as reported, at most a second late)",
            metrics.packets_dropped.clone(),
        );
        registry.register(
            "audit_dropped",
            "Audit events not kept, by reason",
            metrics.audit_dropped.clone(),
        );
        registry.register(
            "secret_reads",
            "Secret reads by service accounts from the audit webhook",
            metrics.secret_reads.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

fn set_counter(counter: &Counter, value: u64) {
    counter.inner().store(value, Ordering::Relaxed);
}

fn set_family<K: AsRef<str>>(
    family: &Family<Labels, Counter>,
    label: &'static str,
    values: &std::collections::BTreeMap<K, u64>,
) {
    for (name, value) in values {
        set_counter(
            &family.get_or_create(&vec![(label, name.as_ref().to_owned())]),
            *value,
        );
    }
}

impl Metrics {
    fn set(&self, stats: &StatsRecord) {
        set_family(&self.events, "kind", &stats.events);
        set_family(&self.parse_errors, "reason", &stats.parse_errors);
        set_family(&self.edges_by_verdict, "verdict", &stats.edges_by_verdict);
        set_family(&self.rule_matches, "action", &stats.rule_matches);
        set_counter(&self.lost_events, stats.lost_events);
        set_counter(&self.dns_responses, stats.dns_responses);
        set_counter(&self.rule_errors, stats.rule_errors);
        set_family(
            &self.packets_dropped,
            "rule",
            &stats.packets_dropped_by_rule,
        );
        set_family(&self.bans_lifted, "reason", &stats.bans_lifted);
        set_counter(&self.bans_adopted, stats.bans_adopted);
        set_counter(&self.edge_updates, stats.edge_updates);
        self.edges
            .set(i64::try_from(stats.edges).unwrap_or(i64::MAX));
        self.dns_mappings
            .set(i64::try_from(stats.dns_mappings).unwrap_or(i64::MAX));
        self.bans_held
            .set(i64::try_from(stats.bans_held).unwrap_or(i64::MAX));
    }
}

/// What the daemon's loop and the listener share.
#[derive(Default)]
pub struct Shared {
    ready: AtomicBool,
    graph: Mutex<String>,
    metrics: Mutex<Metrics>,
    audits: Mutex<Vec<AuditBatch>>,
    secret_reads: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The observers are attached.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Publishes the graph and the counters for `/graph` and `/metrics`.
    pub fn publish(&self, graph: &ServiceGraph, stats: &StatsRecord) {
        let json = graph_json(graph).to_string();
        *lock(&self.graph) = json;
        let metrics = lock(&self.metrics);
        metrics.set(stats);
        set_counter(
            &metrics.secret_reads,
            self.secret_reads.load(Ordering::Relaxed),
        );
    }

    /// The audit batches received since the last call.
    pub fn take_audits(&self) -> Vec<AuditBatch> {
        std::mem::take(&mut *lock(&self.audits))
    }

    fn audit(&self, batch: AuditBatch) {
        {
            let metrics = lock(&self.metrics);
            for (index, reason) in AuditDrop::REASONS.iter().enumerate() {
                if batch.dropped[index] > 0 {
                    metrics
                        .audit_dropped
                        .get_or_create(&vec![("reason", (*reason).to_owned())])
                        .inc_by(batch.dropped[index]);
                }
            }
        }
        self.secret_reads
            .fetch_add(batch.accesses.len() as u64, Ordering::Relaxed);
        lock(&self.audits).push(batch);
    }

    fn metrics_text(&self) -> String {
        let mut text = String::new();
        let _ = encode(&mut text, &lock(&self.metrics).registry);
        text
    }
}

/// A token bucket per peer address.
struct RateLimit {
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

const RATE_PER_SECOND: f64 = 10.0;
const BURST: f64 = 20.0;
const MAX_PEERS: usize = 4096;

impl RateLimit {
    fn allow(&mut self, peer: IpAddr, now: Instant) -> bool {
        if self.buckets.len() >= MAX_PEERS && !self.buckets.contains_key(&peer) {
            // Forgetting every peer only ever lets requests through sooner.
            self.buckets.clear();
        }
        let (tokens, last) = self.buckets.entry(peer).or_insert((BURST, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * RATE_PER_SECOND).min(BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The listener; stopped and joined when dropped.
pub struct HttpServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    address: SocketAddr,
}

impl HttpServer {
    /// Starts listening on `address`.
    ///
    /// # Errors
    /// [`DaemonError::Listen`] when the address cannot be bound, or a
    /// configuration error for an unreadable or empty token file.
    pub fn start(
        address: SocketAddr,
        settings: &Settings,
        shared: Arc<Shared>,
    ) -> Result<Self, DaemonError> {
        let token = settings
            .audit_token_file
            .as_deref()
            .map(read_token)
            .transpose()?;
        let server = Server::http(address).map_err(|e| DaemonError::Listen {
            address,
            source: std::io::Error::other(e.to_string()),
        })?;
        let address = server.server_addr().to_ip().unwrap_or(address);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut limit = RateLimit {
                buckets: HashMap::new(),
            };
            while !stopping.load(Ordering::Relaxed) {
                if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(200)) {
                    handle(request, &shared, token.as_deref(), &mut limit);
                }
            }
        });
        Ok(Self {
            stop,
            thread: Some(thread),
            address,
        })
    }

    /// Where it listens (the port chosen when the address said 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_token(path: &Path) -> Result<Vec<u8>, DaemonError> {
    let text = std::fs::read_to_string(path).map_err(crate::FileError::at(path))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ConfigError::Invalid {
            setting: "audit_token_file",
            problem: format!("{} is empty", path.display()),
        }
        .into());
    }
    Ok(token.as_bytes().to_vec())
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn handle(request: Request, shared: &Shared, token: Option<&[u8]>, limit: &mut RateLimit) {
    let text = |code: u16, body: &str| Response::from_string(body).with_status_code(code);
    let response = match (request.method(), request.url()) {
        (Method::Get, "/healthz") => {
            if shared.ready.load(Ordering::Relaxed) {
                text(200, "ok\n")
            } else {
                text(503, "starting\n")
            }
        }
        (Method::Get, "/metrics") => text(200, &shared.metrics_text()).with_header(header(
            "Content-Type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )),
        (Method::Get, "/graph") => Response::from_string(lock(&shared.graph).clone())
            .with_header(header("Content-Type", "application/json")),
        (Method::Post, "/audit") => return audit(request, shared, token, limit),
        _ => text(404, "not found\n"),
    };
    let _ = request.respond(response);
}

fn audit(mut request: Request, shared: &Shared, token: Option<&[u8]>, limit: &mut RateLimit) {
    let text = |code: u16, body: &str| Response::from_string(body).with_status_code(code);
    let Some(token) = token else {
        let _ = request.respond(text(
            404,
            "the audit webhook is off (no --audit-token-file)\n",
        ));
        return;
    };
    let peer = request.remote_addr().map(SocketAddr::ip);
    if let Some(peer) = peer
        && !limit.allow(peer, Instant::now())
    {
        let _ = request.respond(text(429, "too many requests\n"));
        return;
    }
    let presented = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .and_then(|h| h.value.as_str().strip_prefix("Bearer "))
        .map(|t| t.trim().as_bytes().to_vec())
        .unwrap_or_default();
    // Constant time over the token's bytes (a length mismatch is not).
    if !bool::from(presented.ct_eq(token)) {
        let _ = request.respond(text(401, "unauthorized\n"));
        return;
    }
    let limits = AuditLimits::default();
    if request
        .body_length()
        .is_some_and(|n| n > limits.max_body_bytes)
    {
        let _ = request.respond(text(413, "body too large\n"));
        return;
    }
    let mut body = Vec::new();
    let cap = u64::try_from(limits.max_body_bytes).unwrap_or(u64::MAX) + 1;
    if request
        .as_reader()
        .take(cap)
        .read_to_end(&mut body)
        .is_err()
    {
        let _ = request.respond(text(400, "unreadable body\n"));
        return;
    }
    if body.len() > limits.max_body_bytes {
        let _ = request.respond(text(413, "body too large\n"));
        return;
    }
    shared.audit(read_audit(&body, &limits));
    let _ = request.respond(text(200, "ok\n"));
}
