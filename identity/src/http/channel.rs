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
//!
//! Each delta is encoded once, when it is published, both as text and as
//! one gzip member; a follower that accepts gzip gets the members (a
//! stream of concatenated members is one gzip stream, RFC 1952), so the
//! server compresses a delta once however many followers it has and sends
//! each of them a fraction of the bytes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use edgewise_http_server::Chunks;

use super::sse::{write_event, write_heartbeat};
use crate::Version;

/// The most bytes of deltas sent to a follower in one chunk (what the
/// server holds for a follower beyond its socket is about this much).
pub(crate) const MAX_BATCH_BYTES: usize = 64 * 1024;

/// `bytes` as one gzip member.
pub(crate) fn gzip(bytes: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 32),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// One delta, as text and as a gzip member.
struct Encoded {
    text: Bytes,
    gzip: Bytes,
}

impl Encoded {
    fn get(&self, gzip: bool) -> &Bytes {
        if gzip { &self.gzip } else { &self.text }
    }
}

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
    events: VecDeque<Encoded>,
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
        // Encoded before the lock: followers read the history meanwhile.
        let encoded = Encoded {
            gzip: gzip(&event),
            text: Bytes::from(event),
        };
        let mut history = self.lock();
        history.version = version;
        history.events.push_back(encoded);
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
    fn start(&self, held: Option<Version>, gzip: bool) -> (Bytes, Start) {
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
            r#"{{"schema":"{}","epoch":{},"seq":{},"resumed":{}}}"#,
            super::HELLO_SCHEMA,
            current.epoch,
            current.seq,
            resume.is_some()
        );
        let mut event = Vec::new();
        let _ = write_event(&mut event, "hello", &hello);
        let event = if gzip {
            self::gzip(&event)
        } else {
            Bytes::from(event)
        };
        let start = match resume {
            Some(from) => Start::Resume(from),
            None => Start::Fresh(history.published),
        };
        (event, start)
    }

    /// The next batch for a follower at `next`.
    fn batch(&self, next: &mut u64, gzip: bool) -> Batch {
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
            let event = event.get(gzip);
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

    /// A follower's stream from the version it holds, gzip members when
    /// `gzip` (see the module docs).
    pub(crate) fn follow(self: &Arc<Self>, held: Option<Version>, gzip: bool) -> Chunks {
        let (hello, start) = self.start(held, gzip);
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
            gzip,
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
    gzip: bool,
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
            match self.channel.batch(&mut self.next, self.gzip) {
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
                    let beat = if self.gzip { gzip(&beat) } else { Bytes::from(beat) };
                    return Some((beat, self));
                }
            }
        }
    }
}
