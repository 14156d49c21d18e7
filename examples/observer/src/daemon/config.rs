//! The daemon's settings: a TOML file (`--config`) for everything, and a
//! flag for each setting that overrides the file.
//!
//! ```toml
//! # Where to observe (edgewise run): ingress and egress on these names or
//! # globs (followed as interfaces come and go)...
//! observe_interfaces = ["cni0", "cali*"]
//! # ...and egress only on these ("auto": the default-route interface),
//! # limited to packets from the pod CIDRs when pod_cidrs is set.
//! observe_egress_interfaces = ["auto"]
//! observe_mode = "tcx"            # tcx | clsact | xdp (xdp: ingress; egress falls back to tcx) | af_packet (observe only)
//! observe_netns = "/run/netns/x"  # observe in this network namespace (a name under /run/netns, or a path)
//! pod_cidrs = ["10.42.0.0/16"]
//! service_cidrs = ["10.43.0.0/16"]
//! home_nets = ["10.0.0.0/8"]      # net.dst_home (default: pod and service CIDRs, RFC 1918, fc00::/7)
//! node_name = "node-1"            # the agent's name in the graph
//!
//! # Identity, policies, rules
//! kubeconfig = "/etc/edgewise/kubeconfig"  # watch the cluster (or kube = true: in-cluster, $KUBECONFIG, ~/.kube/config)
//! objects = ["cluster.json"]      # Kubernetes JSON lists or watch events
//! identity_mmdb = "identity.mmdb" # or: the identity client
//! identity_stream = "https://edgewise-identity.edgewise:9470"  # identities and policies (follow mode)
//! identity_stream_ca = "/etc/edgewise/ca.pem"            # verifies the server (needed for https)
//! identity_stream_token_file = "/etc/edgewise/token"     # bearer token (read again at each reconnect)
//! identity_stream_cert = "client.pem"                    # mutual TLS (with identity_stream_key)
//! identity_stream_key = "client-key.pem"
//! policies = ["netpol.json"]
//! allow_lists = ["egress.allow"]  # hand-written allow-lists (see the README)
//! rules = "rules.toml"
//! service_probes = "/usr/share/nmap/nmap-service-probes"  # products and versions (nmap's database)
//! probe = true                    # probe servers no first bytes identified (edgewise run)
//! probe_cidrs = ["10.42.0.0/16"]  # ...only inside these
//! probe_rate = 1                  # sessions per second, at most
//! probe_intensity = 7             # nmap's version intensity, 0 to 9
//!
//! # Secret reads (edgewise run): mounted-file reads from the kernel; API
//! # reads come from the audit webhook (audit_token_file)
//! secret_reads = true             # observe reads of files in pods' secret volumes
//! secret_hook = "auto"            # auto | lsm | fentry | tracepoint
//! secret_read_window_seconds = 300  # a read repeated within it is counted, not recorded again
//! mountinfo = "/proc/1/mountinfo" # the node's mount table (default /proc/self/mountinfo)
//! cgroup_root = "/sys/fs/cgroup"  # the node's cgroup v2 hierarchy (default: the cgroup2 mount)
//!
//! # Outputs
//! output = "-"                    # JSON lines: "-" is standard output
//! graph_out = "graph"             # graph.json, graph-<granularity>.json, graph.dot on exit
//! granularity = "workload"        # workload | namespace | namespace+LABEL
//! listen = "127.0.0.1:9464"       # /ui, /graph, /records, /metrics, /healthz, /audit (off when absent)
//! audit_token_file = "token"
//! graph_token_file = "graph-tokens"  # /graph, /graph/view and /records need one of these bearer tokens
//! pace = 1                        # edgewise replay: at the capture's speed (2: twice as fast; default: as fast as it reads)
//! listen_tls_cert = "cert.pem"    # serve the listener over TLS (with listen_tls_key)
//! listen_tls_key = "key.pem"
//! stats_interval_seconds = 10
//!
//! # The trail (edgewise collect)
//! export = "https://edgewise-collector.edgewise:9480"  # send a slice every interval
//! export_interval_seconds = 30
//! export_ca = "/etc/edgewise/ca.pem"       # verifies the collector (needed for https)
//! export_token_file = "/etc/edgewise/export-token"
//! export_cert = "client.pem"               # mutual TLS (with export_key)
//! export_key = "client-key.pem"
//! export_spool_dir = "/var/lib/edgewise/spool"  # slices wait here while the collector is away
//! export_spool_bytes = 268435456
//! log_format = "text"             # text | json (RUST_LOG sets the levels; default info)
//!
//! # Bounds
//! max_edges = 1000000
//! edge_idle_ttl_seconds = 300
//! edge_settle_ms = 2000           # a TCP edge's first record waits for JA4TS and service (0: at once)
//! max_dns_mappings = 1000000
//! dns_max_payload = 4096         # a UDP DNS response longer than this is cut, and counted
//! ring_bytes = 4194304
//! bpf_pin_dir = "/sys/fs/bpf/edgewise"  # a bpffs folder: bans outlive a restart
//! flow_sample_seconds = 10
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{TomlFileError, read_toml};

/// Every setting, as a flag (clap) and as a TOML key (serde). A flag that
/// is given wins over the file.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A TOML file with any of these settings (flags override it).
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Interfaces to observe on ingress and egress: names or globs such as
    /// `cali*` (repeat or comma-separate), followed as they come and go.
    #[arg(long = "observe-interfaces", value_delimiter = ',')]
    #[serde(default)]
    pub observe_interfaces: Vec<String>,
    /// Interfaces to observe on egress only; `auto` is the default-route
    /// interface.
    #[arg(long = "observe-egress-interfaces", value_delimiter = ',')]
    #[serde(default)]
    pub observe_egress_interfaces: Vec<String>,
    /// How to attach: tcx (default), clsact, xdp (ingress only; egress
    /// then falls back to tcx), or `af_packet` (packet sockets, observe
    /// only, for hosts where programs may not be attached).
    #[arg(long = "observe-mode")]
    #[serde(default, deserialize_with = "parsed")]
    pub observe_mode: Option<edgewise_capture::AttachMode>,
    /// Observe in this network namespace: a name under /run/netns, or a
    /// path such as /proc/PID/ns/net (default: the daemon's own).
    #[arg(long = "observe-netns")]
    pub observe_netns: Option<String>,
    /// Pod CIDRs: egress-only interfaces observe packets from these only.
    #[arg(long = "pod-cidrs", value_delimiter = ',')]
    #[serde(default)]
    pub pod_cidrs: Vec<ipnet::IpNet>,
    /// Service CIDRs (part of the default home networks).
    #[arg(long = "service-cidrs", value_delimiter = ',')]
    #[serde(default)]
    pub service_cidrs: Vec<ipnet::IpNet>,
    /// The home networks of `net.dst_home` in rules (default: the pod and
    /// service CIDRs, RFC 1918 and `fc00::/7`).
    #[arg(long = "home-nets", value_delimiter = ',')]
    pub home_nets: Option<Vec<ipnet::IpNet>>,
    /// The agent's name in the graph (default: the host name).
    #[arg(long = "node-name")]
    pub node_name: Option<String>,
    /// Watch the cluster this kubeconfig names (pods, services,
    /// EndpointSlices, nodes, namespaces, NetworkPolicies) for identities,
    /// policies and Service backends.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Watch the cluster found as kubectl finds it: in-cluster (a pod's
    /// service account), else `$KUBECONFIG` or `~/.kube/config`.
    #[arg(long)]
    #[serde(default)]
    pub kube: bool,
    /// Kubernetes JSON (lists, single objects or watch events) for
    /// identities; repeat for several files.
    #[arg(long)]
    #[serde(default)]
    pub objects: Vec<PathBuf>,
    /// An identity MMDB baseline (`edgewise identity build`).
    #[arg(long = "identity-mmdb")]
    pub identity_mmdb: Option<PathBuf>,
    /// An identity server to follow (`edgewise identity serve`), such as
    /// `http://10.0.0.5:9470`.
    #[arg(long = "identity-stream")]
    pub identity_stream: Option<String>,
    /// CA certificates (PEM) the identity server's certificate must chain
    /// to (needed for `https://`).
    #[arg(long = "identity-stream-ca")]
    pub identity_stream_ca: Option<PathBuf>,
    /// A client certificate (PEM) for the identity server (mutual TLS).
    #[arg(long = "identity-stream-cert")]
    pub identity_stream_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long = "identity-stream-key")]
    pub identity_stream_key: Option<PathBuf>,
    /// A file holding the identity server's bearer token.
    #[arg(long = "identity-stream-token-file")]
    pub identity_stream_token_file: Option<PathBuf>,
    /// NetworkPolicy JSON for verdicts; repeat for several files.
    #[arg(long)]
    #[serde(default)]
    pub policies: Vec<PathBuf>,
    /// A hand-written allow-list (`<src> -> <dst> [port ...]` per line;
    /// see the README); repeat for several files.
    #[arg(long = "allow-list")]
    #[serde(default)]
    pub allow_lists: Vec<PathBuf>,
    /// Rules (TOML; see the README).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// nmap's service database (Debian's `nmap` puts it at
    /// /usr/share/nmap/nmap-service-probes): servers' products and
    /// versions in edge records, the graph and rules.
    #[arg(long = "service-probes")]
    pub service_probes: Option<PathBuf>,
    /// Probe servers seen in flow samples that no first bytes identified,
    /// with nmap's probes (needs `service_probes` and `probe_cidrs`; live
    /// only).
    #[arg(long)]
    #[serde(default)]
    pub probe: bool,
    /// Only servers inside these are ever probed.
    #[arg(long = "probe-cidrs", value_delimiter = ',')]
    #[serde(default)]
    pub probe_cidrs: Vec<ipnet::IpNet>,
    /// Probe sessions started per second, at most (default 1).
    #[arg(long = "probe-rate")]
    pub probe_rate: Option<f64>,
    /// nmap's version intensity, 0 to 9 (default 7): probes rarer than
    /// it are sent only to the ports they list.
    #[arg(long = "probe-intensity")]
    pub probe_intensity: Option<u8>,
    /// Observe reads of files in pods' secret volumes (`secret_read`
    /// records with `"source": "mounted"`; live only).
    #[arg(long = "secret-reads")]
    #[serde(default)]
    pub secret_reads: bool,
    /// Where the secret-volume observer hooks file opens: auto (default:
    /// the first the kernel accepts of lsm, fentry, tracepoint), lsm,
    /// fentry or tracepoint.
    #[arg(long = "secret-hook")]
    pub secret_hook: Option<String>,
    /// Seconds a secret read is remembered: the same secret read by the
    /// same reader from the same source within them is counted as a
    /// repeat, not recorded again (default 300).
    #[arg(long = "secret-read-window-seconds")]
    pub secret_read_window_seconds: Option<u64>,
    /// The node's mount table, where secret volumes are found (default
    /// `/proc/self/mountinfo`; in a container with the host's pid
    /// namespace, `/proc/1/mountinfo`).
    #[arg(long)]
    pub mountinfo: Option<PathBuf>,
    /// The node's cgroup v2 hierarchy, where readers' cgroups lead to
    /// their pods (default: the cgroup2 mount of the mount table).
    #[arg(long = "cgroup-root")]
    pub cgroup_root: Option<PathBuf>,
    /// Where JSON lines go (`-`: standard output, the default).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Write graph.json, graph-GRANULARITY.json and graph.dot here on
    /// exit.
    #[arg(long = "graph-out")]
    pub graph_out: Option<PathBuf>,
    /// Grouping of the aggregated graph: workload (default), namespace or
    /// namespace+LABEL.
    #[arg(long, value_parser = crate::edges::parse_granularity)]
    #[serde(default, deserialize_with = "granularity")]
    pub granularity: Option<edgewise_edge_set::Granularity>,
    /// Serve the web view (/ui), /graph, /records, /metrics, /healthz and
    /// the audit webhook here; a replay serves until interrupted.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// A replay's speed: 1 replays at the capture's own pace, 2 twice as
    /// fast; by default as fast as it reads (replay only).
    #[arg(long)]
    pub pace: Option<f64>,
    /// The audit webhook's bearer token, in a file.
    #[arg(long = "audit-token-file")]
    pub audit_token_file: Option<PathBuf>,
    /// Bearer tokens (one per line) that `/graph`, `/graph/view` and
    /// `/records` ask for; without it, they are open.
    #[arg(long = "graph-token-file")]
    pub graph_token_file: Option<PathBuf>,
    /// Serve the listener over TLS with this certificate chain (PEM; read
    /// again when it changes).
    #[arg(long = "listen-tls-cert")]
    pub listen_tls_cert: Option<PathBuf>,
    /// The listener certificate's key (PEM).
    #[arg(long = "listen-tls-key")]
    pub listen_tls_key: Option<PathBuf>,
    /// Send a slice of the graph to this collector (`edgewise collect`)
    /// every `export_interval_seconds`, such as
    /// `https://edgewise-collector.edgewise:9480`.
    #[arg(long)]
    pub export: Option<String>,
    /// Seconds between exported slices (default 30; a replay counts
    /// capture time).
    #[arg(long = "export-interval-seconds")]
    pub export_interval_seconds: Option<u64>,
    /// CA certificates (PEM) the collector's certificate must chain to
    /// (needed for `https://`).
    #[arg(long = "export-ca")]
    pub export_ca: Option<PathBuf>,
    /// A file holding the collector's bearer token.
    #[arg(long = "export-token-file")]
    pub export_token_file: Option<PathBuf>,
    /// A client certificate (PEM) for the collector (mutual TLS).
    #[arg(long = "export-cert")]
    pub export_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long = "export-key")]
    pub export_key: Option<PathBuf>,
    /// Where slices wait while the collector is away (default
    /// `/var/lib/edgewise/spool`; for a replay, a folder under the
    /// temporary directory named after the agent).
    #[arg(long = "export-spool-dir")]
    pub export_spool_dir: Option<PathBuf>,
    /// The spool's bound in bytes; past it the oldest slices go first
    /// (default 256 MiB).
    #[arg(long = "export-spool-bytes")]
    pub export_spool_bytes: Option<u64>,
    /// Logs on standard error: text (default) or json, one line per state
    /// change; `RUST_LOG` sets the levels (default `info`).
    #[arg(long = "log-format")]
    #[serde(default, deserialize_with = "parsed")]
    pub log_format: Option<LogFormat>,
    /// Seconds between `stats` records (default 10; 0: only at the end).
    #[arg(long = "stats-interval-seconds")]
    pub stats_interval_seconds: Option<u64>,
    /// The most edges held (default 1,000,000).
    #[arg(long = "max-edges")]
    pub max_edges: Option<usize>,
    /// Seconds an idle edge is kept after it was drained (default 300).
    #[arg(long = "edge-idle-ttl-seconds")]
    pub edge_idle_ttl_seconds: Option<u64>,
    /// Milliseconds a TCP edge's first record waits for the server's
    /// SYN-ACK and first payload (default 2000; 0: at once).
    #[arg(long = "edge-settle-ms")]
    pub edge_settle_ms: Option<u64>,
    /// The most address -> name mappings held (default 1,000,000).
    #[arg(long = "max-dns-mappings")]
    pub max_dns_mappings: Option<usize>,
    /// The most bytes of a UDP DNS response a kernel event carries,
    /// 1..=4096 (default 4096; a longer one is cut and counted).
    #[arg(long = "dns-max-payload")]
    pub dns_max_payload: Option<u32>,
    /// The kernel ring buffer's size in bytes (a power of two; default
    /// 4 MiB).
    #[arg(long = "ring-bytes")]
    pub ring_bytes: Option<u32>,
    /// A bpffs folder where the drop map is pinned, so that bans outlive a
    /// restart and other processes can ban (default `/sys/fs/bpf/edgewise`;
    /// without bpffs there, bans live and die with the process, with a
    /// warning).
    #[arg(long = "bpf-pin-dir")]
    pub bpf_pin_dir: Option<PathBuf>,
    /// A flow is sampled at most once per this many seconds (default 10).
    #[arg(long = "flow-sample-seconds")]
    pub flow_sample_seconds: Option<u64>,
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or is not TOML of the expected shape.
    #[error(transparent)]
    File(#[from] TomlFileError),
    /// A value is out of range or contradicts another.
    #[error("setting {setting}: {problem}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("{text:?}: expected text or json")),
        }
    }
}

/// Starts the logs on standard error in `format`, at the levels of
/// `RUST_LOG` (default `info`). A second call changes nothing.
pub fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A setting read with its type's `FromStr`, the error naming the value.
fn parsed<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

/// `granularity`, as the flag reads it.
fn granularity<'de, D>(deserializer: D) -> Result<Option<edgewise_edge_set::Granularity>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    crate::edges::parse_granularity(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

macro_rules! take_over {
    ($flags:ident, $file:ident, [$($option:ident),*], [$($list:ident),*]) => {
        $( if $flags.$option.is_some() { $file.$option = $flags.$option.clone(); } )*
        $( if !$flags.$list.is_empty() { $file.$list = $flags.$list.clone(); } )*
    };
}

impl Settings {
    /// The settings: the file's (if `--config` names one) with the flags
    /// given on top.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or the setting.
    pub fn resolve(flags: &Self) -> Result<Self, ConfigError> {
        let mut settings = match &flags.config {
            Some(path) => read_toml(path)?,
            None => Self::default(),
        };
        take_over!(
            flags,
            settings,
            [
                config,
                kubeconfig,
                observe_mode,
                observe_netns,
                node_name,
                identity_mmdb,
                identity_stream,
                identity_stream_ca,
                identity_stream_cert,
                identity_stream_key,
                identity_stream_token_file,
                rules,
                service_probes,
                probe_rate,
                probe_intensity,
                secret_hook,
                secret_read_window_seconds,
                mountinfo,
                cgroup_root,
                output,
                graph_out,
                granularity,
                listen,
                pace,
                log_format,
                audit_token_file,
                graph_token_file,
                listen_tls_cert,
                listen_tls_key,
                stats_interval_seconds,
                export,
                export_interval_seconds,
                export_ca,
                export_token_file,
                export_cert,
                export_key,
                export_spool_dir,
                export_spool_bytes,
                max_edges,
                edge_idle_ttl_seconds,
                edge_settle_ms,
                home_nets,
                max_dns_mappings,
                dns_max_payload,
                ring_bytes,
                bpf_pin_dir,
                flow_sample_seconds
            ],
            [
                observe_interfaces,
                observe_egress_interfaces,
                pod_cidrs,
                service_cidrs,
                objects,
                policies,
                allow_lists,
                probe_cidrs
            ]
        );
        settings.kube |= flags.kube;
        settings.probe |= flags.probe;
        settings.secret_reads |= flags.secret_reads;
        settings.check()?;
        Ok(settings)
    }

    /// The network namespace to observe in, as a path: a bare name is one
    /// under /run/netns (as `ip netns` makes them).
    pub fn observe_netns_path(&self) -> Option<PathBuf> {
        self.observe_netns.as_deref().map(|netns| {
            if netns.contains('/') {
                PathBuf::from(netns)
            } else {
                PathBuf::from("/run/netns").join(netns)
            }
        })
    }

    /// The follow mode's and the listener's settings.
    fn check_streams(&self) -> Result<(), ConfigError> {
        let invalid = |setting, problem: &str| {
            Err(ConfigError::Invalid {
                setting,
                problem: problem.to_owned(),
            })
        };
        if self.identity_stream.is_some()
            && (!self.policies.is_empty() || !self.allow_lists.is_empty())
        {
            return invalid(
                "policies",
                "in follow mode (identity_stream) the policies come from the server; give the files to edgewise identity serve",
            );
        }
        let stream_tls = [
            self.identity_stream_ca.is_some(),
            self.identity_stream_cert.is_some(),
            self.identity_stream_key.is_some(),
            self.identity_stream_token_file.is_some(),
        ];
        if self.identity_stream.is_none() && stream_tls.contains(&true) {
            return invalid(
                "identity_stream",
                "identity_stream_ca, _cert, _key and _token_file need identity_stream",
            );
        }
        if self.identity_stream_cert.is_some() != self.identity_stream_key.is_some() {
            return invalid(
                "identity_stream_cert",
                "identity_stream_cert and identity_stream_key go together",
            );
        }
        if self.listen_tls_cert.is_some() != self.listen_tls_key.is_some() {
            return invalid(
                "listen_tls_cert",
                "listen_tls_cert and listen_tls_key go together",
            );
        }
        if self.listen.is_none()
            && (self.listen_tls_cert.is_some() || self.graph_token_file.is_some())
        {
            return invalid("listen", "listen_tls_* and graph_token_file need listen");
        }
        let export_only = [
            self.export_interval_seconds.is_some(),
            self.export_ca.is_some(),
            self.export_token_file.is_some(),
            self.export_cert.is_some(),
            self.export_spool_dir.is_some(),
            self.export_spool_bytes.is_some(),
        ];
        if self.export.is_none() && export_only.contains(&true) {
            return invalid("export", "export_* settings need export");
        }
        if self.export_cert.is_some() != self.export_key.is_some() {
            return invalid("export_cert", "export_cert and export_key go together");
        }
        if self.export_interval_seconds == Some(0) {
            return invalid("export_interval_seconds", "must be at least 1");
        }
        Ok(())
    }

    /// Where and how to export slices (none without `export`); a replay's
    /// default spool is a folder under the temporary directory named after
    /// the agent.
    pub fn export_config(
        &self,
        agent: &str,
        replay: bool,
    ) -> Option<edgewise_trail::export::ExportConfig> {
        let url = self.export.clone()?;
        let spool_dir = self.export_spool_dir.clone().unwrap_or_else(|| {
            if replay {
                std::env::temp_dir().join(format!("edgewise-spool-{agent}"))
            } else {
                PathBuf::from("/var/lib/edgewise/spool")
            }
        });
        // The interval and spool bound default to the exporter's own.
        let mut config = edgewise_trail::export::ExportConfig::new(url, spool_dir);
        config.ca.clone_from(&self.export_ca);
        config.client_cert = self.export_cert.clone().zip(self.export_key.clone());
        config.token_file.clone_from(&self.export_token_file);
        if let Some(seconds) = self.export_interval_seconds {
            config.interval = std::time::Duration::from_secs(seconds);
        }
        if let Some(bytes) = self.export_spool_bytes {
            config.spool_bytes = bytes;
        }
        Some(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |setting, problem: &str| {
            Err(ConfigError::Invalid {
                setting,
                problem: problem.to_owned(),
            })
        };
        let watching = self.kubeconfig.is_some() || self.kube;
        if (self.identity_mmdb.is_some() || self.identity_stream.is_some())
            && (!self.objects.is_empty() || watching)
        {
            return invalid(
                "objects",
                "give identities either as objects (files or a cluster watch) or through the identity client, not both",
            );
        }
        self.check_streams()?;
        for pattern in self
            .observe_interfaces
            .iter()
            .chain(&self.observe_egress_interfaces)
        {
            if let Err(error) = pattern.parse::<edgewise_capture::InterfacePattern>() {
                return invalid("observe_interfaces", &error.to_string());
            }
        }
        if self
            .observe_netns
            .as_deref()
            .is_some_and(|n| n.is_empty() || n.contains('\0'))
        {
            return invalid("observe_netns", "a namespace name or path");
        }
        if self
            .dns_max_payload
            .is_some_and(|n| !(1..=u32::from(edgewise_capture::event::DNS_MAX)).contains(&n))
        {
            return invalid("dns_max_payload", "must be 1 to 4096");
        }
        if self
            .ring_bytes
            .is_some_and(|n| !n.is_power_of_two() || n < 4096)
        {
            return invalid("ring_bytes", "must be a power of two of at least 4096");
        }
        if self.max_edges == Some(0) || self.max_dns_mappings == Some(0) {
            return invalid("max_edges / max_dns_mappings", "must be at least 1");
        }
        if self.flow_sample_seconds == Some(0) {
            return invalid("flow_sample_seconds", "must be at least 1");
        }
        self.check_probe()?;
        self.check_secret_reads()?;
        let above = |value: Option<u64>, max: u64| value.is_some_and(|v| v > max);
        for (setting, value, max) in [
            (
                "stats_interval_seconds",
                self.stats_interval_seconds,
                86_400,
            ),
            (
                "edge_idle_ttl_seconds",
                self.edge_idle_ttl_seconds,
                7 * 86_400,
            ),
            ("edge_settle_ms", self.edge_settle_ms, 60_000),
            ("flow_sample_seconds", self.flow_sample_seconds, 3_600),
            ("max_edges", self.max_edges.map(|n| n as u64), 100_000_000),
            (
                "max_dns_mappings",
                self.max_dns_mappings.map(|n| n as u64),
                100_000_000,
            ),
            ("ring_bytes", self.ring_bytes.map(u64::from), 1 << 30),
            // A window is at most a day (the collector refuses longer).
            (
                "export_interval_seconds",
                self.export_interval_seconds,
                86_400,
            ),
            ("export_spool_bytes", self.export_spool_bytes, 1 << 40),
        ] {
            if above(value, max) {
                return invalid(setting, &format!("must be at most {max}"));
            }
        }
        Ok(())
    }

    /// The secret-volume observer's settings: in range, and given only
    /// with `secret_reads`.
    fn check_secret_reads(&self) -> Result<(), ConfigError> {
        let invalid = |setting, problem: &str| {
            Err(ConfigError::Invalid {
                setting,
                problem: problem.to_owned(),
            })
        };
        if self
            .secret_hook
            .as_deref()
            .is_some_and(|hook| edgewise_capture::secrets::SecretHook::parse(hook).is_none())
        {
            return invalid("secret_hook", "must be auto, lsm, fentry or tracepoint");
        }
        if self
            .secret_read_window_seconds
            .is_some_and(|s| !(1..=86_400).contains(&s))
        {
            return invalid("secret_read_window_seconds", "must be 1 to 86400");
        }
        let observer_setting = [
            ("secret_hook", self.secret_hook.is_some()),
            ("mountinfo", self.mountinfo.is_some()),
            ("cgroup_root", self.cgroup_root.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given);
        if let (false, Some((setting, _))) = (self.secret_reads, observer_setting) {
            return invalid(setting, "needs secret_reads (the secret-volume observer)");
        }
        Ok(())
    }

    /// The active prober's settings: it needs the database and the
    /// networks it may probe; rate and intensity in range.
    fn check_probe(&self) -> Result<(), ConfigError> {
        let invalid = |setting, problem: &str| {
            Err(ConfigError::Invalid {
                setting,
                problem: problem.to_owned(),
            })
        };
        if self.pace.is_some_and(|p| !(p > 0.0 && p <= 1_000_000.0)) {
            return invalid(
                "pace",
                "must be above 0 and at most 1000000 (times the capture's speed)",
            );
        }
        if self.probe_rate.is_some_and(|r| !(r > 0.0 && r <= 100.0)) {
            return invalid("probe_rate", "must be above 0 and at most 100 per second");
        }
        if self.probe_intensity.is_some_and(|i| i > 9) {
            return invalid("probe_intensity", "must be 0 to 9");
        }
        if self.probe && self.service_probes.is_none() {
            return invalid("probe", "needs service_probes (nmap's database)");
        }
        if self.probe && self.probe_cidrs.is_empty() {
            return invalid("probe", "needs probe_cidrs: the networks it may probe");
        }
        Ok(())
    }

    /// Refuses the settings that only `edgewise replay` uses (its pace).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming it.
    pub fn check_live(&self) -> Result<(), ConfigError> {
        match self.pace {
            Some(_) => Err(ConfigError::Invalid {
                setting: "pace",
                problem: "only edgewise replay uses it".to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Refuses the settings that only `edgewise run` uses, so that a
    /// replay never silently ignores one.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first such setting.
    pub fn check_replay(&self) -> Result<(), ConfigError> {
        let live_only = [
            ("observe_interfaces", !self.observe_interfaces.is_empty()),
            (
                "observe_egress_interfaces",
                !self.observe_egress_interfaces.is_empty(),
            ),
            ("observe_mode", self.observe_mode.is_some()),
            ("observe_netns", self.observe_netns.is_some()),
            ("audit_token_file", self.audit_token_file.is_some()),
            ("ring_bytes", self.ring_bytes.is_some()),
            ("bpf_pin_dir", self.bpf_pin_dir.is_some()),
            ("flow_sample_seconds", self.flow_sample_seconds.is_some()),
            ("dns_max_payload", self.dns_max_payload.is_some()),
            ("probe", self.probe),
            ("probe_cidrs", !self.probe_cidrs.is_empty()),
            ("probe_rate", self.probe_rate.is_some()),
            ("probe_intensity", self.probe_intensity.is_some()),
            ("secret_reads", self.secret_reads),
        ];
        match live_only.iter().find(|(_, given)| *given) {
            Some((setting, _)) => Err(ConfigError::Invalid {
                setting,
                problem: "only edgewise run uses it; a replay cannot".to_owned(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile_path::Path {
        tempfile_path::Path::new(text)
    }

    /// A file in the temporary folder, removed when dropped.
    mod tempfile_path {
        pub(super) struct Path(pub(super) std::path::PathBuf);

        impl Path {
            pub(super) fn new(text: &str) -> Self {
                static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = std::env::temp_dir()
                    .join(format!("edgewise-config-{}-{n}.toml", std::process::id()));
                std::fs::write(&path, text).unwrap();
                Self(path)
            }
        }

        impl Drop for Path {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn flags_override_the_file() {
        let file = write(
            "observe_interfaces = [\"eth0\"]\nmax_edges = 10\nrules = \"a.toml\"\npod_cidrs = [\"10.42.0.0/16\"]\n",
        );
        let flags = Settings {
            config: Some(file.0.clone()),
            max_edges: Some(20),
            ..Settings::default()
        };
        let settings = Settings::resolve(&flags).unwrap();
        assert_eq!(settings.observe_interfaces, ["eth0"]);
        assert_eq!(settings.max_edges, Some(20));
        assert_eq!(
            settings.rules.as_deref(),
            Some(std::path::Path::new("a.toml"))
        );
        assert_eq!(settings.pod_cidrs, ["10.42.0.0/16".parse().unwrap()]);
    }

    #[test]
    fn wrong_settings_are_named() {
        let error = |text: &str| {
            let file = write(text);
            Settings::resolve(&Settings {
                config: Some(file.0.clone()),
                ..Settings::default()
            })
            .unwrap_err()
            .to_string()
        };
        assert!(error("observe_mode = \"tc\"").contains("unknown attach mode \"tc\""));
        assert!(error("observe_interfaces = [\"cali[\"]").contains("interface pattern"));
        assert!(error("observe_interfaces = [\"a/b\"]").contains("interface pattern"));
        assert!(error("ring_bytes = 5000").contains("setting ring_bytes"));
        assert!(error("max_edgez = 1").contains("unknown field"));
        assert!(error("pod_cidrs = [\"10.42.0.0/33\"]").contains("edgewise-config"));
        assert!(error("granularity = \"team\"").contains("expected workload, namespace"));
        assert!(
            error("objects = [\"a.json\"]\nidentity_mmdb = \"b.mmdb\"").contains("setting objects")
        );
        assert!(
            error("stats_interval_seconds = 9223372036854775807")
                .contains("setting stats_interval_seconds: must be at most 86400")
        );
        assert!(error("edge_settle_ms = 600000").contains("setting edge_settle_ms"));
        // The prober never runs without its database and its networks.
        assert!(
            error("probe = true\nprobe_cidrs = [\"10.0.0.0/8\"]")
                .contains("setting probe: needs service_probes")
        );
        assert!(
            error("probe = true\nservice_probes = \"p\"")
                .contains("setting probe: needs probe_cidrs")
        );
        assert!(error("probe_rate = 0").contains("setting probe_rate"));
        assert!(error("probe_rate = 1000").contains("setting probe_rate"));
        assert!(error("probe_intensity = 10").contains("setting probe_intensity"));
    }

    #[test]
    fn a_replay_refuses_what_only_a_live_run_uses() {
        let settings = Settings {
            audit_token_file: Some("token".into()),
            ..Settings::default()
        };
        let error = settings.check_replay().unwrap_err().to_string();
        assert!(
            error.contains("setting audit_token_file: only edgewise run"),
            "{error}"
        );
        assert!(Settings::default().check_replay().is_ok());
        let serving = Settings {
            listen: Some("127.0.0.1:9464".parse().unwrap()),
            pace: Some(1.0),
            ..Settings::default()
        };
        assert!(
            serving.check_replay().is_ok(),
            "a replay may serve the view"
        );
        assert!(
            serving
                .check_live()
                .unwrap_err()
                .to_string()
                .contains("setting pace: only edgewise replay")
        );
        let probing = Settings {
            probe: true,
            ..Settings::default()
        };
        assert!(
            probing
                .check_replay()
                .unwrap_err()
                .to_string()
                .contains("setting probe: only edgewise run")
        );
    }
}
