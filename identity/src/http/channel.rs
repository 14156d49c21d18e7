//! [`Channel`]: one versioned delta stream (identities, or policies) fanned
//! out to every follower.
//!
//! Deltas are kept once, in a bounded history of encoded server-sent
//! events shared by every follower; a follower is a position in it, not a
//! queue. Each follower's stream is polled only when its connection can
//! take more (see `edgewise-http-server`), and then sends every delta it
//! has not sent yet in one chunk (at most [`MAX_BATCH_BYTES`]): a slow
//! follower costs the server its position and the socket's buffer, never
//! a copy of what it has not read. A follower more than
//! [`ChannelConfig::max_lag`] deltas behind, or whose next delta left the
//! history, is cut: its stream ends, and the client reconnects, is told
//! the stream cannot resume and loads a baseline. The `hello` event, the
//! `delta` events and the `: keepalive` comment are those of the module
//! docs of [`super::server`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use edgewise_http_server::Chunks;

use super::sse::{write_event, write_heartbeat};
use crate::Version;

/// The most bytes of deltas sent to a follower in one chunk.
pub(crate) const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Settings of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChannelConfig {
    pub(crate) history: usize,
    pub(crate) max_lag: usize,
    pub(crate) heartbeat: Duration,
}

struct History {
    version: Version,
    /// The last deltas as encoded events, oldest first.
    events: VecDeque<Bytes>,
    /// How many deltas were ever published (the next one's position).
    published: u64,
    closed: bool,
}

/// Counters of a channel.
#[derive(Debug, Default)]
pub(crate) struct ChannelStats {
    pub(crate) followers: AtomicUsize,
    pub(crate) deltas_sent: AtomicU64,
    pub(crate) resumed: AtomicU64,
    pub(crate) cut: AtomicU64,
    pub(crate) baselines: AtomicU64,
    /// The largest lag (deltas) a follower had when it was sent a batch,
    /// since the last read of it.
    pub(crate) max_lag: AtomicU64,
}

/// One stream (see the module docs).
pub(crate) struct Channel {
    config: ChannelConfig,
    history: Mutex<History>,
    published: tokio::sync::watch::Sender<u64>,
    pub(crate) stats: ChannelStats,
}

/// How a follower's stream starts.
enum Start {
    Resume(u64),
    Fresh(u64),
}

impl Channel {
    pub(crate) fn new(config: ChannelConfig, version: Version) -> Self {
        Self {
            config,
            history: Mutex::new(History {
                version,
                events: VecDeque::new(),
                published: 0,
                closed: false,
            }),
            published: tokio::sync::watch::Sender::new(0),
            stats: ChannelStats::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, History> {
        // Every change under the lock is a few assignments: a panic
        // elsewhere leaves it whole.
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn version(&self) -> Version {
        self.lock().version
    }

    /// Publishes the delta at `version`, `line` its JSON.
    pub(crate) fn publish(&self, version: Version, line: &str) {
        let mut event = Vec::with_capacity(line.len() + 24);
        let _ = write_event(&mut event, "delta", line);
        let mut history = self.lock();
        history.version = version;
        history.events.push_back(Bytes::from(event));
        while history.events.len() > self.config.history {
            history.events.pop_front();
        }
        history.published += 1;
        let published = history.published;
        drop(history);
        self.published.send_replace(published);
    }

    /// Ends every stream.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.published.send_modify(|_| {});
    }

    /// Where a follower holding `held` starts, and its hello event.
    fn start(&self, held: Option<Version>) -> (Bytes, Start) {
        let history = self.lock();
        let oldest = history.published - history.events.len() as u64;
        let current = history.version;
        // Resume when every delta after the held version is still kept.
        let resume = held
            .filter(|held| held.epoch == current.epoch && held.seq <= current.seq)
            .and_then(|held| {
                let behind = current.seq - held.seq;
                (behind <= history.events.len() as u64).then(|| history.published - behind)
            })
            .filter(|from| *from >= oldest);
        let hello = format!(
            r#"{{"epoch":{},"seq":{},"resumed":{}}}"#,
            current.epoch,
            current.seq,
            resume.is_some()
        );
        let mut event = Vec::new();
        let _ = write_event(&mut event, "hello", &hello);
        let start = match resume {
            Some(from) => Start::Resume(from),
            None => Start::Fresh(history.published),
        };
        (Bytes::from(event), start)
    }

    /// The next batch for a follower at `next`.
    fn batch(&self, next: &mut u64) -> Batch {
        let history = self.lock();
        if history.closed {
            return Batch::End;
        }
        let oldest = history.published - history.events.len() as u64;
        let lag = history.published - *next;
        if *next < oldest || lag > self.config.max_lag as u64 {
            return Batch::Behind;
        }
        if lag == 0 {
            return Batch::Nothing;
        }
        let skip = usize::try_from(*next - oldest).unwrap_or(usize::MAX);
        let mut chunk = BytesMut::new();
        let mut sent = 0u64;
        for event in history.events.iter().skip(skip) {
            if sent > 0 && chunk.len() + event.len() > MAX_BATCH_BYTES {
                break;
            }
            chunk.extend_from_slice(event);
            sent += 1;
        }
        drop(history);
        *next += sent;
        self.stats.deltas_sent.fetch_add(sent, Ordering::Relaxed);
        self.stats.max_lag.fetch_max(lag, Ordering::Relaxed);
        Batch::Send(chunk.freeze())
    }

    /// A follower's stream from the version it holds (see the module docs).
    pub(crate) fn follow(self: &Arc<Self>, held: Option<Version>) -> Chunks {
        let (hello, start) = self.start(held);
        let next = match start {
            Start::Resume(from) => {
                self.stats.resumed.fetch_add(1, Ordering::Relaxed);
                from
            }
            Start::Fresh(from) => from,
        };
        self.stats.followers.fetch_add(1, Ordering::Relaxed);
        let follower = Follower {
            channel: Arc::clone(self),
            changed: self.published.subscribe(),
            next,
            hello: Some(hello),
        };
        Box::pin(futures::stream::unfold(follower, Follower::next_chunk))
    }
}

enum Batch {
    Send(Bytes),
    Nothing,
    Behind,
    End,
}

/// One follower's place in the channel; counted while it lives.
struct Follower {
    channel: Arc<Channel>,
    changed: tokio::sync::watch::Receiver<u64>,
    next: u64,
    hello: Option<Bytes>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.channel.stats.followers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Follower {
    async fn next_chunk(mut self) -> Option<(Bytes, Self)> {
        if let Some(hello) = self.hello.take() {
            return Some((hello, self));
        }
        let heartbeat = self.channel.config.heartbeat;
        loop {
            self.changed.borrow_and_update();
            match self.channel.batch(&mut self.next) {
                Batch::Send(chunk) => return Some((chunk, self)),
                Batch::End => return None,
                Batch::Behind => {
                    self.channel.stats.cut.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                Batch::Nothing => {}
            }
            tokio::select! {
                changed = self.changed.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = tokio::time::sleep(heartbeat) => {
                    let mut beat = Vec::new();
                    let _ = write_heartbeat(&mut beat);
                    return Some((Bytes::from(beat), self));
                }
            }
        }
    }
}
