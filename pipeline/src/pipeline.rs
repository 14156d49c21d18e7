//! [`Pipeline`]: capture events in, records and kernel actions out.
//!
//! Per event (time is passed in as a [`UnixNanos`]; the pipeline reads no
//! clock):
//! - SYN: the client's JA4T onto its address; the edge client -> server
//!   counts a flow.
//! - SYN-ACK: the server's JA4TS onto its address, and its port is known
//!   to be a server's; the edge is touched (a hook that sees only the
//!   SYN-ACK still shows it) without counting a flow.
//! - DNS response: parsed and recorded in the fqdn store and, for the
//!   client that asked, in its own names (a `dns` record); the edge client
//!   -> DNS server counts a flow, and the client's edges to the addresses
//!   it resolved are judged again.
//! - Banner: a flow's first bytes (a TLS hello across segments put back
//!   together); the service they show (never guessed from the port; with
//!   nmap's database, its product and version) onto the server's address
//!   and port, a ClientHello's SNI, ALPN and JA4 onto the edge, a
//!   ServerHello's JA4S onto the server's port (see [`crate::banners`]).
//! - Flow sample: the edge, for connections whose handshake was not seen.
//! - Drop: the kernel dropped packets of a banned edge (a blocked attempt,
//!   see [`Pipeline::handle_blocked`]).
//!
//! The same packet seen twice (by the hooks of both pods' interfaces on a
//! node, or retransmitted) is one: a SYN or SYN-ACK with the same addresses,
//! ports and sequence number, or a DNS response with the same addresses,
//! ports and id, within the duplicate window of the first, is counted as a
//! duplicate and otherwise ignored.
//!
//! Which end of a banner or flow sample is the server: the end whose port
//! a SYN-ACK or SYN showed to be a server's; failing that, the end with
//! the lower port (ephemeral ports are high).
//!
//! **Facts and decisions.** Every event on an edge recomputes its facts
//! (identities, the client's own name, verdict, fingerprints, service);
//! when they differ from what the rules last judged, the rules run again
//! and a `rule` record goes out for each rule whose outcome changed. The
//! first `edge` record of a TCP edge waits for the settle window, or
//! until its SYN-ACK and a first payload were seen; later changes give
//! `"update": true` records, at most one a second per edge (a fact that
//! flaps gives one record a second, with the latest facts). Every held edge is judged again at a recheck
//! interval when the identity client's table moved (identities that
//! arrive late), and at once after [`Pipeline::replace_inputs`],
//! [`Pipeline::replace_rules`] or [`Pipeline::replace_services`].
//!
//! **Bans.** A matching `drop` that no `allow` overrides bans the edge
//! ([`Output::Ban`]) until its TTL passes without a refresh; a blocked
//! attempt ([`Pipeline::handle_blocked`]) or a matching event refreshes
//! it (again [`Output::Ban`], at most once a second). When the rule stops
//! matching, or an `allow` starts to, the ban is lifted ([`Output::Unban`]
//! and an `unban` record). The `rule` record of a drop goes out once the
//! driver said whether the kernel took it ([`Pipeline::ban_applied`]),
//! with `enforced` saying so. Bans found in the kernel at start are
//! adopted ([`Pipeline::adopt_ban`]) and lifted by their TTL.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use edgewise_capture::secrets::{SecretOpen, SecretVolume};
use edgewise_capture::{Event, EventKind};
use edgewise_edge_set::{
    EdgeKey, EdgeQuery, Endpoint as PolicyEndpoint, Fingerprint, GraphSlice, ObservedGraph,
    PolicySet, Verdict, VerdictKind,
};
use edgewise_fqdn_store::{FqdnStore, Segment, StreamsConfig, TcpDnsStreams};
use edgewise_ip_index::{AuditBatch, ClusterObject, Protocol, ServiceBackends};
use edgewise_ja4::{Ja4t, Ja4ts};
use edgewise_time::UnixNanos;

use crate::banners::Banners;
use crate::config::PipelineConfig;
use crate::dns::{DnsLine, describe_with};
use crate::edges::{Ban, EdgeState, EdgeTable, Facts};
use crate::identities::{Attacher, Identities};
use crate::memory::{Behaviour, Latest, Sightings};
use crate::names::{ClientNames, FqdnSource};
use crate::probing::{ProbeFinding, Prober};
use crate::records::{
    DnsRecord, DropRecord, EdgeRecord, Endpoint, Record, RuleRecord, SecretReadRecord, StatsRecord,
    TlsRecord, UnbanRecord, ViaService,
};
use crate::rules::{Action, NetInput, RuleInput, Rules};
use crate::secrets::SecretReads;

/// What the pipeline decided, in order: a record to write, or an action
/// for the kernel.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "records are the common output; boxing each would allocate once more per record"
)]
pub enum Output {
    /// A record for the JSON-lines output.
    Record(Record),
    /// Ban `edge` for `ttl` from now (or move an existing ban's deadline
    /// there). The driver reports the kernel's answer with
    /// [`Pipeline::ban_applied`].
    Ban {
        /// The edge.
        edge: EdgeKey,
        /// How long from now.
        ttl: Duration,
    },
    /// Lift the ban on `edge`.
    Unban {
        /// The edge.
        edge: EdgeKey,
    },
    /// Probe this TCP server with nmap's probes (only with
    /// [`PipelineConfig::probe`]); the driver reports what it found with
    /// [`Pipeline::probe_result`].
    Probe {
        /// The server.
        server: SocketAddr,
    },
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
    rule_errors: BTreeMap<String, u64>,
    edge_updates: u64,
    bans_requested: u64,
    bans_failed: u64,
    bans_adopted: u64,
    bans_lifted: BTreeMap<&'static str, u64>,
    packets_dropped: BTreeMap<String, u64>,
    duplicates: u64,
}

/// What made the pipeline look at an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Touch {
    /// A SYN or DNS query: a new flow.
    Flow,
    /// The server's SYN-ACK.
    Answer,
    /// A first payload.
    Payload,
    /// A flow sample.
    Sample,
}

/// The pipeline (see the module docs).
pub struct Pipeline {
    config: PipelineConfig,
    identities: Identities,
    policies: PolicySet,
    /// The Services' fronts and their backends.
    fronts: ServiceBackends,
    rules: Rules,
    store: FqdnStore,
    /// DNS over TCP being put back together, by (server, client).
    dns_streams: TcpDnsStreams<(SocketAddr, SocketAddr)>,
    names: ClientNames,
    graph: ObservedGraph,
    /// (address, port, protocol) known to be a server's.
    servers: Latest<(IpAddr, u16, Protocol), ()>,
    ja4t: Latest<IpAddr, Arc<str>>,
    ja4ts: Latest<IpAddr, Arc<str>>,
    banners: Banners,
    prober: Option<Prober>,
    sightings: Sightings,
    behaviour: Behaviour,
    edges: EdgeTable,
    /// Drop rule records waiting for the kernel's answer, by edge.
    awaiting_kernel: BTreeMap<EdgeKey, RuleRecord>,
    outputs: VecDeque<Output>,
    counts: Counts,
    secret_reads: SecretReads,
    next_recheck: u64,
    /// The identities' version at the last judgement of every edge.
    judged_version: Option<edgewise_identity::Version>,
}

/// DNS over TCP followed at once (256): each holds at most one unfinished
/// message (under 64 KiB), so 16 MiB at the worst.
fn dns_streams() -> StreamsConfig {
    let mut config = StreamsConfig::default();
    config.max_streams = 256;
    config.idle_ns = 30_000_000_000;
    config
}

/// The shortest time between two records of one edge.
const UPDATE_INTERVAL_NS: u64 = 1_000_000_000;

/// How strict a verdict is: a denial over an allowance by policy over no
/// policy at all.
fn strictness(kind: VerdictKind) -> u8 {
    match kind {
        VerdictKind::NotGoverned => 0,
        VerdictKind::Declared => 1,
        VerdictKind::Violation => 2,
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Pipeline {
    /// A pipeline starting at `now`.
    pub fn new(
        config: PipelineConfig,
        identities: Identities,
        policies: PolicySet,
        rules: Rules,
        now: UnixNanos,
    ) -> Self {
        let now_ns = now.as_nanos();
        let prober = config.probe.clone().map(Prober::new);
        Self {
            graph: ObservedGraph::new(config.graph, now),
            store: FqdnStore::new(config.store),
            dns_streams: TcpDnsStreams::new(dns_streams()),
            names: ClientNames::new(config.store),
            sightings: Sightings::new(nanos(config.duplicate_window)),
            secret_reads: SecretReads::new(nanos(config.secret_read_window)),
            next_recheck: now_ns.saturating_add(nanos(config.recheck_interval)),
            config,
            identities,
            policies,
            fronts: ServiceBackends::default(),
            rules,
            servers: Latest::new(),
            ja4t: Latest::new(),
            ja4ts: Latest::new(),
            banners: Banners::new(),
            prober,
            behaviour: Behaviour::new(),
            edges: EdgeTable::default(),
            awaiting_kernel: BTreeMap::new(),
            outputs: VecDeque::new(),
            counts: Counts::default(),
            judged_version: None,
        }
    }

    /// The next output, in the order decided.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Pipeline::handle_timeout`] has work: the earliest settle
    /// deadline, ban deadline or recheck.
    pub fn poll_timeout(&self) -> Option<UnixNanos> {
        let settle = self.edges.settling.front().map(|(at, _)| *at);
        let ban = self
            .edges
            .banned
            .iter()
            .filter_map(|key| self.edges.edges.get(key)?.ban.as_ref().map(|b| b.until))
            .min();
        let probe = self.prober.as_ref().and_then(Prober::next_at);
        [settle, ban, probe, Some(self.next_recheck)]
            .into_iter()
            .flatten()
            .min()
            .map(UnixNanos::from_nanos)
    }

    /// Takes new policies, and new identities when given (the objects
    /// changed); every held edge is judged again at once.
    pub fn replace_inputs(
        &mut self,
        identities: Option<Identities>,
        policies: PolicySet,
        now: UnixNanos,
    ) {
        let now_ns = now.as_nanos();
        if let Some(identities) = identities {
            self.identities = identities;
        }
        self.policies = policies;
        self.recheck(now_ns);
    }

    /// Takes new rules; every held edge is judged again at once (a drop
    /// that no longer matches lifts its ban).
    pub fn replace_rules(&mut self, rules: Rules, now: UnixNanos) {
        let now_ns = now.as_nanos();
        let old: Vec<String> = self.rules.rules().iter().map(|r| r.name.clone()).collect();
        self.rules = rules;
        // Rule indices changed: what matched before is carried over by
        // name, so that only real changes give records.
        let index_of: std::collections::HashMap<&str, usize> = self
            .rules
            .rules()
            .iter()
            .enumerate()
            .map(|(index, rule)| (rule.name.as_str(), index))
            .collect();
        let new_index = |old_index: usize| {
            old.get(old_index)
                .and_then(|name| index_of.get(name.as_str()).copied())
        };
        for state in self.edges.edges.values_mut() {
            let mut matched = vec![false; index_of.len()];
            for (index, was) in state.matched.iter().enumerate() {
                if let (true, Some(now)) = (*was, new_index(index)) {
                    matched[now] = true;
                }
            }
            state.matched = matched;
            if let Some(ban) = &mut state.ban {
                ban.rule = ban.rule.and_then(new_index);
            }
            state.stale = true;
        }
        self.recheck(now_ns);
    }

    /// Counts a record or packet that could not be used.
    pub fn parse_error(&mut self, reason: &'static str) {
        *self.counts.parse_errors.entry(reason).or_default() += 1;
    }

    /// Handles one event seen at `now`.
    pub fn handle_event(&mut self, event: &Event<'_>, now: UnixNanos) {
        let now_ns = now.as_nanos();
        let Ok(protocol) = Protocol::try_from(event.protocol) else {
            return;
        };
        if self.sightings.repeated(event, now_ns) {
            self.counts.duplicates += 1;
            return;
        }
        *self.counts.events.entry(kind_name(event.kind)).or_default() += 1;
        match event.kind {
            EventKind::Syn => {
                let fingerprint = Ja4t::from_syn(event.data).map(|f| f.to_string());
                self.fingerprint(event.src.ip(), fingerprint, false, now);
                self.servers
                    .insert((event.dst.ip(), event.dst.port(), protocol), ());
                self.touch(event.src, event.dst, protocol, Touch::Flow, now);
            }
            EventKind::SynAck => {
                let fingerprint = Ja4ts::from_syn_ack(event.data).map(|f| f.to_string());
                self.fingerprint(event.src.ip(), fingerprint, true, now);
                self.servers
                    .insert((event.src.ip(), event.src.port(), protocol), ());
                if event.src.port() == 53 {
                    self.dns_handshake(event, now);
                }
                self.touch(event.dst, event.src, protocol, Touch::Answer, now);
            }
            EventKind::DnsResponse => {
                self.dns(event.dst, event.src, protocol, event.data, now);
            }
            EventKind::DnsSegment => self.dns_segment(event, protocol, now),
            EventKind::Banner => {
                let (client, server) = self.orient(event.src, event.dst, protocol);
                let learnt = self.banners.handle(event, client, server, protocol);
                if let Some(service) = &learnt.service {
                    let seen = service.seen(server.port(), protocol);
                    self.graph.identified(server.ip(), seen, now);
                }
                if let Some(ja4) = learnt.ja4 {
                    self.graph
                        .fingerprint(client.ip(), Fingerprint::TlsClient(ja4.as_str()), now);
                }
                if let Some(ja4s) = learnt.ja4s {
                    self.graph
                        .fingerprint(server.ip(), Fingerprint::TlsServer(ja4s.as_str()), now);
                }
                self.touch(client, server, protocol, Touch::Payload, now);
            }
            EventKind::FlowSample => {
                let (client, server) = self.orient(event.src, event.dst, protocol);
                self.touch(client, server, protocol, Touch::Sample, now);
                if protocol == Protocol::Tcp
                    && let Some(prober) = &mut self.prober
                    && !self
                        .banners
                        .identified((server.ip(), server.port(), protocol))
                {
                    prober.consider(server, now_ns);
                }
            }
            EventKind::Drop => {
                // Bans are client to server: the packet shows the edge.
                let edge = EdgeKey {
                    src: event.src.ip(),
                    dst: event.dst.ip(),
                    port: event.dst.port(),
                    protocol,
                };
                self.handle_blocked(edge, event.dropped().unwrap_or(1), now);
            }
        }
    }

    /// A SYN's JA4T (`server` false) or a SYN-ACK's JA4TS onto `ip`.
    fn fingerprint(
        &mut self,
        ip: IpAddr,
        fingerprint: Result<String, edgewise_ja4::Ja4Error>,
        server: bool,
        now: UnixNanos,
    ) {
        match fingerprint {
            Ok(text) if server => {
                self.graph.fingerprint(ip, Fingerprint::Server(&text), now);
                self.ja4ts.insert(ip, Arc::from(text));
            }
            Ok(text) => {
                self.graph.fingerprint(ip, Fingerprint::Client(&text), now);
                self.ja4t.insert(ip, Arc::from(text));
            }
            Err(error) => self.parse_error(error.reason()),
        }
    }

    /// A DNS server's SYN-ACK: its stream's bytes start after this
    /// sequence number, so a connection seen from its start is framed from
    /// its first byte (without it, the first segment seen is taken to
    /// start a message).
    fn dns_handshake(&mut self, event: &Event<'_>, now: UnixNanos) {
        let Some(isn) = event.data.get(4..8) else {
            return;
        };
        let segment = Segment {
            seq: u32::from_be_bytes([isn[0], isn[1], isn[2], isn[3]]),
            syn: true,
            fin_or_rst: false,
            payload: &[],
        };
        let _ = self
            .dns_streams
            .push(&(event.src, event.dst), segment, now, |_| {});
    }

    /// A part of a TCP segment from port 53: the DNS messages it completes.
    fn dns_segment(&mut self, event: &Event<'_>, protocol: Protocol, now: UnixNanos) {
        let segment = Segment {
            seq: event.seq,
            syn: false,
            fin_or_rst: false,
            payload: event.data,
        };
        let mut messages = Vec::new();
        let pushed = self
            .dns_streams
            .push(&(event.src, event.dst), segment, now, |message| {
                messages.push(message.to_vec());
            });
        if let Err(error) = pushed {
            self.parse_error(error.reason());
        }
        for message in messages {
            self.dns(event.dst, event.src, protocol, &message, now);
        }
    }

    /// One DNS message from `server` to `client`, over `protocol`.
    fn dns(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        protocol: Protocol,
        message: &[u8],
        now: UnixNanos,
    ) {
        let now_ns = now.as_nanos();
        let mut resolved = Vec::new();
        let transport = if protocol == Protocol::Tcp {
            "tcp"
        } else {
            "udp"
        };
        let described = describe_with(
            0,
            transport,
            message,
            &mut self.store,
            now,
            &mut |address, name| resolved.push((address, name.to_owned())),
        );
        match described {
            None => {}
            Some(Ok(line)) => {
                self.counts.dns_responses += 1;
                self.outputs
                    .push_back(Output::Record(Record::Dns(DnsRecord {
                        time_ns: now_ns,
                        client: client.ip(),
                        server: server.ip(),
                        line: DnsLine::Response(line),
                    })));
            }
            Some(Err(error)) => self.parse_error(error.reason()),
        }
        for (address, name) in &resolved {
            self.names
                .record(client.ip(), address.ip, name, address.ttl, now_ns);
        }
        self.servers
            .insert((server.ip(), server.port(), protocol), ());
        self.touch(client, server, protocol, Touch::Flow, now);
        // The client's edges to what it just resolved may have a new name.
        for (address, _) in resolved {
            for key in self.edges.between(client.ip(), address.ip) {
                self.judge(key, now_ns, false, false);
            }
        }
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

    /// An event on the edge `client` -> `server`.
    fn touch(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        protocol: Protocol,
        touch: Touch,
        now: UnixNanos,
    ) {
        let now_ns = now.as_nanos();
        let key = EdgeKey {
            src: client.ip(),
            dst: server.ip(),
            port: server.port(),
            protocol,
        };
        let flows = u64::from(touch == Touch::Flow);
        // The observers see handshakes, first payloads and samples, not
        // the traffic: the graph's bytes stay 0 ("not measured") rather
        // than count event sizes as if they were traffic.
        self.graph.record(key, flows, 0, now);
        if touch == Touch::Flow {
            self.behaviour.flow(key.src, key.port, now_ns);
        }
        // A connection that carries traffic keeps its name.
        self.store.touch(key.dst, now);
        self.names.touch(key.src, key.dst, now_ns);
        if !self.edges.edges.contains_key(&key) {
            self.edges.make_room(self.config.graph.max_edges);
            self.counts.edges_seen += 1;
            let settle = nanos(self.config.settle);
            if protocol == Protocol::Tcp && settle > 0 {
                self.edges
                    .settling
                    .push_back((now_ns.saturating_add(settle), key));
            }
            self.edges.insert(
                key,
                EdgeState {
                    client_port: client.port(),
                    last_seen: now_ns,
                    facts: Facts::default(),
                    reported: false,
                    answered: false,
                    payload: false,
                    matched: Vec::new(),
                    allowed: false,
                    stale: false,
                    update_pending: false,
                    last_record: 0,
                    ban: None,
                },
            );
        }
        if let Some(state) = self.edges.edges.get_mut(&key) {
            state.last_seen = now_ns;
            state.answered |= touch == Touch::Answer;
            state.payload |= touch == Touch::Payload;
        }
        self.judge(key, now_ns, true, false);
    }

    /// The facts of `key` as known at `now`.
    fn facts(&self, key: EdgeKey, now: u64) -> Facts {
        let now = UnixNanos::from_nanos(now);
        let src_identity = self.identities.lookup(key.src);
        let dst_identity = self.identities.lookup(key.dst);
        let fqdn = self.server_name(key.src, key.dst, now);
        let (verdict, policy, via_service) =
            self.verdict(key, src_identity.as_deref(), dst_identity.as_deref());
        Facts {
            src_fqdn: self.store.lookup(key.src, now).last().map(str::to_owned),
            fqdn,
            verdict,
            policy,
            via_service,
            ja4t: self.ja4t.get(&key.src).cloned(),
            ja4ts: self.ja4ts.get(&key.dst).cloned(),
            service: self.banners.service(key.dst, key.port, key.protocol),
            tls_client: self.banners.tls_client(key.src, key.dst, key.port),
            ja4s: self.banners.tls_server(key.dst, key.port),
            src_identity,
            dst_identity,
        }
    }

    /// The NetworkPolicy verdict of `key` and its deciding policy: for a
    /// Service's front, the strictest of its backends' (see the records'
    /// docs), never the front address as if it were a peer.
    fn verdict(
        &self,
        key: EdgeKey,
        src: Option<&ClusterObject>,
        dst: Option<&ClusterObject>,
    ) -> (&'static str, Option<String>, Option<Box<ViaService>>) {
        let query = |ip: IpAddr, identity: Option<&ClusterObject>, port: u16| {
            self.policies.evaluate(&EdgeQuery {
                src: PolicyEndpoint {
                    ip: key.src,
                    identity: src,
                },
                dst: PolicyEndpoint { ip, identity },
                port,
                protocol: key.protocol,
            })
        };
        let name = |verdict: &Verdict| {
            verdict
                .deciding()
                .map(|id| self.policies.policy(id).name.clone())
        };
        let Some(front) = self.fronts.front(key.dst, key.port, key.protocol) else {
            let verdict = query(key.dst, dst, key.port);
            return (verdict.kind().as_str(), name(&verdict), None);
        };
        let mut via = ViaService {
            service: front.service.clone(),
            backends: front.backends.len(),
            agree: true,
            denying: Vec::new(),
        };
        let (mut strictest, mut policy): (Option<VerdictKind>, Option<String>) = (None, None);
        for backend in &front.backends {
            let identity = self.identities.lookup(backend.ip());
            let verdict = query(backend.ip(), identity.as_deref(), backend.port());
            let kind = verdict.kind();
            if kind == VerdictKind::Violation {
                via.denying.push(match &identity {
                    Some(object) => format!("{object} ({backend})"),
                    None => backend.to_string(),
                });
            }
            via.agree &= strictest.is_none_or(|before| before == kind);
            if strictest.is_none_or(|before| strictness(kind) > strictness(before)) {
                strictest = Some(kind);
                policy = name(&verdict);
            }
        }
        let verdict = strictest.map_or("no_backends", VerdictKind::as_str);
        (verdict, policy, Some(Box::new(via)))
    }

    /// The probes due at `now` (see [`crate::probing`]).
    fn release_probes(&mut self, now: u64) {
        let Some(prober) = &mut self.prober else {
            return;
        };
        let (edges, banners) = (&self.edges, &self.banners);
        let banned = |ip: IpAddr| edges.banned.iter().any(|key| key.dst == ip);
        let identified =
            |server: SocketAddr| banners.identified((server.ip(), server.port(), Protocol::Tcp));
        while let Some(server) = prober.due(now, banned, identified) {
            self.outputs.push_back(Output::Probe { server });
        }
    }

    /// What a probe session found of `server` (none: nothing matched):
    /// into the graph marked `"source": "active"`, and the facts of the
    /// edges to it.
    pub fn probe_result(
        &mut self,
        server: SocketAddr,
        found: Option<ProbeFinding>,
        now: UnixNanos,
    ) {
        let now_ns = now.as_nanos();
        let Some(prober) = &mut self.prober else {
            return;
        };
        let Some(found) = found else {
            *prober.counts.entry("no_match").or_default() += 1;
            return;
        };
        *prober
            .counts
            .entry(if found.soft { "soft" } else { "hard" })
            .or_default() += 1;
        let key = (server.ip(), server.port(), Protocol::Tcp);
        let Some(fact) = self.banners.probed(key, &found) else {
            return;
        };
        self.graph
            .identified(server.ip(), fact.seen(server.port(), Protocol::Tcp), now);
        let edges: Vec<EdgeKey> = self
            .edges
            .edges
            .keys()
            .filter(|k| {
                k.dst == server.ip() && k.port == server.port() && k.protocol == Protocol::Tcp
            })
            .copied()
            .collect();
        for key in edges {
            self.judge(key, now_ns, false, false);
        }
    }

    /// Reads servers' first bytes against nmap's service database from now
    /// on: edge records and the graph get the product and version it
    /// names (see [`crate::banners`]).
    #[cfg(feature = "service-probes")]
    pub fn set_service_probes(&mut self, database: Arc<edgewise_service_probes::Database>) {
        self.banners.with_service_probes(database);
    }

    /// The service database given to [`Pipeline::set_service_probes`].
    #[cfg(feature = "service-probes")]
    pub fn service_probes(&self) -> Option<Arc<edgewise_service_probes::Database>> {
        self.banners.service_probes().cloned()
    }

    /// Takes the Services' fronts and backends (the objects changed);
    /// every held edge is judged again at once.
    pub fn replace_services(&mut self, services: ServiceBackends, now: UnixNanos) {
        let now_ns = now.as_nanos();
        self.fronts = services;
        self.recheck(now_ns);
    }

    /// The record of `key` with `facts`.
    fn record(key: EdgeKey, client_port: u16, facts: &Facts, now: u64, update: bool) -> EdgeRecord {
        let src = Endpoint {
            ip: key.src,
            port: client_port,
            identity: facts.src_identity.clone(),
            fqdn: facts.src_fqdn.clone(),
            fqdn_source: None,
        };
        let dst = Endpoint {
            ip: key.dst,
            port: key.port,
            identity: facts.dst_identity.clone(),
            fqdn: facts.fqdn.as_ref().map(|(name, _)| name.to_string()),
            fqdn_source: facts.fqdn.as_ref().map(|(_, source)| *source),
        };
        EdgeRecord {
            time_ns: now,
            update,
            summary: EdgeRecord::summary(&src, &dst),
            proto: key.protocol,
            verdict: facts.verdict,
            policy: facts.policy.clone(),
            ja4t: facts.ja4t.as_deref().map(str::to_owned),
            ja4ts: facts.ja4ts.as_deref().map(str::to_owned),
            service: facts.service.as_ref().map(|s| s.name.to_string()),
            service_product: facts
                .service
                .as_ref()
                .and_then(|s| s.product.as_deref().map(str::to_owned)),
            service_version: facts
                .service
                .as_ref()
                .and_then(|s| s.version.as_deref().map(str::to_owned)),
            ja4: facts.tls_client.as_ref().map(|t| t.ja4.to_string()),
            ja4s: facts.ja4s.map(|j| j.to_string()),
            tls: facts.tls_client.as_ref().map(|t| TlsRecord {
                sni: t.sni.as_deref().map(str::to_owned),
                alpn: t.alpn.as_deref().map(str::to_owned),
            }),
            via_service: facts.via_service.as_deref().cloned(),
            src,
            dst,
        }
    }

    /// Looks at `key` again: new facts (or new rules) are judged, the first
    /// record goes out once settled (`report`: now, settled or not), later
    /// changes as updates, and on an `attempt` (traffic or a blocked
    /// packet) a matching drop's ban is started or refreshed.
    fn judge(&mut self, key: EdgeKey, now: u64, attempt: bool, report: bool) {
        let Some(state) = self.edges.edges.get(&key) else {
            return;
        };
        let facts = self.facts(key, now);
        let changed = facts != state.facts;
        let reported = state.reported;
        // An update waits until UPDATE_INTERVAL after the edge's last
        // record (a fact that flaps, such as a fingerprint under SYN
        // cookies, gives one record per interval, with the latest facts).
        let update_due = state.last_record.saturating_add(UPDATE_INTERVAL_NS);
        let emit = if reported {
            (changed || state.update_pending) && now >= update_due
        } else {
            report
                || key.protocol != Protocol::Tcp
                || self.config.settle.is_zero()
                || state.answered && state.payload
        };
        let hold = reported && changed && now < update_due && !state.update_pending;
        let mut attempt = attempt;
        if changed || state.stale || emit {
            let record = Self::record(key, state.client_port, &facts, now, reported);
            if changed || state.stale {
                attempt |= self.decide(key, &record, now);
            }
            if let Some(state) = self.edges.edges.get_mut(&key) {
                state.facts = facts;
                state.stale = false;
                if emit {
                    state.reported = true;
                    state.update_pending = false;
                    state.last_record = now;
                } else if hold {
                    state.update_pending = true;
                }
            }
            if hold {
                self.edges.settling.push_back((update_due, key));
            }
            if emit {
                if reported {
                    self.counts.edge_updates += 1;
                } else {
                    *self.counts.verdicts.entry(record.verdict).or_default() += 1;
                }
                self.outputs.push_back(Output::Record(Record::Edge(record)));
            }
        }
        self.enforce(key, now, attempt);
    }

    /// Runs the rules on an edge whose facts changed: `rule` records for
    /// the outcomes that changed; what matched is kept for [`Self::enforce`].
    /// Whether a drop newly matches with no ban held: the ban starts now,
    /// whatever made the pipeline look (traffic, new facts, a reload).
    fn decide(&mut self, key: EdgeKey, record: &EdgeRecord, now: u64) -> bool {
        let flow = self.behaviour.of(key.src, now);
        let outcome = self
            .rules
            .evaluate(&RuleInput::of(record, flow, self.net(key)));
        for index in outcome.errors() {
            let name = &self.rules.rules()[index].name;
            *self.counts.rule_errors.entry(name.clone()).or_default() += 1;
        }
        let banning = outcome.ban(&self.rules).map(|(rule, _)| rule);
        let mut newly_banning = false;
        let Some(state) = self.edges.edges.get_mut(&key) else {
            return false;
        };
        let before = std::mem::take(&mut state.matched);
        state.matched = (0..self.rules.rules().len())
            .map(|index| outcome.matched(index))
            .collect();
        state.allowed = outcome.allowed;
        for (index, rule) in self.rules.rules().iter().enumerate() {
            let matches = outcome.matched(index);
            if before.get(index).copied().unwrap_or(false) == matches {
                continue;
            }
            if matches {
                *self
                    .counts
                    .rule_matches
                    .entry(rule.action.as_str())
                    .or_default() += 1;
            }
            let drop = rule.action == Action::Drop;
            let record = RuleRecord {
                time_ns: now,
                rule: rule.name.clone(),
                action: rule.action.as_str(),
                matched: matches,
                enforced: false,
                overridden: drop && matches && outcome.allowed,
                ttl_seconds: drop.then_some(rule.ttl.as_secs()),
                edge: key,
                summary: record.summary.clone(),
            };
            let held = state.ban.as_ref().map(|ban| ban.enforced);
            if banning == Some(index) && held.is_none() {
                newly_banning = true;
            }
            if banning == Some(index) && self.config.enforce && held.is_none() {
                // Out once the kernel said whether it took the ban.
                self.awaiting_kernel.insert(key, record);
            } else if banning == Some(index) {
                // A ban already held (adopted, or another rule's) goes on.
                let record = RuleRecord {
                    enforced: held.unwrap_or(false),
                    ..record
                };
                self.outputs.push_back(Output::Record(Record::Rule(record)));
            } else {
                self.outputs.push_back(Output::Record(Record::Rule(record)));
            }
        }
        newly_banning
    }

    /// Brings `key`'s ban in line with what matched: lifted when no drop
    /// matches any more (or an allow does); on an `attempt`, started when
    /// none is held, else moved to now + TTL (at most once a second).
    fn enforce(&mut self, key: EdgeKey, now: u64, attempt: bool) {
        let Some(state) = self.edges.edges.get(&key) else {
            return;
        };
        let wanted = if state.allowed {
            None
        } else {
            self.rules
                .rules()
                .iter()
                .enumerate()
                .filter(|(index, rule)| {
                    rule.action == Action::Drop && state.matched.get(*index) == Some(&true)
                })
                .max_by_key(|(_, rule)| rule.ttl)
                .map(|(index, rule)| (index, rule.ttl))
        };
        let held = state.ban.as_ref().map(|b| (b.adopted, b.until));
        match (wanted, held) {
            (None, Some((adopted, _))) if !adopted || state.allowed => {
                let reason = if state.allowed { "allowed" } else { "no_match" };
                self.lift(key, reason, now);
            }
            (Some((rule, ttl)), None) if attempt => {
                self.counts.bans_requested += 1;
                let until = now.saturating_add(nanos(ttl));
                if let Some(state) = self.edges.edges.get_mut(&key) {
                    state.ban = Some(Box::new(Ban {
                        rule: Some(rule),
                        adopted: false,
                        ttl,
                        until,
                        enforced: false,
                    }));
                }
                self.edges.banned.insert(key);
                if self.config.enforce {
                    self.outputs.push_back(Output::Ban { edge: key, ttl });
                }
            }
            (Some((rule, ttl)), Some((_, until))) => {
                let Some(ban) = self.edges.edges.get_mut(&key).and_then(|s| s.ban.as_mut()) else {
                    return;
                };
                ban.rule = Some(rule);
                ban.adopted = false;
                ban.ttl = ttl;
                let moved = now.saturating_add(nanos(ttl));
                if attempt && moved.saturating_sub(until) >= 1_000_000_000 {
                    ban.until = moved;
                    if self.config.enforce {
                        self.outputs.push_back(Output::Ban { edge: key, ttl });
                    }
                }
            }
            _ => {}
        }
    }

    /// `net.*` of `key`.
    fn net(&self, key: EdgeKey) -> NetInput {
        let inside = |nets: &[ipnet::IpNet], ip: IpAddr| nets.iter().any(|n| n.contains(&ip));
        let dst_home = inside(&self.config.home_nets, key.dst);
        NetInput {
            src_pod: inside(&self.config.pod_cidrs, key.src),
            dst_pod: inside(&self.config.pod_cidrs, key.dst),
            dst_home,
            dst_external: !dst_home,
        }
    }

    /// Lifts the ban on `key`.
    fn lift(&mut self, key: EdgeKey, reason: &'static str, now: u64) {
        let Some(ban) = self.edges.edges.get_mut(&key).and_then(|s| s.ban.take()) else {
            return;
        };
        self.edges.banned.remove(&key);
        *self.counts.bans_lifted.entry(reason).or_default() += 1;
        if self.config.enforce {
            self.outputs.push_back(Output::Unban { edge: key });
        }
        self.outputs
            .push_back(Output::Record(Record::Unban(UnbanRecord {
                time_ns: now,
                edge: key,
                rule: self.rule_name(ban.rule),
                reason,
            })));
    }

    fn rule_name(&self, rule: Option<usize>) -> Option<String> {
        rule.and_then(|index| self.rules.rules().get(index))
            .map(|rule| rule.name.clone())
    }

    /// The kernel's answer to an [`Output::Ban`] of `edge`: the drop's
    /// `rule` record goes out with `enforced` set to `accepted`. A driver
    /// answers every [`Output::Ban`] (the record waits for it).
    pub fn ban_applied(&mut self, edge: EdgeKey, accepted: bool) {
        if accepted {
            if let Some(ban) = self.edges.edges.get_mut(&edge).and_then(|s| s.ban.as_mut()) {
                ban.enforced = true;
            }
        } else {
            self.counts.bans_failed += 1;
        }
        if let Some(mut record) = self.awaiting_kernel.remove(&edge) {
            record.enforced = accepted;
            self.outputs.push_back(Output::Record(Record::Rule(record)));
        }
    }

    /// The kernel dropped `packets` of the banned `edge` since its last
    /// report: a `drop` record, and the ban refreshed while its rule
    /// matches (a blocked attempt keeps the client out).
    pub fn handle_blocked(&mut self, edge: EdgeKey, packets: u64, now: UnixNanos) {
        let now_ns = now.as_nanos();
        let rule = self
            .edges
            .edges
            .get(&edge)
            .and_then(|s| s.ban.as_ref())
            .map(|b| match self.rule_name(b.rule) {
                Some(name) => name,
                None if b.adopted => "adopted".to_owned(),
                None => "removed".to_owned(),
            });
        let name = rule.clone().unwrap_or_else(|| "unknown".to_owned());
        *self.counts.packets_dropped.entry(name).or_default() += packets;
        self.outputs
            .push_back(Output::Record(Record::Drop(DropRecord {
                time_ns: now_ns,
                edge,
                rule: rule.filter(|r| r != "adopted" && r != "removed"),
                packets,
            })));
        if let Some(state) = self.edges.edges.get_mut(&edge) {
            state.last_seen = now_ns;
        }
        self.judge(edge, now_ns, true, false);
    }

    /// A ban found in the kernel at start, with `remaining` to run: held
    /// until then (or longer, if a rule comes to match its edge).
    pub fn adopt_ban(&mut self, edge: EdgeKey, remaining: Duration, now: UnixNanos) {
        let now_ns = now.as_nanos();
        if remaining.is_zero() || self.edges.edges.contains_key(&edge) {
            return;
        }
        self.counts.bans_adopted += 1;
        self.edges.insert(
            edge,
            EdgeState {
                client_port: 0,
                last_seen: now_ns,
                facts: self.facts(edge, now_ns),
                reported: true,
                answered: false,
                payload: false,
                matched: Vec::new(),
                allowed: false,
                // The rules judge it at its first attempt: a drop that
                // matches takes the ban over.
                stale: true,
                update_pending: false,
                last_record: now_ns,
                ban: Some(Box::new(Ban {
                    rule: None,
                    adopted: true,
                    ttl: remaining,
                    until: now_ns.saturating_add(nanos(remaining)),
                    enforced: true,
                })),
            },
        );
        self.edges.banned.insert(edge);
    }

    /// Time passed: settled edges are reported, bans past their TTL
    /// lifted, due probes handed out, and every recheck interval each held
    /// edge judged again and idle state expired.
    pub fn handle_timeout(&mut self, now: UnixNanos) {
        let now_ns = now.as_nanos();
        self.release_probes(now_ns);
        while let Some(&(at, key)) = self.edges.settling.front() {
            if at > now_ns {
                break;
            }
            self.edges.settling.pop_front();
            let pending = self
                .edges
                .edges
                .get(&key)
                .is_some_and(|s| !s.reported || s.update_pending);
            if pending {
                self.judge(key, now_ns, false, true);
            }
        }
        let expired: Vec<EdgeKey> = self
            .edges
            .banned
            .iter()
            .filter(|key| {
                self.edges
                    .edges
                    .get(key)
                    .and_then(|s| s.ban.as_ref())
                    .is_none_or(|b| b.until <= now_ns)
            })
            .copied()
            .collect();
        for key in expired {
            self.lift(key, "ttl", now_ns);
        }
        if now_ns >= self.next_recheck {
            self.recheck_if(now_ns, false);
        }
    }

    /// Reports every edge whose first record still waits to settle, at
    /// `now` (the end of a capture, or of the process).
    pub fn flush(&mut self, now: UnixNanos) {
        let now_ns = now.as_nanos();
        while let Some((_, key)) = self.edges.settling.pop_front() {
            let pending = self.edges.edges.get(&key).is_some_and(|s| !s.reported);
            if pending {
                self.judge(key, now_ns, false, true);
            }
        }
    }

    /// Expires what is idle and, when the identities moved since the last
    /// time (or `everything`: new policies, rules or Services), judges
    /// every held edge again.
    fn recheck(&mut self, now: u64) {
        self.recheck_if(now, true);
    }

    fn recheck_if(&mut self, now: u64, everything: bool) {
        self.next_recheck = now.saturating_add(nanos(self.config.recheck_interval));
        let idle = self.config.graph.idle_ttl_ns;
        self.edges.expire(now.saturating_sub(idle));
        self.names.purge(now);
        let version = self.identities.version();
        if !everything && version == self.judged_version {
            return;
        }
        self.judged_version = version;
        let keys: Vec<EdgeKey> = self.edges.edges.keys().copied().collect();
        for key in keys {
            self.judge(key, now, false, false);
        }
    }

    /// The records of an audit batch's secret reads that are new
    /// observations, attributed to the workloads running as each service
    /// account (see [`crate::secrets`]).
    pub fn secret_reads(&mut self, batch: AuditBatch, now: UnixNanos) -> Vec<SecretReadRecord> {
        self.secret_reads
            .api_reads(batch.accesses, &self.identities, &self.rules, now)
    }

    /// The record of a read of a mounted secret, when it is a new
    /// observation of a secret: `volume` is the volume of the open's
    /// device (none when no known volume has it), `cgroup` the opener's
    /// cgroup v2 path when the driver found it (see [`crate::secrets`]).
    pub fn mounted_secret_read(
        &mut self,
        open: &SecretOpen,
        volume: Option<&SecretVolume>,
        cgroup: Option<&str>,
        now: UnixNanos,
    ) -> Option<SecretReadRecord> {
        self.secret_reads
            .mounted_read(open, volume, cgroup, &self.identities, &self.rules, now)
    }

    /// Tells the pipeline where the secret-volume observer hooks file
    /// opens and how many reports the kernel lost (shown in `stats`).
    pub fn set_secret_observer(&mut self, hook: &'static str, lost: u64) {
        self.secret_reads.set_observer(hook, lost);
    }

    /// Edges seen since the start.
    pub fn edges_seen(&self) -> u64 {
        self.counts.edges_seen
    }

    /// Who has `ip` now, as edge records name it (for a driver that labels
    /// the records that carry only addresses: `rule`, `drop`, `dns`).
    pub fn identity(&self, ip: IpAddr) -> Option<Arc<ClusterObject>> {
        self.identities.lookup(ip)
    }

    /// The name `server` goes by for `client` at `now`, as edge records
    /// name it: the one this client resolved, else the latest any client
    /// resolved (and which of the two it is).
    pub fn server_name(
        &self,
        client: IpAddr,
        server: IpAddr,
        now: UnixNanos,
    ) -> Option<(Arc<str>, FqdnSource)> {
        let now_ns = now.as_nanos();
        match self.names.lookup(client, server, now_ns) {
            Some(name) => Some((Arc::clone(name), FqdnSource::Client)),
            None => self
                .store
                .lookup(server, now)
                .last()
                .map(|name| (Arc::from(name), FqdnSource::OtherClient)),
        }
    }

    /// Lets idle edges and names of the observed graph and the fqdn store
    /// expire (the driver calls it before a drain).
    pub fn expire(&mut self, now: UnixNanos) {
        self.graph.expire(now);
        self.store.purge_expired(now);
        self.secret_reads.expire(now);
    }

    /// The counters at `now` (the kernel's fields are left to the
    /// driver).
    pub fn stats(&self, now: UnixNanos) -> StatsRecord {
        let now_ns = now.as_nanos();
        let graph = self.graph.stats();
        StatsRecord {
            time_ns: now_ns,
            events: self.counts.events.clone(),
            parse_errors: self.counts.parse_errors.clone(),
            edges: self.edges.edges.len(),
            edges_seen: self.counts.edges_seen,
            edges_by_verdict: self.counts.verdicts.clone(),
            edges_evicted: graph.evicted_edges + self.edges.evicted,
            dns_responses: self.counts.dns_responses,
            dns_mappings: self.store.len(),
            dns_client_names: self.names.len(),
            dns_client_names_evicted: self.names.evicted(),
            rule_matches: self.counts.rule_matches.clone(),
            rule_errors: self.counts.rule_errors.values().sum(),
            rule_errors_by_rule: self.counts.rule_errors.clone(),
            edge_updates: self.counts.edge_updates,
            bans_requested: self.counts.bans_requested,
            bans_failed: self.counts.bans_failed,
            bans_adopted: self.counts.bans_adopted,
            bans_lifted: self.counts.bans_lifted.clone(),
            bans_held: self.edges.banned.len(),
            packets_dropped: self.counts.packets_dropped.values().sum(),
            packets_dropped_by_rule: self.counts.packets_dropped.clone(),
            duplicate_events: self.counts.duplicates,
            secret_reads: self.secret_reads.counts(),
            tls_errors: self.banners.tls_errors.clone(),
            tls_hellos_given_up: self.banners.hellos_given_up(),
            service_matches: self.banners.matched.clone(),
            probes: self
                .prober
                .as_ref()
                .map(|p| p.counts.clone())
                .unwrap_or_default(),
            ..StatsRecord::default()
        }
    }

    /// Drains the observed graph at `now`: what was seen since the last
    /// drain, with identities, names and verdicts attached (an address no
    /// DNS answer named gets the TLS server name its clients last asked
    /// for).
    pub fn drain(&mut self, now: UnixNanos) -> GraphSlice {
        let mut attacher = ServerNames {
            attacher: Attacher {
                identities: &self.identities,
                store: &self.store,
                now,
            },
            banners: &self.banners,
        };
        self.graph
            .drain(&self.config.agent, now, &mut attacher, Some(&self.policies))
    }
}

/// The drain's names: DNS's, else the TLS server name (SNI).
struct ServerNames<'a> {
    attacher: Attacher<'a>,
    banners: &'a Banners,
}

impl edgewise_edge_set::Attach for ServerNames<'_> {
    fn identity(&mut self, ip: IpAddr) -> Option<Arc<ClusterObject>> {
        self.attacher.identity(ip)
    }

    fn fqdn(&mut self, ip: IpAddr) -> Option<String> {
        self.attacher
            .fqdn(ip)
            .or_else(|| self.banners.server_name(ip).map(ToString::to_string))
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
        EventKind::Drop => "drop",
        EventKind::DnsSegment => "dns_segment",
    }
}
