//! The agent's side of the trail: every drained slice is numbered,
//! encoded and written to the [`Spool`] first, then a thread of its own
//! sends the spool's uploads to the collector, oldest first, one at a
//! time, so the daemon's loop never waits on the network.
//!
//! What an answer means:
//! - 2xx: merged, or merged before (a resend), or older than the
//!   collector keeps: the upload leaves the spool, counted by the outcome
//!   the collector names;
//! - 400, 413, 415, 422: the collector will never take it: it leaves the
//!   spool, counted as refused, and the collector's reason is logged;
//! - no answer, 401, 403, 408, 429, 5xx: it stays, and sending pauses
//!   (1 s, doubling up to 30 s); a token rotated on either side, or the
//!   collector coming back, lets it through on the next try.
//!
//! An upload's sequence number is the spool's own (growing across
//! restarts, so two live slices never share one), or for a replay the
//! slice's index in the capture ([`Exporter::export_numbered`]).
//!
//! [`Exporter::finish`] hands the last slice over and keeps sending for a
//! grace period; what is still in the spool then is sent by the next
//! start with the same spool directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use edgewise_edge_set::GraphSlice;
use edgewise_identity::http::{FollowConfig, Transport};

use crate::TrailError;
use crate::spool::Spool;
use crate::upload::SliceUpload;

/// Where and how an agent exports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExportConfig {
    /// The collector's base URL (`https://collector:9480`); uploads go to
    /// `URL/slices`.
    pub url: String,
    /// The CA bundle that signed the collector's certificate (needed for
    /// `https://`).
    pub ca: Option<PathBuf>,
    /// A client certificate and key, for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// A file whose first line is the bearer token (read at each send).
    pub token_file: Option<PathBuf>,
    /// How often the agent drains a slice (told to the collector).
    pub interval: Duration,
    /// The spool directory.
    pub spool_dir: PathBuf,
    /// The spool's bound in bytes.
    pub spool_bytes: u64,
}

impl ExportConfig {
    /// Exports to `url` through a spool in `spool_dir`: plain HTTP or the
    /// system's roots, no token, a slice every 30 s, a 256 MiB spool.
    pub fn new(url: impl Into<String>, spool_dir: impl Into<PathBuf>) -> Self {
        Self {
            url: url.into(),
            ca: None,
            client_cert: None,
            token_file: None,
            interval: Duration::from_secs(30),
            spool_dir: spool_dir.into(),
            spool_bytes: 256 << 20,
        }
    }
}

/// The exporter's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Uploads the collector merged.
    pub merged: u64,
    /// Uploads it had merged before (resends).
    pub duplicate: u64,
    /// Uploads older than it keeps.
    pub expired: u64,
    /// Uploads it refused for good.
    pub refused: u64,
    /// Uploads removed from a full spool unsent.
    pub dropped: u64,
    /// Slices never spooled (the spool failed, or the loop handed over
    /// faster than the thread could write).
    pub unspooled: u64,
    /// Sends that failed (to be tried again).
    pub failures: u64,
    /// Bytes sent (gzipped uploads, resends included).
    pub bytes_sent: u64,
    /// Edges in the uploads sent.
    pub edges_sent: u64,
    /// Uploads waiting in the spool.
    pub spooled: u64,
    /// Their bytes.
    pub spooled_bytes: u64,
    /// The last failure, if the last send failed.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Counters {
    merged: AtomicU64,
    duplicate: AtomicU64,
    expired: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
    unspooled: AtomicU64,
    failures: AtomicU64,
    bytes_sent: AtomicU64,
    edges_sent: AtomicU64,
    spooled: AtomicU64,
    spooled_bytes: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    fn snapshot(&self) -> ExportStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ExportStats {
            merged: load(&self.merged),
            duplicate: load(&self.duplicate),
            expired: load(&self.expired),
            refused: load(&self.refused),
            dropped: load(&self.dropped),
            unspooled: load(&self.unspooled),
            failures: load(&self.failures),
            bytes_sent: load(&self.bytes_sent),
            edges_sent: load(&self.edges_sent),
            spooled: load(&self.spooled),
            spooled_bytes: load(&self.spooled_bytes),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }
}

/// Slices the loop may hand over before the thread has spooled them.
const QUEUE: usize = 64;

/// The longest pause between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The exporter (see the module docs).
#[derive(Debug)]
pub struct Exporter {
    sender: Option<SyncSender<(GraphSlice, Option<u64>)>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    deadline: Arc<Mutex<Option<Instant>>>,
}

impl Exporter {
    /// Opens the spool and starts sending what it holds.
    ///
    /// # Errors
    /// [`TrailError::Spool`] when the spool cannot be opened, or
    /// [`TrailError::Send`] when the URL, CA, certificate or token file
    /// cannot be used.
    pub fn start(config: &ExportConfig) -> Result<Self, TrailError> {
        let spool = Spool::open(&config.spool_dir, config.spool_bytes)?;
        let url = format!("{}/slices", config.url.trim_end_matches('/'));
        let mut follow = FollowConfig::new(url.clone());
        follow.ca.clone_from(&config.ca);
        follow.client_cert.clone_from(&config.client_cert);
        follow.token_file.clone_from(&config.token_file);
        let transport = Transport::new(&follow).map_err(|e| TrailError::Send {
            url: url.clone(),
            problem: e.to_string(),
        })?;
        let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let deadline = Arc::new(Mutex::new(None));
        let mut sending = Sending {
            spool,
            transport,
            url,
            interval_ms: u64::try_from(config.interval.as_millis()).unwrap_or(u64::MAX),
            counters: Arc::clone(&counters),
            deadline: Arc::clone(&deadline),
            backoff: Duration::from_secs(1),
            next_try: Instant::now(),
        };
        sending.publish();
        let thread = std::thread::Builder::new()
            .name("edgewise-export".into())
            .spawn(move || sending.run(&receiver))
            .map_err(|source| TrailError::Spool {
                path: config.spool_dir.clone(),
                source,
            })?;
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
            counters,
            deadline,
        })
    }

    /// Hands a drained slice over (never blocks: when the thread is that
    /// far behind, the slice is dropped and counted).
    pub fn export(&self, slice: GraphSlice) {
        if let Some(sender) = &self.sender {
            match sender.try_send((slice, None)) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.counters.unspooled.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Hands a slice over with its own sequence number, waiting while the
    /// thread is behind: a replay, which drains faster than any network
    /// and numbers its slices from 0, so that loading the same capture
    /// again merges nothing twice.
    pub fn export_numbered(&self, slice: GraphSlice, seq: u64) {
        let handed = self
            .sender
            .as_ref()
            .is_some_and(|s| s.send((slice, Some(seq))).is_ok());
        if !handed {
            self.counters.unspooled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters now.
    pub fn stats(&self) -> ExportStats {
        self.counters.snapshot()
    }

    /// Spools what was handed over, keeps sending for at most `grace`,
    /// and stops; returns the counters (`spooled` says what waits for the
    /// next start).
    pub fn finish(mut self, grace: Duration) -> ExportStats {
        if let Ok(mut deadline) = self.deadline.lock() {
            *deadline = Some(Instant::now() + grace);
        }
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.counters.snapshot()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Ok(mut deadline) = self.deadline.lock() {
            deadline.get_or_insert_with(Instant::now);
        }
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The sending thread's state.
struct Sending {
    spool: Spool,
    transport: Transport,
    url: String,
    interval_ms: u64,
    counters: Arc<Counters>,
    deadline: Arc<Mutex<Option<Instant>>>,
    backoff: Duration,
    next_try: Instant,
}

/// What became of one send.
enum Sent {
    /// Taken (or refused for good): next.
    Done,
    /// Try again later.
    Later,
}

impl Sending {
    fn run(&mut self, receiver: &Receiver<(GraphSlice, Option<u64>)>) {
        let mut open = true;
        loop {
            let wait = if self.spool.is_empty() {
                Duration::from_millis(500)
            } else {
                self.next_try.saturating_duration_since(Instant::now())
            };
            if open {
                match receiver.recv_timeout(wait) {
                    Ok((slice, seq)) => {
                        self.spool_slice(slice, seq);
                        while let Ok((slice, seq)) = receiver.try_recv() {
                            self.spool_slice(slice, seq);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
            } else {
                std::thread::sleep(wait.min(Duration::from_millis(100)));
            }
            self.send_ready();
            if !open {
                let deadline = self.deadline.lock().ok().and_then(|d| *d);
                if self.spool.is_empty() || deadline.is_none_or(|d| Instant::now() >= d) {
                    return;
                }
            }
        }
    }

    /// Spools a slice as the upload numbered `seq` (default: the spool's
    /// own number, which keeps growing across restarts).
    fn spool_slice(&mut self, slice: GraphSlice, seq: Option<u64>) {
        let stored = self.spool.take_seq().and_then(|number| {
            let upload = SliceUpload::new(seq.unwrap_or(number), self.interval_ms, slice);
            self.spool.push(number, &upload.encode()?)
        });
        if let Err(error) = stored {
            self.counters.unspooled.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%error, "a slice could not be spooled: dropped");
        }
        self.publish();
    }

    /// Sends the spool in order while the collector takes it.
    fn send_ready(&mut self) {
        while Instant::now() >= self.next_try {
            let Some(oldest) = self.spool.oldest().cloned() else {
                return;
            };
            let sent = match self.spool.read(&oldest) {
                Ok(body) => self.send(&body),
                Err(error) => {
                    tracing::error!(%error, "a spooled slice cannot be read: dropped");
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                    Sent::Done
                }
            };
            match sent {
                Sent::Done => {
                    if let Err(error) = self.spool.remove_oldest() {
                        tracing::error!(%error, "a sent slice stays in the spool");
                        self.pause();
                    }
                    self.backoff = Duration::from_secs(1);
                }
                Sent::Later => self.pause(),
            }
            self.publish();
        }
    }

    fn pause(&mut self) {
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn send(&mut self, body: &[u8]) -> Sent {
        let answer = self
            .transport
            .post(&self.url, "application/json", Some("gzip"), body);
        let counters = &self.counters;
        let fail = |problem: String| {
            counters.failures.fetch_add(1, Ordering::Relaxed);
            let mut last = counters
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.as_deref() != Some(problem.as_str()) {
                tracing::warn!(url = %self.url, %problem, "the collector did not take a slice; it stays in the spool");
            }
            *last = Some(problem);
            Sent::Later
        };
        match answer {
            Err(error) => fail(error.to_string()),
            Ok((status, text)) if (200..300).contains(&status) => {
                counters
                    .bytes_sent
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                let counter = match outcome_of(&text) {
                    "duplicate" => &counters.duplicate,
                    "expired" => {
                        tracing::warn!(
                            "the collector keeps nothing this old: a slice was not stored"
                        );
                        &counters.expired
                    }
                    _ => &counters.merged,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                counters
                    .edges_sent
                    .fetch_add(edges_of(&text), Ordering::Relaxed);
                if let Ok(mut last) = counters.last_error.lock() {
                    *last = None;
                }
                Sent::Done
            }
            Ok((status @ (400 | 413 | 415 | 422), text)) => {
                tracing::error!(status, reason = %text.trim(), "the collector refused a slice for good: dropped");
                counters.refused.fetch_add(1, Ordering::Relaxed);
                Sent::Done
            }
            Ok((status, text)) => fail(format!("{status}: {}", text.trim())),
        }
    }

    fn publish(&self) {
        self.counters
            .spooled
            .store(self.spool.len() as u64, Ordering::Relaxed);
        self.counters
            .spooled_bytes
            .store(self.spool.bytes(), Ordering::Relaxed);
        self.counters
            .dropped
            .store(self.spool.dropped(), Ordering::Relaxed);
    }
}

/// The `outcome` of a collector's answer (`{"outcome": "merged", ...}`).
fn outcome_of(text: &str) -> &'static str {
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    match value.get("outcome").and_then(serde_json::Value::as_str) {
        Some("duplicate") => "duplicate",
        Some("expired") => "expired",
        _ => "merged",
    }
}

/// The `edges` of a collector's answer.
fn edges_of(text: &str) -> u64 {
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    value
        .get("edges")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}
