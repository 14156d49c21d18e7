//! [`PipelineConfig`]: how a pipeline runs and what it holds at most.

use std::time::Duration;

use edgewise_edge_set::GraphConfig;
use edgewise_fqdn_store::StoreConfig;
use ipnet::IpNet;

use crate::probing::ProbeConfig;

/// The default settle window of a TCP edge's first record.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(2);

/// How a pipeline runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PipelineConfig {
    /// The agent's name in graph slices (the node's name).
    pub agent: String,
    /// Bounds of the observed graph; `max_edges` and `idle_ttl_ns` also
    /// bound the edges the pipeline judges.
    pub graph: GraphConfig,
    /// Bounds of the fqdn store and of the per-client names.
    pub store: StoreConfig,
    /// Whether bans reach a kernel (a live run): [`crate::Output::Ban`]
    /// and [`crate::Output::Unban`] are given only then.
    pub enforce: bool,
    /// How long the first record of a TCP edge waits for the server's
    /// SYN-ACK and a first payload (zero: at once).
    pub settle: Duration,
    /// How long a SYN, SYN-ACK or DNS response counts as a duplicate of
    /// the same one seen before.
    pub duplicate_window: Duration,
    /// How often idle edges expire and, when the identity client's table
    /// moved, every held edge is judged again (identities that arrived
    /// late).
    pub recheck_interval: Duration,
    /// The pod CIDRs (`net.src_pod`, `net.dst_pod`).
    pub pod_cidrs: Vec<IpNet>,
    /// The home networks (`net.dst_home`, `net.dst_external`).
    pub home_nets: Vec<IpNet>,
    /// Servers the driver may probe, and how often ([`crate::Output::Probe`]);
    /// none when it does not probe.
    pub probe: Option<ProbeConfig>,
    /// How long a secret read is remembered: a read of the same secret by
    /// the same reader from the same source within it is a repeat, not a
    /// record (see [`crate::secrets`]).
    pub secret_read_window: Duration,
}

/// The private ranges of RFC 1918 (and IPv6 unique local addresses,
/// RFC 4193): part of the default home networks.
pub fn private_nets() -> Vec<IpNet> {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect()
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            agent: "edgewise".to_owned(),
            graph: {
                let mut graph_config = GraphConfig::default();
                graph_config.max_edges = 1_000_000;
                graph_config
            },
            store: {
                let mut store_config = StoreConfig::default();
                store_config.max_mappings = 1_000_000;
                store_config
            },
            enforce: false,
            settle: DEFAULT_SETTLE,
            duplicate_window: Duration::from_secs(2),
            recheck_interval: Duration::from_secs(10),
            pod_cidrs: Vec::new(),
            home_nets: private_nets(),
            probe: None,
            secret_read_window: crate::secrets::DEFAULT_TTL,
        }
    }
}
