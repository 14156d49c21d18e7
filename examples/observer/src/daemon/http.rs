//! The daemon's HTTP listener (`--listen`, off by default), served by
//! `edgewise-http-server` (its limits: headers, bodies refused unread,
//! timeouts, a connection cap, a shutdown in bounded time):
//!
//! - `GET /healthz`: `200 ok` once the sensors are loaded (and the
//!   cluster listed, when one is followed), `503` before; the body goes on
//!   with how many attachments there are, each interface whose attach
//!   failed (`failed: IFACE DIRECTION: error`) and each listed interface
//!   that does not exist (`missing: IFACE`).
//! - `GET /metrics`: the counters in the Prometheus text (`OpenMetrics`)
//!   format (prometheus-client), as of the last stats tick.
//! - `GET /graph`: the service graph of the last hour (`edgewise.graph/v1`
//!   JSON), as of the last stats tick; `GET /graph/view`: the same graph
//!   as the web view draws it; `GET /records`: the records as server-sent
//!   events, from a ring of the recent ones; `GET /ui`: the web view (see
//!   [`crate::web`]). With `--graph-token-file`, the graph and the records
//!   only for a bearer token of that file (401 otherwise).
//!
//! With `listen_tls_cert` and `listen_tls_key` the listener speaks TLS
//! (HTTP/1.1 and HTTP/2 by ALPN; the certificate read again when its
//! files change); a kubelet probe then uses `scheme: HTTPS`.
//! - `POST /audit`: the Kubernetes API server's audit webhook
//!   (`audit.k8s.io/v1` event lists). It needs `Authorization: Bearer
//!   TOKEN` with a token of `--audit-token-file` (one per line, compared
//!   in constant time, the scheme in any case, the file read again when
//!   it changes; without a token file the webhook is off
//!   and answers 404). Each peer address may send 10 requests a second
//!   (bursts of 20; 429 past that; 4,096 peers remembered, the least
//!   recently seen forgotten first), and a body over 8 MiB is refused (413)
//!   unread; all of it is decided before the body is read. Secret reads
//!   become `secret_read` records (`"source": "api"`), attributed to the
//!   workloads running as the service account; a read seen again within
//!   the window (a retried batch, the same account reading the same
//!   secret) is counted, not recorded again.
//!
//! The probes and `/metrics` are answered from the request's head alone,
//! from what the last stats tick published, so they stay quick while audit
//! bodies are being read and parsed; `/graph` and `/graph/view` are made on
//! the handlers' pool from the graph the last tick published (`/graph`
//! once per tick).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use edgewise_edge_set::ServiceGraph;
use edgewise_http_server::{
    BearerTokens, Head, Limits, Method, RateLimiter, Reply, Request, Server, Service, StatusCode,
    TlsFiles,
};
use edgewise_ip_index::{AuditBatch, AuditDrop, AuditLimits, read_audit};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::DaemonError;
use super::config::{ConfigError, Settings};
use crate::web::records::RecordRing;
use crate::web::{Route, WebView};
use edgewise_pipeline::StatsRecord;

type Labels = Vec<(&'static str, String)>;

/// The metrics, set from each stats record.
struct Metrics {
    registry: Registry,
    events: Family<Labels, Counter>,
    parse_errors: Family<Labels, Counter>,
    tls_errors: Family<Labels, Counter>,
    tls_hellos_given_up: Counter,
    service_matches: Family<Labels, Counter>,
    edges_by_verdict: Family<Labels, Counter>,
    rule_matches: Family<Labels, Counter>,
    lost_events: Counter,
    events_lost: Family<Labels, Counter>,
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
    secret_reads: Family<Labels, Counter>,
    secret_read_repeats: Family<Labels, Counter>,
    secret_reads_not_secret: Counter,
    secret_reads_lost: Counter,
    interfaces: Gauge,
    interface_failures: Family<Labels, Gauge>,
    export_slices: Family<Labels, Counter>,
    export_failures: Counter,
    export_bytes_sent: Counter,
    export_spooled: Gauge,
    export_spooled_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("edgewise");
        let metrics = Self {
            events: Family::default(),
            parse_errors: Family::default(),
            tls_errors: Family::default(),
            tls_hellos_given_up: Counter::default(),
            service_matches: Family::default(),
            edges_by_verdict: Family::default(),
            rule_matches: Family::default(),
            lost_events: Counter::default(),
            events_lost: Family::default(),
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
            secret_reads: Family::default(),
            secret_read_repeats: Family::default(),
            secret_reads_not_secret: Counter::default(),
            secret_reads_lost: Counter::default(),
            interfaces: Gauge::default(),
            interface_failures: Family::default(),
            export_slices: Family::default(),
            export_failures: Counter::default(),
            export_bytes_sent: Counter::default(),
            export_spooled: Gauge::default(),
            export_spooled_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        metrics.register_inputs(&mut registry);
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
        registry.register("edges", "Edges held", metrics.edges.clone());
        metrics.register_sensors(&mut registry);
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
    /// The sensors' and the audit webhook's metrics.
    /// What came in, and what of it could not be used.
    fn register_inputs(&self, registry: &mut Registry) {
        registry.register(
            "events",
            "Capture events handled, by kind",
            self.events.clone(),
        );
        registry.register(
            "parse_errors",
            "Records, packets or messages that could not be used, by reason",
            self.parse_errors.clone(),
        );
        self.register_first_bytes(registry);
    }

    /// What servers' and clients' first bytes gave.
    fn register_first_bytes(&self, registry: &mut Registry) {
        registry.register(
            "tls_errors",
            "TLS hellos that could not be read, by reason",
            self.tls_errors.clone(),
        );
        registry.register(
            "tls_hellos_given_up",
            "TLS hellos given up because their next segment never came",
            self.tls_hellos_given_up.clone(),
        );
        registry.register(
            "service_matches",
            "Servers' first bytes read against nmap's service database, by outcome (hard, soft, none)",
            self.service_matches.clone(),
        );
    }

    fn register_sensors(&self, registry: &mut Registry) {
        registry.register(
            "lost_events",
            "Events the kernel lost because the ring buffer was full",
            self.lost_events.clone(),
        );
        registry.register(
            "events_lost",
            "What the kernel could not deliver whole, by cause (ring_full, copy_failed, parse_limit; cut, fragmented: delivered shortened)",
            self.events_lost.clone(),
        );
        registry.register(
            "audit_dropped",
            "Audit events not kept, by reason",
            self.audit_dropped.clone(),
        );
        registry.register(
            "secret_reads",
            "Secret reads recorded (new observations), by source (mounted, api)",
            self.secret_reads.clone(),
        );
        registry.register(
            "secret_read_repeats",
            "Secret reads seen again within the window and not recorded, by source",
            self.secret_read_repeats.clone(),
        );
        registry.register(
            "secret_reads_not_secret",
            "Reads of files in secret volumes that are not secrets (ConfigMap or downward API files)",
            self.secret_reads_not_secret.clone(),
        );
        registry.register(
            "secret_reads_lost",
            "Mounted-secret reads the kernel could not report (a full ring)",
            self.secret_reads_lost.clone(),
        );
        registry.register(
            "interfaces_attached",
            "Sensors attached, one per interface and direction",
            self.interfaces.clone(),
        );
        registry.register(
            "interface_attach_failed",
            "1 for each interface and direction whose attach failed and waits for the link to change",
            self.interface_failures.clone(),
        );
        registry.register(
            "export_slices",
            "Slices exported to the trail, by outcome (merged, duplicate, expired, refused; dropped from a full spool, unspooled)",
            self.export_slices.clone(),
        );
        registry.register(
            "export_failures",
            "Sends to the collector that failed and wait to be tried again",
            self.export_failures.clone(),
        );
        registry.register(
            "export_bytes_sent",
            "Bytes of slices sent to the collector",
            self.export_bytes_sent.clone(),
        );
        registry.register(
            "export_spooled_slices",
            "Slices waiting in the spool",
            self.export_spooled.clone(),
        );
        registry.register(
            "export_spooled_bytes",
            "Bytes waiting in the spool",
            self.export_spooled_bytes.clone(),
        );
    }

    fn set(&self, stats: &StatsRecord) {
        set_family(&self.events, "kind", &stats.events);
        set_family(&self.parse_errors, "reason", &stats.parse_errors);
        set_family(&self.tls_errors, "reason", &stats.tls_errors);
        set_counter(&self.tls_hellos_given_up, stats.tls_hellos_given_up);
        set_family(&self.service_matches, "outcome", &stats.service_matches);
        set_family(&self.edges_by_verdict, "verdict", &stats.edges_by_verdict);
        set_family(&self.rule_matches, "action", &stats.rule_matches);
        set_counter(&self.lost_events, stats.lost_events);
        set_family(&self.events_lost, "cause", &stats.events_lost);
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
        set_family(&self.secret_reads, "source", &stats.secret_reads.records);
        set_family(
            &self.secret_read_repeats,
            "source",
            &stats.secret_reads.repeats,
        );
        set_counter(&self.secret_reads_not_secret, stats.secret_reads.not_secret);
        set_counter(&self.secret_reads_lost, stats.secret_reads.lost);
        self.edges
            .set(i64::try_from(stats.edges).unwrap_or(i64::MAX));
        self.dns_mappings
            .set(i64::try_from(stats.dns_mappings).unwrap_or(i64::MAX));
        self.bans_held
            .set(i64::try_from(stats.bans_held).unwrap_or(i64::MAX));
        self.interfaces
            .set(i64::try_from(stats.interfaces).unwrap_or(i64::MAX));
        if !stats.export.is_empty() {
            let get = |key: &str| stats.export.get(key).copied().unwrap_or(0);
            for outcome in [
                "merged",
                "duplicate",
                "expired",
                "refused",
                "dropped",
                "unspooled",
            ] {
                set_counter(
                    &self
                        .export_slices
                        .get_or_create(&vec![("outcome", outcome.to_owned())]),
                    get(outcome),
                );
            }
            set_counter(&self.export_failures, get("failures"));
            set_counter(&self.export_bytes_sent, get("bytes_sent"));
            self.export_spooled
                .set(i64::try_from(get("spooled")).unwrap_or(i64::MAX));
            self.export_spooled_bytes
                .set(i64::try_from(get("spooled_bytes")).unwrap_or(i64::MAX));
        }
        // Only the failures of now: one that cleared goes.
        self.interface_failures.clear();
        for key in stats.interface_failures.keys() {
            let (interface, direction) = key.rsplit_once(' ').unwrap_or((key, ""));
            self.interface_failures
                .get_or_create(&vec![
                    ("interface", interface.to_owned()),
                    ("direction", direction.to_owned()),
                ])
                .set(1);
        }
    }
}

/// What the daemon's loop and the listener share.
pub struct Shared {
    ready: AtomicBool,
    /// The `/healthz` body when ready.
    health: Mutex<Bytes>,
    /// The graph, the records and the web view.
    web: WebView,
    records: Arc<RecordRing>,
    metrics: Mutex<Metrics>,
    /// The metrics as last published, rendered.
    metrics_text: Mutex<Bytes>,
    audits: Mutex<Vec<AuditBatch>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// What a daemon with `settings` shares with its listener.
    ///
    /// # Errors
    /// A configuration error for an unreadable or empty
    /// `graph_token_file`.
    pub fn new(settings: &Settings) -> Result<Self, DaemonError> {
        let records = Arc::new(RecordRing::default());
        Ok(Self {
            ready: AtomicBool::new(false),
            health: Mutex::default(),
            web: WebView::new(
                tokens("graph_token_file", settings.graph_token_file.as_deref())?,
                Some(Arc::clone(&records)),
            ),
            records,
            metrics: Mutex::default(),
            metrics_text: Mutex::default(),
            audits: Mutex::default(),
        })
    }

    /// The ring of recent records `/records` serves.
    pub fn records(&self) -> &RecordRing {
        &self.records
    }

    /// The observers are attached (and the cluster listed, when followed).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// What the sensors' state says, for `/healthz`.
    pub fn set_sensors(&self, health: &super::sensors::SensorHealth) {
        *lock(&self.health) = Bytes::from(health.detail());
    }

    /// Whether [`Shared::set_ready`] was called.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Publishes the graph and the counters for `/graph` and `/metrics`.
    pub fn publish(&self, graph: ServiceGraph, stats: &StatsRecord) {
        self.web.publish(graph);
        let text = {
            let metrics = lock(&self.metrics);
            metrics.set(stats);
            let mut text = String::new();
            let _ = encode(&mut text, &metrics.registry);
            text
        };
        *lock(&self.metrics_text) = Bytes::from(text);
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
        lock(&self.audits).push(batch);
    }

    fn metrics_text(&self) -> Bytes {
        let published = lock(&self.metrics_text).clone();
        if !published.is_empty() {
            return published;
        }
        let mut text = String::new();
        let _ = encode(&mut text, &lock(&self.metrics).registry);
        Bytes::from(text)
    }
}

/// Audit requests a second per peer, their burst, and the peers
/// remembered.
const RATE_PER_SECOND: u32 = 10;
const BURST: u32 = 20;
const MAX_PEERS: usize = 4096;

/// The listener; stopped within its grace when dropped.
pub struct HttpServer {
    server: Server,
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
        let service = Arc::new(Endpoints {
            shared,
            audit_tokens: tokens("audit_token_file", settings.audit_token_file.as_deref())?,
            limiter: RateLimiter::new(RATE_PER_SECOND, BURST, MAX_PEERS),
        });
        let tls = settings
            .listen_tls_cert
            .clone()
            .zip(settings.listen_tls_key.clone())
            .map(|(cert, key)| TlsFiles {
                cert,
                key,
                client_ca: None,
            });
        let server = Server::start(address, Limits::default(), tls, service)
            .map_err(|source| DaemonError::Listen { address, source })?;
        Ok(Self { server })
    }

    /// Where it listens (the port chosen when the address said 0).
    pub fn address(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Whether the listener died (the daemon must not run on blind).
    pub fn failed(&self) -> bool {
        self.server.failed()
    }
}

/// The tokens of the file a `setting` names, if it names one.
fn tokens(setting: &'static str, path: Option<&Path>) -> Result<Option<BearerTokens>, ConfigError> {
    path.map(BearerTokens::load)
        .transpose()
        .map_err(|error| ConfigError::Invalid {
            setting,
            problem: error.to_string(),
        })
}

/// What the listener serves (see the module docs).
struct Endpoints {
    shared: Arc<Shared>,
    audit_tokens: Option<BearerTokens>,
    limiter: RateLimiter,
}

impl Service for Endpoints {
    fn body_limit(&self, method: &Method, path: &str) -> u64 {
        if method == Method::POST && path == "/audit" {
            u64::try_from(AuditLimits::default().max_body_bytes).unwrap_or(u64::MAX)
        } else {
            0
        }
    }

    fn admit(&self, head: &Head) -> Option<Reply> {
        let shared = &self.shared;
        match shared.web.admit(head) {
            Route::Answer(reply) => return Some(reply),
            Route::Handle => return None,
            Route::Elsewhere => {}
        }
        match (&head.method, head.path.as_str()) {
            (&Method::GET, "/healthz") => Some(if shared.ready.load(Ordering::Relaxed) {
                let detail = lock(&shared.health).clone();
                if detail.is_empty() {
                    Reply::text(StatusCode::OK, "ok\n")
                } else {
                    Reply::ok("text/plain; charset=utf-8", detail)
                }
            } else {
                Reply::text(StatusCode::SERVICE_UNAVAILABLE, "starting\n")
            }),
            (&Method::GET, "/metrics") => Some(Reply::ok(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                shared.metrics_text(),
            )),
            (&Method::POST, "/audit") => {
                let Some(tokens) = &self.audit_tokens else {
                    return Some(Reply::text(
                        StatusCode::NOT_FOUND,
                        "the audit webhook is off (no --audit-token-file)\n",
                    ));
                };
                if !self.limiter.allow(head.peer.ip(), Instant::now()) {
                    return Some(Reply::text(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too many requests\n",
                    ));
                }
                if !tokens.admits(&head.headers) {
                    return Some(Reply::text(StatusCode::UNAUTHORIZED, "unauthorized\n"));
                }
                None
            }
            _ => Some(Reply::text(StatusCode::NOT_FOUND, "not found\n")),
        }
    }

    fn handle(&self, request: Request) -> Reply {
        if request.head.method != Method::POST {
            return self.shared.web.handle(&request.head);
        }
        // Only an admitted audit request gets here.
        let limits = AuditLimits::default();
        self.shared.audit(read_audit(&request.body, &limits));
        Reply::text(StatusCode::OK, "ok\n")
    }
}
