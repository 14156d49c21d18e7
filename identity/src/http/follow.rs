//! The node agent's side: follow a producer's stream, fetching a baseline
//! whenever the client needs one, reconnecting with exponential backoff.
//!
//! One session: `GET {url}/deltas?epoch=E&seq=S` with the version held;
//! after the `hello` event, a baseline (`GET {url}/baseline`) is fetched
//! unless the server resumed the stream from that version; each `delta`
//! event goes to [`IdentityClient::apply`], and a delta the client keeps (a
//! gap, a new epoch) fetches a baseline too. When the connection drops or a
//! stream reaches [`FollowConfig::max_stream_age`], the next session starts
//! after the backoff (reset by any session that got its `hello`). Readers
//! keep the last good state throughout.
//!
//! Every read is bounded: an event line and an event's data at the delta
//! line limit (a stream that sends more, such as endless `data:` lines,
//! is dropped with the reason in [`FollowEvent::Disconnected`]), a baseline
//! at [`FollowConfig::max_baseline_bytes`]; a response must start within
//! 30 s, a baseline arrive within 2 min, and a stream is reopened after
//! [`FollowConfig::max_stream_age`].

use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::sse::EventReader;
use crate::{
    Baseline, ClientState, DeltaLimits, DeltaOutcome, IdentityClient, IdentityError, Resync,
    Version, read_delta,
};

/// Settings of [`follow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowConfig {
    /// The server, such as `http://10.0.0.5:9470` (no trailing slash).
    pub url: String,
    /// The first wait before reconnecting (default 100 ms).
    pub initial_backoff: Duration,
    /// The longest wait (default 10 s).
    pub max_backoff: Duration,
    /// A stream is reopened after this long, so that a connection that died
    /// silently is not waited on forever (default 5 min).
    pub max_stream_age: Duration,
    /// The largest baseline accepted (default 1 GiB).
    pub max_baseline_bytes: u64,
    /// Bounds on each delta.
    pub limits: DeltaLimits,
}

impl FollowConfig {
    /// Defaults for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_stream_age: Duration::from_mins(5),
            max_baseline_bytes: 1 << 30,
            limits: DeltaLimits::default(),
        }
    }
}

/// What happened, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent {
    /// A stream opened; the server is at `server`, and resumed from the
    /// version held or not.
    Connected {
        /// The server's version.
        server: Version,
        /// Whether it replays from the version held.
        resumed: bool,
    },
    /// A baseline was loaded.
    BaselineLoaded(Version),
    /// A delta applied.
    Applied(Version),
    /// A delta asked for a resync.
    Resync(Resync),
    /// The session ended; the next starts after the backoff.
    Disconnected(String),
}

/// Follows the stream until `stop` is set (checked between events and
/// while waiting to reconnect; a stream waits at most for the next
/// heartbeat). Blocks: run it on a thread of its own.
pub fn follow(
    client: &mut IdentityClient,
    config: &FollowConfig,
    stop: &AtomicBool,
    mut on_event: impl FnMut(&FollowEvent),
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut backoff = config.initial_backoff;
    while !stop.load(Ordering::Relaxed) {
        let mut greeted = false;
        let result = session(&agent, client, config, stop, &mut greeted, &mut on_event);
        if greeted {
            backoff = config.initial_backoff;
        }
        let reason = match result {
            Ok(()) => "the stream ended".to_owned(),
            Err(error) => error.to_string(),
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        on_event(&FollowEvent::Disconnected(reason));
        let mut waited = Duration::ZERO;
        while waited < backoff && !stop.load(Ordering::Relaxed) {
            let slice = Duration::from_millis(20).min(backoff.saturating_sub(waited));
            std::thread::sleep(slice);
            waited += slice;
        }
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

fn transport(url: &str, problem: impl core::fmt::Display) -> IdentityError {
    IdentityError::Transport {
        url: url.to_owned(),
        problem: problem.to_string(),
    }
}

fn session(
    agent: &ureq::Agent,
    client: &mut IdentityClient,
    config: &FollowConfig,
    stop: &AtomicBool,
    greeted: &mut bool,
    on_event: &mut impl FnMut(&FollowEvent),
) -> Result<(), IdentityError> {
    let held = client.reader().snapshot().version();
    let mut url = format!("{}/deltas", config.url);
    if let Some(held) = held {
        url = format!("{url}?epoch={}&seq={}", held.epoch, held.seq);
    }
    let response = agent
        .get(&url)
        .config()
        .timeout_recv_body(Some(config.max_stream_age))
        .build()
        .call()
        .map_err(|e| transport(&url, e))?;
    let body = response.into_body().into_reader();
    let max_line = config.limits.max_line_bytes;
    let mut events = EventReader::new(BufReader::new(body), max_line);
    while !stop.load(Ordering::Relaxed) {
        let Some(event) = events.next_event().map_err(|e| transport(&url, e))? else {
            return Ok(());
        };
        match event.event.as_str() {
            "hello" => {
                let hello: Hello = serde_json::from_str(&event.data)
                    .map_err(|e| transport(&url, format!("a bad hello: {e}")))?;
                *greeted = true;
                let server = Version {
                    epoch: hello.epoch,
                    seq: hello.seq,
                };
                on_event(&FollowEvent::Connected {
                    server,
                    resumed: hello.resumed,
                });
                let synced = matches!(client.state(), ClientState::Synced(_));
                if !hello.resumed || !synced {
                    fetch_baseline(agent, client, config, on_event)?;
                }
            }
            "delta" => {
                let delta = read_delta(event.data.as_bytes(), 1, &config.limits)?;
                let version = delta.version();
                match client.apply(delta) {
                    DeltaOutcome::Applied => on_event(&FollowEvent::Applied(version)),
                    DeltaOutcome::Duplicate | DeltaOutcome::Stale => {}
                    DeltaOutcome::Kept(resync) => {
                        on_event(&FollowEvent::Resync(resync));
                        fetch_baseline(agent, client, config, on_event)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// How long a baseline's body may take to arrive.
const BASELINE_BODY_TIMEOUT: Duration = Duration::from_mins(2);

#[derive(serde::Deserialize)]
struct Hello {
    epoch: u64,
    seq: u64,
    #[serde(default)]
    resumed: bool,
}

fn fetch_baseline(
    agent: &ureq::Agent,
    client: &mut IdentityClient,
    config: &FollowConfig,
    on_event: &mut impl FnMut(&FollowEvent),
) -> Result<(), IdentityError> {
    let url = format!("{}/baseline", config.url);
    let response = agent
        .get(&url)
        .config()
        .timeout_recv_body(Some(BASELINE_BODY_TIMEOUT))
        .build()
        .call()
        .map_err(|e| transport(&url, e))?;
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(config.max_baseline_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| transport(&url, e))?;
    if bytes.len() as u64 > config.max_baseline_bytes {
        return Err(transport(
            &url,
            format!("a baseline larger than {} bytes", config.max_baseline_bytes),
        ));
    }
    let baseline = Baseline::from_mmdb(&bytes)?;
    let version = baseline.version();
    client.load_baseline(baseline);
    on_event(&FollowEvent::BaselineLoaded(version));
    Ok(())
}
