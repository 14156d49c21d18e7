//! The store: TTL clamps, touch keeps names alive, per-address and
//! per-name caps, eviction order, rejected messages change nothing.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use edgewise_fqdn_store::{DnsError, FqdnStore, Recorded, StoreConfig, Unmapped};
use edgewise_time::UnixNanos;
use support::{Builder, Data, secs};

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
}

fn response(name: &str, ttl: u32, ips: &[IpAddr]) -> Vec<u8> {
    let mut builder = Builder::response(name, support::A);
    for address in ips {
        match address {
            IpAddr::V4(v4) => builder.answer(name, ttl, Data::A(*v4)),
            IpAddr::V6(v6) => builder.answer(name, ttl, Data::Aaaa(*v6)),
        };
    }
    builder.finish()
}

fn names(store: &FqdnStore, address: IpAddr, now: UnixNanos) -> Vec<String> {
    store.lookup(address, now).map(str::to_owned).collect()
}

fn config() -> StoreConfig {
    let mut store_config = StoreConfig::default();
    store_config.min_ttl = Duration::from_secs(10);
    store_config.max_ttl = Duration::from_secs(1000);
    store_config.keep_alive = Duration::from_secs(50);
    store_config
}

#[test]
fn ttls_are_clamped_and_zero_still_maps() {
    let mut store = FqdnStore::new(config());
    assert_eq!(
        store.record(&response("zero.example", 0, &[ip(1)]), UnixNanos::ZERO),
        Ok(Recorded::Mapped(1))
    );
    assert_eq!(names(&store, ip(1), secs(9)), ["zero.example"]);
    assert!(
        names(&store, ip(1), secs(10)).is_empty(),
        "gone after min_ttl"
    );

    store
        .record(
            &response("long.example", 1_000_000, &[ip(2)]),
            UnixNanos::ZERO,
        )
        .unwrap();
    assert_eq!(names(&store, ip(2), secs(999)), ["long.example"]);
    assert!(
        names(&store, ip(2), secs(1000)).is_empty(),
        "capped at max_ttl"
    );
}

#[test]
fn a_repeated_answer_never_shortens_a_mapping() {
    let mut store = FqdnStore::new(config());
    store
        .record(&response("a.example", 300, &[ip(1)]), UnixNanos::ZERO)
        .unwrap();
    store
        .record(&response("a.example", 20, &[ip(1)]), secs(1))
        .unwrap();
    assert_eq!(names(&store, ip(1), secs(299)), ["a.example"]);
    assert_eq!((store.stats().inserted, store.stats().refreshed), (1, 1));
}

#[test]
fn touch_keeps_a_live_connection_named_past_its_ttl() {
    let mut store = FqdnStore::new(config());
    store
        .record(&response("db.example", 30, &[ip(1)]), UnixNanos::ZERO)
        .unwrap();
    // A connection keeps touching every 20 s, long after the 30 s TTL.
    for t in (20..=200).step_by(20) {
        assert_eq!(store.touch(ip(1), secs(t)), 1, "at {t} s");
    }
    assert_eq!(names(&store, ip(1), secs(249)), ["db.example"]);
    assert!(
        names(&store, ip(1), secs(250)).is_empty(),
        "50 s after the last touch"
    );
    assert_eq!(
        store.touch(ip(1), secs(251)),
        0,
        "an expired mapping is not revived"
    );
}

#[test]
fn many_names_per_address_and_many_addresses_per_name() {
    let mut store = FqdnStore::new({
        let mut store_config = config();
        store_config.max_names_per_ip = 3;
        store_config.max_ips_per_name = 4;
        store_config
    });
    for (n, ttl) in [(1, 100), (2, 50), (3, 200), (4, 300)] {
        store
            .record(
                &response(&format!("n{n}.example"), ttl, &[ip(1)]),
                UnixNanos::ZERO,
            )
            .unwrap();
    }
    let mut kept = names(&store, ip(1), UnixNanos::ZERO);
    kept.sort();
    assert_eq!(
        kept,
        ["n1.example", "n3.example", "n4.example"],
        "the one nearest its deadline made room"
    );
    assert_eq!(store.stats().evicted_ip_cap, 1);

    let many: Vec<IpAddr> = (100..110).map(ip).collect();
    assert_eq!(
        store.record(&response("cdn.example", 60, &many), UnixNanos::ZERO),
        Ok(Recorded::Mapped(10))
    );
    let still: Vec<_> = many
        .iter()
        .filter(|&&address| !names(&store, address, UnixNanos::ZERO).is_empty())
        .collect();
    assert_eq!(still.len(), 4);
    assert_eq!(store.stats().evicted_name_cap, 6);
    assert_eq!(store.stats().names, 4);
}

#[test]
fn a_full_store_evicts_expired_first_then_least_recently_used() {
    let mut store = FqdnStore::new({
        let mut store_config = config();
        store_config.max_mappings = 3;
        store_config
    });
    store
        .record(&response("short.example", 10, &[ip(1)]), UnixNanos::ZERO)
        .unwrap();
    store
        .record(&response("old.example", 500, &[ip(2)]), UnixNanos::ZERO)
        .unwrap();
    store
        .record(&response("new.example", 500, &[ip(3)]), secs(1))
        .unwrap();
    // At 20 s "short" has expired: it goes, though "old" is less recent.
    store
        .record(&response("fourth.example", 500, &[ip(4)]), secs(20))
        .unwrap();
    assert_eq!(store.stats().evicted_expired, 1);
    assert_eq!(names(&store, ip(2), secs(20)), ["old.example"]);
    // Now nothing has expired: the least recently used goes, and a touch
    // counts as use.
    store.touch(ip(2), secs(21));
    store
        .record(&response("fifth.example", 500, &[ip(5)]), secs(22))
        .unwrap();
    assert!(
        names(&store, ip(3), secs(22)).is_empty(),
        "new.example was least recently used"
    );
    assert_eq!(names(&store, ip(2), secs(22)), ["old.example"]);
    assert_eq!((store.stats().evicted_lru, store.len()), (1, 3));
}

#[test]
fn a_flood_of_random_names_stays_within_capacity() {
    let mut store = FqdnStore::new({
        let mut store_config = config();
        store_config.max_mappings = 1000;
        store_config
    });
    for n in 0..20_000u32 {
        let name = format!("r{n:x}-{}.flood.example", n.wrapping_mul(2_654_435_761));
        store
            .record(
                &response(&name, 300, &[ip(n % 5000)]),
                UnixNanos::from_nanos(u64::from(n)),
            )
            .unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.mappings, 1000);
    assert!(stats.names <= 1000 && stats.addresses <= 1000);
    assert_eq!(stats.inserted, 20_000);
    assert_eq!(stats.evicted_lru + stats.evicted_ip_cap, 19_000);
}

#[test]
fn rejected_messages_change_nothing_and_are_counted() {
    let mut store = FqdnStore::new(config());
    store
        .record(&response("keep.example", 60, &[ip(1)]), UnixNanos::ZERO)
        .unwrap();
    let mut broken = response("keep.example", 60, &[ip(2), ip(3)]);
    broken.truncate(broken.len() - 2);
    assert!(matches!(
        store.record(&broken, UnixNanos::ZERO),
        Err(DnsError::Truncated { .. })
    ));
    assert!(matches!(
        store.record(&[1, 2, 3], UnixNanos::ZERO),
        Err(DnsError::HeaderTruncated { available: 3 })
    ));
    let mut query = Builder::new(7, 0x0100);
    query.question("keep.example", support::A);
    assert_eq!(
        store.record(&query.finish(), UnixNanos::ZERO),
        Ok(Recorded::Unmapped(Unmapped::Query))
    );
    assert!(names(&store, ip(2), UnixNanos::ZERO).is_empty());
    assert_eq!(names(&store, ip(1), UnixNanos::ZERO), ["keep.example"]);
    let stats = store.stats();
    assert_eq!(
        stats.rejected_by_reason().collect::<Vec<_>>(),
        [("header-truncated", 1), ("truncated", 1)]
    );
    assert_eq!(
        stats.unmapped_by_reason().collect::<Vec<_>>(),
        [("query", 1)]
    );
    assert_eq!(stats.mappings, 1);
}

#[test]
fn purge_removes_only_expired_mappings() {
    let mut store = FqdnStore::new(config());
    store
        .record(&response("a.example", 10, &[ip(1), ip(2)]), UnixNanos::ZERO)
        .unwrap();
    store
        .record(&response("b.example", 100, &[ip(3)]), UnixNanos::ZERO)
        .unwrap();
    assert_eq!(store.purge_expired(secs(10)), 2);
    assert_eq!((store.len(), store.stats().names), (1, 1));
    assert_eq!(store.purge_expired(secs(100)), 1);
    assert!(store.is_empty());
}
