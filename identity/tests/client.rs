//! The client's state machine, transition by transition, and readers that
//! never see a torn state while deltas and resyncs apply.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use edgewise_identity::{
    Baseline, BaselineOutcome, ClientConfig, ClientState, DeltaOutcome, IdentityClient,
    IdentityDelta, Producer, Resync, Upsert, Version,
};

fn delta(epoch: u64, seq: u64, upserts: &[(&str, &str)], removes: &[&str]) -> IdentityDelta {
    IdentityDelta {
        epoch,
        seq,
        upserts: upserts
            .iter()
            .map(|(ip, name)| Upsert {
                ip: ip.parse().unwrap(),
                identity: support::pod(name),
            })
            .collect(),
        removes: removes.iter().map(|ip| ip.parse().unwrap()).collect(),
    }
}

fn name_of(client: &IdentityClient, ip: &str) -> Option<String> {
    client
        .reader()
        .snapshot()
        .lookup(ip.parse().unwrap())
        .map(|o| o.name.clone())
}

fn baseline(epoch: u64, seq: u64, entries: &[(&str, &str)]) -> Baseline {
    Baseline::new(
        Version { epoch, seq },
        entries
            .iter()
            .map(|(ip, name)| (ip.parse().unwrap(), Arc::new(support::pod(name)))),
    )
}

#[test]
fn in_order_deltas_apply_and_duplicates_and_stale_ones_do_not() {
    let mut client = IdentityClient::default();
    assert_eq!(client.state(), ClientState::NeedsResync(Resync::NoBaseline));
    assert_eq!(
        client.load_baseline(baseline(5, 10, &[("10.0.0.1", "a")])),
        BaselineOutcome::Loaded { replayed: 0 }
    );
    assert_eq!(
        client.apply(delta(5, 11, &[("10.0.0.2", "b")], &["10.0.0.1"])),
        DeltaOutcome::Applied
    );
    assert_eq!(
        (name_of(&client, "10.0.0.1"), name_of(&client, "10.0.0.2")),
        (None, Some("b".into()))
    );
    assert_eq!(
        client.apply(delta(5, 11, &[("10.0.0.1", "again")], &[])),
        DeltaOutcome::Duplicate
    );
    assert_eq!(
        client.apply(delta(5, 3, &[("10.0.0.1", "old")], &[])),
        DeltaOutcome::Duplicate
    );
    assert_eq!(
        client.apply(delta(4, 99, &[("10.0.0.1", "stale")], &[])),
        DeltaOutcome::Stale
    );
    assert_eq!(name_of(&client, "10.0.0.1"), None);
    assert_eq!(
        client.state(),
        ClientState::Synced(Version { epoch: 5, seq: 11 })
    );
    assert_eq!(
        client.reader().snapshot().version(),
        Some(Version { epoch: 5, seq: 11 })
    );
    assert_eq!((client.stats().applied, client.stats().ignored), (1, 3));
}

#[test]
fn a_gap_keeps_serving_the_last_good_state_until_a_baseline_then_replays() {
    let mut client = IdentityClient::default();
    client.load_baseline(baseline(1, 0, &[("10.0.0.1", "a"), ("10.0.0.9", "doomed")]));
    // seq 1 is lost; 2 and 3 arrive.
    let gap = Resync::Gap {
        expected: 1,
        got: 2,
    };
    assert_eq!(
        client.apply(delta(1, 2, &[("10.0.0.2", "b")], &[])),
        DeltaOutcome::Kept(gap)
    );
    assert_eq!(
        client.apply(delta(1, 3, &[], &["10.0.0.9"])),
        DeltaOutcome::Kept(gap)
    );
    assert_eq!(client.state(), ClientState::NeedsResync(gap));
    assert_eq!(
        name_of(&client, "10.0.0.2"),
        None,
        "nothing applies while resyncing"
    );
    assert_eq!(
        name_of(&client, "10.0.0.9").as_deref(),
        Some("doomed"),
        "the last good state is served"
    );
    // The producer's baseline at seq 1 (which had the lost delta: a -> a2).
    let outcome = client.load_baseline(baseline(
        1,
        1,
        &[("10.0.0.1", "a2"), ("10.0.0.9", "doomed")],
    ));
    assert_eq!(outcome, BaselineOutcome::Loaded { replayed: 2 });
    assert_eq!(
        client.state(),
        ClientState::Synced(Version { epoch: 1, seq: 3 })
    );
    assert_eq!(name_of(&client, "10.0.0.1").as_deref(), Some("a2"));
    assert_eq!(name_of(&client, "10.0.0.2").as_deref(), Some("b"));
    assert_eq!(
        name_of(&client, "10.0.0.9"),
        None,
        "the delete kept during the resync is not lost"
    );
}

#[test]
fn a_new_epoch_resyncs_and_a_baseline_older_than_what_is_served_is_refused() {
    let mut client = IdentityClient::default();
    client.load_baseline(baseline(1, 5, &[("10.0.0.1", "a")]));
    let restart = Resync::NewEpoch { current: 1, got: 2 };
    assert_eq!(
        client.apply(delta(2, 1, &[("10.0.0.3", "c")], &[])),
        DeltaOutcome::Kept(restart)
    );
    assert_eq!(
        client.load_baseline(baseline(1, 4, &[])),
        BaselineOutcome::Stale
    );
    assert_eq!(name_of(&client, "10.0.0.1").as_deref(), Some("a"));
    // A baseline of the new epoch taken before its first delta.
    assert_eq!(
        client.load_baseline(baseline(2, 0, &[("10.0.0.4", "d")])),
        BaselineOutcome::Loaded { replayed: 1 }
    );
    assert_eq!(
        client.state(),
        ClientState::Synced(Version { epoch: 2, seq: 1 })
    );
    assert_eq!(
        name_of(&client, "10.0.0.1"),
        None,
        "the old epoch's state is gone"
    );
    assert_eq!(name_of(&client, "10.0.0.3").as_deref(), Some("c"));
}

#[test]
fn kept_deltas_beyond_a_gap_after_the_baseline_still_need_a_resync() {
    let mut client = IdentityClient::new({
        let mut client_config = ClientConfig::default();
        client_config.max_pending = 2;
        client_config
    });
    client.load_baseline(baseline(1, 0, &[]));
    for seq in [3, 5, 6, 7] {
        client.apply(delta(1, seq, &[("10.0.0.1", &format!("v{seq}"))], &[]));
    }
    assert_eq!(
        client.stats().dropped_pending,
        2,
        "only the newest two are kept"
    );
    // Baseline at seq 4: 5 is gone (dropped), so 6 and 7 cannot follow it.
    assert_eq!(
        client.load_baseline(baseline(1, 4, &[("10.0.0.1", "v4")])),
        BaselineOutcome::Loaded { replayed: 0 }
    );
    assert_eq!(
        client.state(),
        ClientState::NeedsResync(Resync::Gap {
            expected: 5,
            got: 6
        })
    );
    assert_eq!(name_of(&client, "10.0.0.1").as_deref(), Some("v4"));
    assert_eq!(
        client.load_baseline(baseline(1, 5, &[("10.0.0.1", "v5")])),
        BaselineOutcome::Loaded { replayed: 2 }
    );
    assert_eq!(name_of(&client, "10.0.0.1").as_deref(), Some("v7"));
}

/// Every delta moves two addresses to the same generation; a reader must
/// never see them differ, nor a version that does not match them.
#[test]
fn readers_never_see_a_torn_state() {
    let mut producer = Producer::new(1);
    let mut client = IdentityClient::default();
    let generation = |g: u64| {
        let pair = [("10.0.0.1", g), ("fd00::1", g)];
        pair.map(|(ip, g)| (ip.parse().unwrap(), Arc::new(support::pod(&g.to_string()))))
    };
    producer.update(generation(0));
    client.load_baseline(producer.baseline());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let reader = client.reader();
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut seen = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let snapshot = reader.snapshot();
                    let a = snapshot
                        .lookup("10.0.0.1".parse().unwrap())
                        .map(|o| o.name.clone());
                    let b = snapshot
                        .lookup("fd00::1".parse().unwrap())
                        .map(|o| o.name.clone());
                    assert_eq!(a, b, "a torn delta");
                    let version = snapshot.version().unwrap();
                    // Generation g is set by seq g+1 of epoch 1 and by the
                    // resync baselines of epoch 2 (seq g-1000).
                    let g: u64 = a.unwrap().parse().unwrap();
                    if version.epoch == 1 {
                        assert_eq!(g + 1, version.seq, "answers match their version");
                    }
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    for g in 1..2_000u64 {
        if g == 1_000 {
            // The producer restarts: new epoch, baseline-only resync.
            producer = Producer::new(2);
        }
        if let Some(delta) = producer.update(generation(g))
            && client.apply(delta) != DeltaOutcome::Applied
        {
            client.load_baseline(producer.baseline());
        }
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    assert_eq!(client.state(), ClientState::Synced(producer.version()));
}
