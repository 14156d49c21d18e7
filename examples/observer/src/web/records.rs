//! `GET /records`: the daemon's records as server-sent events, from a
//! bounded ring of the recent ones and then as they come.
//!
//! - The ring holds the last [`RING_RECORDS`] records (all but `stats`,
//!   which `/metrics` serves), each numbered; the oldest goes first.
//! - An event: `id: INSTANCE-SEQ`, `event: record`, `data: JSON` (the
//!   record exactly as the daemon's output line). `INSTANCE` changes with
//!   every start of the daemon.
//! - A follower asks with a [`RecordQuery`]: the held records it matches
//!   (all of them, the last N, or those after its `Last-Event-ID`; none
//!   when it follows without `last` or `since_ns`) go first; with
//!   `follow=true` an `event: following` with the id of the newest record
//!   held comes next (so a follower can resume from there even before its
//!   first record) and new records follow, else the stream ends.
//! - A follower that comes back with the `Last-Event-ID` of this instance
//!   gets what it missed; when the ring no longer holds all of it, an
//!   `event: lost` with `{"records": N}` says how many went first. With
//!   an id of another instance (the daemon restarted), `event: restarted`
//!   goes first and then every held record it matches.
//! - A follower that does not read as fast as records come is cut once
//!   [`FOLLOWER_BACKLOG`] events wait for it; coming back with its last id
//!   resumes it from the ring. At most [`MAX_FOLLOWERS`] follow at once
//!   (503 past that). A comment line every [`KEEPALIVE`] lets a follower
//!   tell a quiet daemon from a dead connection.
//! - Memory: an event is made once and shared (not copied) by the ring and
//!   every follower's queue; a queue holds at most [`FOLLOWER_BACKLOG`]
//!   events, and a cut follower's queue goes with its connection (at the
//!   listener's write timeout when the client does not read). So the
//!   events held are the ring's and those the daemon wrote within that
//!   timeout, however many follow, plus a queue slot per waiting event
//!   and follower.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgewise_http_server::{Reply, StatusCode};
use edgewise_pipeline::Record;
use tokio::sync::mpsc;

use super::filter::{Names, RecordFacts, RecordQuery};

/// Records held for `last` and for followers that come back.
pub const RING_RECORDS: usize = 4096;
/// Events that may wait for one follower before it is cut.
pub const FOLLOWER_BACKLOG: usize = RING_RECORDS + 1024;
/// Followers at once.
pub const MAX_FOLLOWERS: usize = 64;
/// How often a quiet stream gets a comment line.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// `text/event-stream`.
pub const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";

struct Held {
    seq: u64,
    facts: RecordFacts,
    event: Bytes,
}

struct Follower {
    query: RecordQuery,
    sender: mpsc::Sender<Bytes>,
}

struct Ring {
    held: VecDeque<Held>,
    next_seq: u64,
    followers: Vec<Follower>,
    last_keepalive: Instant,
}

/// The ring and its followers (see the module docs).
pub struct RecordRing {
    instance: String,
    ring: Mutex<Ring>,
}

impl Default for RecordRing {
    fn default() -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self {
            instance: format!("{:x}{:x}", started & 0xffff_ffff_ffff, std::process::id()),
            ring: Mutex::new(Ring {
                held: VecDeque::with_capacity(RING_RECORDS),
                next_seq: 1,
                followers: Vec::new(),
                last_keepalive: Instant::now(),
            }),
        }
    }
}

/// A follower's `Last-Event-ID`: its instance and sequence number.
fn parse_id(id: &str) -> Option<(&str, u64)> {
    let (instance, seq) = id.rsplit_once('-')?;
    Some((instance, seq.parse().ok()?))
}

impl RecordRing {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds `record`, whose JSON is `line`, and hands it to the followers
    /// that want it; `names` name the addresses of records that carry only
    /// those (see [`RecordFacts::of`]). A `stats` record is not held.
    pub fn push(&self, record: &Record, line: &str, names: &dyn Names) {
        let Some(facts) = RecordFacts::of(record, names) else {
            return;
        };
        let mut ring = self.lock();
        let seq = ring.next_seq;
        ring.next_seq += 1;
        let event = Bytes::from(format!(
            "id: {}-{seq}\nevent: record\ndata: {line}\n\n",
            self.instance
        ));
        ring.followers.retain(|follower| {
            !follower.query.filter.matches(&facts)
                || follower.sender.try_send(event.clone()).is_ok()
        });
        if ring.held.len() == RING_RECORDS {
            ring.held.pop_front();
        }
        ring.held.push_back(Held { seq, facts, event });
    }

    /// Sends a comment line to every follower when [`KEEPALIVE`] has
    /// passed, and forgets the followers that are gone.
    pub fn keepalive(&self, now: Instant) {
        let mut ring = self.lock();
        if now.duration_since(ring.last_keepalive) < KEEPALIVE {
            return;
        }
        ring.last_keepalive = now;
        let comment = Bytes::from_static(b": keepalive\n\n");
        ring.followers
            .retain(|follower| follower.sender.try_send(comment.clone()).is_ok());
    }

    /// Followers now.
    pub fn followers(&self) -> usize {
        let mut ring = self.lock();
        ring.followers.retain(|f| !f.sender.is_closed());
        ring.followers.len()
    }

    /// The stream for `query`, resuming after `last_event_id` when given.
    pub fn subscribe(&self, query: RecordQuery, last_event_id: Option<&str>) -> Reply {
        let (sender, receiver) = mpsc::channel(FOLLOWER_BACKLOG);
        let mut ring = self.lock();
        ring.followers.retain(|f| !f.sender.is_closed());
        if query.follow && ring.followers.len() >= MAX_FOLLOWERS {
            return Reply::text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_FOLLOWERS} followers already\n"),
            );
        }
        let oldest = ring.held.front().map_or(ring.next_seq, |held| held.seq);
        let mut after = 0;
        match last_event_id.and_then(parse_id) {
            Some((instance, seq)) if instance == self.instance => {
                after = seq;
                let lost = oldest.saturating_sub(seq + 1);
                if lost > 0 {
                    let _ = sender.try_send(Bytes::from(format!(
                        "event: lost\ndata: {{\"records\": {lost}}}\n\n"
                    )));
                }
            }
            Some(_) => {
                let _ = sender.try_send(Bytes::from_static(b"event: restarted\ndata: {}\n\n"));
            }
            None => {}
        }
        let matching: Vec<&Held> = ring
            .held
            .iter()
            .filter(|held| held.seq > after && query.filter.matches(&held.facts))
            .collect();
        let skip = match (query.last, last_event_id) {
            (Some(last), None) => matching.len().saturating_sub(last),
            // Following from now, unless a time was asked for.
            (None, None) if query.follow && query.filter.since_ns.is_none() => matching.len(),
            _ => 0,
        };
        for held in &matching[skip..] {
            let _ = sender.try_send(held.event.clone());
        }
        if query.follow {
            // Where the follower stands, so that it can resume from here
            // even before its first record.
            let _ = sender.try_send(Bytes::from(format!(
                "id: {}-{}\nevent: following\ndata: {{}}\n\n",
                self.instance,
                ring.next_seq - 1
            )));
            ring.followers.push(Follower { query, sender });
        }
        Reply::channel(EVENT_STREAM, receiver)
    }
}

#[cfg(test)]
mod tests {
    use edgewise_pipeline::records::DropRecord;

    use crate::web::filter::NoNames;

    use super::*;

    fn drop_record(packets: u64) -> Record {
        Record::Drop(DropRecord::new(
            packets,
            edgewise_edge_set::EdgeKey {
                src: "10.0.0.1".parse().unwrap(),
                dst: "10.0.0.2".parse().unwrap(),
                port: if packets.is_multiple_of(2) { 22 } else { 80 },
                protocol: edgewise_ip_index::Protocol::Tcp,
            },
            None,
            packets,
        ))
    }

    fn query(text: &str) -> RecordQuery {
        RecordQuery::parse(text).unwrap()
    }

    /// The events a stream holds now (ids and kinds), without waiting.
    fn events(reply: Reply) -> Vec<String> {
        let Reply::Stream { mut chunks, .. } = reply else {
            panic!("not a stream: {reply:?}");
        };
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut seen = Vec::new();
        while let std::task::Poll::Ready(Some(chunk)) = chunks.as_mut().poll_next(&mut cx) {
            let text = String::from_utf8(chunk.to_vec()).unwrap();
            seen.push(text.lines().next().unwrap_or_default().to_owned());
        }
        seen
    }

    fn push(ring: &RecordRing, record: &Record) {
        ring.push(record, &serde_json::to_string(record).unwrap(), &NoNames);
    }

    fn held(ring: &RecordRing, count: u64) {
        for packets in 1..=count {
            push(ring, &drop_record(packets));
        }
    }

    #[test]
    fn last_n_of_the_matching_records_and_then_the_end() {
        let ring = RecordRing::default();
        held(&ring, 10);
        let seen = events(ring.subscribe(query("port=22&last=2"), None));
        let id = |seq| format!("id: {}-{seq}", ring.instance);
        assert_eq!(seen, [id(8), id(10)]);
        assert_eq!(events(ring.subscribe(query("port=80"), None)).len(), 5);
        assert_eq!(ring.followers(), 0, "without follow nobody stays");
    }

    #[test]
    fn a_follower_gets_new_records_and_comes_back_where_it_was() {
        let ring = RecordRing::default();
        held(&ring, 3);
        let stream = ring.subscribe(query("follow=true"), None);
        assert_eq!(ring.followers(), 1);
        push(&ring, &drop_record(4));
        let id = |seq| format!("id: {}-{seq}", ring.instance);
        assert_eq!(
            events(stream),
            [id(3), id(4)],
            "follow alone starts from now: where it stands (3), then record 4"
        );
        let back = ring.subscribe(query("follow=true"), Some(&format!("{}-2", ring.instance)));
        assert_eq!(
            events(back),
            [id(3), id(4), id(4)],
            "3 and 4, then where it stands"
        );
        let since = ring.subscribe(query("follow=true&since_ns=3"), None);
        assert_eq!(
            events(since),
            [id(3), id(4), id(4)],
            "a time asked for: since then"
        );
    }

    #[test]
    fn a_follower_told_what_it_lost_and_that_the_daemon_restarted() {
        let ring = RecordRing::default();
        held(&ring, RING_RECORDS as u64 + 5);
        let back = events(ring.subscribe(query("last=1"), Some(&format!("{}-1", ring.instance))));
        assert_eq!(back[0], "event: lost");
        assert_eq!(back.len(), 1 + RING_RECORDS);
        let restarted = events(ring.subscribe(query("port=22"), Some("elsewhere-7")));
        assert_eq!(restarted[0], "event: restarted");
        assert_eq!(restarted.len(), 1 + RING_RECORDS / 2);
    }

    #[test]
    fn a_follower_that_does_not_read_is_cut_and_followers_are_capped() {
        let ring = RecordRing::default();
        let slow = ring.subscribe(query("follow=true"), None);
        held(&ring, FOLLOWER_BACKLOG as u64 + 1);
        assert_eq!(ring.followers(), 0, "cut once its backlog is full");
        drop(slow);
        let streams: Vec<Reply> = (0..MAX_FOLLOWERS)
            .map(|_| ring.subscribe(query("follow=true"), None))
            .collect();
        let refused = ring.subscribe(query("follow=true"), None);
        assert!(
            matches!(refused, Reply::Full { status, .. } if status == StatusCode::SERVICE_UNAVAILABLE)
        );
        drop(streams);
        assert_eq!(ring.followers(), 0, "gone followers are forgotten");
    }
}
