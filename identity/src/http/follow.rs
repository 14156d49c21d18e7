//! The node agent's side: follow one channel of a server (identities or
//! policies), fetching a baseline whenever the client needs one,
//! reconnecting with exponential backoff.
//!
//! One session: `GET {url}/{channel}/deltas?epoch=E&seq=S` with the version
//! held; after the `hello` event, a baseline (`GET
//! {url}/{channel}/baseline`) is fetched unless the server resumed the
//! stream from that version; each `delta` event goes to the client
//! ([`StreamClient::apply_line`]), and a delta the client cannot apply (a
//! gap, a new epoch) fetches a baseline too. When the connection drops, a
//! stream reaches [`FollowConfig::max_stream_age`] or the server cuts a
//! follower that fell behind, the next session starts after the backoff
//! (reset by any session that got its `hello`). Readers keep the last good
//! state throughout: a truncated baseline or a delta with a gap is never
//! applied.
//!
//! Transport: `http://` or `https://`. Over TLS the server is verified
//! against [`FollowConfig::ca`] (required: an agent trusts the cluster's
//! CA, not the web's), and a client certificate is presented when
//! [`FollowConfig::client_cert`] is set. With [`FollowConfig::token_file`],
//! every request carries `Authorization: Bearer TOKEN`, the file read again
//! at each session so a rotated token is picked up. [`Transport::new`]
//! reads the CA and certificate once, so that a wrong file stops the
//! caller at start with the file named.
//!
//! Every read is bounded: an event line and an event's data at the delta
//! line limit (a stream that sends more is dropped with the reason in
//! [`FollowEvent::Disconnected`]), a baseline at
//! [`FollowConfig::max_baseline_bytes`]; a response must start within
//! 30 s and a baseline arrive within 2 min.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::sse::EventReader;
use crate::policy::{PolicyBaseline, PolicyClient, PolicyOutcome, read_policy_delta};
use crate::{
    Baseline, ClientState, DeltaLimits, DeltaOutcome, IdentityClient, IdentityError, Resync,
    Version, read_delta,
};

/// Settings of [`follow`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowConfig {
    /// The server, such as `https://edgewise-identity.edgewise:9470` (no
    /// trailing slash).
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
    /// CA certificates (PEM) the server's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and its key (PEM), for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// A file whose first token line is sent as the bearer token.
    pub token_file: Option<PathBuf>,
}

impl FollowConfig {
    /// Defaults for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_stream_age: Duration::from_secs(5 * 60),
            max_baseline_bytes: 1 << 30,
            limits: DeltaLimits::default(),
            ca: None,
            client_cert: None,
            token_file: None,
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

/// What a client did with one delta line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOutcome {
    /// Applied; the client is at this version.
    Applied(Version),
    /// A duplicate or older: nothing changed.
    Ignored,
    /// It needs a baseline first.
    NeedsBaseline(Resync),
}

/// A client a channel's stream keeps in step: [`IdentityClient`] for
/// `identities`, [`PolicyClient`] for `policies`.
pub trait StreamClient {
    /// The channel's name in the server's paths.
    const CHANNEL: &'static str;

    /// The version held, if any.
    fn held(&self) -> Option<Version>;

    /// Whether it applies deltas now (no resync needed).
    fn synced(&self) -> bool;

    /// Loads a baseline's bytes; its version.
    ///
    /// # Errors
    /// [`IdentityError`] when the bytes are not a baseline (nothing
    /// changes).
    fn load_baseline(
        &mut self,
        bytes: &[u8],
        limits: &DeltaLimits,
    ) -> Result<Version, IdentityError>;

    /// Applies one delta line.
    ///
    /// # Errors
    /// [`IdentityError::Delta`] when it is not a delta (nothing changes).
    fn apply_line(
        &mut self,
        line: &str,
        limits: &DeltaLimits,
    ) -> Result<LineOutcome, IdentityError>;
}

impl StreamClient for IdentityClient {
    const CHANNEL: &'static str = "identities";

    fn held(&self) -> Option<Version> {
        self.reader().snapshot().version()
    }

    fn synced(&self) -> bool {
        matches!(self.state(), ClientState::Synced(_))
    }

    fn load_baseline(
        &mut self,
        bytes: &[u8],
        _limits: &DeltaLimits,
    ) -> Result<Version, IdentityError> {
        let baseline = Baseline::from_mmdb(bytes)?;
        let version = baseline.version();
        IdentityClient::load_baseline(self, baseline);
        Ok(version)
    }

    fn apply_line(
        &mut self,
        line: &str,
        limits: &DeltaLimits,
    ) -> Result<LineOutcome, IdentityError> {
        let delta = read_delta(line.as_bytes(), 1, limits)?;
        let version = delta.version();
        Ok(match self.apply(delta) {
            DeltaOutcome::Applied => LineOutcome::Applied(version),
            DeltaOutcome::Duplicate | DeltaOutcome::Stale => LineOutcome::Ignored,
            DeltaOutcome::Kept(resync) => LineOutcome::NeedsBaseline(resync),
        })
    }
}

impl StreamClient for PolicyClient {
    const CHANNEL: &'static str = "policies";

    fn held(&self) -> Option<Version> {
        self.version()
    }

    fn synced(&self) -> bool {
        PolicyClient::synced(self)
    }

    fn load_baseline(
        &mut self,
        bytes: &[u8],
        limits: &DeltaLimits,
    ) -> Result<Version, IdentityError> {
        let baseline = PolicyBaseline::from_json(bytes, limits)?;
        let version = baseline.version();
        PolicyClient::load_baseline(self, baseline);
        Ok(version)
    }

    fn apply_line(
        &mut self,
        line: &str,
        limits: &DeltaLimits,
    ) -> Result<LineOutcome, IdentityError> {
        let delta = read_policy_delta(line.as_bytes(), 1, limits)?;
        let version = delta.version();
        let held = self.version();
        Ok(match self.apply(delta) {
            PolicyOutcome::Applied => LineOutcome::Applied(version),
            PolicyOutcome::Ignored => LineOutcome::Ignored,
            PolicyOutcome::NeedsBaseline => LineOutcome::NeedsBaseline(match held {
                None => Resync::NoBaseline,
                Some(held) if held.epoch == version.epoch => Resync::Gap {
                    expected: held.seq + 1,
                    got: version.seq,
                },
                Some(held) => Resync::NewEpoch {
                    current: held.epoch,
                    got: version.epoch,
                },
            }),
        })
    }
}

/// The HTTP client of [`follow`]: TLS settings read once (see the module
/// docs).
#[derive(Debug, Clone)]
pub struct Transport {
    agent: ureq::Agent,
    token_file: Option<PathBuf>,
}

/// A failure with no error underneath: a setting or an answer that cannot
/// be used.
fn failure(url: &str, problem: impl core::fmt::Display) -> IdentityError {
    IdentityError::Transport {
        url: url.to_owned(),
        problem: problem.to_string(),
        source: None,
    }
}

/// A request that failed, by kind: an error status, a timeout, or anything
/// else with ureq's error as the source.
fn request_failed(url: &str, error: ureq::Error) -> IdentityError {
    match error {
        ureq::Error::StatusCode(status) => IdentityError::Status {
            url: url.to_owned(),
            status,
        },
        ureq::Error::Timeout(_) => IdentityError::Timeout {
            url: url.to_owned(),
            source: Arc::new(error),
        },
        error => IdentityError::Transport {
            url: url.to_owned(),
            problem: error.to_string(),
            source: Some(Arc::new(error)),
        },
    }
}

/// A body or stream that could not be read to its end.
fn read_failed(url: &str, error: std::io::Error) -> IdentityError {
    if error.kind() == std::io::ErrorKind::TimedOut {
        return IdentityError::Timeout {
            url: url.to_owned(),
            source: Arc::new(error),
        };
    }
    IdentityError::Transport {
        url: url.to_owned(),
        problem: error.to_string(),
        source: Some(Arc::new(error)),
    }
}

fn unreadable(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    |source| IdentityError::File {
        path: path.to_owned(),
        source: Arc::new(source),
    }
}

fn read_pem(path: &Path) -> Result<Vec<ureq::tls::PemItem<'static>>, IdentityError> {
    let fail = |problem: String| failure(&path.display().to_string(), problem);
    let bytes = std::fs::read(path).map_err(unreadable(path))?;
    ureq::tls::parse_pem(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("not PEM: {e}")))
}

fn certificates(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, IdentityError> {
    let certs: Vec<_> = read_pem(path)?
        .into_iter()
        .filter_map(|item| match item {
            ureq::tls::PemItem::Certificate(cert) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(failure(&path.display().to_string(), "no CERTIFICATE block"));
    }
    Ok(certs)
}

impl Transport {
    /// Reads the CA and client certificate of `config`.
    ///
    /// # Errors
    /// [`IdentityError::Transport`] naming the file that cannot be used,
    /// or an `https://` server without a CA.
    pub fn new(config: &FollowConfig) -> Result<Self, IdentityError> {
        let https = config.url.starts_with("https://");
        if !https && !config.url.starts_with("http://") {
            return Err(failure(&config.url, "not an http:// or https:// URL"));
        }
        if https && config.ca.is_none() {
            return Err(failure(
                &config.url,
                "an https:// server needs the CA bundle that signed its certificate",
            ));
        }
        let mut tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
        if let Some(ca) = &config.ca {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certificates(ca)?));
        }
        if let Some((cert, key)) = &config.client_cert {
            let chain = certificates(cert)?;
            let key = read_pem(key)?
                .into_iter()
                .find_map(|item| match item {
                    ureq::tls::PemItem::PrivateKey(key) => Some(key),
                    _ => None,
                })
                .ok_or_else(|| failure(&key.display().to_string(), "no private key"))?;
            tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&chain, key)));
        }
        if let Some(path) = &config.token_file {
            read_token(path)?;
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Self {
            agent,
            token_file: config.token_file.clone(),
        })
    }

    fn get(&self, url: &str, body_timeout: Duration) -> Result<ureq::Body, IdentityError> {
        let mut request = self.agent.get(url);
        if let Some(path) = &self.token_file {
            request = request.header("Authorization", format!("Bearer {}", read_token(path)?));
        }
        let response = request
            .config()
            .timeout_recv_body(Some(body_timeout))
            .build()
            .call()
            .map_err(|e| request_failed(url, e))?;
        Ok(response.into_body())
    }
}

impl Transport {
    /// Opens `url` (a stream, say) with `headers` added to the transport's
    /// TLS and token: the status, whatever it is, and the body, whose
    /// reading fails once `max_age` has passed.
    ///
    /// # Errors
    /// [`IdentityError::Transport`] when no answer came (refused, timed
    /// out, TLS failed) or the token file cannot be read.
    pub fn open(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        max_age: Duration,
    ) -> Result<(u16, Box<dyn Read + Send>), IdentityError> {
        let mut request = self.agent.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(path) = &self.token_file {
            request = request.header("Authorization", format!("Bearer {}", read_token(path)?));
        }
        let response = request
            .config()
            .http_status_as_error(false)
            .timeout_recv_body(Some(max_age))
            .build()
            .call()
            .map_err(|e| request_failed(url, e))?;
        let status = response.status().as_u16();
        Ok((status, Box::new(response.into_body().into_reader())))
    }

    /// Posts `body` to `url` with the transport's TLS and token, and
    /// returns the status and at most 4 KiB of the answer (any status: the
    /// caller decides what a refusal means).
    ///
    /// # Errors
    /// [`IdentityError::Transport`] when no answer came (refused, timed
    /// out, TLS failed) or the token file cannot be read.
    pub fn post(
        &self,
        url: &str,
        content_type: &str,
        content_encoding: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, String), IdentityError> {
        let mut request = self.agent.post(url).header("Content-Type", content_type);
        if let Some(encoding) = content_encoding {
            request = request.header("Content-Encoding", encoding);
        }
        if let Some(path) = &self.token_file {
            request = request.header("Authorization", format!("Bearer {}", read_token(path)?));
        }
        let mut response = request
            .config()
            .http_status_as_error(false)
            .timeout_recv_body(Some(Duration::from_secs(30)))
            .build()
            .send(body)
            .map_err(|e| request_failed(url, e))?;
        let status = response.status().as_u16();
        let mut answer = String::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(4096)
            .read_to_string(&mut answer);
        Ok((status, answer))
    }
}

/// The first token line of a token file.
fn read_token(path: &Path) -> Result<String, IdentityError> {
    let fail = |problem: String| failure(&path.display().to_string(), problem);
    let text = std::fs::read_to_string(path).map_err(unreadable(path))?;
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .ok_or_else(|| fail("no token in the file".to_owned()))
}

/// Follows `client`'s channel until `stop` is set (checked between events
/// and while waiting to reconnect; a stream waits at most for the next
/// heartbeat). `on_event` sees the client after each event. Blocks: run
/// it on a thread of its own.
pub fn follow<C: StreamClient>(
    client: &mut C,
    config: &FollowConfig,
    transport: &Transport,
    stop: &AtomicBool,
    mut on_event: impl FnMut(&C, &FollowEvent),
) {
    let mut backoff = config.initial_backoff;
    while !stop.load(Ordering::Relaxed) {
        let mut greeted = false;
        let result = session(transport, client, config, stop, &mut greeted, &mut on_event);
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
        on_event(client, &FollowEvent::Disconnected(reason));
        let mut waited = Duration::ZERO;
        while waited < backoff && !stop.load(Ordering::Relaxed) {
            let slice = Duration::from_millis(20).min(backoff.saturating_sub(waited));
            std::thread::sleep(slice);
            waited += slice;
        }
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

fn session<C: StreamClient>(
    transport: &Transport,
    client: &mut C,
    config: &FollowConfig,
    stop: &AtomicBool,
    greeted: &mut bool,
    on_event: &mut impl FnMut(&C, &FollowEvent),
) -> Result<(), IdentityError> {
    let mut url = format!("{}/{}/deltas", config.url, C::CHANNEL);
    if let Some(held) = client.held() {
        url = format!("{url}?epoch={}&seq={}", held.epoch, held.seq);
    }
    let body = transport.get(&url, config.max_stream_age)?.into_reader();
    let max_line = config.limits.max_line_bytes;
    let mut events = EventReader::new(BufReader::new(body), max_line);
    while !stop.load(Ordering::Relaxed) {
        let Some(event) = events.next_event().map_err(|e| read_failed(&url, e))? else {
            return Ok(());
        };
        match event.event.as_str() {
            "hello" => {
                let hello: Hello = serde_json::from_str(&event.data)
                    .map_err(|e| failure(&url, format!("a bad hello: {e}")))?;
                crate::delta::check_schema(hello.schema.as_deref(), super::HELLO_SCHEMA)
                    .map_err(|e| failure(&url, format!("a bad hello: {e}")))?;
                *greeted = true;
                let server = Version {
                    epoch: hello.epoch,
                    seq: hello.seq,
                };
                on_event(
                    client,
                    &FollowEvent::Connected {
                        server,
                        resumed: hello.resumed,
                    },
                );
                if !hello.resumed || !client.synced() {
                    fetch_baseline(transport, client, config, on_event)?;
                }
            }
            "delta" => match client.apply_line(&event.data, &config.limits)? {
                LineOutcome::Applied(version) => on_event(client, &FollowEvent::Applied(version)),
                LineOutcome::Ignored => {}
                LineOutcome::NeedsBaseline(resync) => {
                    on_event(client, &FollowEvent::Resync(resync));
                    fetch_baseline(transport, client, config, on_event)?;
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// How long a baseline's body may take to arrive.
const BASELINE_BODY_TIMEOUT: Duration = Duration::from_secs(2 * 60);

#[derive(serde::Deserialize)]
struct Hello {
    #[serde(default)]
    schema: Option<String>,
    epoch: u64,
    seq: u64,
    #[serde(default)]
    resumed: bool,
}

fn fetch_baseline<C: StreamClient>(
    transport: &Transport,
    client: &mut C,
    config: &FollowConfig,
    on_event: &mut impl FnMut(&C, &FollowEvent),
) -> Result<(), IdentityError> {
    let url = format!("{}/{}/baseline", config.url, C::CHANNEL);
    let mut bytes = Vec::new();
    transport
        .get(&url, BASELINE_BODY_TIMEOUT)?
        .into_reader()
        .take(config.max_baseline_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_failed(&url, e))?;
    if bytes.len() as u64 > config.max_baseline_bytes {
        return Err(failure(
            &url,
            format!("a baseline larger than {} bytes", config.max_baseline_bytes),
        ));
    }
    let version = client.load_baseline(&bytes, &config.limits)?;
    on_event(client, &FollowEvent::BaselineLoaded(version));
    Ok(())
}
