//! The active prober (`edgewise run --probe`): the I/O side of the
//! pipeline's [`Output::Probe`](edgewise_pipeline::Output::Probe).
//!
//! One worker thread runs one probe session at a time, in the order the
//! pipeline handed servers out (the pipeline decides which servers, how
//! often and at what rate; see `edgewise_pipeline::probing`). A session is
//! nmap's, passively bounded: the database's probe plan for the port at
//! the configured intensity ([`Database::probe_plan`]: `NULL`, the probes
//! listing the port, the others by rarity), one TCP connection per probe,
//! the probe's payload sent, the answer read until the probe's
//! `totalwaitms` (at most [`MAX_WAIT`]), the connection's end or
//! [`MAX_ANSWER`] bytes, and matched as it arrives. The session ends at
//! the first hard match, when the server refuses a connection, or after
//! [`SESSION_BUDGET`]; a softmatch is kept in case nothing harder comes.
//! Results come back through [`ProbeWorker::results`]; at most
//! [`MAX_PENDING`] sessions wait.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use edgewise_pipeline::{Pipeline, ProbeFinding};
use edgewise_service_probes::{Database, Identification};
use edgewise_time::UnixNanos;

use super::config::Settings;

/// How long a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest wait for one probe's answer (nmap's NULL probe waits 6 s;
/// a daemon need not).
pub const MAX_WAIT: Duration = Duration::from_secs(3);

/// The most bytes of an answer read.
pub const MAX_ANSWER: usize = 16 * 1024;

/// The longest session.
pub const SESSION_BUDGET: Duration = Duration::from_secs(30);

/// The most sessions waiting for the worker; beyond, a server handed out
/// is passed over (and, the pipeline having counted it as started, tried
/// again a day later).
pub const MAX_PENDING: usize = 256;

/// The worker thread and its two channels.
pub struct ProbeWorker {
    requests: Option<SyncSender<SocketAddr>>,
    results: Receiver<(SocketAddr, Option<ProbeFinding>)>,
    thread: Option<JoinHandle<()>>,
}

impl ProbeWorker {
    /// Starts the worker.
    pub fn start(database: Arc<Database>, intensity: u8) -> Self {
        let (requests, queue) = mpsc::sync_channel::<SocketAddr>(MAX_PENDING);
        let (answers, results) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("edgewise-prober".to_owned())
            .spawn(move || {
                for server in queue {
                    let found = session(&database, server, intensity).map(finding);
                    tracing::debug!(%server, ?found, "probe session ended");
                    if answers.send((server, found)).is_err() {
                        break;
                    }
                }
            })
            .ok();
        ProbeWorker {
            requests: Some(requests),
            results,
            thread,
        }
    }

    /// The worker `settings` ask for (`probe`, at `probe_intensity`, 7 by
    /// default), with the pipeline's service database.
    pub fn for_settings(settings: &Settings, pipeline: &Pipeline) -> Option<Self> {
        if !settings.probe {
            return None;
        }
        let database = pipeline.service_probes()?;
        Some(Self::start(database, settings.probe_intensity.unwrap_or(7)))
    }

    /// Hands the sessions ended since the last call to the pipeline.
    pub fn report(&self, pipeline: &mut Pipeline, now: UnixNanos) {
        for (server, found) in self.results() {
            pipeline.probe_result(server, found, now);
        }
    }

    /// Queues a session with `server`, unless [`MAX_PENDING`] wait.
    pub fn probe(&self, server: SocketAddr) {
        if let Some(requests) = &self.requests
            && let Err(TrySendError::Full(_)) = requests.try_send(server)
        {
            tracing::warn!(%server, "the prober is behind: probe passed over");
        }
    }

    /// The sessions ended since the last call.
    pub fn results(&self) -> Vec<(SocketAddr, Option<ProbeFinding>)> {
        self.results.try_iter().collect()
    }
}

impl Drop for ProbeWorker {
    fn drop(&mut self) {
        // The worker ends after its current session; it is not waited
        // for (a stopping daemon must not hang on a slow server).
        self.requests = None;
        drop(self.thread.take());
    }
}

fn finding(found: Identification) -> ProbeFinding {
    ProbeFinding {
        service: found.service,
        product: found.version.product,
        version: found.version.version,
        soft: found.soft,
    }
}

/// One session with `server` (see the module docs): the hard match, else
/// the first softmatch, else `None`.
pub fn session(database: &Database, server: SocketAddr, intensity: u8) -> Option<Identification> {
    let start = Instant::now();
    let mut soft = None;
    for probe in database.probe_plan(server.port(), intensity) {
        if start.elapsed() >= SESSION_BUDGET {
            break;
        }
        let Ok(mut stream) = TcpStream::connect_timeout(&server, CONNECT_TIMEOUT) else {
            // Refused or unreachable: no later probe fares better.
            break;
        };
        let payload = &probe.definition.payload;
        if !payload.is_empty() && stream.write_all(payload).is_err() {
            continue;
        }
        let wait = probe
            .definition
            .total_wait_ms
            .map_or(MAX_WAIT, |ms| Duration::from_millis(u64::from(ms)))
            .min(MAX_WAIT);
        let found = read_and_match(&mut stream, wait, |answer| {
            database.identify(probe.name(), answer)
        });
        match found {
            Some(found) if !found.soft => return Some(found),
            Some(found) => {
                soft.get_or_insert(found);
            }
            None => {}
        }
    }
    soft
}

/// Reads an answer for at most `wait`, matching it each time more
/// arrives; the last match (a hard one ends it early).
fn read_and_match(
    stream: &mut TcpStream,
    wait: Duration,
    identify: impl Fn(&[u8]) -> Option<Identification>,
) -> Option<Identification> {
    let deadline = Instant::now() + wait;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let mut found = None;
    while answer.len() < MAX_ANSWER {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let take = n.min(MAX_ANSWER - answer.len());
                answer.extend_from_slice(&buffer[..take]);
                found = identify(&answer);
                if found.as_ref().is_some_and(|f| !f.soft) {
                    break;
                }
            }
        }
    }
    found
}
