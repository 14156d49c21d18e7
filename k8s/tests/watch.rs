//! The watchers against the fake API server (no real one can run here),
//! with objects serialised by k8s-openapi: the first sync, pod churn with
//! an address reused during the watch, a relist after 410 Gone while
//! objects were deleted, and a NetworkPolicy edited while edges exist.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use edgewise_edge_set::{DeclaredPolicies, EdgeQuery, Endpoint, VerdictKind};
use edgewise_ip_index::{IpIndex, Lookup, Protocol};
use edgewise_k8s::ClusterWatch;
use edgewise_k8s::testing::FakeApiServer;
use k8s_openapi::api::core::v1::{Container, Namespace, Pod, PodCondition, PodSpec, PodStatus};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

fn meta(name: &str, namespace: Option<&str>, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        uid: Some(format!("uid-{name}")),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..ObjectMeta::default()
    }
}

fn pod(name: &str, app: &str, ip: &str) -> Value {
    serde_json::to_value(Pod {
        metadata: meta(name, Some("shop"), &[("app", app)]),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".to_owned(),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".to_owned()),
            pod_ip: Some(ip.to_owned()),
            start_time: None,
            conditions: Some(vec![PodCondition {
                type_: "Ready".to_owned(),
                status: "True".to_owned(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        }),
    })
    .unwrap()
}

fn namespace(name: &str) -> Value {
    serde_json::to_value(Namespace {
        metadata: meta(name, None, &[("kubernetes.io/metadata.name", name)]),
        ..Namespace::default()
    })
    .unwrap()
}

/// `db` takes `from` on 5432.
fn db_policy(from: &str) -> Value {
    let selector = |app: &str| LabelSelector {
        match_labels: Some(BTreeMap::from([("app".to_owned(), app.to_owned())])),
        ..LabelSelector::default()
    };
    serde_json::to_value(NetworkPolicy {
        metadata: meta("db-ingress", Some("shop"), &[]),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector("db")),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(selector(from)),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(5432)),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            ..NetworkPolicySpec::default()
        }),
    })
    .unwrap()
}

/// The latest snapshot once `ready` holds for it (within 10 s).
fn wait_for(watch: &ClusterWatch, ready: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = None;
    let mut last = Vec::new();
    while Instant::now() < deadline {
        if let Some(snapshot) = watch.snapshot_if_changed(&mut seen) {
            last = snapshot;
        }
        if watch.synced() && ready(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "not ready in 10 s: {}",
        String::from_utf8_lossy(&last)
            .chars()
            .take(2000)
            .collect::<String>()
    );
}

fn owner(snapshot: &[u8], ip: &str) -> Option<String> {
    let mut index = IpIndex::default();
    index.load(snapshot);
    match index.snapshot().lookup(ip.parse().unwrap()) {
        Lookup::Object(object) => Some(object.name.clone()),
        _ => None,
    }
}

fn verdict(snapshot: &[u8], src: &str, dst: &str) -> VerdictKind {
    let mut index = IpIndex::default();
    index.load(snapshot);
    let mut declared = DeclaredPolicies::default();
    declared.load(snapshot);
    let policies = declared.compile();
    let reader = index.snapshot();
    let identity = |ip: &str| match reader.lookup(ip.parse().unwrap()) {
        Lookup::Object(object) => Some(object.clone()),
        _ => None,
    };
    let (a, b) = (identity(src), identity(dst));
    policies
        .evaluate(&EdgeQuery {
            src: Endpoint {
                ip: src.parse().unwrap(),
                identity: a.as_deref(),
            },
            dst: Endpoint {
                ip: dst.parse().unwrap(),
                identity: b.as_deref(),
            },
            port: 5432,
            protocol: Protocol::Tcp,
        })
        .kind()
}

#[test]
fn the_watch_follows_churn_a_relist_after_410_and_policy_edits() {
    let api = FakeApiServer::start();
    api.apply(namespace("shop"));
    api.apply(pod("web", "web", "10.42.0.10"));
    api.apply(pod("db", "db", "10.42.0.20"));
    api.apply(pod("old", "batch", "10.42.0.30"));
    api.apply(db_policy("web"));
    let dir = std::env::temp_dir().join(format!("edgewise-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    let watch = ClusterWatch::start(Some(&kubeconfig)).expect("the watch starts");

    // The first sync names both ends and gives the policy's verdicts.
    let snapshot = wait_for(&watch, |s| owner(s, "10.42.0.20").is_some());
    assert_eq!(owner(&snapshot, "10.42.0.10").as_deref(), Some("web"));
    assert_eq!(
        verdict(&snapshot, "10.42.0.10", "10.42.0.20"),
        VerdictKind::Declared
    );
    assert_eq!(
        verdict(&snapshot, "10.42.0.30", "10.42.0.20"),
        VerdictKind::Violation
    );

    // Pod churn: `old` goes and a new pod takes its address, on the watch.
    api.delete(&pod("old", "batch", "10.42.0.30"));
    api.apply(pod("new", "batch", "10.42.0.30"));
    wait_for(&watch, |s| owner(s, "10.42.0.30").as_deref() == Some("new"));

    // A pod deleted, the history compacted and the watch dropped: the watch
    // resumes from a version that is gone, gets 410 and relists; the
    // deleted pod is gone and the others stay.
    api.delete(&pod("new", "batch", "10.42.0.30"));
    api.compact();
    api.drop_watches();
    let snapshot = wait_for(&watch, |s| {
        owner(s, "10.42.0.30").is_none() && watch.relists() >= 1
    });
    assert_eq!(owner(&snapshot, "10.42.0.10").as_deref(), Some("web"));

    // The NetworkPolicy is edited: the new verdicts follow.
    api.apply(db_policy("batch"));
    api.apply(pod("batch", "batch", "10.42.0.31"));
    let snapshot = wait_for(&watch, |s| {
        owner(s, "10.42.0.31").is_some()
            && verdict(s, "10.42.0.31", "10.42.0.20") == VerdictKind::Declared
    });
    assert_eq!(
        verdict(&snapshot, "10.42.0.10", "10.42.0.20"),
        VerdictKind::Violation
    );
    drop(watch);
    std::fs::remove_dir_all(&dir).unwrap();
}
