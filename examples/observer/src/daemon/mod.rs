//! The daemon: `edgewise run` (live, the kernel observers) and `edgewise
//! replay` (a capture file), one [`edgewise_pipeline::Pipeline`] behind both.
//!
//! The decisions are `edgewise-pipeline`'s; this module is the I/O around
//! it:
//! - [`config`]: the settings (TOML file and flags).
//! - [`replay`]: a capture file through the replay source.
//! - [`live`]: the kernel observers, bans, signals.
//! - [`sensors`]: a sensor per interface group, following the links.
//! - [`streams`]: follow mode, identities and policies from a server.
//! - [`export`]: slices to the trail's collector.
//! - [`http`]: `/metrics`, `/graph`, `/healthz` and the audit webhook.

pub mod config;
pub mod export;
pub mod http;
pub mod live;
mod output;
pub mod prober;
pub mod replay;
pub mod secrets;
pub mod sensors;
pub mod streams;

pub use output::Output;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgewise_edge_set::{AggregateOptions, PolicySet, ServiceGraph};
use edgewise_identity::{Baseline, ClientConfig, IdentityClient};
use edgewise_ip_index::{ServiceBackends, ServiceCatalog};
use edgewise_k8s::ClusterWatch;
use edgewise_pipeline::{Identities, Pipeline, PipelineConfig, Record, Rules, RulesError};
use edgewise_time::UnixNanos;

use self::config::{ConfigError, Settings};
use crate::FileError;
use crate::edges::{EdgesError, EdgesInput, load, write_graph};
use crate::web::filter::Names;
use crate::web::records::RecordRing;

/// Why the daemon could not start or go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The settings cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Objects or policies cannot be used.
    #[error(transparent)]
    Inputs(#[from] EdgesError),
    /// The rules cannot be used.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The rules file could not be read.
    #[error(transparent)]
    RulesFile(TomlFileError),
    /// nmap's service database cannot be used.
    #[error(transparent)]
    ServiceProbes(#[from] crate::services::ServiceProbesError),
    /// The cluster cannot be watched.
    #[error(transparent)]
    Cluster(#[from] edgewise_k8s::WatchError),
    /// The identity MMDB cannot be used.
    #[error("{}: {message}", path.display())]
    Identity {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The capture file is broken.
    #[error("{}: {source}", path.display())]
    Capture {
        /// The file.
        path: PathBuf,
        /// The reader's error.
        source: edgewise_packet::CaptureError,
    },
    /// The kernel observers could not start or read.
    #[error(transparent)]
    Kernel(#[from] edgewise_capture::CaptureError),
    /// The secret-volume observer could not start or read.
    #[error("secret reads: {0}")]
    Secrets(String),
    /// The HTTP listener could not start.
    #[error("listening on {address}: {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: edgewise_http_server::StartError,
    },
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
    /// Exporting to the trail cannot start.
    #[error("export: {0}")]
    Export(#[source] edgewise_trail::TrailError),
    /// Slices were not delivered before the end (they wait in the spool
    /// for the next run with the same spool).
    #[error("export: {spooled} slices were not delivered ({problem}); they wait in {} for the next run", dir.display())]
    Undelivered {
        /// How many.
        spooled: u64,
        /// The spool.
        dir: PathBuf,
        /// The last failure.
        problem: String,
    },
}

/// A TOML file (settings or rules) that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TomlFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Not TOML of the expected shape.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The TOML error, with its line.
        message: String,
    },
}

/// Reads a TOML file into `T`.
///
/// # Errors
/// [`TomlFileError`] naming the file (and the line, for a format error).
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TomlFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TomlFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_toml(path, &text)
}

/// Parses TOML text into `T` (`path` names it in errors).
///
/// # Errors
/// [`TomlFileError::Format`].
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, TomlFileError> {
    toml::from_str(text).map_err(|e| TomlFileError::Format {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Loads identities, policies and rules, and builds the pipeline
/// (identities and policies from `streams` in follow mode).
///
/// # Errors
/// [`DaemonError`] naming the first input that cannot be used.
pub fn build_pipeline(
    settings: &Settings,
    listed: Option<&[u8]>,
    streams: Option<&streams::Streams>,
    enforce: bool,
    now: UnixNanos,
) -> Result<Pipeline, DaemonError> {
    let Inputs {
        identities: from_objects,
        mut policies,
        services,
    } = reload_inputs(settings, listed)?;
    if let Some(streamed) = streams.and_then(streams::Streams::take_policies) {
        policies = streamed;
    }
    let identities = if let Some(path) = &settings.identity_mmdb {
        let bytes = std::fs::read(path).map_err(FileError::at(path))?;
        let baseline = Baseline::from_mmdb(&bytes).map_err(|e| DaemonError::Identity {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut client = IdentityClient::new(ClientConfig::default());
        client.load_baseline(baseline);
        Identities::Client(client.reader(), Some(Box::new(client)))
    } else if let Some(streams) = streams {
        // The following thread holds the client.
        Identities::Client(streams.identities(), None)
    } else {
        from_objects.unwrap_or(Identities::None)
    };
    let rules = load_rules(settings)?;
    let mut config = PipelineConfig::default();
    config.agent = node_name(settings);
    config.enforce = enforce;
    config.pod_cidrs.clone_from(&settings.pod_cidrs);
    config.probe = settings.probe.then(|| {
        edgewise_pipeline::ProbeConfig::new(
            settings.probe_cidrs.clone(),
            settings.probe_rate.unwrap_or(1.0),
        )
    });
    if let Some(max) = settings.max_edges {
        config.graph.max_edges = max;
    }
    if let Some(seconds) = settings.edge_idle_ttl_seconds {
        config.graph.idle_ttl_ns = seconds.saturating_mul(1_000_000_000);
    }
    if let Some(max) = settings.max_dns_mappings {
        config.store.max_mappings = max;
    }
    if let Some(ms) = settings.edge_settle_ms {
        config.settle = Duration::from_millis(ms);
    }
    if let Some(seconds) = settings.secret_read_window_seconds {
        config.secret_read_window = Duration::from_secs(seconds);
    }
    config.home_nets = match &settings.home_nets {
        Some(nets) => nets.clone(),
        None => settings
            .pod_cidrs
            .iter()
            .chain(&settings.service_cidrs)
            .copied()
            .chain(edgewise_pipeline::private_nets())
            .collect(),
    };
    let mut pipeline = Pipeline::new(config, identities, policies, rules, now);
    pipeline.replace_services(services, now);
    if let Some(path) = &settings.service_probes {
        let database = crate::services::load_database(path)?;
        for error in database.line_errors() {
            tracing::warn!(file = %path.display(), "{error} (skipped)");
        }
        tracing::info!(
            file = %path.display(),
            probes = database.probes().len(),
            matches = database.match_count(),
            "nmap's service database loaded"
        );
        pipeline.set_service_probes(std::sync::Arc::new(database));
    }
    Ok(pipeline)
}

/// The rules of `settings` (none without a rules file).
///
/// # Errors
/// [`DaemonError`] naming the file, and the rule and column of a wrong
/// rule.
pub fn load_rules(settings: &Settings) -> Result<Rules, DaemonError> {
    let Some(path) = &settings.rules else {
        return Ok(Rules::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| {
        DaemonError::RulesFile(TomlFileError::Read {
            path: path.clone(),
            source,
        })
    })?;
    Ok(Rules::parse(path, &text)?)
}

/// Watches the objects and policies files of `settings` for changes (by
/// modification time and size), so that a long-running daemon follows a
/// cluster that is exported to files.
pub struct InputFiles {
    paths: Vec<PathBuf>,
    stamps: Vec<Option<(std::time::SystemTime, u64)>>,
}

impl InputFiles {
    /// The objects and policies files, as they are now.
    pub fn new(settings: &Settings) -> Self {
        Self::of(
            settings
                .objects
                .iter()
                .chain(&settings.policies)
                .chain(&settings.allow_lists)
                .cloned()
                .collect(),
        )
    }

    /// The rules file, as it is now.
    pub fn rules(settings: &Settings) -> Self {
        Self::of(settings.rules.iter().cloned().collect())
    }

    /// These files, as they are now.
    pub fn of(paths: Vec<PathBuf>) -> Self {
        let stamps = paths.iter().map(|p| stamp(p)).collect();
        Self { paths, stamps }
    }

    /// Whether any of them changed since the last call (or since `new`).
    pub fn changed(&mut self) -> bool {
        let now: Vec<_> = self.paths.iter().map(|p| stamp(p)).collect();
        let changed = now != self.stamps;
        self.stamps = now;
        changed
    }
}

fn stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// What the objects and policies files give: identities (only when they
/// come from objects), the policies, and the Services' fronts and
/// backends.
pub struct Inputs {
    /// Identities from the objects.
    pub identities: Option<Identities>,
    /// The compiled NetworkPolicies.
    pub policies: PolicySet,
    /// Where each Service's ClusterIP or NodePort leads.
    pub services: ServiceBackends,
}

/// Reads the objects and policies (at start, and again when they change),
/// with what the cluster watch holds (`cluster`, a `List` of its objects)
/// when the daemon follows a cluster.
///
/// # Errors
/// [`DaemonError`] naming the first file that cannot be used.
pub fn reload_inputs(settings: &Settings, cluster: Option<&[u8]>) -> Result<Inputs, DaemonError> {
    let (index, policies) = load(&EdgesInput {
        objects: settings.objects.clone(),
        policies: settings.policies.clone(),
        allow_lists: settings.allow_lists.clone(),
        cluster: cluster.map(<[u8]>::to_vec),
    })?;
    let mut catalog = ServiceCatalog::default();
    for path in &settings.objects {
        let bytes = std::fs::read(path).map_err(FileError::at(path))?;
        // The objects parsed for the index already; what the catalog
        // cannot use (a Service of the wrong shape) it passes over.
        let _ = catalog.read(&bytes);
    }
    if let Some(cluster) = cluster {
        let _ = catalog.read(cluster);
    }
    let from_objects = settings.identity_mmdb.is_none()
        && settings.identity_stream.is_none()
        && (!settings.objects.is_empty() || cluster.is_some());
    Ok(Inputs {
        identities: from_objects.then(|| Identities::Index(Box::new(index))),
        policies,
        services: catalog.resolve(),
    })
}

/// How long the daemon waits for the cluster watch's first full list
/// before it goes on (`/healthz` says ready only once it is synced).
pub const CLUSTER_SYNC_WAIT: Duration = Duration::from_secs(30);

/// The cluster watch, when the settings ask for one (`kubeconfig` or
/// `kube`), once synced or [`CLUSTER_SYNC_WAIT`] passed.
///
/// # Errors
/// [`DaemonError::Cluster`] when no configuration or client can be had.
pub fn watch_cluster(settings: &Settings) -> Result<Option<ClusterWatch>, DaemonError> {
    if settings.kubeconfig.is_none() && !settings.kube {
        return Ok(None);
    }
    let watch = ClusterWatch::start(settings.kubeconfig.as_deref())?;
    // A daemon keeps trying whatever fails: only the time bounds the wait.
    if watch.wait_synced(CLUSTER_SYNC_WAIT, u64::MAX) == edgewise_k8s::Synced::Listed {
        tracing::info!("the cluster is listed");
    } else {
        tracing::warn!(
            waited_s = CLUSTER_SYNC_WAIT.as_secs(),
            "the cluster is not listed yet; going on, not ready until it is"
        );
    }
    Ok(Some(watch))
}

/// This machine's host name, or `edgewise`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "edgewise".to_owned())
}

/// The node's name on its records and in the graph: `node_name`, else the
/// host name.
pub fn node_name(settings: &Settings) -> String {
    settings.node_name.clone().unwrap_or_else(host_name)
}

/// Writes `record` to the output and, when a listener serves `/records`,
/// into its ring (addresses named as the pipeline names them now), made
/// into JSON once for both.
pub fn emit(record: &Record, pipeline: &Pipeline, output: &mut Output, ring: Option<&RecordRing>) {
    let Some(ring) = ring else {
        output.write(record);
        return;
    };
    let Some(line) = output.to_line(record) else {
        return;
    };
    output.write_line(&line);
    ring.push(record, &line, &PipelineNames(pipeline));
}

/// Writes the records the pipeline decided, dropping its other outputs
/// (a replay enforces nothing; a stopping daemon has no sensors left).
pub fn write_records(pipeline: &mut Pipeline, output: &mut Output, ring: Option<&RecordRing>) {
    while let Some(decided) = pipeline.poll_output() {
        if let edgewise_pipeline::Output::Record(record) = decided {
            emit(&record, pipeline, output, ring);
        }
    }
}

/// The pipeline's identities and names, for `/records`' filters.
struct PipelineNames<'a>(&'a Pipeline);

impl Names for PipelineNames<'_> {
    fn identity(
        &self,
        ip: std::net::IpAddr,
    ) -> Option<std::sync::Arc<edgewise_ip_index::ClusterObject>> {
        self.0.identity(ip)
    }

    fn server_name(
        &self,
        client: std::net::IpAddr,
        server: std::net::IpAddr,
        time_ns: u64,
    ) -> Option<String> {
        self.0
            .server_name(client, server, UnixNanos::from_nanos(time_ns))
            .map(|(name, _)| name.to_string())
    }
}

/// Writes the graph files into `settings.graph_out`, if set; the files
/// written.
///
/// # Errors
/// [`DaemonError`] when a file cannot be written.
pub fn write_graph_files(
    settings: &Settings,
    graph: &ServiceGraph,
) -> Result<Vec<PathBuf>, DaemonError> {
    let Some(dir) = &settings.graph_out else {
        return Ok(Vec::new());
    };
    let granularity = settings
        .granularity
        .clone()
        .unwrap_or(edgewise_edge_set::Granularity::Workload);

    let options = AggregateOptions::new(granularity);
    Ok(write_graph(graph, &options, dir)?)
}

/// The interval between `stats` records (`None`: only at the end).
pub fn stats_interval(settings: &Settings) -> Option<Duration> {
    match settings.stats_interval_seconds {
        Some(0) => None,
        Some(seconds) => Some(Duration::from_secs(seconds)),
        None => Some(Duration::from_secs(10)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_inputs_are_noticed_and_read_again_and_a_bad_one_changes_nothing() {
        let dir = std::env::temp_dir().join(format!("edgewise-inputs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let objects = dir.join("objects.json");
        let pod = |ip: &str| {
            format!(
                r#"{{"kind": "Pod", "metadata": {{"name": "a", "namespace": "shop", "uid": "1"}},
                    "status": {{"phase": "Running", "podIP": "{ip}"}}}}"#
            )
        };
        std::fs::write(&objects, pod("10.0.0.1")).unwrap();
        let settings = Settings {
            objects: vec![objects.clone()],
            ..Settings::default()
        };
        let mut inputs = InputFiles::new(&settings);
        assert!(!inputs.changed());

        std::fs::write(&objects, pod("10.0.0.22")).unwrap();
        assert!(inputs.changed());
        assert!(!inputs.changed(), "noticed once");
        let identities = reload_inputs(&settings, None)
            .unwrap()
            .identities
            .expect("identities come from the objects");
        assert!(identities.lookup("10.0.0.22".parse().unwrap()).is_some());
        assert!(identities.lookup("10.0.0.1".parse().unwrap()).is_none());

        std::fs::write(&objects, "{\"kind\": \"Pod\", \"metadata\": 7}").unwrap();
        assert!(inputs.changed());
        let error = reload_inputs(&settings, None).err().expect("a bad object");
        assert!(error.to_string().contains("objects.json"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
