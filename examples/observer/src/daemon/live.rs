//! `edgewise run`: the kernel observers on the configured interfaces, their
//! events through the pipeline, and `drop` rules' bans back into the
//! kernel. Needs root.
//!
//! - `observe_interfaces` get the observers on ingress and egress;
//!   `observe_egress_interfaces` on egress only, limited to packets from
//!   `pod_cidrs` when set (each group is its own capture, so the limit does
//!   not touch the first). A ban goes into every capture's drop map.
//! - Event times are the kernel's monotonic clock, turned into Unix time
//!   with the offset measured at start.
//! - The pipeline's kernel actions are applied to every capture's drop
//!   map and its answer given back ([`Pipeline::ban_applied`]); bans held
//!   in the pinned map at start are adopted.
//! - Every stats interval: the objects, policies and rules files read
//!   again if they changed (a file that cannot be used keeps the last good
//!   state), a `stats` record (with the kernel's counters of lost events
//!   and dropped packets), expired bans swept, idle edges and names
//!   expired, and `/graph` published from the window of slices.
//! - At each stats tick the observed graph is drained into a window of
//!   slices: the last [`GRAPH_WINDOW`] and at most [`MAX_WINDOW_EDGES`]
//!   slice edges in all, the oldest slice going first, so that memory
//!   stays bounded however long the daemon runs.
//! - SIGUSR1: write the graph files now (`--graph-out`).
//! - SIGINT, SIGTERM or SIGHUP (a closed terminal): stop reading, detach
//!   every program (dropping the
//!   captures), write the last `stats` and the graph files, flush, exit 0.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edgewise_capture::{AttachMode, Capture, CaptureConfig};
use edgewise_edge_set::{GraphSlice, ServiceGraph};
use edgewise_pipeline::{Output as Decided, Pipeline, Record, StatsRecord};

use super::config::Settings;
use super::http::{HttpServer, Shared};
use super::{
    DaemonError, InputFiles, Output, build_pipeline, load_rules, reload_inputs, stats_interval,
    watch_cluster, write_graph_files,
};
use edgewise_k8s::ClusterWatch;

/// How far back the served graph reaches.
pub const GRAPH_WINDOW: Duration = Duration::from_hours(1);
/// The most slice edges the window holds in all.
pub const MAX_WINDOW_EDGES: usize = 500_000;

/// The graph of the last [`GRAPH_WINDOW`], as slices (see the module docs).
#[derive(Default)]
pub struct SliceWindow {
    slices: VecDeque<GraphSlice>,
    edges: usize,
}

impl SliceWindow {
    /// Adds a slice drained at `now_ns`, forgetting what fell out.
    pub fn push(&mut self, slice: GraphSlice, now_ns: u64) {
        self.edges += slice.edges.len();
        self.slices.push_back(slice);
        let horizon = now_ns.saturating_sub(u64::try_from(GRAPH_WINDOW.as_nanos()).unwrap_or(0));
        while let Some(oldest) = self.slices.front() {
            let stale = oldest.window.end_ns < horizon;
            if !(stale || self.edges > MAX_WINDOW_EDGES) || self.slices.len() == 1 {
                break;
            }
            self.edges -= oldest.edges.len();
            self.slices.pop_front();
        }
    }

    /// The slices merged.
    pub fn graph(&self) -> ServiceGraph {
        let mut graph = ServiceGraph::new();
        for slice in &self.slices {
            graph.merge_slice(slice);
        }
        graph
    }

    /// Slice edges held.
    pub fn edges(&self) -> usize {
        self.edges
    }
}

/// Nanoseconds since the Unix epoch.
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What to add to a kernel event time (monotonic) to get Unix time.
fn monotonic_offset_ns() -> u64 {
    unix_now_ns().saturating_sub(edgewise_capture::monotonic_now_ns())
}

/// Where the drop map is pinned unless `bpf_pin_dir` says otherwise.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/edgewise";

/// One capture for `observe_interfaces` (ingress and egress) and one for
/// `observe_egress_interfaces` (with the pod CIDRs as its source filter).
/// The first one's drop map is pinned in `bpf_pin_dir` when bpffs allows,
/// so another process can ban through it and bans outlive a restart.
fn capture_configs(settings: &Settings) -> Vec<CaptureConfig> {
    let modes = match settings.observe_mode {
        Some(AttachMode::Clsact) => vec![AttachMode::Clsact],
        Some(AttachMode::Xdp) => vec![AttachMode::Xdp, AttachMode::Tcx],
        _ => vec![AttachMode::Tcx],
    };
    let mut base = CaptureConfig {
        modes,
        pin_dir: Some(
            settings
                .bpf_pin_dir
                .clone()
                .unwrap_or_else(|| DEFAULT_PIN_DIR.into()),
        ),
        ..CaptureConfig::default()
    };
    if let Some(bytes) = settings.ring_bytes {
        base.ring_bytes = bytes;
    }
    if let Some(payload) = settings.dns_max_payload {
        base.dns_max_payload = payload;
    }
    if let Some(seconds) = settings.flow_sample_seconds {
        base.flow_sample_window = Duration::from_secs(seconds);
    }
    let mut configs = Vec::new();
    if !settings.observe_interfaces.is_empty() {
        configs.push(CaptureConfig {
            ingress: settings.observe_interfaces.clone(),
            egress: settings.observe_interfaces.clone(),
            ..base.clone()
        });
    }
    if !settings.observe_egress_interfaces.is_empty() {
        configs.push(CaptureConfig {
            egress: settings.observe_egress_interfaces.clone(),
            egress_sources: settings.pod_cidrs.clone(),
            // The first capture holds the pin.
            pin_dir: if configs.is_empty() {
                base.pin_dir.clone()
            } else {
                None
            },
            ..base
        });
    }
    configs
}

/// Runs until SIGINT or SIGTERM.
///
/// # Errors
/// [`DaemonError`] for inputs that cannot be used, observers that cannot
/// attach (naming the program and interface) or an output error.
pub fn run(settings: &Settings) -> Result<(), DaemonError> {
    let (stop, dump) = signals()?;
    let configs = capture_configs(settings);
    if configs.is_empty() {
        return Err(super::config::ConfigError::Invalid {
            setting: "observe_interfaces",
            problem: "no interface to observe (observe_interfaces or observe_egress_interfaces)"
                .to_owned(),
        }
        .into());
    }
    let cluster = watch_cluster(settings)?;
    let mut sources = Sources::new(settings, cluster.as_ref());
    let mut pipeline = build_pipeline(
        settings,
        sources.cluster_json.as_deref(),
        true,
        unix_now_ns(),
    )?;
    let mut output = Output::open(settings.output.as_deref())?;
    let shared = Arc::new(Shared::default());
    let server = match settings.listen {
        Some(address) => Some(HttpServer::start(address, settings, Arc::clone(&shared))?),
        None => None,
    };
    let mut captures = attach(&configs)?;
    adopt_bans(&mut pipeline, &mut captures);
    // Ready once attached and, when following a cluster, once it is listed.
    let synced = || cluster.as_ref().is_none_or(ClusterWatch::synced);
    if synced() {
        shared.set_ready();
    }
    let offset = monotonic_offset_ns();
    let interval = stats_interval(settings).unwrap_or(Duration::from_secs(10));
    let mut next_tick = Instant::now() + interval;
    let mut window = SliceWindow::default();
    while !stop.load(Ordering::Relaxed) {
        let wait = Duration::from_millis(100) / u32::try_from(captures.len()).unwrap_or(1);
        for capture in &mut captures {
            capture.poll(wait, |event| match event {
                Ok(event) => {
                    let now = event.timestamp_ns.saturating_add(offset);
                    pipeline.handle_event(&event, now);
                }
                Err(error) => pipeline.parse_error(error.reason()),
            })?;
        }
        let now = unix_now_ns();
        if pipeline.poll_timeout().is_some_and(|at| at <= now) {
            pipeline.handle_timeout(now);
        }
        apply(&mut pipeline, &mut captures, &mut output);
        for batch in shared.take_audits() {
            for read in pipeline.secret_reads(batch) {
                output.write(&Record::SecretRead(read));
            }
        }
        if Instant::now() >= next_tick {
            next_tick += interval;
            if let Some(server) = &server
                && server.failed()
            {
                // Never run on blind: a supervisor restarts the daemon.
                return Err(DaemonError::Listen {
                    address: server.address(),
                    source: std::io::Error::other("the HTTP listener stopped"),
                });
            }
            sources.follow(settings, &mut pipeline, now);
            if synced() && !shared.is_ready() {
                tracing::info!("the cluster is listed: ready");
                shared.set_ready();
            }
            apply(&mut pipeline, &mut captures, &mut output);
            pipeline.expire(now);
            window.push(pipeline.drain(now), now);
            let stats = tick(&pipeline, &mut captures, now);
            shared.publish(&window.graph(), &stats);
            if settings.stats_interval_seconds != Some(0) {
                output.write(&Record::Stats(stats));
            }
        }
        if dump.swap(false, Ordering::Relaxed) {
            window.push(pipeline.drain(now), now);
            for path in write_graph_files(settings, &window.graph())? {
                tracing::info!(file = %path.display(), "graph written");
            }
        }
        output.flush()?;
    }
    // Detach first: traffic must not wait on a daemon that is leaving.
    let now = unix_now_ns();
    pipeline.flush(now);
    apply_records_only(&mut pipeline, &mut output);
    let stats = tick(&pipeline, &mut captures, now);
    drop(captures);
    window.push(pipeline.drain(now), now);
    output.write(&Record::Stats(stats));
    output.flush()?;
    for path in write_graph_files(settings, &window.graph())? {
        tracing::info!(file = %path.display(), "graph written");
    }
    Ok(())
}

/// The flags SIGINT, SIGTERM and SIGHUP (stop) and SIGUSR1 (write the
/// graph files) set.
fn signals() -> Result<(Arc<AtomicBool>, Arc<AtomicBool>), DaemonError> {
    let (stop, dump) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(DaemonError::Output)?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&dump))
        .map_err(DaemonError::Output)?;
    Ok((stop, dump))
}

/// Attaches every capture, saying where.
fn attach(configs: &[CaptureConfig]) -> Result<Vec<Capture>, DaemonError> {
    let mut captures = Vec::new();
    for config in configs {
        captures.push(Capture::attach(config)?);
    }
    for attachment in captures.iter().flat_map(Capture::attachments) {
        tracing::info!(
            interface = %attachment.interface,
            direction = ?attachment.direction,
            mode = %attachment.mode,
            "attached"
        );
    }
    tracing::info!(
        interfaces = captures.iter().flat_map(Capture::attachments).count(),
        "observing"
    );
    if let Some(first) = captures.first()
        && first.pin_dir().is_none()
    {
        tracing::warn!(
            pin_dir = %configs
                .first()
                .and_then(|c| c.pin_dir.as_deref())
                .unwrap_or(std::path::Path::new(DEFAULT_PIN_DIR))
                .display(),
            "the drop map is not pinned (no writable bpffs there): bans will not survive a restart; mount one (mount -t bpf bpf DIR) or set bpf_pin_dir"
        );
    }
    Ok(captures)
}

/// Bans held in the pinned drop map (a restart) go on under the pipeline,
/// lifted by their TTL.
fn adopt_bans(pipeline: &mut Pipeline, captures: &mut [Capture]) {
    let now = unix_now_ns();
    let Some(first) = captures.first_mut() else {
        return;
    };
    match first.bans().bans() {
        Ok(bans) => {
            for ban in bans {
                pipeline.adopt_ban(ban.edge, ban.remaining, now);
            }
        }
        Err(error) => tracing::warn!(%error, "the bans held cannot be read"),
    }
}

/// Writes the pipeline's records and applies its kernel actions to every
/// capture's drop map, telling it whether the kernel took each ban.
fn apply(pipeline: &mut Pipeline, captures: &mut [Capture], output: &mut Output) {
    while let Some(decided) = pipeline.poll_output() {
        match decided {
            Decided::Record(record) => output.write(&record),
            Decided::Ban { edge, ttl } => {
                let mut accepted = !captures.is_empty();
                for capture in captures.iter_mut() {
                    if let Err(error) = capture.bans().ban(&edge, ttl) {
                        accepted = false;
                        tracing::warn!(%edge, %error, "ban refused");
                    }
                }
                pipeline.ban_applied(edge, accepted);
            }
            Decided::Unban { edge } => {
                for capture in captures.iter_mut() {
                    if let Err(error) = capture.bans().unban(&edge) {
                        tracing::warn!(%edge, %error, "unban refused");
                    }
                }
            }
        }
    }
}

/// Writes the pipeline's records once the captures are gone.
fn apply_records_only(pipeline: &mut Pipeline, output: &mut Output) {
    while let Some(decided) = pipeline.poll_output() {
        if let Decided::Record(record) = decided {
            output.write(&record);
        }
    }
}

/// Where the objects, policies and rules come from, watched for changes:
/// their files, and the cluster watch when the daemon follows a cluster.
struct Sources<'a> {
    files: InputFiles,
    rules: InputFiles,
    cluster: Option<&'a ClusterWatch>,
    cluster_seen: Option<u64>,
    /// The cluster's objects as last listed.
    cluster_json: Option<Vec<u8>>,
}

impl<'a> Sources<'a> {
    /// The files as they are now and the cluster's first list (which
    /// builds the pipeline; the first tick reads it again only if it
    /// changed).
    fn new(settings: &Settings, cluster: Option<&'a ClusterWatch>) -> Self {
        let mut cluster_seen = None;
        let cluster_json = cluster.and_then(|watch| watch.snapshot_if_changed(&mut cluster_seen));
        Self {
            files: InputFiles::new(settings),
            rules: InputFiles::rules(settings),
            cluster,
            cluster_seen,
            cluster_json,
        }
    }

    /// Reads the objects, policies and rules again when their files or
    /// the cluster changed (a file that cannot be used keeps the last good
    /// state).
    fn follow(&mut self, settings: &Settings, pipeline: &mut Pipeline, now: u64) {
        let cluster_changed = match self.cluster {
            Some(watch) => match watch.snapshot_if_changed(&mut self.cluster_seen) {
                Some(json) => {
                    self.cluster_json = Some(json);
                    true
                }
                None => false,
            },
            None => false,
        };
        if self.files.changed() || cluster_changed {
            match reload_inputs(settings, self.cluster_json.as_deref()) {
                Ok(inputs) => {
                    pipeline.replace_inputs(inputs.identities, inputs.policies, now);
                    pipeline.replace_services(inputs.services, now);
                    tracing::info!("objects and policies read again");
                }
                Err(error) => {
                    pipeline.parse_error("inputs_reload");
                    tracing::warn!(%error, "keeping the last objects and policies");
                }
            }
        }
        if self.rules.changed() {
            match load_rules(settings) {
                Ok(rules) => {
                    pipeline.replace_rules(rules, now);
                    tracing::info!("rules read again");
                }
                Err(error) => {
                    pipeline.parse_error("rules_reload");
                    tracing::warn!(%error, "keeping the last rules");
                }
            }
        }
    }
}

/// The periodic counters, with the kernel's; expired bans swept from the
/// drop maps.
fn tick(pipeline: &Pipeline, captures: &mut [Capture], now: u64) -> StatsRecord {
    let mut stats = pipeline.stats(now);
    // The kernel's count is the authority (the pipeline's lags its last
    // report by up to a second).
    stats.packets_dropped = 0;
    for capture in captures.iter_mut() {
        if let Ok(counters) = capture.counters() {
            stats.lost_events += counters.lost;
            stats.packets_dropped += counters.dropped;
        }
        let _ = capture.bans().sweep();
    }
    stats
}
