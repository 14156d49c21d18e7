//! `resolve_peer` and `resolve_peer_str`: the seed behaviour, exactly, and the grace memo.

mod support;

use std::time::Duration;

use edgewise_ip_index::{IndexConfig, IpIndex, NamedRange, PeerResolver};
use edgewise_time::UnixNanos;
use support::{delete, fixture, pod, upsert};

const SECOND: u64 = 1_000_000_000;

fn cluster() -> IpIndex {
    let mut index = IpIndex::new({
        let mut index_config = IndexConfig::default();
        index_config.ranges = vec![NamedRange::new("10.42.0.0/16".parse().unwrap(), "pod-cidr")];
        index_config
    });
    assert_eq!(index.load(&fixture("cluster.json")).errors, []);
    index
}

#[test]
fn the_seed_cases() {
    let index = cluster();
    let mut peers = PeerResolver::new(index.reader());
    let mut resolve = |peer: &str, internet: bool| {
        peers
            .resolve_peer_str(peer, internet, UnixNanos::ZERO)
            .into_owned()
    };
    // Pod, service, node.
    assert_eq!(
        resolve("10.42.1.159:8086", false),
        "analytics/influxdb-0:8086 (10.42.1.159)"
    );
    assert_eq!(
        resolve("10.43.0.86:8086", false),
        "analytics/influxdb:8086 (10.43.0.86)"
    );
    assert_eq!(
        resolve("192.168.56.12:10250", false),
        "node/worker-2:10250 (192.168.56.12)"
    );
    // IPv6, bracketed; the address unbracketed inside the parentheses.
    assert_eq!(
        resolve("[fd00:43::86]:443", false),
        "analytics/influxdb:443 (fd00:43::86)"
    );
    assert_eq!(
        resolve("[fd00:42:1::159]:8086", false),
        "analytics/influxdb-0:8086 (fd00:42:1::159)"
    );
    // The port and the address are kept as written.
    assert_eq!(
        resolve("10.42.1.159:08086", false),
        "analytics/influxdb-0:08086 (10.42.1.159)"
    );
    // Unknown (even inside a labelled range), internet, not ip:port: as given.
    assert_eq!(resolve("10.42.9.9:80", false), "10.42.9.9:80");
    assert_eq!(resolve("93.184.215.14:443", false), "93.184.215.14:443");
    assert_eq!(resolve("10.42.1.159:8086", true), "10.42.1.159:8086");
    for not_a_peer in [
        "influxdb:8086",
        "10.42.1.159",
        "fd00:43::86:443",
        "",
        "garbage",
        "10.42.1.159:99999",
    ] {
        assert_eq!(resolve(not_a_peer, false), not_a_peer);
    }
    // A headless service's name never shows; a finished pod's address is unknown.
    assert_eq!(resolve("10.42.2.99:8086", false), "10.42.2.99:8086");
}

#[test]
fn ambiguous_addresses_stay_as_given() {
    let mut index = IpIndex::default();
    upsert(&mut index, pod("a", "ns", "a-11111", &["10.0.0.1"], 5));
    upsert(&mut index, pod("b", "ns", "b-22222", &["10.0.0.1"], 5));
    let mut peers = PeerResolver::new(index.reader());
    assert_eq!(
        peers.resolve_peer_str("10.0.0.1:80", false, UnixNanos::ZERO),
        "10.0.0.1:80"
    );
}

#[test]
fn the_grace_memo_bridges_a_transient_miss_only() {
    let mut index = IpIndex::default();
    let web = pod("w", "ns", "web-abcde", &["10.0.0.1"], 5);
    upsert(&mut index, web.clone());
    let mut peers = PeerResolver::with_grace(index.reader(), Duration::from_secs(5 * 60));
    assert_eq!(
        peers.resolve_peer_str("10.0.0.1:80", false, UnixNanos::ZERO),
        "ns/web-abcde:80 (10.0.0.1)"
    );

    // The pod's delete arrives while its connection is still reported.
    delete(&mut index, web);
    assert_eq!(
        peers.resolve_peer_str("10.0.0.1:80", false, UnixNanos::from_nanos(200 * SECOND)),
        "ns/web-abcde:80 (10.0.0.1)",
        "within the grace window"
    );
    assert_eq!(
        peers.resolve_peer_str("10.0.0.1:80", false, UnixNanos::from_nanos(301 * SECOND)),
        "10.0.0.1:80",
        "the window counts from the last resolution"
    );
    assert_eq!(
        peers.resolve_peer_str("10.0.0.1:80", false, UnixNanos::from_nanos(302 * SECOND)),
        "10.0.0.1:80"
    );

    // Never resolved: never named.
    assert_eq!(
        peers.resolve_peer_str("10.0.0.2:80", false, UnixNanos::ZERO),
        "10.0.0.2:80"
    );
}

#[test]
fn a_reused_address_re_resolves_on_the_next_hit() {
    let mut index = IpIndex::default();
    let old = pod("old", "ns", "cart-aaaaa", &["10.0.0.7"], 5);
    upsert(&mut index, old.clone());
    let mut peers = PeerResolver::new(index.reader());
    assert_eq!(
        peers.resolve_peer_str("10.0.0.7:80", false, UnixNanos::ZERO),
        "ns/cart-aaaaa:80 (10.0.0.7)"
    );
    delete(&mut index, old);
    upsert(
        &mut index,
        pod("new", "ns", "checkout-bbbbb", &["10.0.0.7"], 9),
    );
    assert_eq!(
        peers.resolve_peer_str("10.0.0.7:80", false, UnixNanos::from_nanos(SECOND)),
        "ns/checkout-bbbbb:80 (10.0.0.7)"
    );
    // And the memo now holds the new name.
    delete(
        &mut index,
        pod("new", "ns", "checkout-bbbbb", &["10.0.0.7"], 9),
    );
    assert_eq!(
        peers.resolve_peer_str("10.0.0.7:80", false, UnixNanos::from_nanos(2 * SECOND)),
        "ns/checkout-bbbbb:80 (10.0.0.7)"
    );
}

#[test]
fn a_zero_grace_turns_the_memo_off() {
    let mut index = IpIndex::default();
    let web = pod("w", "ns", "web-abcde", &["10.0.0.1"], 5);
    upsert(&mut index, web.clone());
    let mut peers = PeerResolver::with_grace(index.reader(), Duration::ZERO);
    assert_eq!(
        peers.resolve_peer_str("10.0.0.1:80", false, UnixNanos::ZERO),
        "ns/web-abcde:80 (10.0.0.1)"
    );
    delete(&mut index, web);
    assert_eq!(
        peers.resolve_peer_str("10.0.0.1:80", false, UnixNanos::ZERO),
        "10.0.0.1:80"
    );
}

#[test]
fn socket_addresses_resolve_as_their_strings_do() {
    let index = cluster();
    let mut peers = PeerResolver::new(index.reader());
    for text in ["10.42.1.159:8086", "192.168.56.12:10250", "10.42.9.9:80"] {
        let typed = peers.resolve_peer(text.parse().unwrap(), UnixNanos::ZERO);
        assert_eq!(
            typed,
            peers.resolve_peer_str(text, false, UnixNanos::ZERO),
            "{text}"
        );
    }
    let pod = peers
        .resolve("10.42.1.159".parse().unwrap(), UnixNanos::ZERO)
        .unwrap();
    assert_eq!(pod.to_string(), "analytics/influxdb-0");
    assert!(
        peers
            .resolve("10.42.9.9".parse().unwrap(), UnixNanos::ZERO)
            .is_none()
    );
}
