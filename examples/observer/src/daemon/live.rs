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
//! - Every stats interval: the objects and policies files read again if
//!   they changed (a file that cannot be used keeps the last good state),
//!   a `stats` record (with the kernel's counters of
//!   lost events and dropped packets), expired bans swept, idle edges and
//!   names expired, and the graph drained into the running total (which
//!   `/graph` serves).
//! - SIGUSR1: write the graph files now (`--graph-out`).
//! - SIGINT or SIGTERM: stop reading, detach every program (dropping the
//!   captures), write the last `stats` and the graph files, flush, exit 0.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edgewise_capture::{AttachMode, Capture, CaptureConfig};
use edgewise_edge_set::ServiceGraph;

use super::config::Settings;
use super::http::{HttpServer, Shared};
use super::pipeline::Pipeline;
use super::records::{Record, StatsRecord};
use super::{
    DaemonError, InputFiles, Output, build_pipeline, reload_inputs, stats_interval,
    write_graph_files,
};

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

/// One capture for `observe_interfaces` (ingress and egress) and one for
/// `observe_egress_interfaces` (with the pod CIDRs as its source filter).
/// The first one's drop map is pinned in `/sys/fs/bpf/edgewise` when bpffs
/// allows, so another process can ban through it and bans outlive a
/// restart.
fn capture_configs(settings: &Settings) -> Vec<CaptureConfig> {
    let modes = match settings.observe_mode.as_deref() {
        Some("clsact") => vec![AttachMode::Clsact],
        Some("xdp") => vec![AttachMode::Xdp, AttachMode::Tcx],
        _ => vec![AttachMode::Tcx],
    };
    let mut base = CaptureConfig {
        modes,
        pin_dir: Some("/sys/fs/bpf/edgewise".into()),
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
    let (stop, dump) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(DaemonError::Output)?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&dump))
        .map_err(DaemonError::Output)?;
    let configs = capture_configs(settings);
    if configs.is_empty() {
        return Err(super::config::ConfigError::Invalid {
            setting: "observe_interfaces",
            problem: "no interface to observe (observe_interfaces or observe_egress_interfaces)"
                .to_owned(),
        }
        .into());
    }
    let mut inputs = InputFiles::new(settings);
    let mut pipeline = build_pipeline(settings, true, unix_now_ns())?;
    let mut output = Output::open(settings.output.as_deref())?;
    let shared = Arc::new(Shared::default());
    let _server = match settings.listen {
        Some(address) => Some(HttpServer::start(address, settings, Arc::clone(&shared))?),
        None => None,
    };
    let mut captures = Vec::new();
    for config in &configs {
        captures.push(Capture::attach(config)?);
    }
    eprintln!(
        "edgewise: observing ({})",
        captures
            .iter()
            .flat_map(Capture::attachments)
            .map(|a| format!("{} {:?} {}", a.interface, a.direction, a.mode))
            .collect::<Vec<_>>()
            .join(", ")
    );
    shared.set_ready();
    let offset = monotonic_offset_ns();
    let interval = stats_interval(settings).unwrap_or(Duration::from_secs(10));
    let mut next_tick = Instant::now() + interval;
    let mut total = ServiceGraph::new();
    let mut sequence = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let wait = Duration::from_millis(100) / u32::try_from(captures.len()).unwrap_or(1);
        for capture in &mut captures {
            capture.poll(wait, |event| match event {
                Ok(event) => {
                    sequence += 1;
                    let now = event.timestamp_ns.saturating_add(offset);
                    pipeline.handle(&event, now, sequence, &mut |record| {
                        output.write(record);
                    });
                }
                Err(error) => pipeline.parse_error(error.reason()),
            })?;
        }
        enforce(&mut pipeline, &mut captures);
        for batch in shared.take_audits() {
            for read in pipeline.secret_reads(batch) {
                output.write(&Record::SecretRead(read));
            }
        }
        if Instant::now() >= next_tick {
            next_tick += interval;
            follow_inputs(&mut inputs, settings, &mut pipeline);
            let now = unix_now_ns();
            let stats = tick(&mut pipeline, &mut captures, &mut total, now);
            shared.publish(&total, &stats);
            if settings.stats_interval_seconds != Some(0) {
                output.write(&Record::Stats(stats));
            }
        }
        if dump.swap(false, Ordering::Relaxed) {
            total.merge_slice(&pipeline.drain(unix_now_ns()));
            for path in write_graph_files(settings, &total)? {
                eprintln!("edgewise: wrote {}", path.display());
            }
        }
        output.flush()?;
    }
    // Detach first: traffic must not wait on a daemon that is leaving.
    let now = unix_now_ns();
    let stats = tick(&mut pipeline, &mut captures, &mut total, now);
    drop(captures);
    output.write(&Record::Stats(stats));
    output.flush()?;
    for path in write_graph_files(settings, &total)? {
        eprintln!("edgewise: wrote {}", path.display());
    }
    Ok(())
}

/// Reads the objects and policies again when their files changed.
fn follow_inputs(inputs: &mut InputFiles, settings: &Settings, pipeline: &mut Pipeline) {
    if !inputs.changed() {
        return;
    }
    match reload_inputs(settings) {
        Ok((identities, policies)) => {
            pipeline.replace_inputs(identities, policies);
            eprintln!("edgewise: objects and policies read again");
        }
        Err(error) => {
            pipeline.parse_error("inputs_reload");
            eprintln!("edgewise: keeping the last objects and policies: {error}");
        }
    }
}

/// Puts the bans the pipeline asked for into every drop map.
fn enforce(pipeline: &mut Pipeline, captures: &mut [Capture]) {
    for (edge, ttl) in pipeline.take_bans() {
        for capture in captures.iter_mut() {
            if let Err(error) = capture.bans().ban(&edge, ttl) {
                pipeline.parse_error("ban_failed");
                eprintln!("edgewise: banning {edge:?}: {error}");
            }
        }
    }
}

/// The periodic work: expiry, sweeping, draining, and the counters.
fn tick(
    pipeline: &mut Pipeline,
    captures: &mut [Capture],
    total: &mut ServiceGraph,
    now: u64,
) -> StatsRecord {
    pipeline.expire(now);
    total.merge_slice(&pipeline.drain(now));
    let mut stats = pipeline.stats(now);
    for capture in captures.iter_mut() {
        if let Ok(counters) = capture.counters() {
            stats.lost_events += counters.lost;
            stats.packets_dropped += counters.dropped;
        }
        let _ = capture.bans().sweep();
        // Every capture holds the same bans.
        stats.bans_held = stats
            .bans_held
            .max(capture.bans().bans().map_or(0, |bans| bans.len()));
    }
    stats
}
