//! `edgewise replay [FILE]`: a pcap or pcapng file through capture's replay
//! source (the kernel's rules, applied to decoded packets) and the
//! pipeline. No root needed, nothing enforced. Time is the capture's.
//! With no file, the bundled demo (`demo/cluster/`): a capture of real
//! traffic between network namespaces posing as pods, with the matching
//! Kubernetes objects, NetworkPolicies and rules.

use std::fmt::Write as _;
use std::io::{BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use edgewise_capture::{Replay, ReplayConfig};
use edgewise_edge_set::ServiceGraph;
use edgewise_packet::{CaptureReader, decode};

use edgewise_pipeline::{Output as Decided, Pipeline, Record, StatsRecord};
use edgewise_trail::export::ExportStats;

use super::config::Settings;
use super::export::Export;
use super::{DaemonError, Output, build_pipeline, stats_interval, write_graph_files};

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

/// Replays `file` with `settings` (the settings already resolved).
///
/// # Errors
/// [`DaemonError`] for inputs that cannot be used, a broken capture (what
/// came before it was handled and written) or an output error.
pub fn replay(file: &Path, settings: &Settings) -> Result<ReplaySummary, DaemonError> {
    let started = Instant::now();
    let mut output = Output::open(settings.output.as_deref())?;
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
    let mut pipeline: Option<Pipeline> = None;
    let mut replay = Replay::new(ReplayConfig::default());
    let interval_ns =
        stats_interval(settings).map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let (mut packets, mut next_stats, mut last_ns) = (0u64, 0u64, 0u64);
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
        let now = frame.timestamp_ns;
        last_ns = last_ns.max(now);
        // Built at the first packet, so that the graph starts at the
        // capture's time.
        if pipeline.is_none() {
            drains.begin(now);
        }
        let pipeline = match &mut pipeline {
            Some(pipeline) => pipeline,
            None => pipeline.insert(build_pipeline(
                settings,
                listed.as_deref(),
                streams.as_ref(),
                false,
                now,
            )?),
        };
        drains.tick(pipeline, now);
        if let Some(interval) = interval_ns {
            if next_stats == 0 {
                next_stats = now.saturating_add(interval);
            } else if now >= next_stats {
                // No expiry here: edges expire only once drained, which a
                // replay does at the end, and names expire on lookup.
                output.write(&Record::Stats(pipeline.stats(now)));
                next_stats = now.saturating_add(interval);
            }
        }
        if pipeline.poll_timeout().is_some_and(|at| at <= now) {
            pipeline.handle_timeout(now);
        }
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
        write_records(pipeline, &mut output);
    }
    progress.clear();
    let mut pipeline = match pipeline {
        Some(pipeline) => pipeline,
        None => build_pipeline(settings, listed.as_deref(), streams.as_ref(), false, 0)?,
    };
    // The capture ended: what still waits to settle is reported as it is.
    pipeline.flush(last_ns);
    write_records(&mut pipeline, &mut output);
    let stats = pipeline.stats(last_ns);
    output.write(&Record::Stats(stats.clone()));
    output.flush()?;
    let (graph, export) = drains.finish(&mut pipeline, last_ns)?;
    let graph_files = write_graph_files(settings, &graph)?;
    if let Some(source) = broken {
        return Err(DaemonError::Capture {
            path: file.to_owned(),
            source,
        });
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

/// How long a replay keeps trying to deliver its slices at the end.
const EXPORT_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// The graph of a replay and, when exporting, the slices drained every
/// export interval of capture time (a replay that does not export drains
/// once, at the end).
struct Drains {
    graph: ServiceGraph,
    export: Option<Export>,
}

impl Drains {
    /// The first packet came at `now`.
    fn begin(&mut self, now: u64) {
        if let Some(export) = &mut self.export {
            export.begin(now);
        }
    }

    /// Drains and exports when an interval has passed.
    fn tick(&mut self, pipeline: &mut Pipeline, now: u64) {
        if let Some(export) = self.export.as_mut().filter(|e| e.due(now)) {
            let slice = pipeline.drain(now);
            self.graph.merge_slice(&slice);
            export.offer(slice, now, false);
        }
    }

    /// The last drain: the whole graph, and what the export did.
    fn finish(
        mut self,
        pipeline: &mut Pipeline,
        last_ns: u64,
    ) -> Result<(ServiceGraph, Option<ExportStats>), DaemonError> {
        let slice = pipeline.drain(last_ns);
        self.graph.merge_slice(&slice);
        let export = match self.export {
            Some(mut export) => {
                export.offer(slice, last_ns, true);
                Some(export.finish(EXPORT_GRACE)?)
            }
            None => None,
        };
        Ok((self.graph, export))
    }
}

/// The capture file (`-`: standard input), its header read.
fn open_capture(file: &Path) -> Result<CaptureReader<'static>, DaemonError> {
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

/// Writes the records the pipeline decided (a replay enforces nothing).
fn write_records(pipeline: &mut Pipeline, output: &mut Output) {
    while let Some(decided) = pipeline.poll_output() {
        if let Decided::Record(record) = decided {
            output.write(&record);
        }
    }
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
