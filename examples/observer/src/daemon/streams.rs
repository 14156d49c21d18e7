//! Follow mode (`identity_stream`): identities and declared edges from an
//! `edgewise identity serve`, so an agent needs no cluster access at all.
//!
//! Each channel is followed on a thread of its own (`edgewise-identity`'s
//! [`follow`]: baselines, deltas, resyncs, reconnects with backoff), over
//! TLS verified against `identity_stream_ca` and with the bearer token of
//! `identity_stream_token_file` when set. Identities are read wait-free by
//! the pipeline ([`Streams::identities`]); each new set of policy
//! documents is compiled off the loop's thread and handed over
//! ([`Streams::take_policies`]), a set that does not compile logged and
//! passed over (the last good policies stay). At start the daemon waits
//! up to [`STREAM_WAIT`] for both baselines, then goes on and takes them
//! as they come.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use edgewise_edge_set::PolicySet;
use edgewise_identity::http::{FollowConfig, FollowEvent, Transport, follow};
use edgewise_identity::{ClientConfig, IdentityClient, IdentityReader, PolicyClient};

use super::DaemonError;
use super::config::Settings;
use crate::declared::compile;

/// How long the daemon waits for the first baselines before it starts
/// without them.
pub const STREAM_WAIT: Duration = Duration::from_secs(10);

/// The two followed channels (see the module docs).
pub struct Streams {
    identities: IdentityReader,
    policies: Arc<Mutex<Option<PolicySet>>>,
    policies_seen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").finish_non_exhaustive()
    }
}

/// The follower's settings of `settings`, when it follows a server.
pub fn follow_config(settings: &Settings) -> Option<FollowConfig> {
    let url = settings.identity_stream.as_deref()?;
    Some({
        let mut follow_config = FollowConfig::new(url.trim_end_matches('/'));
        follow_config.ca.clone_from(&settings.identity_stream_ca);
        follow_config.client_cert = settings
            .identity_stream_cert
            .clone()
            .zip(settings.identity_stream_key.clone());
        follow_config
            .token_file
            .clone_from(&settings.identity_stream_token_file);
        follow_config
    })
}

fn log(channel: &'static str, event: &FollowEvent) {
    match event {
        FollowEvent::Disconnected(why) => {
            tracing::warn!(channel, why, "the stream ended; reconnecting");
        }
        FollowEvent::Applied(_) => tracing::debug!(channel, ?event, "stream"),
        _ => tracing::info!(channel, ?event, "stream"),
    }
}

impl Streams {
    /// Starts following, when `settings` name a server.
    ///
    /// # Errors
    /// [`DaemonError::Identity`] when the CA, client certificate or token
    /// file cannot be used, or the URL is not one.
    pub fn start(settings: &Settings) -> Result<Option<Self>, DaemonError> {
        let Some(config) = follow_config(settings) else {
            return Ok(None);
        };
        let transport = Transport::new(&config).map_err(|e| DaemonError::Identity {
            path: config.url.clone().into(),
            message: e.to_string(),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut client = IdentityClient::new(ClientConfig::default());
        let identities = client.reader();
        {
            let (config, transport, stop) = (config.clone(), transport.clone(), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("edgewise-identities".to_owned())
                .spawn(move || {
                    follow(&mut client, &config, &transport, &stop, |_, event| {
                        log("identities", event);
                    });
                })
                .map_err(DaemonError::Output)?;
        }
        let policies = Arc::new(Mutex::new(None));
        let policies_seen = Arc::new(AtomicBool::new(false));
        {
            let (policies, seen, stop) = (
                Arc::clone(&policies),
                Arc::clone(&policies_seen),
                Arc::clone(&stop),
            );
            std::thread::Builder::new()
                .name("edgewise-policies".to_owned())
                .spawn(move || {
                    let mut client = PolicyClient::default();
                    follow(&mut client, &config, &transport, &stop, |client, event| {
                        log("policies", event);
                        if matches!(
                            event,
                            FollowEvent::Applied(_) | FollowEvent::BaselineLoaded(_)
                        ) {
                            match compile(client.documents()) {
                                Ok(set) => {
                                    *policies.lock().unwrap_or_else(PoisonError::into_inner) =
                                        Some(set);
                                    seen.store(true, Ordering::Relaxed);
                                }
                                Err(error) => tracing::warn!(
                                    %error,
                                    "streamed policies that do not compile; keeping the last"
                                ),
                            }
                        }
                    });
                })
                .map_err(DaemonError::Output)?;
        }
        let streams = Self {
            identities,
            policies,
            policies_seen,
            stop,
        };
        streams.wait();
        Ok(Some(streams))
    }

    /// Waits for both baselines, at most [`STREAM_WAIT`].
    fn wait(&self) {
        let deadline = Instant::now() + STREAM_WAIT;
        while self.identities.snapshot().version().is_none()
            || !self.policies_seen.load(Ordering::Relaxed)
        {
            if Instant::now() >= deadline {
                tracing::warn!(
                    waited_s = STREAM_WAIT.as_secs(),
                    "no baselines from the identity server yet; starting without them"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The identities, read wait-free.
    pub fn identities(&self) -> IdentityReader {
        self.identities.clone()
    }

    /// The policies compiled since the last call, if any.
    pub fn take_policies(&self) -> Option<PolicySet> {
        self.policies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        // The threads end at their next event or heartbeat.
        self.stop.store(true, Ordering::Relaxed);
    }
}
