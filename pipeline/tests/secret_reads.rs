//! Secret reads through the pipeline's public API: both sources give one
//! `secret_read` record per new observation within the window, attributed
//! with each kind of identities (objects, an identity MMDB, a stream of
//! deltas), and judged by `secret_read` rules.

use std::path::Path;
use std::sync::Arc;

use edgewise_capture::secrets::{SecretOpen, SecretVolume, VolumeKind};
use edgewise_identity::{Baseline, ClientConfig, IdentityClient, Producer};
use edgewise_ip_index::{AuditLimits, IndexConfig, IpIndex, read_audit};
use edgewise_pipeline::{Identities, Pipeline, PipelineConfig, Rules, SecretReadRecord};
use edgewise_time::{MonotonicNanos, UnixNanos};

const S: u64 = 1_000_000_000;
const API_UID: &str = "0b5c7a38-1d2e-4f60-8a9b-c0d1e2f3a4b5";
const WORKER_UID: &str = "7e3d1c2b-aaaa-4bbb-8ccc-0123456789ab";

/// Two pods of the shop: the api (service account `api`, a secret volume
/// and the API access volume) and a worker running as `api` too.
fn objects() -> Vec<u8> {
    let pod = |name: &str, uid: &str, ip: &str, owner: &str| {
        format!(
            r#"{{"kind": "Pod", "apiVersion": "v1",
            "metadata": {{"name": "{name}", "namespace": "shop", "uid": "{uid}",
                "labels": {{"app": "{owner}"}},
                "ownerReferences": [{{"kind": "ReplicaSet", "name": "{owner}-5d8f9", "controller": true}}]}},
            "spec": {{"serviceAccountName": "api", "volumes": [
                {{"name": "db-creds", "secret": {{"secretName": "postgres-password"}}}},
                {{"name": "kube-api-access-x2x4", "projected": {{"sources": [
                    {{"serviceAccountToken": {{"path": "token"}}}},
                    {{"configMap": {{"name": "kube-root-ca.crt", "items": [{{"key": "ca.crt", "path": "ca.crt"}}]}}}}]}}}}]}},
            "status": {{"phase": "Running", "podIP": "{ip}",
                "conditions": [{{"type": "Ready", "status": "True"}}]}}}}"#
        )
    };
    format!(
        r#"{{"kind": "List", "items": [{}, {}]}}"#,
        pod("api-5d8f9-abcde", API_UID, "10.1.0.5", "api"),
        pod("worker-5d8f9-zzzzz", WORKER_UID, "10.1.0.6", "worker")
    )
    .into_bytes()
}

fn index() -> IpIndex {
    let mut index = IpIndex::new(IndexConfig::default());
    let report = index.load(&objects());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    index.publish();
    index
}

/// The three kinds of identities a daemon runs with.
fn identities(kind: &str) -> Identities {
    let index = index();
    let mut producer = Producer::new(7);
    let delta = producer
        .update_from_index(&index.snapshot())
        .expect("the pods");
    match kind {
        "objects" => Identities::Index(Box::new(index)),
        "mmdb" => {
            let bytes = producer.baseline().to_mmdb(std::time::UNIX_EPOCH).unwrap();
            let mut client = IdentityClient::new(ClientConfig::default());
            client.load_baseline(Baseline::from_mmdb(&bytes).unwrap());
            Identities::Client(client.reader(), Some(Box::new(client)))
        }
        "stream" => {
            let mut client = IdentityClient::new(ClientConfig::default());
            client.load_baseline(Baseline::new(
                edgewise_identity::Version { epoch: 7, seq: 0 },
                Vec::<(std::net::IpAddr, Arc<_>)>::new(),
            ));
            client.apply(delta);
            Identities::Client(client.reader(), Some(Box::new(client)))
        }
        _ => unreachable!(),
    }
}

fn pipeline(identities: Identities, rules: &str) -> Pipeline {
    Pipeline::new(
        PipelineConfig::default(),
        identities,
        edgewise_edge_set::DeclaredPolicies::default().compile(),
        Rules::parse(Path::new("rules.toml"), rules).unwrap(),
        UnixNanos::ZERO,
    )
}

fn audit_batch() -> Vec<u8> {
    let event = |id: &str, name: &str| {
        format!(
            r#"{{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": "{id}", "stage": "ResponseComplete", "verb": "get",
            "user": {{"username": "system:serviceaccount:shop:api"}},
            "objectRef": {{"resource": "secrets", "namespace": "shop", "name": "{name}", "apiVersion": "v1"}},
            "responseStatus": {{"code": 200}},
            "annotations": {{"authorization.k8s.io/decision": "allow"}},
            "stageTimestamp": "2026-12-01T04:00:00.000000Z"}}"#
        )
    };
    format!(
        r#"{{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [{}, {}, {}]}}"#,
        event("a-1", "stripe-key"),
        event("a-2", "postgres-password"),
        // The same read again under another id, within the window.
        event("a-3", "stripe-key")
    )
    .into_bytes()
}

fn api_reads(p: &mut Pipeline, now: u64) -> Vec<SecretReadRecord> {
    p.secret_reads(
        read_audit(&audit_batch(), &AuditLimits::default()),
        UnixNanos::from_nanos(now),
    )
}

#[test]
fn an_audit_batch_posted_twice_gives_each_read_once_attributed_in_every_mode() {
    for kind in ["objects", "mmdb", "stream"] {
        let mut p = pipeline(identities(kind), "");
        let first = api_reads(&mut p, S);
        let secrets: Vec<&str> = first.iter().map(|r| r.secret.as_str()).collect();
        assert_eq!(
            secrets,
            ["shop/stripe-key", "shop/postgres-password"],
            "{kind}"
        );
        for record in &first {
            assert_eq!(record.source, "api");
            assert_eq!(record.service_account.as_deref(), Some("shop/api"));
            assert_eq!(
                record.workloads,
                ["shop/Deployment/api", "shop/Deployment/worker"],
                "{kind}: every workload running as the account"
            );
        }
        // The API server retries the batch: nothing new.
        assert!(api_reads(&mut p, 2 * S).is_empty(), "{kind}");
        let stats = p.stats(UnixNanos::from_nanos(3 * S)).secret_reads;
        assert_eq!(stats.records.get("api"), Some(&2), "{kind}");
        assert_eq!(stats.repeats.get("api"), Some(&4), "{kind}");
        // After the window, a read is news again.
        assert_eq!(api_reads(&mut p, 302 * S).len(), 2, "{kind}");
    }
}

fn volume(name: &str, kind: VolumeKind) -> SecretVolume {
    SecretVolume {
        dev: 77,
        pod_uid: API_UID.to_owned(),
        kind,
        volume: name.to_owned(),
    }
}

fn open(file: &str, command: &str) -> SecretOpen {
    SecretOpen {
        time: MonotonicNanos::from_nanos(1),
        cgroup_id: 4242,
        pid: 999,
        command: command.to_owned(),
        dev: 77,
        file: file.to_owned(),
        truncated: false,
    }
}

fn pod_cgroup(uid: &str) -> String {
    format!(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-1.scope",
        uid.replace('-', "_")
    )
}

#[test]
fn mounted_reads_name_the_secret_and_the_reading_pod_once_per_window() {
    for kind in ["objects", "mmdb", "stream"] {
        let mut p = pipeline(identities(kind), "");
        let creds = volume("db-creds", VolumeKind::Secret);
        let cgroup = pod_cgroup(API_UID);
        let read = |p: &mut Pipeline, file: &str, at: u64| {
            p.mounted_secret_read(
                &open(file, "python3"),
                Some(&creds),
                Some(&cgroup),
                UnixNanos::from_nanos(at),
            )
        };
        let record = read(&mut p, "password", S).expect("a new read");
        let expected = if kind == "objects" {
            ("shop/postgres-password", "secret")
        } else {
            // The MMDB and the stream carry no volume specs.
            ("shop/db-creds", "volume")
        };
        assert_eq!(
            (record.secret.as_str(), record.secret_kind),
            expected,
            "{kind}"
        );
        assert_eq!((record.source, record.verb), ("mounted", "open"));
        assert_eq!(
            record.pod.as_deref(),
            Some("shop/api-5d8f9-abcde"),
            "{kind}"
        );
        assert_eq!(record.workloads, ["shop/Deployment/api"], "{kind}");
        assert_eq!(record.service_account.as_deref(), Some("shop/api"));
        let mounted = record.mounted.as_ref().unwrap();
        assert_eq!(
            (mounted.file.as_str(), mounted.pid, mounted.command.as_str()),
            ("password", 999, "python3")
        );
        assert_eq!(mounted.pod_uid.as_deref(), Some(API_UID));
        // The same read again, or another key of the same secret: a repeat.
        assert!(read(&mut p, "password", 2 * S).is_none(), "{kind}");
        assert!(read(&mut p, "username", 3 * S).is_none(), "{kind}");
        // The token and CA of the API access volume.
        let access = volume("kube-api-access-x2x4", VolumeKind::Projected);
        let token = p
            .mounted_secret_read(
                &open("token", "app"),
                Some(&access),
                Some(&cgroup),
                UnixNanos::from_nanos(4 * S),
            )
            .expect("the token is a secret");
        assert_eq!(
            (token.secret.as_str(), token.secret_kind),
            ("shop/api", "service_account_token"),
            "{kind}"
        );
        assert!(
            p.mounted_secret_read(
                &open("ca.crt", "app"),
                Some(&access),
                Some(&cgroup),
                UnixNanos::from_nanos(4 * S)
            )
            .is_none()
        );
        // A process on the host reading the pod's volume is another reader.
        let host = p
            .mounted_secret_read(
                &open("password", "cat"),
                Some(&creds),
                Some("/system.slice/sshd.service"),
                UnixNanos::from_nanos(5 * S),
            )
            .expect("a host reader is news");
        assert_eq!(host.pod, None);
        assert_eq!(
            host.mounted.as_ref().unwrap().cgroup.as_deref(),
            Some("/system.slice/sshd.service")
        );
        assert!(
            p.mounted_secret_read(
                &open("password", "cat"),
                None,
                None,
                UnixNanos::from_nanos(5 * S)
            )
            .is_none()
        );
        let stats = p.stats(UnixNanos::from_nanos(6 * S)).secret_reads;
        assert_eq!(stats.records.get("mounted"), Some(&3), "{kind}");
        assert_eq!(stats.repeats.get("mounted"), Some(&2), "{kind}");
        assert_eq!((stats.not_secret, stats.unknown_volume), (1, 1), "{kind}");
        // The window ends: the same read is a record again.
        p.expire(UnixNanos::from_nanos(400 * S));
        assert!(read(&mut p, "password", 400 * S).is_some(), "{kind}");
    }
}

const SECRET_RULES: &str = r#"
[[rule]]
name = "db password read"
on = "secret_read"
when = 'secret.name == "postgres-password"'
action = "log"

[[rule]]
name = "the api may read its own"
on = "secret_read"
when = 'identity.k8s.src_workload == "api" && secret.source == "mounted" && reader.in_pod'
action = "allow"

[[rule]]
name = "anything from the worker"
on = "secret_read"
when = 'identity.k8s.src_workload == "worker"'
action = "log"

[[rule]]
name = "an edge rule"
when = 'dst_port == 5432'
action = "drop"
"#;

#[test]
fn secret_read_rules_log_and_allow_and_see_every_candidate_reader() {
    let mut p = pipeline(identities("objects"), SECRET_RULES);
    let creds = volume("db-creds", VolumeKind::Secret);
    let record = p
        .mounted_secret_read(
            &open("password", "app"),
            Some(&creds),
            Some(&pod_cgroup(API_UID)),
            UnixNanos::from_nanos(S),
        )
        .unwrap();
    assert_eq!(
        record.rules,
        ["db password read", "the api may read its own"]
    );
    assert!(record.allowed);
    let reads = api_reads(&mut p, 2 * S);
    // Through the API, the account runs the api and the worker: the
    // worker's rule matches (the ambiguity is kept), and no allow does.
    assert_eq!(reads[0].rules, ["anything from the worker"]);
    assert_eq!(
        reads[1].rules,
        ["db password read", "anything from the worker"]
    );
    assert!(!reads[1].allowed);
    let json = serde_json::to_value(&reads[1]).unwrap();
    assert_eq!(json["source"], "api");
    assert_eq!(json["audit_id"], "a-2");
    assert!(json.get("mounted").is_none());
}

#[test]
fn secret_read_rules_are_checked_at_load() {
    let error = |text: &str| {
        Rules::parse(Path::new("rules.toml"), text)
            .unwrap_err()
            .to_string()
    };
    let e = error(
        "[[rule]]\nname = \"x\"\non = \"secret_read\"\nwhen = \"secret.source == 'api'\"\naction = \"drop\"\n",
    );
    assert!(
        e.contains("rule \"x\": drop cannot act on a secret read (nothing can be dropped): use log or allow"),
        "{e}"
    );
    let e = error(
        "[[rule]]\nname = \"y\"\non = \"secret_read\"\nwhen = \"dst_port == 5432\"\naction = \"log\"\n",
    );
    assert!(e.contains("unknown variable \"dst_port\""), "{e}");
    let e = error("[[rule]]\nname = \"z\"\nwhen = \"secret.name == 'a'\"\naction = \"log\"\n");
    assert!(e.contains("unknown variable \"secret\""), "{e}");
    let e = error(
        "[[rule]]\nname = \"w\"\non = \"secret_read\"\nwhen = \"identity.k8s.dst_workload == 'a'\"\naction = \"log\"\n",
    );
    assert!(
        e.contains("identity.k8s has no member \"dst_workload\""),
        "{e}"
    );
    let e = error("[[rule]]\nname = \"v\"\non = \"packet\"\nwhen = \"true\"\naction = \"log\"\n");
    assert!(e.contains("unknown variant `packet`"), "{e}");
}
