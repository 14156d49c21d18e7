//! The server's `/metrics` page (prometheus-client's text format), made
//! from its counters at each scrape.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::channel::Channel;
use super::server::Shared;

type Labels = Vec<(&'static str, &'static str)>;

fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn family_counter(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: [(&'static str, u64); 2],
) {
    let family = Family::<Labels, Counter>::default();
    for (channel, value) in values {
        family
            .get_or_create(&vec![("channel", channel)])
            .inc_by(value);
    }
    registry.register(name, help, family);
}

fn family_gauge(registry: &mut Registry, name: &str, help: &str, values: [(&'static str, u64); 2]) {
    let family = Family::<Labels, Gauge>::default();
    for (channel, value) in values {
        family
            .get_or_create(&vec![("channel", channel)])
            .set(gauge(value));
    }
    registry.register(name, help, family);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let counter = Counter::<u64>::default();
    counter.inc_by(value);
    registry.register(name, help, counter);
}

/// The page, in the `OpenMetrics` text format.
pub(super) fn render_metrics(shared: &Shared) -> String {
    let channels: [(&'static str, &Channel); 2] = [
        ("identities", &shared.identities),
        ("policies", &shared.policies),
    ];
    let each = |read: &dyn Fn(&Channel) -> u64| channels.map(|(name, c)| (name, read(c)));
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut registry = Registry::with_prefix("edgewise_stream");
    family_gauge(
        &mut registry,
        "followers",
        "Streams open now",
        each(&|c| c.stats.followers.load(Ordering::Relaxed) as u64),
    );
    family_gauge(
        &mut registry,
        "seq",
        "The sequence number served",
        each(&|c| c.version().seq),
    );
    family_counter(
        &mut registry,
        "deltas_sent",
        "Deltas sent to followers",
        each(&|c| load(&c.stats.deltas_sent)),
    );
    family_counter(
        &mut registry,
        "resumed",
        "Streams resumed from the version the follower held",
        each(&|c| load(&c.stats.resumed)),
    );
    family_counter(
        &mut registry,
        "followers_cut",
        "Followers cut for falling behind (they resync from a baseline)",
        each(&|c| load(&c.stats.cut)),
    );
    family_counter(
        &mut registry,
        "baselines_served",
        "Baselines served (first syncs and resyncs)",
        each(&|c| load(&c.stats.baselines)),
    );
    family_gauge(
        &mut registry,
        "lag_max_deltas",
        "The largest lag of a follower, in deltas, since the last scrape",
        each(&|c| c.stats.max_lag.swap(0, Ordering::Relaxed)),
    );
    counter(
        &mut registry,
        "unauthorized",
        "Requests refused for a missing or wrong token",
        load(&shared.unauthorized),
    );
    counter(
        &mut registry,
        "followers_refused",
        "Streams refused because the follower cap was reached",
        load(&shared.refused_followers),
    );
    if let Some(listener) = shared.listener.get() {
        let stats = listener.get();
        let listener = registry.sub_registry_with_prefix("http");
        let connections = Gauge::<i64>::default();
        connections.set(gauge(stats.connections as u64));
        listener.register("connections", "Connections open now", connections);
        counter(
            listener,
            "connections_refused",
            "Connections closed at accept (the cap)",
            stats.refused,
        );
        counter(
            listener,
            "tls_handshake_failures",
            "TLS handshakes that failed",
            stats.tls_handshake_failures,
        );
        counter(
            listener,
            "tls_reloads",
            "TLS files read again after a change",
            stats.tls_reloads,
        );
        counter(
            listener,
            "tls_reload_errors",
            "TLS file rewrites that could not be used",
            stats.tls_reload_errors,
        );
    }
    let mut text = String::new();
    let _ = encode(&mut text, &registry);
    text
}
