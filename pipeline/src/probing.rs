//! Which servers the driver's active prober may probe, and when
//! ([`ProbeConfig`]; the pipeline's side of `edgewise run --probe`).
//!
//! A server (address, TCP port) seen in a flow sample whose service no
//! first bytes identified (no hard match of nmap's database) is queued;
//! the pipeline hands queued servers out as [`crate::Output::Probe`], at
//! most `rate_per_second` a second, and the driver probes them and says
//! what it found ([`crate::Pipeline::probe_result`]). Limits, each
//! counted in `stats` (`probes`):
//! - never an address outside `cidrs` (`outside`);
//! - never an address a held ban has as its server (`banned`, checked
//!   again when the probe is due);
//! - at most one probe session per address and port per
//!   [`PROBE_AGAIN_AFTER`] (`again_too_soon`), the memory bounded like the
//!   pipeline's others;
//! - at most [`MAX_QUEUED`] servers waiting (`queue_full`);
//! - a server identified while it waited is not probed (`identified`);
//!   each waits at least [`WAIT_FOR_FIRST_BYTES`] after it was queued, so
//!   that a banner on its way (the flow sample can come before the
//!   server's first bytes) names it first.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use crate::memory::Latest;

/// A probe session per address and port at most this often.
pub const PROBE_AGAIN_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How long a queued server waits before it may be probed, for first
/// bytes already on their way to identify it.
pub const WAIT_FOR_FIRST_BYTES: Duration = Duration::from_secs(2);

/// The most servers waiting for their probe.
pub const MAX_QUEUED: usize = 1024;

/// What the driver's prober may do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProbeConfig {
    /// Only servers inside these are probed.
    pub cidrs: Vec<IpNet>,
    /// Probe sessions started per second, at most (above 0).
    pub rate_per_second: f64,
}

impl ProbeConfig {
    /// Probes of servers inside `cidrs`, at most `rate_per_second` sessions
    /// started per second.
    pub fn new(cidrs: Vec<IpNet>, rate_per_second: f64) -> Self {
        Self {
            cidrs,
            rate_per_second,
        }
    }
}

/// The queue and its limits (see the module docs).
#[derive(Debug)]
pub(crate) struct Prober {
    config: ProbeConfig,
    interval_ns: u64,
    /// When the next session may start.
    next_ns: u64,
    /// Servers in the order they were queued, with when.
    queue: VecDeque<(SocketAddr, u64)>,
    queued: HashSet<SocketAddr>,
    /// When each server was last handed out.
    probed: Latest<SocketAddr, u64>,
    pub(crate) counts: BTreeMap<&'static str, u64>,
}

impl Prober {
    pub(crate) fn new(config: ProbeConfig) -> Self {
        let rate = if config.rate_per_second > 0.0 {
            config.rate_per_second
        } else {
            1.0
        };
        Prober {
            // Nanoseconds between sessions: far below u64::MAX for any
            // rate the settings allow.
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a positive rate's interval in whole nanoseconds"
            )]
            interval_ns: (1e9 / rate) as u64,
            config,
            next_ns: 0,
            queue: VecDeque::new(),
            queued: HashSet::new(),
            probed: Latest::new(),
            counts: BTreeMap::new(),
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    /// A server seen without an identification.
    pub(crate) fn consider(&mut self, server: SocketAddr, now: u64) {
        if self.queued.contains(&server) {
            return;
        }
        if self
            .probed
            .get(&server)
            .is_some_and(|at| now.saturating_sub(*at) < again_ns())
        {
            return;
        }
        if !self
            .config
            .cidrs
            .iter()
            .any(|net| net.contains(&server.ip()))
        {
            // Counted once per server and day, like a probe.
            self.probed.insert(server, now);
            self.count("outside");
            return;
        }
        if self.queue.len() >= MAX_QUEUED {
            self.count("queue_full");
            return;
        }
        self.queued.insert(server);
        self.queue.push_back((server, now));
    }

    /// When a queued server may be handed out.
    pub(crate) fn next_at(&self) -> Option<u64> {
        let (_, queued_at) = self.queue.front()?;
        Some(self.next_ns.max(queued_at.saturating_add(wait_ns())))
    }

    /// The next server to probe at `now`, if one is due: `banned` and
    /// `identified` are asked at that moment.
    pub(crate) fn due(
        &mut self,
        now: u64,
        banned: impl Fn(IpAddr) -> bool,
        identified: impl Fn(SocketAddr) -> bool,
    ) -> Option<SocketAddr> {
        while now >= self.next_ns {
            let &(server, queued_at) = self.queue.front()?;
            if now < queued_at.saturating_add(wait_ns()) {
                return None;
            }
            self.queue.pop_front();
            self.queued.remove(&server);
            if banned(server.ip()) {
                self.count("banned");
                continue;
            }
            if identified(server) {
                self.count("identified");
                continue;
            }
            if self
                .probed
                .get(&server)
                .is_some_and(|at| now.saturating_sub(*at) < again_ns())
            {
                self.count("again_too_soon");
                continue;
            }
            self.probed.insert(server, now);
            self.next_ns = now.saturating_add(self.interval_ns);
            self.count("started");
            return Some(server);
        }
        None
    }
}

fn wait_ns() -> u64 {
    u64::try_from(WAIT_FOR_FIRST_BYTES.as_nanos()).unwrap_or(u64::MAX)
}

fn again_ns() -> u64 {
    u64::try_from(PROBE_AGAIN_AFTER.as_nanos()).unwrap_or(u64::MAX)
}

/// What a probe session found of a server: nmap's database's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFinding {
    /// The service.
    pub service: String,
    /// The product, when the match named one.
    pub product: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// A softmatch (the service's name only).
    pub soft: bool,
}
