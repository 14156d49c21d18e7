//! The daemon's side of the trail: drained slices handed to
//! `edgewise-trail`'s exporter every `export_interval_seconds`.
//!
//! The live loop drains at every stats tick (for `/graph`); the slices
//! of the ticks in between are absorbed into one
//! ([`GraphSlice::absorb`]), so the collector gets one slice per export
//! interval whatever the tick. A replay drains when an interval of
//! capture time has passed and waits for the exporter to take each slice
//! (it drains faster than any network); its slices are numbered from 0,
//! so loading the same capture again merges nothing twice.

use std::time::Duration;

use edgewise_time::UnixNanos;

use edgewise_edge_set::GraphSlice;
use edgewise_trail::export::{ExportStats, Exporter};
use edgewise_trail::upload::is_agent_name;

use super::DaemonError;
use super::config::{ConfigError, Settings};

/// Slices on their way to the collector.
#[derive(Debug)]
pub struct Export {
    exporter: Exporter,
    interval_ns: u64,
    next_ns: Option<u64>,
    pending: Option<GraphSlice>,
    /// A replay's slices so far (its sequence numbers).
    replayed: Option<u64>,
    spool_dir: std::path::PathBuf,
}

impl Export {
    /// Starts exporting when `export` is set, as the agent `node_name`
    /// (default: the host name).
    ///
    /// # Errors
    /// [`DaemonError::Config`] for an agent name the trail cannot take,
    /// [`DaemonError::Export`] when the spool or the collector's TLS
    /// files cannot be used.
    pub fn start(settings: &Settings, replay: bool) -> Result<Option<Self>, DaemonError> {
        let agent = &super::node_name(settings);
        let Some(config) = settings.export_config(agent, replay) else {
            return Ok(None);
        };
        if !is_agent_name(agent) {
            return Err(ConfigError::Invalid {
                setting: "node_name",
                problem: format!(
                    "{agent:?} cannot name an agent in the trail: 1 to 253 of a-z, 0-9, '-', '.', '_'"
                ),
            }
            .into());
        }
        let exporter = Exporter::start(&config).map_err(DaemonError::Export)?;
        tracing::info!(url = %config.url, spool = %config.spool_dir.display(), "exporting slices");
        Ok(Some(Self {
            exporter,
            interval_ns: u64::try_from(config.interval.as_nanos()).unwrap_or(u64::MAX),
            next_ns: None,
            pending: None,
            replayed: replay.then_some(0),
            spool_dir: config.spool_dir,
        }))
    }

    /// Whether a slice is due at `now` (a replay drains only then).
    pub fn due(&self, now: UnixNanos) -> bool {
        let now_ns = now.as_nanos();
        self.next_ns.is_some_and(|next| now_ns >= next)
    }

    /// Takes a drained slice; sends what was gathered when its interval
    /// has passed, or at once when `last`.
    pub fn offer(&mut self, slice: GraphSlice, now: UnixNanos, last: bool) {
        let now_ns = now.as_nanos();
        let start = slice.window.start_ns;
        match &mut self.pending {
            Some(pending) => pending.absorb(slice),
            None => self.pending = Some(slice),
        }
        let next = *self
            .next_ns
            .get_or_insert_with(|| start.saturating_add(self.interval_ns));
        if last || now_ns >= next {
            self.next_ns = Some(now_ns.saturating_add(self.interval_ns));
            if let Some(pending) = self.pending.take() {
                match &mut self.replayed {
                    Some(seq) => {
                        self.exporter.export_numbered(pending, *seq);
                        *seq += 1;
                    }
                    None => self.exporter.export(pending),
                }
            }
        }
    }

    /// Sets when the first slice is due (a replay, at its first packet).
    pub fn begin(&mut self, now: UnixNanos) {
        let now_ns = now.as_nanos();
        self.next_ns
            .get_or_insert(now_ns.saturating_add(self.interval_ns));
    }

    /// The counters now, named as `stats` records and `/metrics` name
    /// them.
    pub fn counters(&self) -> std::collections::BTreeMap<&'static str, u64> {
        let stats = self.exporter.stats();
        [
            ("merged", stats.merged),
            ("duplicate", stats.duplicate),
            ("expired", stats.expired),
            ("refused", stats.refused),
            ("dropped", stats.dropped),
            ("unspooled", stats.unspooled),
            ("failures", stats.failures),
            ("bytes_sent", stats.bytes_sent),
            ("spooled", stats.spooled),
            ("spooled_bytes", stats.spooled_bytes),
        ]
        .into_iter()
        .collect()
    }

    /// Keeps sending for at most `grace`, then stops.
    ///
    /// # Errors
    /// [`DaemonError::Undelivered`] when slices still wait in the spool.
    pub fn finish(self, grace: Duration) -> Result<ExportStats, DaemonError> {
        let stats = self.exporter.finish(grace);
        if stats.spooled > 0 {
            return Err(DaemonError::Undelivered {
                spooled: stats.spooled,
                dir: self.spool_dir,
                problem: stats.last_error.clone().unwrap_or_default(),
            });
        }
        Ok(stats)
    }
}
