//! `edgewise run`: the kernel observers on the configured interfaces, their
//! events through the pipeline, and `drop` rules' bans back into the
//! kernel. Needs root.
//!
//! - The sensors ([`super::sensors`]): `observe_interfaces` on ingress
//!   and egress, `observe_egress_interfaces` on egress only, names or globs
//!   followed as interfaces come and go (checked on every turn of the
//!   loop, so a new pod's veth is observed within a fraction of a second).
//! - Event times come in Unix time (capture turns the kernel's monotonic
//!   stamps with the clock offset it measured at load); secret opens, on
//!   the monotonic clock, with the offset measured at start.
//! - The pipeline's kernel actions are applied to every sensor's drop
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
//! - With `export`, each drained slice is also offered to the trail's
//!   exporter ([`super::export`]), which sends one per export interval.
//! - With `secret_reads`, the secret-volume observer
//!   ([`super::secrets`]): reads of mounted secrets become `secret_read`
//!   records beside the audit webhook's.
//! - SIGUSR1: write the graph files now (`--graph-out`).
//! - SIGINT, SIGTERM or SIGHUP (a closed terminal): stop reading, detach
//!   every program (dropping the
//!   sensors), write the last `stats` and the graph files, flush, exit 0.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edgewise_edge_set::{GraphSlice, ServiceGraph};
use edgewise_pipeline::{Output as Decided, Pipeline, Record, StatsRecord};
use edgewise_time::{MonotonicOffset, UnixNanos};

use super::config::Settings;
use super::export::Export;
use super::http::{HttpServer, Shared};
use super::prober::ProbeWorker;
use super::secrets::SecretWatch;
use super::sensors::Sensors;
use super::streams::Streams;
use super::{
    DaemonError, InputFiles, Output, build_pipeline, emit, load_rules, reload_inputs,
    stats_interval, watch_cluster, write_graph_files, write_records,
};
use crate::web::records::RecordRing;
use edgewise_k8s::ClusterWatch;

/// How far back the served graph reaches.
pub const GRAPH_WINDOW: Duration = Duration::from_secs(3600);
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
    pub fn push(&mut self, slice: GraphSlice, now: UnixNanos) {
        let now_ns = now.as_nanos();
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

/// The wall clock now.
pub fn unix_now() -> UnixNanos {
    UnixNanos::from_system_time(std::time::SystemTime::now())
}

/// Where the drop map is pinned unless `bpf_pin_dir` says otherwise.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/edgewise";

/// Runs until SIGINT or SIGTERM.
///
/// # Errors
/// [`DaemonError`] for inputs that cannot be used, observers that cannot
/// attach (naming the program and interface) or an output error.
pub fn run(settings: &Settings) -> Result<(), DaemonError> {
    let (stop, dump) = signals()?;
    let cluster = watch_cluster(settings)?;
    let streams = Streams::start(settings)?;
    let mut sources = Sources::new(settings, cluster.as_ref());
    let mut pipeline = build_pipeline(
        settings,
        sources.cluster_json.as_deref(),
        streams.as_ref(),
        true,
        unix_now(),
    )?;
    let mut output = Output::open(settings.output.as_deref(), &super::node_name(settings))?;
    let prober = prober(settings, &pipeline);
    let (shared, server) = listener(settings)?;
    let ring = server.as_ref().map(|_| shared.records());
    let mut export = Export::start(settings, false)?;
    let (mut sensors, mut secrets) = start_sensors(settings, &mut pipeline, &shared)?;
    // Ready once the sensors are loaded and, when following a cluster,
    // once it is listed.
    let synced = || cluster.as_ref().is_none_or(ClusterWatch::synced);
    if synced() {
        shared.set_ready();
    }
    // Kernel events come in Unix time (capture converts them); secret
    // opens, on the monotonic clock, are converted with this offset.
    let offset = edgewise_capture::clock_offset();
    let interval = stats_interval(settings).unwrap_or(Duration::from_secs(10));
    let mut next_tick = Instant::now() + interval;
    let mut window = SliceWindow::default();
    while !stop.load(Ordering::Relaxed) {
        sensors.poll(Duration::from_millis(100), &mut |event| match event {
            Ok(event) => {
                pipeline.handle_event(&event, event.time);
            }
            Err(error) => pipeline.parse_error(error.reason()),
        })?;
        sensors.follow();
        let now = unix_now();
        if let Some(policies) = streams.as_ref().and_then(Streams::take_policies) {
            pipeline.replace_inputs(None, policies, now);
            tracing::info!("streamed policies applied");
        }
        if let Some(prober) = &prober {
            prober.report(&mut pipeline, now);
        }
        if pipeline.poll_timeout().is_some_and(|at| at <= now) {
            pipeline.handle_timeout(now);
        }
        apply(
            &mut pipeline,
            &mut sensors,
            &mut output,
            prober.as_ref(),
            ring,
        );
        secret_reads(
            &shared,
            secrets.as_mut(),
            &mut pipeline,
            (&mut output, ring),
            offset,
        )?;
        if Instant::now() >= next_tick {
            next_tick += interval;
            if let Some(server) = &server
                && server.failed()
            {
                // Never run on blind: a supervisor restarts the daemon.
                return Err(DaemonError::Listen {
                    address: server.address(),
                    source: std::io::Error::other("the HTTP listener stopped").into(),
                });
            }
            sources.follow(settings, &mut pipeline, now);
            if synced() && !shared.is_ready() {
                tracing::info!("the cluster is listed: ready");
                shared.set_ready();
            }
            apply(
                &mut pipeline,
                &mut sensors,
                &mut output,
                prober.as_ref(),
                ring,
            );
            pipeline.expire(now);
            window.push(drained(&mut pipeline, export.as_mut(), now, false), now);
            let stats = tick(&pipeline, &mut sensors, export.as_ref(), now);
            shared.set_sensors(&sensors.health());
            shared.publish(window.graph(), &stats);
            if settings.stats_interval_seconds != Some(0) {
                output.write(&Record::Stats(stats));
            }
        }
        if dump.swap(false, Ordering::Relaxed) {
            window.push(drained(&mut pipeline, export.as_mut(), now, false), now);
            for path in write_graph_files(settings, &window.graph())? {
                tracing::info!(file = %path.display(), "graph written");
            }
        }
        output.flush()?;
    }
    stop_run(settings, pipeline, sensors, output, export, window, ring)
}

/// The sensors and, when asked, the secret-volume observer; bans held in
/// the kernel are adopted.
fn start_sensors(
    settings: &Settings,
    pipeline: &mut Pipeline,
    shared: &Shared,
) -> Result<(Sensors, Option<SecretWatch>), DaemonError> {
    let mut sensors = Sensors::start(settings)?;
    let secrets = SecretWatch::start(settings)?;
    for ban in sensors.held_bans() {
        pipeline.adopt_ban(ban.edge, ban.remaining, unix_now());
    }
    shared.set_sensors(&sensors.health());
    Ok((sensors, secrets))
}

/// The prober, when the settings ask for one.
fn prober(settings: &Settings, pipeline: &Pipeline) -> Option<ProbeWorker> {
    if !settings.probe {
        return None;
    }
    pipeline
        .service_probes()
        .map(|database| ProbeWorker::start(database, settings.probe_intensity.unwrap_or(7)))
}

/// What the loop shares with the listener, and the listener when
/// `listen` is set.
fn listener(settings: &Settings) -> Result<(Arc<Shared>, Option<HttpServer>), DaemonError> {
    let shared = Arc::new(Shared::new(settings)?);
    let server = match settings.listen {
        Some(address) => Some(HttpServer::start(address, settings, Arc::clone(&shared))?),
        None => None,
    };
    Ok((shared, server))
}

/// The secret reads since the last turn, from the kernel (`secrets`) and
/// from the audit batches received, and a keepalive for `/records`'
/// followers.
fn secret_reads(
    shared: &Shared,
    secrets: Option<&mut SecretWatch>,
    pipeline: &mut Pipeline,
    (output, ring): (&mut Output, Option<&RecordRing>),
    offset: MonotonicOffset,
) -> Result<(), DaemonError> {
    let mut reads = match secrets {
        Some(secrets) => secrets.poll(pipeline, offset)?,
        None => Vec::new(),
    };
    let now = unix_now();
    for batch in shared.take_audits() {
        reads.extend(pipeline.secret_reads(batch, now));
    }
    for read in reads {
        emit(&Record::SecretRead(read), pipeline, output, ring);
    }
    if let Some(ring) = ring {
        ring.keepalive(Instant::now());
    }
    Ok(())
}

/// The end of a run: the sensors detached first (traffic must not wait on
/// a daemon that is leaving), then the last records, slice, export and
/// graph files.
fn stop_run(
    settings: &Settings,
    mut pipeline: Pipeline,
    mut sensors: Sensors,
    mut output: Output,
    mut export: Option<Export>,
    mut window: SliceWindow,
    ring: Option<&RecordRing>,
) -> Result<(), DaemonError> {
    let now = unix_now();
    pipeline.flush(now);
    // The sensors are gone: only the records are left to write.
    write_records(&mut pipeline, &mut output, ring);
    let stats = tick(&pipeline, &mut sensors, export.as_ref(), now);
    drop(sensors);
    window.push(drained(&mut pipeline, export.as_mut(), now, true), now);
    finish_export(export);
    output.write(&Record::Stats(stats));
    output.flush()?;
    for path in write_graph_files(settings, &window.graph())? {
        tracing::info!(file = %path.display(), "graph written");
    }
    Ok(())
}

/// How long a stopping daemon keeps trying to deliver its last slices
/// (what is left waits in the spool for the next start).
const EXPORT_GRACE: Duration = Duration::from_secs(5);

/// Sends the last slices for at most [`EXPORT_GRACE`].
fn finish_export(export: Option<Export>) {
    if let Some(export) = export {
        match export.finish(EXPORT_GRACE) {
            Ok(stats) => tracing::info!(merged = stats.merged, "slices exported"),
            Err(error) => tracing::warn!(%error, "stopping with slices in the spool"),
        }
    }
}

/// Drains a slice, offering a copy to the export when there is one.
fn drained(
    pipeline: &mut Pipeline,
    export: Option<&mut Export>,
    now: UnixNanos,
    last: bool,
) -> GraphSlice {
    let slice = pipeline.drain(now);
    if let Some(export) = export {
        export.offer(slice.clone(), now, last);
    }
    slice
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

/// Writes the pipeline's records, applies its kernel actions to every
/// sensor's drop map (telling it whether the kernel took each ban), and
/// hands its probes to the prober.
fn apply(
    pipeline: &mut Pipeline,
    sensors: &mut Sensors,
    output: &mut Output,
    prober: Option<&ProbeWorker>,
    ring: Option<&RecordRing>,
) {
    while let Some(decided) = pipeline.poll_output() {
        match decided {
            Decided::Record(record) => emit(&record, pipeline, output, ring),
            Decided::Ban { edge, ttl } => {
                let accepted = sensors.ban(&edge, ttl);
                pipeline.ban_applied(edge, accepted);
            }
            Decided::Unban { edge } => sensors.unban(&edge),
            Decided::Probe { server } => {
                if let Some(prober) = prober {
                    prober.probe(server);
                }
            }
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
    fn follow(&mut self, settings: &Settings, pipeline: &mut Pipeline, now: UnixNanos) {
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

/// The periodic counters, with the sensors' (and what is attached, what
/// failed); expired bans swept from the drop maps.
fn tick(
    pipeline: &Pipeline,
    sensors: &mut Sensors,
    export: Option<&Export>,
    now: UnixNanos,
) -> StatsRecord {
    let mut stats = pipeline.stats(now);
    if let Some(export) = export {
        stats.export = export.counters();
    }
    let counters = sensors.counters();
    // The kernel's count is the authority (the pipeline's lags its last
    // report by up to a second).
    stats.lost_events = counters.lost;
    stats.events_lost = counters.lost_by_cause().into_iter().collect();
    stats.packets_dropped = counters.dropped;
    let health = sensors.health();
    stats.interfaces = health.attached;
    stats.interface_failures.clone_from(&health.failures);
    stats
}
