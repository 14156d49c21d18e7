//! The JSON-lines output schema: one object per line, told apart by `type`.
//! Its schema tag is [`RECORD_SCHEMA`]; a writer puts it on every line
//! (the daemon does, with the node's name and the time in RFC 3339:
//! `schemas/record.schema.json` in the repository is the JSON Schema of a
//! line).
//!
//! - `edge`: an edge's facts. The first record of a TCP edge is held for
//!   the settle window (or until its handshake and first payload were
//!   seen) so that it normally carries the server's JA4TS and the service;
//!   a later change of facts gives another with `"update": true`.
//!   `{"type": "edge", "time_ns", "update", "src": Endpoint, "dst":
//!   Endpoint, "proto", "verdict", "policy", "ja4t", "ja4ts", "service",
//!   "summary"}`, where an Endpoint is `{"ip", "port", "identity", "fqdn"}`
//!   (`identity` is ip-index's `ClusterObject` form or null; the server's
//!   `fqdn` is the name this client resolved it from, or, with
//!   `"fqdn_source": "other_client"`, the latest name another client
//!   resolved; the client's `port` is the one it used first). `verdict` is
//!   `declared`, `violation` or `not_governed` (no policy selects either
//!   side), `policy` the deciding NetworkPolicy or null; fingerprints and
//!   `service` are null until known. When known, and left out otherwise:
//!   `service_product` and `service_version` (nmap's database, when the
//!   daemon was given it), `ja4` (the client's ClientHello to this server),
//!   `ja4s` (the server's ServerHello on this port) and `tls` `{"sni",
//!   "alpn"}` (what the ClientHello asked for: the server name and the
//!   first ALPN protocol offered). An edge to a Service's ClusterIP or
//!   NodePort is judged against each ready backend at its target port:
//!   `via_service` `{"service", "backends", "agree", "denying"}` says how,
//!   the verdict is the strictest (`violation`, then `declared`, then
//!   `not_governed`), and `no_backends` when the Service has none.
//! - `rule`: a rule's outcome for an edge changed: `{"type": "rule",
//!   "time_ns", "rule", "action", "matched", "enforced", "overridden",
//!   "ttl_seconds", "edge": {"src", "dst", "port", "proto"}, "summary"}`;
//!   `enforced` says the kernel accepted the ban (never in a replay),
//!   `overridden` that an `allow` rule won over this `drop`.
//! - `unban`: a ban was lifted: `{"type": "unban", "time_ns", "edge",
//!   "rule", "reason"}`, `reason` being `ttl` (no blocked attempt or match
//!   for the TTL), `no_match` (the rule stopped matching: new facts, a
//!   policy or rules reload) or `allowed` (an `allow` rule now matches).
//! - `drop`: blocked attempts of a banned edge the kernel reported:
//!   `{"type": "drop", "time_ns", "edge", "rule", "packets"}`.
//! - `dns`: a DNS response, as `edgewise dns` prints it, plus `time_ns`,
//!   `client` and `server`.
//! - `secret_read`: a Secret was read, from a mounted secret volume
//!   (`"source": "mounted"`, the kernel's secret-volume observer) or
//!   through the API (`"source": "api"`, the audit webhook); one record
//!   per new observation within the window: `{"type": "secret_read",
//!   "time_ns", "source", "secret", "secret_kind", "verb", "time_s",
//!   "audit_id", "service_account", "workloads", "pod", "mounted":
//!   {"volume", "volume_kind", "file", "pod_uid", "pid", "command",
//!   "cgroup"}, "rules", "allowed"}` (see [`crate::secrets`]).
//! - `stats`: counters, periodically and at the end.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use edgewise_edge_set::EdgeKey;
use edgewise_ip_index::{ClusterObject, Protocol};
use serde::Serialize;

use crate::FqdnSource;
use crate::dns::DnsLine;

/// The schema tag of a record line: its version changes when a field
/// changes meaning or goes away, not when one is added.
pub const RECORD_SCHEMA: &str = "edgewise.record/v1";

/// One output line.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// An edge's facts.
    Edge(EdgeRecord),
    /// A rule's outcome for an edge changed.
    Rule(RuleRecord),
    /// A ban was lifted.
    Unban(UnbanRecord),
    /// Blocked attempts of a banned edge.
    Drop(DropRecord),
    /// A DNS response.
    Dns(DnsRecord),
    /// A secret read by a service account.
    SecretRead(SecretReadRecord),
    /// Counters.
    Stats(StatsRecord),
}

impl Record {
    /// When it happened: nanoseconds since the Unix epoch (capture time in
    /// a replay).
    pub fn time_ns(&self) -> u64 {
        match self {
            Record::Edge(r) => r.time_ns,
            Record::Rule(r) => r.time_ns,
            Record::Unban(r) => r.time_ns,
            Record::Drop(r) => r.time_ns,
            Record::Dns(r) => r.time_ns,
            Record::SecretRead(r) => r.time_ns,
            Record::Stats(r) => r.time_ns,
        }
    }
}

/// One side of an edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Endpoint {
    /// The address.
    pub ip: IpAddr,
    /// The port (the client's first one, the server's service port).
    pub port: u16,
    /// Who has the address.
    pub identity: Option<Arc<ClusterObject>>,
    /// The name the address was resolved from.
    pub fqdn: Option<String>,
    /// Whether this edge's client resolved `fqdn` (servers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fqdn_source: Option<FqdnSource>,
}

impl Endpoint {
    /// `ip:port`, with no identity or name known yet.
    pub fn new(ip: IpAddr, port: u16) -> Self {
        Self {
            ip,
            port,
            identity: None,
            fqdn: None,
            fqdn_source: None,
        }
    }

    /// How a summary names it: the identity, else the name, else the
    /// address.
    pub fn name(&self) -> String {
        match (&self.identity, &self.fqdn) {
            (Some(identity), _) => identity.to_string(),
            (None, Some(fqdn)) => fqdn.clone(),
            (None, None) => self.ip.to_string(),
        }
    }
}

/// An edge's facts.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct EdgeRecord {
    /// When (nanoseconds since the Unix epoch).
    pub time_ns: u64,
    /// A later record of an edge already reported, whose facts changed.
    pub update: bool,
    /// The client.
    pub src: Endpoint,
    /// The server.
    pub dst: Endpoint,
    /// `tcp` or `udp`.
    pub proto: Protocol,
    /// `declared`, `violation` or `not_governed`.
    pub verdict: &'static str,
    /// The deciding NetworkPolicy (`namespace/name`).
    pub policy: Option<String>,
    /// The client's JA4T.
    pub ja4t: Option<String>,
    /// The server's JA4TS.
    pub ja4ts: Option<String>,
    /// What the first payload showed.
    pub service: Option<String>,
    /// The server's product, when nmap's database named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_product: Option<String>,
    /// Its version, when the database's match gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_version: Option<String>,
    /// The client's JA4 (its ClientHello to this server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    /// The server's JA4S (its ServerHello on this port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4s: Option<String>,
    /// What the client's ClientHello asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsRecord>,
    /// For an edge to a Service's front (ClusterIP or NodePort): the
    /// Service and how its backends judge the edge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_service: Option<ViaService>,
    /// `analytics/telegraf connects to analytics/influxdb:8086 (10.42.1.159)`.
    pub summary: String,
}

impl EdgeRecord {
    /// A first record of the edge `src` -> `dst` at `time_ns` with its
    /// verdict, no other fact known yet; its summary made from the
    /// endpoints.
    pub fn new(
        time_ns: u64,
        src: Endpoint,
        dst: Endpoint,
        proto: Protocol,
        verdict: &'static str,
    ) -> Self {
        Self {
            time_ns,
            update: false,
            summary: Self::summary(&src, &dst),
            src,
            dst,
            proto,
            verdict,
            policy: None,
            ja4t: None,
            ja4ts: None,
            service: None,
            service_product: None,
            service_version: None,
            ja4: None,
            ja4s: None,
            tls: None,
            via_service: None,
        }
    }

    /// The summary line for `src` and `dst`.
    pub fn summary(src: &Endpoint, dst: &Endpoint) -> String {
        let server = dst.name();
        if server == dst.ip.to_string() {
            format!("{} connects to {server}:{}", src.name(), dst.port)
        } else {
            format!(
                "{} connects to {server}:{} ({})",
                src.name(),
                dst.port,
                dst.ip
            )
        }
    }
}

/// What a ClientHello asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TlsRecord {
    /// The server name (SNI), as sent.
    pub sni: Option<String>,
    /// The first protocol offered by ALPN.
    pub alpn: Option<String>,
}

/// An edge to a Service's front, judged as kube-proxy would deliver it:
/// against each ready backend, at its target port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ViaService {
    /// The Service, `namespace/name`.
    pub service: String,
    /// Its ready backends.
    pub backends: usize,
    /// Whether every backend gave the same verdict (the edge's verdict is
    /// the strictest when not).
    pub agree: bool,
    /// The backends whose NetworkPolicies deny the edge
    /// (`namespace/pod (ip:port)`).
    pub denying: Vec<String>,
}

/// A rule's outcome for an edge changed.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RuleRecord {
    /// When.
    pub time_ns: u64,
    /// The rule's name.
    pub rule: String,
    /// `drop`, `log` or `allow`.
    pub action: &'static str,
    /// The rule now matches (false: it stopped matching).
    pub matched: bool,
    /// The kernel accepted the ban.
    pub enforced: bool,
    /// An `allow` rule won over this `drop`.
    pub overridden: bool,
    /// The ban's length after the last blocked attempt, for a drop.
    pub ttl_seconds: Option<u64>,
    /// The edge.
    pub edge: EdgeKey,
    /// The edge's summary.
    pub summary: String,
}

impl RuleRecord {
    /// `rule` (of `action`) started matching `edge` at `time_ns`, not
    /// enforced; the summary left empty.
    pub fn new(time_ns: u64, rule: impl Into<String>, action: &'static str, edge: EdgeKey) -> Self {
        Self {
            time_ns,
            rule: rule.into(),
            action,
            matched: true,
            enforced: false,
            overridden: false,
            ttl_seconds: None,
            edge,
            summary: String::new(),
        }
    }
}

/// A ban was lifted.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct UnbanRecord {
    /// When.
    pub time_ns: u64,
    /// The edge.
    pub edge: EdgeKey,
    /// The rule that held it (none for a ban adopted from the kernel).
    pub rule: Option<String>,
    /// `ttl`, `no_match` or `allowed`.
    pub reason: &'static str,
}

/// Blocked attempts of a banned edge.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DropRecord {
    /// When.
    pub time_ns: u64,
    /// The edge.
    pub edge: EdgeKey,
    /// The rule that holds the ban (none for an adopted one).
    pub rule: Option<String>,
    /// Packets dropped since the last report.
    pub packets: u64,
}

impl DropRecord {
    /// `packets` dropped on `edge` since the last report, at `time_ns`,
    /// by the ban of `rule` (none for an adopted ban).
    pub fn new(time_ns: u64, edge: EdgeKey, rule: Option<String>, packets: u64) -> Self {
        Self {
            time_ns,
            edge,
            rule,
            packets,
        }
    }
}

/// A DNS response.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DnsRecord {
    /// When.
    pub time_ns: u64,
    /// Who asked.
    pub client: IpAddr,
    /// Who answered.
    pub server: IpAddr,
    /// As `edgewise dns` prints it.
    #[serde(flatten)]
    pub line: DnsLine,
}

impl DnsRecord {
    /// The response `line` from `server` to `client` at `time_ns`.
    pub fn new(time_ns: u64, client: IpAddr, server: IpAddr, line: DnsLine) -> Self {
        Self {
            time_ns,
            client,
            server,
            line,
        }
    }
}

/// A secret read, from either source (see [`crate::secrets`]).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SecretReadRecord {
    /// When the daemon saw it (nanoseconds since the Unix epoch).
    pub time_ns: u64,
    /// `mounted` (a file of a secret volume opened) or `api` (the audit
    /// webhook).
    pub source: &'static str,
    /// The secret, `namespace/name` (`namespace/*` for an API list or
    /// watch of all; `?/name` when the volume's pod is not known).
    pub secret: String,
    /// `secret`, `service_account_token` (a projected token: the name is
    /// the service account's), or `volume` (only the volume's name is
    /// known).
    pub secret_kind: &'static str,
    /// `open` (mounted), or `get`, `list`, `watch`.
    pub verb: &'static str,
    /// When the API server saw it (seconds since the Unix epoch; API
    /// reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_s: Option<i64>,
    /// The API server's audit id (API reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
    /// The reader's service account, `namespace/name` (API reads: the
    /// account that read; mounted: the reading pod's, when known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// The reader's workloads (`namespace/Kind/name`): every workload
    /// running as the account for an API read, the reading pod's for a
    /// mounted one.
    pub workloads: Vec<String>,
    /// The reading pod, `namespace/name` (mounted reads, when known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// What the kernel saw (mounted reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounted: Option<MountedRead>,
    /// The `log` and `allow` rules that matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// An `allow` rule matched: the read is expected.
    pub allowed: bool,
}

impl SecretReadRecord {
    /// A read of `secret` (of `secret_kind`) by `verb` from `source` at
    /// `time_ns`, nothing else known yet, not allowed.
    pub fn new(
        time_ns: u64,
        source: &'static str,
        secret: impl Into<String>,
        secret_kind: &'static str,
        verb: &'static str,
    ) -> Self {
        Self {
            time_ns,
            source,
            secret: secret.into(),
            secret_kind,
            verb,
            time_s: None,
            audit_id: None,
            service_account: None,
            workloads: Vec::new(),
            pod: None,
            mounted: None,
            rules: Vec::new(),
            allowed: false,
        }
    }
}

/// What the kernel saw of a mounted read.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct MountedRead {
    /// The volume's name.
    pub volume: String,
    /// `secret` or `projected`.
    pub volume_kind: &'static str,
    /// The file inside the volume.
    pub file: String,
    /// The reading pod's uid, from its cgroup (none: not a pod).
    pub pod_uid: Option<String>,
    /// The process (in the node's pid namespace).
    pub pid: u32,
    /// Its command.
    pub command: String,
    /// Its cgroup (v2) path, when it could be found.
    pub cgroup: Option<String>,
}

/// Counters.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct StatsRecord {
    /// When.
    pub time_ns: u64,
    /// Events handled, by kind.
    pub events: BTreeMap<&'static str, u64>,
    /// Events the kernel lost because the ring was full (live only).
    pub lost_events: u64,
    /// What the kernel could not deliver whole, by cause (live only):
    /// `ring_full`, `copy_failed`, `parse_limit` (packets whose headers go
    /// past what the observers follow), and, delivered shortened, `cut`
    /// (DNS longer than an event holds) and `fragmented` (UDP DNS answers
    /// over the path's MTU, whose first IP fragment alone is seen).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub events_lost: BTreeMap<&'static str, u64>,
    /// SYNs, SYN-ACKs and DNS responses seen again (by a second hook, or
    /// retransmitted) and ignored.
    pub duplicate_events: u64,
    /// Secret reads: records and repeats by source, what was not a secret,
    /// what the kernel lost.
    pub secret_reads: crate::secrets::SecretReadCounts,
    /// Records or packets that could not be used, by reason.
    pub parse_errors: BTreeMap<&'static str, u64>,
    /// Edges held now.
    pub edges: usize,
    /// Edges seen since the start.
    pub edges_seen: u64,
    /// Those edges by verdict.
    pub edges_by_verdict: BTreeMap<&'static str, u64>,
    /// Edges evicted to stay within bounds.
    pub edges_evicted: u64,
    /// DNS responses read.
    pub dns_responses: u64,
    /// Address -> name mappings held.
    pub dns_mappings: usize,
    /// (client, address) -> name mappings held: the names each client
    /// resolved.
    pub dns_client_names: usize,
    /// Those evicted to stay within bounds.
    pub dns_client_names_evicted: u64,
    /// Rule matches, by action.
    pub rule_matches: BTreeMap<&'static str, u64>,
    /// Rule expressions that failed.
    pub rule_errors: u64,
    /// Those failures, by rule.
    pub rule_errors_by_rule: BTreeMap<String, u64>,
    /// `edge` records with `"update": true`.
    pub edge_updates: u64,
    /// Bans asked for by drop rules.
    pub bans_requested: u64,
    /// Bans the kernel refused.
    pub bans_failed: u64,
    /// Bans found in the kernel at start and adopted.
    pub bans_adopted: u64,
    /// Bans lifted, by reason.
    pub bans_lifted: BTreeMap<&'static str, u64>,
    /// Bans held now.
    pub bans_held: usize,
    /// TLS hellos that could not be read, by reason (`incomplete`,
    /// `truncated`, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tls_errors: BTreeMap<&'static str, u64>,
    /// TLS hellos given up because their next segment never came.
    #[serde(skip_serializing_if = "is_zero")]
    pub tls_hellos_given_up: u64,
    /// Servers' first bytes read against nmap's database, by outcome
    /// (`hard`, `soft`, `none`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub service_matches: BTreeMap<&'static str, u64>,
    /// The active prober's servers, by what became of them (`started`,
    /// `hard`, `soft`, `no_match`, and the limits: `outside`, `banned`,
    /// `again_too_soon`, `queue_full`, `identified`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub probes: BTreeMap<&'static str, u64>,
    /// Packets the kernel dropped for bans (live only).
    pub packets_dropped: u64,
    /// Those packets, by the rule that holds the ban (`adopted` for an
    /// adopted one).
    pub packets_dropped_by_rule: BTreeMap<String, u64>,
    /// Sensors attached now, one per interface and direction (live only;
    /// the pipeline leaves it 0 for its runner to fill).
    pub interfaces: usize,
    /// Interfaces whose attach failed and waits for the link to change:
    /// `"INTERFACE DIRECTION"` -> the error (live only).
    pub interface_failures: BTreeMap<String, String>,
    /// The trail export's counters when exporting (the pipeline leaves it
    /// empty for its runner to fill): slices `merged`, `duplicate`,
    /// `expired`, `refused`, `dropped` (from a full spool), `unspooled`;
    /// `failures` (sends to try again), `bytes_sent`; and now: `spooled`,
    /// `spooled_bytes`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub export: BTreeMap<&'static str, u64>,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}
