//! Property: any sequence of pod add / update / delete events, with
//! addresses reused across pods, applied one at a time, leaves the same
//! index as building it afresh from the final set of pods (in another
//! order).

mod support;

use std::collections::{BTreeMap, BTreeSet};

use edgewise_ip_index::{Change, IpIndex, Object, Pod, PodPhase};
use proptest::prelude::*;
use support::{owner, pod};

const ADDRESSES: [&str; 4] = ["10.0.0.1", "10.0.0.2", "fd00::1", "10.0.0.3"];

#[derive(Debug, Clone)]
enum Event {
    Upsert {
        uid: u8,
        ips: Vec<usize>,
        phase: u8,
        ready: bool,
        terminating: bool,
        started: i64,
        account: u8,
    },
    Delete {
        uid: u8,
    },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => (0u8..8, prop::collection::vec(0..ADDRESSES.len(), 0..3), 0u8..5, any::<bool>(), any::<bool>(), 0i64..4, 0u8..3)
            .prop_map(|(uid, ips, phase, ready, terminating, started, account)| Event::Upsert {
                uid, ips, phase, ready, terminating, started, account
            }),
        1 => (0u8..8).prop_map(|uid| Event::Delete { uid }),
    ]
}

fn build(
    uid: u8,
    ips: &[usize],
    phase: u8,
    ready: bool,
    terminating: bool,
    started: i64,
    account: u8,
) -> Pod {
    let addresses: Vec<&str> = ips.iter().map(|&i| ADDRESSES[i]).collect();
    let mut pod = pod(
        &format!("uid-{uid}"),
        "ns",
        &format!("w{}-abcde{uid}", uid % 3),
        &addresses,
        started,
    );
    pod.ips.dedup();
    pod.phase = [
        PodPhase::Pending,
        PodPhase::Running,
        PodPhase::Succeeded,
        PodPhase::Failed,
        PodPhase::Unknown,
    ][usize::from(phase)];
    pod.ready = ready;
    pod.meta.terminating = terminating;
    pod.service_account = Some(format!("sa-{account}"));
    pod
}

fn view(index: &IpIndex) -> (Vec<String>, usize, usize, usize, Vec<Vec<String>>) {
    let owners = ADDRESSES.iter().map(|a| owner(index, a)).collect();
    let stats = index.stats();
    let accounts = (0..3)
        .map(|a| {
            index
                .workloads_of_service_account("ns", &format!("sa-{a}"))
                .iter()
                .map(ToString::to_string)
                .collect()
        })
        .collect();
    (
        owners,
        stats.pods,
        stats.addresses,
        stats.ambiguous,
        accounts,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn incremental_equals_rebuild(events in prop::collection::vec(event(), 0..40)) {
        let mut incremental = IpIndex::default();
        let mut live: BTreeMap<u8, Pod> = BTreeMap::new();
        let mut deleted: BTreeSet<u8> = BTreeSet::new();
        for (step, event) in events.iter().enumerate() {
            match event {
                Event::Upsert { uid, ips, phase, ready, terminating, started, account } => {
                    let pod = build(*uid, ips, *phase, *ready, *terminating, *started, *account);
                    incremental.apply(Change::Upsert(Object::Pod(pod.clone())));
                    // The index's rule: a deleted uid does not come back.
                    if !deleted.contains(uid) {
                        live.insert(*uid, pod);
                    }
                }
                Event::Delete { uid } => {
                    let pod = live.remove(uid).unwrap_or_else(|| build(*uid, &[], 0, false, false, 0, 0));
                    incremental.apply(Change::Delete(Object::Pod(pod)));
                    deleted.insert(*uid);
                }
            }
            // Publishing at random points must not matter either.
            if step % 3 == 0 {
                incremental.publish();
            }
        }
        incremental.publish();

        let mut rebuilt = IpIndex::default();
        for pod in live.values().rev() {
            rebuilt.apply(Change::Upsert(Object::Pod(pod.clone())));
        }
        rebuilt.publish();
        prop_assert_eq!(view(&incremental), view(&rebuilt));
    }
}
