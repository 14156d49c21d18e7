//! The daemon's pipeline, the same for a live capture and a replay: capture
//! events in, records out, bans asked for.
//!
//! Per event (time is passed in, nanoseconds since the Unix epoch):
//! - SYN: the client's JA4T onto its address; the edge client -> server
//!   counts a flow.
//! - SYN-ACK: the server's JA4TS onto its address, and its port is known
//!   to be a server's; the edge is recorded (a hook that sees only the
//!   SYN-ACK still shows it) without counting a flow.
//! - DNS response: parsed and recorded in the fqdn store (a `dns` record);
//!   the edge client -> DNS server counts a flow.
//! - Banner: the service it shows (never guessed from the port) onto the
//!   server's address and port.
//! - Flow sample: the edge, for connections whose handshake was not seen.
//!
//! The same packet seen twice (by the hooks of both pods' interfaces on a
//! node, or retransmitted) is one: a SYN or SYN-ACK with the same addresses,
//! ports and sequence number, or a DNS response with the same addresses,
//! ports and id, within [`DUPLICATE_WINDOW`] of the first, is counted as a
//! duplicate and otherwise ignored.
//!
//! Which end of a banner or flow sample is the server: the end whose port
//! a SYN-ACK or SYN showed to be a server's; failing that, the end with
//! the lower port (ephemeral ports are high).
//!
//! The first time an edge is recorded (or again after it expired) the
//! pipeline attaches identities and names, asks the NetworkPolicies for a
//! verdict, evaluates the rules once, emits an `edge` record and one `rule`
//! record per match, and queues a ban for a `drop` that no `allow`
//! overrode. Nothing here touches the kernel: the live driver applies
//! [`Pipeline::take_bans`].

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use edgewise_capture::{Edge, Event, EventKind};
use edgewise_edge_set::{
    EdgeKey, EdgeQuery, Endpoint as PolicyEndpoint, Fingerprint, GraphConfig, GraphSlice,
    ObservedGraph, PolicySet, Recorded, detect_service,
};
use edgewise_fqdn_store::{FqdnStore, StoreConfig};
use edgewise_ip_index::{AuditBatch, Protocol, SecretRead};
use edgewise_ja4::{Ja4t, Ja4ts};

use super::identities::{Attacher, Identities, fqdn};
use super::records::{
    DnsRecord, EdgeRecord, Endpoint, Record, RuleEdge, RuleRecord, SecretReadRecord, StatsRecord,
};
use super::rules::{Action, RuleInput, Rules};
use crate::dns::{DnsLine, describe};

/// The most addresses (and server ports) the pipeline remembers
/// fingerprints and services for; past it, the oldest half is forgotten.
const MAX_REMEMBERED: usize = 65_536;

/// How long a SYN, SYN-ACK or DNS response counts as a duplicate of one
/// seen before (see the module docs).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(2);

/// A handshake packet or DNS response, as duplicates share it: addresses,
/// ports, protocol and the sequence number or DNS id.
type Sighting = (SocketAddr, SocketAddr, u8, u32);

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The agent's name in graph slices (the node's name).
    pub agent: String,
    /// Bounds of the observed graph.
    pub graph: GraphConfig,
    /// Bounds of the fqdn store.
    pub store: StoreConfig,
    /// Whether bans reach a kernel (a live run); rule records say so.
    pub enforce: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            agent: "edgewise".to_owned(),
            graph: GraphConfig::default(),
            store: StoreConfig::default(),
            enforce: false,
        }
    }
}

/// A bounded memory of the latest value per key: when full, it starts over
/// (what is forgotten is re-learnt from the next handshake).
#[derive(Debug)]
struct Latest<K, V> {
    map: HashMap<K, V, foldhash::fast::RandomState>,
}

impl<K: std::hash::Hash + Eq, V> Latest<K, V> {
    fn new() -> Self {
        Self {
            map: HashMap::default(),
        }
    }

    fn insert(&mut self, key: K, value: V) {
        if self.map.len() >= MAX_REMEMBERED && !self.map.contains_key(&key) {
            self.map.clear();
        }
        self.map.insert(key, value);
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }
}

/// Counters of a pipeline.
#[derive(Debug, Clone, Default)]
struct Counts {
    events: BTreeMap<&'static str, u64>,
    parse_errors: BTreeMap<&'static str, u64>,
    edges_seen: u64,
    verdicts: BTreeMap<&'static str, u64>,
    dns_responses: u64,
    rule_matches: BTreeMap<&'static str, u64>,
    rule_errors: u64,
    bans_requested: u64,
    duplicates: u64,
}

/// The pipeline (see the module docs).
pub struct Pipeline {
    config: PipelineConfig,
    identities: Identities,
    policies: PolicySet,
    rules: Rules,
    store: FqdnStore,
    graph: ObservedGraph,
    /// (address, port, protocol) known to be a server's.
    servers: Latest<(IpAddr, u16, Protocol), ()>,
    ja4t: Latest<IpAddr, String>,
    ja4ts: Latest<IpAddr, String>,
    services: Latest<(IpAddr, u16, Protocol), &'static str>,
    /// When each recent SYN, SYN-ACK and DNS response was first seen.
    sightings: Latest<Sighting, u64>,
    counts: Counts,
    bans: Vec<(Edge, Duration)>,
}

impl Pipeline {
    /// A pipeline starting at `now_ns`.
    pub fn new(
        config: PipelineConfig,
        identities: Identities,
        policies: PolicySet,
        rules: Rules,
        now_ns: u64,
    ) -> Self {
        Self {
            graph: ObservedGraph::new(config.graph, now_ns),
            store: FqdnStore::new(config.store),
            config,
            identities,
            policies,
            rules,
            servers: Latest::new(),
            ja4t: Latest::new(),
            ja4ts: Latest::new(),
            services: Latest::new(),
            sightings: Latest::new(),
            counts: Counts::default(),
            bans: Vec::new(),
        }
    }

    /// Takes new policies, and new identities when given (the objects
    /// files changed); edges already seen keep what they were reported
    /// with, and new edges and the next drain use these.
    pub fn replace_inputs(&mut self, identities: Option<Identities>, policies: PolicySet) {
        if let Some(identities) = identities {
            self.identities = identities;
        }
        self.policies = policies;
    }

    /// Counts a record or packet that could not be used.
    pub fn parse_error(&mut self, reason: &'static str) {
        *self.counts.parse_errors.entry(reason).or_default() += 1;
    }

    /// Handles one event seen at `now_ns`; `sequence` labels its DNS
    /// record (a replay's frame number, a live run's event count).
    pub fn handle(
        &mut self,
        event: &Event<'_>,
        now_ns: u64,
        sequence: u64,
        sink: &mut dyn FnMut(&Record),
    ) {
        let Some(protocol) = protocol(event.protocol) else {
            return;
        };
        if self.duplicate(event, now_ns) {
            self.counts.duplicates += 1;
            return;
        }
        *self.counts.events.entry(kind_name(event.kind)).or_default() += 1;
        match event.kind {
            EventKind::Syn => {
                let fingerprint = Ja4t::from_syn(event.data).map(|f| f.to_string());
                self.fingerprint(event.src.ip(), fingerprint, false, now_ns);
                let (client, server) = (event.src, event.dst);
                self.handshake(client, server, protocol, 1, event.wire_len, now_ns, sink);
            }
            EventKind::SynAck => {
                let fingerprint = Ja4ts::from_syn_ack(event.data).map(|f| f.to_string());
                self.fingerprint(event.src.ip(), fingerprint, true, now_ns);
                // A hook that sees only the SYN-ACK still shows the edge.
                let (client, server) = (event.dst, event.src);
                self.handshake(client, server, protocol, 0, event.wire_len, now_ns, sink);
            }
            EventKind::DnsResponse => {
                let transport = "udp";
                match describe(sequence, transport, event.data, &mut self.store, now_ns) {
                    None => {}
                    Some(Ok(line)) => {
                        self.counts.dns_responses += 1;
                        sink(&Record::Dns(DnsRecord {
                            time_ns: now_ns,
                            client: event.dst.ip(),
                            server: event.src.ip(),
                            line: DnsLine::Response(line),
                        }));
                    }
                    Some(Err(error)) => self.parse_error(error.reason()),
                }
                let (client, server) = (event.dst, event.src);
                self.handshake(client, server, protocol, 1, event.wire_len, now_ns, sink);
            }
            EventKind::Banner => {
                let (client, server) = self.orient(event.src, event.dst, protocol);
                if let Some(service) = detect_service(event.data) {
                    self.graph
                        .service(server.ip(), server.port(), protocol, service, now_ns);
                    self.services
                        .insert((server.ip(), server.port(), protocol), service);
                }
                self.edge(client, server, protocol, 0, event.wire_len, now_ns, sink);
            }
            EventKind::FlowSample => {
                let (client, server) = self.orient(event.src, event.dst, protocol);
                self.edge(client, server, protocol, 0, event.wire_len, now_ns, sink);
            }
        }
    }

    /// Whether `event` repeats a SYN, SYN-ACK or DNS response seen less
    /// than [`DUPLICATE_WINDOW`] ago (remembering it if not).
    fn duplicate(&mut self, event: &Event<'_>, now_ns: u64) -> bool {
        let tag = match event.kind {
            EventKind::Syn | EventKind::SynAck => event.data.get(4..8),
            EventKind::DnsResponse => event.data.get(0..2),
            EventKind::Banner | EventKind::FlowSample => return false,
        };
        let Some(tag) = tag else {
            return false;
        };
        let tag = tag.iter().fold(0u32, |n, b| n << 8 | u32::from(*b));
        let key = (event.src, event.dst, event.protocol, tag);
        let window = u64::try_from(DUPLICATE_WINDOW.as_nanos()).unwrap_or(u64::MAX);
        if self
            .sightings
            .get(&key)
            .is_some_and(|first| now_ns.saturating_sub(*first) < window)
        {
            return true;
        }
        self.sightings.insert(key, now_ns);
        false
    }

    /// A SYN's JA4T (`server` false) or a SYN-ACK's JA4TS onto `ip`.
    fn fingerprint(
        &mut self,
        ip: IpAddr,
        fingerprint: Result<String, edgewise_ja4::Ja4Error>,
        server: bool,
        now_ns: u64,
    ) {
        match fingerprint {
            Ok(text) if server => {
                self.graph
                    .fingerprint(ip, Fingerprint::Server(&text), now_ns);
                self.ja4ts.insert(ip, text);
            }
            Ok(text) => {
                self.graph
                    .fingerprint(ip, Fingerprint::Client(&text), now_ns);
                self.ja4t.insert(ip, text);
            }
            Err(error) => self.parse_error(error.reason()),
        }
    }

    /// A packet that shows which end is the server (a handshake, a DNS
    /// answer): its port is remembered as a server's, and the edge is
    /// recorded.
    #[expect(clippy::too_many_arguments, reason = "one edge's parts")]
    fn handshake(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        protocol: Protocol,
        flows: u64,
        bytes: u32,
        now_ns: u64,
        sink: &mut dyn FnMut(&Record),
    ) {
        self.servers
            .insert((server.ip(), server.port(), protocol), ());
        self.edge(client, server, protocol, flows, bytes, now_ns, sink);
    }

    /// (client, server) for a packet from `src` to `dst`.
    fn orient(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        protocol: Protocol,
    ) -> (SocketAddr, SocketAddr) {
        let known = |end: SocketAddr| {
            self.servers
                .get(&(end.ip(), end.port(), protocol))
                .is_some()
        };
        if known(dst) {
            (src, dst)
        } else if known(src) || src.port() < dst.port() {
            (dst, src)
        } else {
            (src, dst)
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one edge's parts, from each event kind"
    )]
    fn edge(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        protocol: Protocol,
        flows: u64,
        bytes: u32,
        now_ns: u64,
        sink: &mut dyn FnMut(&Record),
    ) {
        let key = EdgeKey {
            src: client.ip(),
            dst: server.ip(),
            port: server.port(),
            protocol,
        };
        if self.graph.record(key, flows, u64::from(bytes), now_ns) == Recorded::Existing {
            return;
        }
        self.counts.edges_seen += 1;
        let endpoint = |at: SocketAddr| Endpoint {
            ip: at.ip(),
            port: at.port(),
            identity: self.identities.lookup(at.ip()),
            fqdn: fqdn(&self.store, at.ip(), now_ns),
        };
        let (src, dst) = (endpoint(client), endpoint(server));
        let verdict = self.policies.evaluate(&EdgeQuery {
            src: PolicyEndpoint {
                ip: src.ip,
                identity: src.identity.as_deref(),
            },
            dst: PolicyEndpoint {
                ip: dst.ip,
                identity: dst.identity.as_deref(),
            },
            port: dst.port,
            protocol,
        });
        let kind = verdict.kind().as_str();
        *self.counts.verdicts.entry(kind).or_default() += 1;
        let record = EdgeRecord {
            time_ns: now_ns,
            summary: EdgeRecord::summary(&src, &dst),
            proto: protocol,
            verdict: kind,
            policy: verdict
                .deciding()
                .map(|id| self.policies.policy(id).name.clone()),
            ja4t: self.ja4t.get(&src.ip).cloned(),
            ja4ts: self.ja4ts.get(&dst.ip).cloned(),
            service: self
                .services
                .get(&(dst.ip, dst.port, protocol))
                .map(|s| (*s).to_owned()),
            src,
            dst,
        };
        let outcome = self.rules.evaluate(&RuleInput::of(&record));
        sink(&Record::Edge(record.clone()));
        self.counts.rule_errors += outcome.errors;
        let ban = outcome.ban(&self.rules);
        for m in &outcome.matches {
            let rule = &self.rules.rules()[m.rule];
            *self
                .counts
                .rule_matches
                .entry(m.action.as_str())
                .or_default() += 1;
            let drop = m.action == Action::Drop;
            sink(&Record::Rule(RuleRecord {
                time_ns: now_ns,
                rule: rule.name.clone(),
                action: m.action.as_str(),
                enforced: drop && !m.overridden && self.config.enforce,
                overridden: m.overridden,
                ttl_seconds: drop.then_some(rule.ttl.as_secs()),
                edge: RuleEdge {
                    src: key.src,
                    dst: key.dst,
                    port: key.port,
                    proto: protocol,
                },
                summary: record.summary.clone(),
            }));
        }
        if let Some(ttl) = ban {
            self.counts.bans_requested += 1;
            self.bans.push((
                Edge {
                    src: key.src,
                    dst: key.dst,
                    dst_port: key.port,
                    protocol: protocol_number(protocol),
                },
                ttl,
            ));
        }
    }

    /// The secret reads of an audit batch, attributed to the workloads
    /// running as each service account (when identities come from
    /// objects; none otherwise).
    pub fn secret_reads(&self, batch: AuditBatch) -> Vec<SecretReadRecord> {
        let reads = match &self.identities {
            Identities::Index(index) => batch.attribute(index),
            _ => batch
                .accesses
                .into_iter()
                .map(|access| SecretRead {
                    access,
                    workloads: Vec::new(),
                })
                .collect(),
        };
        reads.iter().map(SecretReadRecord::of).collect()
    }

    /// Edges seen since the start.
    pub fn edges_seen(&self) -> u64 {
        self.counts.edges_seen
    }

    /// The bans asked for since the last call.
    pub fn take_bans(&mut self) -> Vec<(Edge, Duration)> {
        std::mem::take(&mut self.bans)
    }

    /// Lets idle edges and names expire (call it now and then).
    pub fn expire(&mut self, now_ns: u64) {
        self.graph.expire(now_ns);
        self.store.purge_expired(now_ns);
    }

    /// The counters at `now_ns` (the live-only fields are left to the
    /// driver).
    pub fn stats(&self, now_ns: u64) -> StatsRecord {
        let graph = self.graph.stats();
        StatsRecord {
            time_ns: now_ns,
            events: self.counts.events.clone(),
            parse_errors: self.counts.parse_errors.clone(),
            edges: graph.edges,
            edges_seen: self.counts.edges_seen,
            edges_by_verdict: self.counts.verdicts.clone(),
            edges_evicted: graph.evicted_edges,
            dns_responses: self.counts.dns_responses,
            dns_mappings: self.store.len(),
            rule_matches: self.counts.rule_matches.clone(),
            rule_errors: self.counts.rule_errors,
            bans_requested: self.counts.bans_requested,
            duplicate_events: self.counts.duplicates,
            ..StatsRecord::default()
        }
    }

    /// Drains the observed graph at `now_ns`: what was seen since the last
    /// drain, with identities, names and verdicts attached.
    pub fn drain(&mut self, now_ns: u64) -> GraphSlice {
        let mut attacher = Attacher {
            identities: &self.identities,
            store: &self.store,
            now: now_ns,
        };
        self.graph.drain(
            &self.config.agent,
            now_ns,
            &mut attacher,
            Some(&self.policies),
        )
    }
}

fn protocol(number: u8) -> Option<Protocol> {
    match number {
        6 => Some(Protocol::Tcp),
        17 => Some(Protocol::Udp),
        _ => None,
    }
}

fn protocol_number(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

/// The event kind as stats name it.
pub fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Syn => "syn",
        EventKind::SynAck => "syn_ack",
        EventKind::DnsResponse => "dns_response",
        EventKind::Banner => "banner",
        EventKind::FlowSample => "flow_sample",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use edgewise_capture::Direction;

    use super::*;

    fn event<'a>(kind: EventKind, src: &str, dst: &str, protocol: u8, data: &'a [u8]) -> Event<'a> {
        Event {
            kind,
            direction: Direction::Unknown,
            timestamp_ns: 0,
            ifindex: 0,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol,
            wire_len: 60,
            data,
        }
    }

    /// A 20-byte TCP header with `flags`.
    fn tcp(flags: u8) -> Vec<u8> {
        let mut header = vec![0u8; 20];
        header[12] = 5 << 4;
        header[13] = flags;
        header[14..16].copy_from_slice(&64240u16.to_be_bytes());
        header
    }

    /// A DNS answer: `name` A `ip`, TTL 300.
    fn dns_answer(name: &str, ip: [u8; 4]) -> Vec<u8> {
        let mut message = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        for label in name.split('.') {
            message.push(u8::try_from(label.len()).unwrap());
            message.extend_from_slice(label.as_bytes());
        }
        message.extend_from_slice(&[0, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
        message.extend_from_slice(&ip);
        message
    }

    fn pipeline(rules: &str, enforce: bool) -> Pipeline {
        Pipeline::new(
            PipelineConfig {
                enforce,
                ..PipelineConfig::default()
            },
            Identities::None,
            edgewise_edge_set::DeclaredPolicies::default().compile(),
            Rules::parse(Path::new("rules.toml"), rules).unwrap(),
            0,
        )
    }

    fn run(pipeline: &mut Pipeline, events: &[Event<'_>]) -> Vec<Record> {
        let mut records = Vec::new();
        for (n, event) in events.iter().enumerate() {
            pipeline.handle(event, 1_000 + n as u64, n as u64, &mut |r| {
                records.push(r.clone());
            });
        }
        records
    }

    fn edges(records: &[Record]) -> Vec<(String, String, Option<String>)> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Edge(e) => Some((
                    format!("{}:{}", e.src.ip, e.src.port),
                    format!("{}:{}", e.dst.ip, e.dst.port),
                    e.dst.fqdn.clone(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_edge_is_reported_once_with_the_name_its_client_resolved() {
        let mut p = pipeline("", false);
        let answer = dns_answer("db.example", [10, 0, 0, 9]);
        let (syn, syn_ack) = (tcp(0x02), tcp(0x12));
        let records = run(
            &mut p,
            &[
                event(
                    EventKind::DnsResponse,
                    "10.0.0.53:53",
                    "10.0.0.1:40000",
                    17,
                    &answer,
                ),
                event(EventKind::Syn, "10.0.0.1:50000", "10.0.0.9:5432", 6, &syn),
                event(
                    EventKind::SynAck,
                    "10.0.0.9:5432",
                    "10.0.0.1:50000",
                    6,
                    &syn_ack,
                ),
                event(EventKind::Syn, "10.0.0.1:50001", "10.0.0.9:5432", 6, &syn),
            ],
        );
        assert_eq!(
            edges(&records),
            [
                ("10.0.0.1:40000".to_owned(), "10.0.0.53:53".to_owned(), None),
                (
                    "10.0.0.1:50000".to_owned(),
                    "10.0.0.9:5432".to_owned(),
                    Some("db.example".to_owned())
                ),
            ]
        );
        assert!(
            matches!(records[0], Record::Dns(_)),
            "the answer, then its edge"
        );
        let stats = p.stats(2_000);
        assert_eq!(stats.edges_seen, 2);
        assert_eq!(stats.events["syn"], 2);
    }

    #[test]
    fn a_packet_seen_by_two_hooks_or_retransmitted_counts_once() {
        let mut p = pipeline("", false);
        let mut syn = tcp(0x02);
        syn[4..8].copy_from_slice(&7u32.to_be_bytes());
        let answer = dns_answer("db.example", [10, 0, 0, 9]);
        let events = [
            event(EventKind::Syn, "10.0.0.1:50000", "10.0.0.9:5432", 6, &syn),
            event(
                EventKind::DnsResponse,
                "10.0.0.53:53",
                "10.0.0.1:40000",
                17,
                &answer,
            ),
        ];
        let mut records = Vec::new();
        for at in [1_000, 1_500_000_000, 3_000_000_000] {
            for event in &events {
                p.handle(event, at, 0, &mut |r| records.push(r.clone()));
            }
        }
        let dns = records
            .iter()
            .filter(|r| matches!(r, Record::Dns(_)))
            .count();
        assert_eq!(dns, 2, "once, then again after the window");
        let stats = p.stats(4_000_000_000);
        assert_eq!(stats.events["syn"], 2);
        assert_eq!(stats.duplicate_events, 2);
        let graph = p.drain(4_000_000_000);
        let to_db = graph.edges.iter().find(|e| e.port == 5432).unwrap();
        assert_eq!(to_db.flows, 2);
    }

    #[test]
    fn flow_samples_and_banners_are_oriented_towards_the_server() {
        let mut p = pipeline("", false);
        let syn_ack = tcp(0x12);
        let records = run(
            &mut p,
            &[
                // A server port below the client's, never seen in a handshake.
                event(
                    EventKind::FlowSample,
                    "10.0.0.9:443",
                    "10.0.0.1:40000",
                    6,
                    &[],
                ),
                // A server known from its SYN-ACK, on a high port.
                event(
                    EventKind::SynAck,
                    "10.0.0.7:50500",
                    "10.0.0.2:40100",
                    6,
                    &syn_ack,
                ),
                event(
                    EventKind::Banner,
                    "10.0.0.2:40100",
                    "10.0.0.7:50500",
                    6,
                    b"GET / HTTP/1.1\r\n",
                ),
                event(
                    EventKind::FlowSample,
                    "10.0.0.7:50500",
                    "10.0.0.2:40100",
                    6,
                    &[],
                ),
            ],
        );
        assert_eq!(
            edges(&records),
            [
                ("10.0.0.1:40000".to_owned(), "10.0.0.9:443".to_owned(), None),
                (
                    "10.0.0.2:40100".to_owned(),
                    "10.0.0.7:50500".to_owned(),
                    None
                ),
            ]
        );
        let graph = p.drain(5_000);
        let server = graph
            .nodes
            .iter()
            .find(|n| n.endpoint.ip.to_string() == "10.0.0.7")
            .unwrap();
        assert_eq!(server.services[0].name, "http");
    }

    #[test]
    fn a_drop_asks_for_a_ban_unless_an_allow_overrides_it() {
        let rules = r#"
[[rule]]
name = "no-5432"
when = "dst_port == 5432"
action = "drop"
ttl_seconds = 30

[[rule]]
name = "but-this-client"
when = 'src_ip == "10.0.0.2"'
action = "allow"
"#;
        let mut p = pipeline(rules, true);
        let syn = tcp(0x02);
        let records = run(
            &mut p,
            &[
                event(EventKind::Syn, "10.0.0.1:50000", "10.0.0.9:5432", 6, &syn),
                event(EventKind::Syn, "10.0.0.2:50000", "10.0.0.9:5432", 6, &syn),
            ],
        );
        let bans = p.take_bans();
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].0.src.to_string(), "10.0.0.1");
        assert_eq!(bans[0].1, Duration::from_secs(30));
        assert!(p.take_bans().is_empty(), "taken once");
        let rule_records: Vec<(String, bool, bool)> = records
            .iter()
            .filter_map(|r| match r {
                Record::Rule(r) => Some((r.rule.clone(), r.enforced, r.overridden)),
                _ => None,
            })
            .collect();
        assert_eq!(
            rule_records,
            [
                ("no-5432".to_owned(), true, false),
                ("no-5432".to_owned(), false, true),
                ("but-this-client".to_owned(), false, false),
            ]
        );
    }
}
