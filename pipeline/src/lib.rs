//! The sans-IO composition of edgewise: capture events in; fingerprints,
//! DNS names, identities, NetworkPolicy verdicts and CEL rules applied per
//! edge; records and kernel actions out.
//!
//! The [`Pipeline`] is a state machine in the shape of quinn-proto's: the
//! driver (a replay, a live daemon, a test, an embedder's agent) owns the
//! clock, files, sockets and the kernel, and
//! - feeds it with [`Pipeline::handle_event`] (one capture event, from
//!   the kernel observers or capture's pcap replay source) and
//!   [`Pipeline::handle_timeout`] (time passed; [`Pipeline::poll_timeout`]
//!   says when next), and with what the kernel said:
//!   [`Pipeline::ban_applied`], [`Pipeline::handle_blocked`],
//!   [`Pipeline::adopt_ban`];
//! - drains [`Pipeline::poll_output`]: [`Output::Record`]s (the
//!   JSON-lines schema of [`records`]) and the kernel actions
//!   [`Output::Ban`] and [`Output::Unban`], in the order decided.
//!
//! What it decides, in data-flow order:
//! - [`dns`]: DNS responses into the fqdn store and, per client, into the
//!   names that client resolved ([`FqdnSource`]).
//! - [`identities`]: who has an address (ip-index or the identity client).
//! - [`banners`]: a flow's first bytes: what the server is (prefixes, or
//!   nmap's database with the `service-probes` feature), TLS hellos'
//!   SNI, ALPN, JA4 and JA4S.
//! - Per edge, its facts (identities, the client's own name, verdict and
//!   deciding policy, JA4T, JA4TS, JA4, JA4S, TLS server name, service,
//!   product and version), judged again when they
//!   change; see [`pipeline`](mod@pipeline) for when records and bans go out.
//! - [`rules`]: CEL rules checked at load against the variable tree.
//! - [`secrets`]: secret reads, from a mounted volume (the driver hands
//!   over [`Pipeline::mounted_secret_read`] what the kernel saw) or the
//!   API (an audit batch to [`Pipeline::secret_reads`]), as one
//!   `secret_read` record per new observation within a window.
//!
//! Time is `u64` nanoseconds on the driver's clock; nothing here reads a
//! clock or does I/O.
//!
//! ```
//! use edgewise_capture::{Direction, Event, EventKind};
//! use edgewise_pipeline::time::UnixNanos;
//! use edgewise_pipeline::{Identities, Output, Pipeline, PipelineConfig, Record, Rules};
//!
//! let rules = Rules::parse(
//!     "rules.toml".as_ref(),
//!     r#"
//! [[rule]]
//! name = "no-ssh"
//! when = 'service == "ssh"'
//! action = "drop"
//! ttl_seconds = 60
//! "#,
//! )
//! .unwrap();
//! let mut config = PipelineConfig::default(); // #[non_exhaustive]: set fields
//! config.enforce = true;
//! let policies = edgewise_edge_set::DeclaredPolicies::default().compile();
//! // The driver owns the clock: time is passed in as Unix time.
//! let at = UnixNanos::from_secs;
//! let mut pipeline = Pipeline::new(config, Identities::None, policies, rules, at(0));
//!
//! // A SYN, the server's SYN-ACK, then the server's SSH banner.
//! let mut syn = [0u8; 20];
//! syn[12] = 5 << 4;
//! syn[13] = 0x02;
//! let mut syn_ack = syn;
//! syn_ack[13] = 0x12;
//! let event = |kind, src: &str, dst: &str, data: &'static [u8]| Event {
//!     kind,
//!     direction: Direction::Unknown,
//!     time: UnixNanos::ZERO,
//!     ifindex: 0,
//!     src: src.parse().unwrap(),
//!     dst: dst.parse().unwrap(),
//!     protocol: 6,
//!     wire_len: 60,
//!     seq: 0,
//!     data,
//! };
//! let syn: &'static [u8] = Box::leak(Box::new(syn));
//! let syn_ack: &'static [u8] = Box::leak(Box::new(syn_ack));
//! pipeline.handle_event(&event(EventKind::Syn, "10.0.0.1:40000", "10.0.0.2:22", syn), at(1));
//! pipeline.handle_event(&event(EventKind::SynAck, "10.0.0.2:22", "10.0.0.1:40000", syn_ack), at(2));
//! pipeline.handle_event(&event(EventKind::Banner, "10.0.0.2:22", "10.0.0.1:40000", b"SSH-2.0-OpenSSH_9.6\r\n"), at(3));
//!
//! let mut outputs = Vec::new();
//! while let Some(output) = pipeline.poll_output() {
//!     if let Output::Ban { edge, .. } = &output {
//!         pipeline.ban_applied(*edge, true); // the kernel took it
//!     }
//!     outputs.push(output);
//! }
//! // The edge record waited for the banner, so it names the service.
//! let edge = outputs.iter().find_map(|o| match o {
//!     Output::Record(Record::Edge(edge)) => Some(edge),
//!     _ => None,
//! });
//! assert_eq!(edge.unwrap().service.as_deref(), Some("ssh"));
//! assert!(outputs.iter().any(|o| matches!(o, Output::Ban { .. })));
//! while let Some(output) = pipeline.poll_output() {
//!     outputs.push(output);
//! }
//! assert!(outputs.iter().any(|o| matches!(o, Output::Record(Record::Rule(r)) if r.enforced)));
//!
//! // A minute without a blocked attempt: the ban is lifted.
//! pipeline.handle_timeout(at(64));
//! let lifted = std::iter::from_fn(|| pipeline.poll_output())
//!     .any(|o| matches!(o, Output::Unban { .. }));
//! assert!(lifted);
//! ```

#![forbid(unsafe_code)]

// The edgewise crates whose types this crate's API uses, so that a user
// names them at the version this crate was built with.
pub use edgewise_capture as capture;
pub use edgewise_edge_set as edge_set;
pub use edgewise_fqdn_store as fqdn_store;
pub use edgewise_identity as identity;
pub use edgewise_ip_index as ip_index;
pub use edgewise_ja4 as ja4;
#[cfg(feature = "service-probes")]
pub use edgewise_service_probes as service_probes;
pub use edgewise_time as time;

pub mod banners;
pub mod config;
pub mod dns;
mod edges;
pub mod identities;
mod memory;
mod names;
pub mod pipeline;
pub mod probing;
pub mod records;
pub mod rules;
pub mod secrets;

pub use config::{DEFAULT_SETTLE, PipelineConfig, private_nets};
pub use identities::{Attacher, Identities};
pub use names::FqdnSource;
pub use pipeline::{Output, Pipeline, kind_name};
pub use probing::{ProbeConfig, ProbeFinding};
pub use records::{
    DnsRecord, DropRecord, EdgeRecord, Endpoint, MountedRead, RECORD_SCHEMA, Record, RuleRecord,
    SecretReadRecord, StatsRecord, TlsRecord, UnbanRecord,
};
pub use rules::{Action, Rules, RulesError};
