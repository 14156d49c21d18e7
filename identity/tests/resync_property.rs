//! Random streams of deltas with losses, duplicates, reordering and producer
//! restarts, interleaved with baselines (fresh or late): at every moment the
//! client's answers equal the producer's state at the version the client
//! says it serves, and after one fresh baseline it serves the producer's
//! latest state.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use edgewise_identity::{
    Baseline, ClientConfig, ClientState, IdentityClient, IdentityDelta, Producer, Version,
};
use edgewise_ip_index::ClusterObject;
use proptest::prelude::*;

const IPS: [&str; 6] = [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.3",
    "fd00::1",
    "fd00::2",
    "192.168.1.1",
];

#[derive(Debug, Clone)]
enum Step {
    /// Set (Some) or remove (None) addresses in the cluster.
    Change(Vec<(usize, Option<u8>)>),
    /// The producer restarts without its history.
    Restart,
    /// The producer offers a baseline now.
    Snapshot,
}

#[derive(Debug, Clone, Copy)]
enum Fate {
    Deliver,
    Drop,
    Twice,
    /// Swapped with the next item.
    Later,
}

enum Item {
    Delta(IdentityDelta),
    Baseline(Baseline),
}

fn object(name: u8) -> Arc<ClusterObject> {
    Arc::new(support::pod(&format!("pod-{name}")))
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => prop::collection::vec((0..IPS.len(), prop::option::of(0u8..4)), 1..4).prop_map(Step::Change),
        1 => Just(Step::Restart),
        2 => Just(Step::Snapshot),
    ]
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![6 => Just(Fate::Deliver), 1 => Just(Fate::Drop), 1 => Just(Fate::Twice), 1 => Just(Fate::Later)]
}

type State = BTreeMap<IpAddr, u8>;

fn answers(client: &IdentityClient) -> (Option<Version>, State) {
    let reader = client.reader();
    let snapshot = reader.snapshot();
    let state = IPS
        .iter()
        .filter_map(|ip| {
            let ip: IpAddr = ip.parse().unwrap();
            let object = snapshot.lookup(ip)?;
            Some((ip, object.name.trim_start_matches("pod-").parse().unwrap()))
        })
        .collect();
    (snapshot.version(), state)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_client_always_serves_a_state_the_producer_had(
        steps in prop::collection::vec(step(), 1..40),
        fates in prop::collection::vec(fate(), 60),
        max_pending in 1usize..8,
    ) {
        // The producer's history: every state it published, by version.
        let mut cluster: State = BTreeMap::new();
        let mut epoch = 1;
        let mut producer = Producer::new(epoch);
        let mut history: HashMap<Version, State> = HashMap::from([(producer.version(), State::new())]);
        let mut items = vec![Item::Baseline(producer.baseline())];
        let publish = |producer: &mut Producer, cluster: &State, history: &mut HashMap<Version, State>, items: &mut Vec<Item>| {
            if let Some(delta) = producer.update(cluster.iter().map(|(ip, name)| (*ip, object(*name)))) {
                history.insert(delta.version(), cluster.clone());
                items.push(Item::Delta(delta));
            }
        };
        for step in steps {
            match step {
                Step::Change(changes) => {
                    for (ip, name) in changes {
                        let ip: IpAddr = IPS[ip].parse().unwrap();
                        match name {
                            Some(name) => cluster.insert(ip, name),
                            None => cluster.remove(&ip),
                        };
                    }
                    publish(&mut producer, &cluster, &mut history, &mut items);
                }
                Step::Restart => {
                    epoch += 1;
                    producer = Producer::new(epoch);
                    history.insert(producer.version(), State::new());
                    publish(&mut producer, &cluster, &mut history, &mut items);
                }
                Step::Snapshot => items.push(Item::Baseline(producer.baseline())),
            }
        }

        // Deliver with losses, duplicates and swaps.
        let mut schedule: Vec<&Item> = Vec::new();
        let mut index = 0;
        while index < items.len() {
            match fates[index % fates.len()] {
                Fate::Drop => {}
                Fate::Twice => schedule.extend([&items[index], &items[index]]),
                Fate::Later if index + 1 < items.len() => {
                    schedule.extend([&items[index + 1], &items[index]]);
                    index += 1;
                }
                // The last item cannot be swapped with a next one.
                Fate::Deliver | Fate::Later => schedule.push(&items[index]),
            }
            index += 1;
        }
        let mut client = IdentityClient::new({
let mut client_config = ClientConfig::default();
client_config.max_pending = max_pending;
client_config
});
        for item in schedule {
            match item {
                Item::Delta(delta) => { client.apply(delta.clone()); }
                Item::Baseline(baseline) => { client.load_baseline(baseline.clone()); }
            }
            let (version, state) = answers(&client);
            if let Some(version) = version {
                prop_assert_eq!(Some(&state), history.get(&version), "at {:?}", version);
            } else {
                prop_assert!(state.is_empty());
            }
        }

        // Settle: one fresh baseline brings it to the producer's latest state.
        client.load_baseline(producer.baseline());
        prop_assert_eq!(client.state(), ClientState::Synced(producer.version()));
        let (version, state) = answers(&client);
        prop_assert_eq!(version, Some(producer.version()));
        prop_assert_eq!(state, cluster);
    }
}
