//! `edgewise replay [FILE]`: a pcap or pcapng file through capture's replay
//! source (the kernel's rules, applied to decoded packets) and the
//! pipeline. No root needed, nothing enforced. Time is the capture's.
//! With no file, the bundled demo (`demo/cluster/`): a capture of real
//! traffic between network namespaces posing as pods, with the matching
//! Kubernetes objects, NetworkPolicies and rules. With `listen`, the
//! listener serves the web view, the graph and the records while the
//! replay runs and after it, until interrupted; `pace` replays at the
//! capture's own speed (or a multiple of it).

use std::fmt::Write as _;
use std::io::{BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edgewise_capture::{Replay, ReplayConfig};
use edgewise_edge_set::ServiceGraph;
use edgewise_packet::{CaptureReader, Frame, decode};

use edgewise_pipeline::{Pipeline, Record, StatsRecord};
use edgewise_time::UnixNanos;
use edgewise_trail::export::ExportStats;

use super::config::Settings;
use super::export::Export;
use super::http::{HttpServer, Shared};
use super::{
    DaemonError, Output, build_pipeline, stats_interval, write_graph_files, write_records,
};
use crate::web::records::RecordRing;

/// The bundled demo's folder (in the source tree).
pub fn demo_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/cluster");
    dir.canonicalize().unwrap_or(dir)
}

/// The settings for the bundled demo: its capture, objects, policies and
/// rules, unless the flags name others.
pub fn demo_settings(flags: &Settings) -> (PathBuf, Settings) {
    let dir = demo_dir();
    let mut settings = flags.clone();
    if settings.objects.is_empty() && settings.identity_mmdb.is_none() {
        settings.objects = vec![dir.join("objects.json")];
    }
    if settings.policies.is_empty() {
        settings.policies = vec![dir.join("policies.json")];
    }
    if settings.rules.is_none() {
        settings.rules = Some(dir.join("rules.toml"));
    }
    (dir.join("capture.pcap"), settings)
}

/// What a replay did.
#[derive(Debug, Clone)]
pub struct ReplaySummary {
    /// The capture.
    pub file: PathBuf,
    /// Frames read.
    pub packets: u64,
    /// Wall time spent.
    pub seconds: f64,
    /// The last counters.
    pub stats: StatsRecord,
    /// Graph files written.
    pub graph_files: Vec<PathBuf>,
    /// What the export did, when exporting.
    pub export: Option<ExportStats>,
}

/// Replays `file` with `settings` (the settings already resolved). With
/// `listen`, the view, graph and records are served while it runs (the
/// graph published every second) and afterwards, until SIGINT or SIGTERM;
/// with `pace`, packets are handed on at that many times the capture's
/// speed.
///
/// # Errors
/// [`DaemonError`] for inputs that cannot be used, a broken capture (what
/// came before it was handled and written) or an output error.
pub fn replay(file: &Path, settings: &Settings) -> Result<ReplaySummary, DaemonError> {
    let started = Instant::now();
    let mut output = Output::open(settings.output.as_deref(), &super::node_name(settings))?;
    let mut reader = open_capture(file)?;
    let cluster = super::watch_cluster(settings)?;
    let streams = super::streams::Streams::start(settings)?;
    let listed = cluster
        .as_ref()
        .and_then(|watch| watch.snapshot_if_changed(&mut None));
    let mut drains = Drains {
        graph: ServiceGraph::new(),
        export: Export::start(settings, true)?,
    };
    let build = |now| build_pipeline(settings, listed.as_deref(), streams.as_ref(), false, now);
    let mut serving = Serving::start(settings)?;
    let mut pace = settings.pace.map(Pace::new);
    let mut pipeline: Option<Pipeline> = None;
    let mut replay = Replay::new(ReplayConfig::default());
    let interval_ns =
        stats_interval(settings).map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let (mut packets, mut next_stats, mut last) = (0u64, 0u64, UnixNanos::ZERO);
    let mut broken = None;
    let mut progress = Progress::new();
    while let Some(frame) = reader.next_frame() {
        let frame = match frame {
            Ok(frame) => frame,
            Err(source) => {
                broken = Some(source);
                break;
            }
        };
        packets += 1;
        if packets.is_multiple_of(PROGRESS_EVERY)
            && let Some(pipeline) = &pipeline
        {
            progress.show(packets, pipeline.edges_seen());
        }
        let now = frame.time;
        last = last.max(now);
        // Built at the first packet, so that the graph starts at the
        // capture's time.
        if pipeline.is_none() {
            drains.begin(now);
        }
        let pipeline = match &mut pipeline {
            Some(pipeline) => pipeline,
            None => pipeline.insert(build(now)?),
        };
        if let Some(pace) = &mut pace {
            pace.wait(now);
        }
        drains.tick(pipeline, now);
        // SIGINT or SIGTERM while serving ends the replay here.
        if serving
            .as_mut()
            .is_some_and(|serving| !serving.tick(&mut drains, pipeline, now))
        {
            break;
        }
        if stats_due(interval_ns, &mut next_stats, now) {
            // No expiry here: edges expire only once drained, which a
            // replay does at the end, and names expire on lookup.
            output.write(&Record::Stats(pipeline.stats(now)));
        }
        if pipeline.poll_timeout().is_some_and(|at| at <= now) {
            pipeline.handle_timeout(now);
        }
        handle_frame(pipeline, &mut replay, &frame, now);
        write_records(pipeline, &mut output, serving.as_ref().map(Serving::ring));
    }
    progress.clear();
    let mut pipeline = match pipeline {
        Some(pipeline) => pipeline,
        None => build(UnixNanos::ZERO)?,
    };
    // The capture ended: what still waits to settle is reported as it is.
    pipeline.flush(last);
    write_records(
        &mut pipeline,
        &mut output,
        serving.as_ref().map(Serving::ring),
    );
    let stats = pipeline.stats(last);
    output.write(&Record::Stats(stats.clone()));
    output.flush()?;
    let (graph, export) = drains.finish(&mut pipeline, last)?;
    let graph_files = write_graph_files(settings, &graph)?;
    if let Some(source) = broken {
        return Err(DaemonError::Capture {
            path: file.to_owned(),
            source,
        });
    }
    if let Some(serving) = serving {
        serving.linger(graph, &stats);
    }
    Ok(ReplaySummary {
        file: file.to_owned(),
        packets,
        seconds: started.elapsed().as_secs_f64(),
        stats,
        graph_files,
        export,
    })
}

/// Hands the events of one frame to the pipeline, by the kernel's rules.
fn handle_frame(pipeline: &mut Pipeline, replay: &mut Replay, frame: &Frame<'_>, now: UnixNanos) {
    match decode(frame.link, frame.data) {
        Ok(packet) => {
            replay.packet(now, frame.original_len, &packet, |event| {
                pipeline.handle_event(&event, now);
            });
        }
        // ARP and the like: not for the observers, as in the kernel.
        Err(edgewise_packet::DecodeError::NotIp { .. }) => {}
        Err(error) => pipeline.parse_error(error.reason()),
    }
}

/// Whether a `stats` record is due at capture time `now` (the first
/// interval starts at the first packet).
fn stats_due(interval_ns: Option<u64>, next_stats: &mut u64, now: UnixNanos) -> bool {
    let now = now.as_nanos();
    let Some(interval) = interval_ns else {
        return false;
    };
    if *next_stats == 0 {
        *next_stats = now.saturating_add(interval);
        return false;
    }
    let due = now >= *next_stats;
    if due {
        *next_stats = now.saturating_add(interval);
    }
    due
}

/// A replay's listener (`listen`): see [`replay`].
struct Serving {
    shared: Arc<Shared>,
    server: HttpServer,
    stop: Arc<AtomicBool>,
    next_publish: Instant,
}

/// How often a served replay publishes its graph.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

impl Serving {
    fn start(settings: &Settings) -> Result<Option<Self>, DaemonError> {
        let Some(address) = settings.listen else {
            return Ok(None);
        };
        let shared = Arc::new(Shared::new(settings)?);
        let server = HttpServer::start(address, settings, Arc::clone(&shared))?;
        shared.set_ready();
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(DaemonError::Output)?;
        }
        let scheme = if settings.listen_tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        eprintln!(
            "edgewise replay: serving {scheme}://{}/ui",
            server.address()
        );
        Ok(Some(Self {
            shared,
            server,
            stop,
            next_publish: Instant::now(),
        }))
    }

    fn ring(&self) -> &RecordRing {
        self.shared.records()
    }

    /// Whether SIGINT or SIGTERM came.
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Publishes the graph once a second, or less often when publishing
    /// takes long (at most a tenth of the time goes to it), and keeps the
    /// followers alive; false once SIGINT or SIGTERM came.
    fn tick(&mut self, drains: &mut Drains, pipeline: &mut Pipeline, now: UnixNanos) -> bool {
        if self.stopped() {
            return false;
        }
        let wall = Instant::now();
        self.ring().keepalive(wall);
        if wall >= self.next_publish {
            drains.drain(pipeline, now);
            self.shared
                .publish(drains.graph.clone(), &pipeline.stats(now));
            let spent = wall.elapsed();
            self.next_publish = Instant::now() + PUBLISH_EVERY.max(spent * 10);
        }
        true
    }

    /// Serves the whole graph until SIGINT or SIGTERM.
    fn linger(self, graph: ServiceGraph, stats: &StatsRecord) {
        self.shared.publish(graph, stats);
        eprintln!(
            "edgewise replay: the capture ended; serving {} until interrupted",
            self.server.address()
        );
        while !self.stopped() && !self.server.failed() {
            self.ring().keepalive(Instant::now());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Hands packets on at a multiple of the capture's own pace.
struct Pace {
    factor: f64,
    start: Option<(UnixNanos, Instant)>,
}

impl Pace {
    fn new(factor: f64) -> Self {
        Self {
            factor,
            start: None,
        }
    }

    /// Sleeps until the packet of capture time `now` is due.
    fn wait(&mut self, now: UnixNanos) {
        let (first, wall) = *self.start.get_or_insert((now, Instant::now()));
        let offset = now.saturating_duration_since(first).as_secs_f64() / self.factor;
        let due = wall + Duration::from_secs_f64(offset);
        let ahead = due.saturating_duration_since(Instant::now());
        if !ahead.is_zero() {
            std::thread::sleep(ahead);
        }
    }
}

/// How long a replay keeps trying to deliver its slices at the end.
const EXPORT_GRACE: Duration = Duration::from_secs(30);

/// The graph of a replay and, when exporting, the slices drained every
/// export interval of capture time (a replay that does not export drains
/// once, at the end).
struct Drains {
    graph: ServiceGraph,
    export: Option<Export>,
}

impl Drains {
    /// The first packet came at `now`.
    fn begin(&mut self, now: UnixNanos) {
        if let Some(export) = &mut self.export {
            export.begin(now);
        }
    }

    /// Drains and exports when an interval has passed.
    fn tick(&mut self, pipeline: &mut Pipeline, now: UnixNanos) {
        if self.export.as_ref().is_some_and(|e| e.due(now)) {
            self.drain(pipeline, now);
        }
    }

    /// Drains now into the graph (and the export, which sends once its
    /// interval has passed).
    fn drain(&mut self, pipeline: &mut Pipeline, now: UnixNanos) {
        let slice = pipeline.drain(now);
        self.graph.merge_slice(&slice);
        if let Some(export) = &mut self.export {
            export.offer(slice, now, false);
        }
    }

    /// The last drain: the whole graph, and what the export did.
    fn finish(
        mut self,
        pipeline: &mut Pipeline,
        last: UnixNanos,
    ) -> Result<(ServiceGraph, Option<ExportStats>), DaemonError> {
        let slice = pipeline.drain(last);
        self.graph.merge_slice(&slice);
        let export = match self.export {
            Some(mut export) => {
                export.offer(slice, last, true);
                Some(export.finish(EXPORT_GRACE)?)
            }
            None => None,
        };
        Ok((self.graph, export))
    }
}

/// A capture read from a file or standard input.
type Capture = CaptureReader<BufReader<Box<dyn Read + Send>>>;

/// The capture file (`-`: standard input), its header read.
fn open_capture(file: &Path) -> Result<Capture, DaemonError> {
    let input: Box<dyn Read + Send> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(file).map_err(crate::FileError::at(file))?)
    };
    CaptureReader::new(BufReader::new(input)).map_err(|source| DaemonError::Capture {
        path: file.to_owned(),
        source,
    })
}

/// How many packets between looks at the clock for progress.
const PROGRESS_EVERY: u64 = 1 << 16;

/// A progress line on standard error, at most once a second, only when it
/// is a terminal.
struct Progress {
    terminal: bool,
    shown: bool,
    last: Instant,
}

impl Progress {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            shown: false,
            last: Instant::now(),
        }
    }

    fn show(&mut self, packets: u64, edges: u64) {
        if self.terminal && self.last.elapsed().as_secs() >= 1 {
            self.last = Instant::now();
            self.shown = true;
            eprint!("\redgewise replay: {packets} packets, {edges} edges");
        }
    }

    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}

impl ReplaySummary {
    /// The short table `edgewise replay` ends with.
    #[expect(clippy::cast_precision_loss, reason = "a packet count shown as a rate")]
    pub fn table(&self) -> String {
        let list = |counts: &std::collections::BTreeMap<&'static str, u64>| {
            counts
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let stats = &self.stats;
        let mut table = String::new();
        let _ = writeln!(table, "edgewise replay: {}", self.file.display());
        let rate = if self.seconds > 0.0 {
            format!(" ({:.0} packets/s)", self.packets as f64 / self.seconds)
        } else {
            String::new()
        };
        let rows = [
            ("packets", format!("{}{rate}", self.packets)),
            ("events", list(&stats.events)),
            (
                "edges",
                format!("{} ({})", stats.edges_seen, list(&stats.edges_by_verdict)),
            ),
            (
                "dns",
                format!(
                    "{} responses, {} names held",
                    stats.dns_responses, stats.dns_mappings
                ),
            ),
            (
                "rules",
                if stats.rule_matches.is_empty() {
                    "no match".to_owned()
                } else {
                    format!(
                        "{} (bans not enforced in a replay)",
                        list(&stats.rule_matches)
                    )
                },
            ),
            (
                "rule errs",
                stats
                    .rule_errors_by_rule
                    .iter()
                    .map(|(rule, n)| format!("{rule} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("unusable", list(&stats.parse_errors)),
        ];
        for (name, value) in rows {
            let value = if value.is_empty() {
                "none".to_owned()
            } else {
                value
            };
            let _ = writeln!(table, "  {name:<9} {value}");
        }
        if let Some(export) = &self.export {
            let _ = writeln!(
                table,
                "  exported  {} slices merged, {} already merged, {} older than the collector keeps, {} refused ({} KiB sent)",
                export.merged,
                export.duplicate,
                export.expired,
                export.refused,
                export.bytes_sent / 1024
            );
        }
        for path in &self.graph_files {
            let _ = writeln!(table, "  wrote     {}", path.display());
        }
        table
    }
}
