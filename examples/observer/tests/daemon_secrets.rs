//! Secret reads in `edgewise run`, as root, from both sources: a pod laid
//! out as the kubelet does (a tmpfs secret volume, the pod's cgroup) whose
//! process reads a key three times and an unrelated file; a host process
//! reading the same key; the API server's audit batch posted twice. Each
//! new observation is one `secret_read` record, attributed to the pod (or
//! the service account's workloads), the repeats are counted in `stats`
//! and `/metrics`, and a `secret_read` rule marks the pod's own read as
//! allowed.
//!
//! Needs root; skips with the reason otherwise (a failure under
//! `CI=true`). The listener is on loopback.

mod common;
mod live;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{assert_records_match_schema, is_root, records, skip};
use edgewise_test_support::kubelet::{KubeletPod, cgroup2_root, in_cgroup};
use live::Collected;

const UID: &str = "3c9d2e1f-4a5b-4c6d-8e7f-901a2b3c4d5e";

fn objects() -> String {
    format!(
        r#"{{"kind": "List", "items": [{{"kind": "Pod", "apiVersion": "v1",
        "metadata": {{"name": "api-7d4b9-x2x4q", "namespace": "shop", "uid": "{UID}",
            "labels": {{"app": "api"}},
            "ownerReferences": [{{"kind": "ReplicaSet", "name": "api-7d4b9", "controller": true}}]}},
        "spec": {{"serviceAccountName": "api", "volumes": [
            {{"name": "db-creds", "secret": {{"secretName": "postgres-password"}}}}]}},
        "status": {{"phase": "Running", "podIP": "10.42.7.7",
            "conditions": [{{"type": "Ready", "status": "True"}}]}}}}]}}"#
    )
}

const AUDIT: &str = r#"{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [
  {"kind": "Event", "level": "Metadata", "auditID": "5f1c-a", "stage": "ResponseComplete",
   "verb": "get", "user": {"username": "system:serviceaccount:shop:api"},
   "objectRef": {"resource": "secrets", "namespace": "shop", "name": "stripe-key", "apiVersion": "v1"},
   "responseStatus": {"code": 200}, "annotations": {"authorization.k8s.io/decision": "allow"},
   "stageTimestamp": "2026-12-01T04:00:00.000000Z"}]}"#;

const RULES: &str = r#"
[[rule]]
name = "the api reads its own"
on = "secret_read"
when = 'identity.k8s.src_workload == "api" && secret.source == "mounted"'
action = "allow"
"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http(address: SocketAddr, head: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "{head}\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn mounted_and_api_secret_reads_are_recorded_once_each_and_attributed() {
    if !is_root() {
        skip("the secret-volume observer needs root");
        return;
    }
    let dir = std::env::temp_dir().join(format!("edgewise-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let objects = file("objects.json", &objects());
    let token = file("audit-token", "audit-s3cret\n");
    let rules = file("rules.toml", RULES);
    let pod = KubeletPod::create("daemon", UID, "db-creds", &[("password", "hunter2")]);
    let port = free_port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let daemon = Collected::spawn(
        Command::new(env!("CARGO_BIN_EXE_edgewise"))
            .args(["run", "--secret-reads", "--objects", &objects])
            .args(["--rules", &rules, "--audit-token-file", &token])
            .args(["--listen", &address.to_string()])
            .args(["--stats-interval-seconds", "1"]),
    );
    assert!(
        live::logged(&daemon, 30, &["secret-volume observer attached"]),
        "{}",
        Collected::text(&daemon.stderr)
    );
    let key = pod.volume_dir.join("password");
    for _ in 0..3 {
        let read = pod.run_in_pod(&format!(
            "cat '{}' >/dev/null && cat /etc/hostname >/dev/null",
            key.display()
        ));
        assert!(read.status.success());
    }
    // A process outside any pod reads the pod's secret through the node.
    let host = cgroup2_root().unwrap();
    assert!(
        in_cgroup(&host, &format!("cat '{}' >/dev/null", key.display()))
            .status
            .success()
    );
    let audit = "POST /audit HTTP/1.1\r\nAuthorization: Bearer audit-s3cret";
    for _ in 0..2 {
        assert!(http(address, audit, AUDIT).starts_with("HTTP/1.1 200"));
    }
    assert!(
        Collected::wait_for(&daemon.stdout, 10, |line| line
            .contains("\"source\":\"api\"")),
        "{}",
        Collected::text(&daemon.stderr)
    );
    std::thread::sleep(Duration::from_millis(2_500));
    let metrics = http(address, "GET /metrics HTTP/1.1", "");
    check(&live::stop(daemon), &metrics);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One record per new observation, attributed; the repeats counted.
fn check(out: &str, metrics: &str) {
    assert_records_match_schema(out);
    let reads: Vec<serde_json::Value> = records(out, "secret_read").collect();
    let mounted: Vec<&serde_json::Value> =
        reads.iter().filter(|r| r["source"] == "mounted").collect();
    assert_eq!(
        mounted.len(),
        2,
        "the pod's read and the host's: {reads:#?}"
    );
    let by_pod = mounted
        .iter()
        .find(|r| r["pod"] == "shop/api-7d4b9-x2x4q")
        .expect("the pod's read");
    assert_eq!(by_pod["secret"], "shop/postgres-password");
    assert_eq!(by_pod["secret_kind"], "secret");
    assert_eq!(by_pod["workloads"][0], "shop/Deployment/api");
    assert_eq!(by_pod["service_account"], "shop/api");
    assert_eq!(by_pod["mounted"]["file"], "password");
    assert_eq!(by_pod["mounted"]["command"], "cat");
    assert_eq!(by_pod["mounted"]["pod_uid"], UID);
    assert_eq!(by_pod["allowed"], true, "{by_pod}");
    let by_host = mounted.iter().find(|r| r.get("pod").is_none()).unwrap();
    assert_eq!(by_host["secret"], "shop/postgres-password");
    assert_eq!(by_host["allowed"], false);
    let api: Vec<&serde_json::Value> = reads.iter().filter(|r| r["source"] == "api").collect();
    assert_eq!(
        api.len(),
        1,
        "the batch posted twice is one read: {reads:#?}"
    );
    assert_eq!(api[0]["secret"], "shop/stripe-key");
    assert_eq!(api[0]["workloads"][0], "shop/Deployment/api");
    let stats = records(out, "stats").last().unwrap();
    let counts = &stats["secret_reads"];
    assert_eq!(counts["repeats"]["mounted"], 2, "{counts}");
    assert_eq!(counts["repeats"]["api"], 1, "{counts}");
    assert_eq!(counts["lost"], 0);
    assert!(counts["hook"].is_string(), "{counts}");
    assert!(
        metrics.contains("edgewise_secret_reads_total{source=\"mounted\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edgewise_secret_read_repeats_total{source=\"mounted\"} 2"),
        "{metrics}"
    );
}

/// Settings that cannot be used stop the daemon with the setting named,
/// before anything is observed.
#[test]
fn wrong_secret_read_settings_are_refused_with_the_setting_named() {
    let refused = |args: &[&str], named: &str| {
        let (_, stderr, ok) = common::edgewise(args);
        assert!(!ok, "{args:?} must fail");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    };
    refused(
        &["run", "--secret-reads", "--secret-hook", "kprobe"],
        "setting secret_hook: must be auto, lsm, fentry or tracepoint",
    );
    refused(
        &["run", "--mountinfo", "/proc/self/mountinfo"],
        "setting mountinfo: needs secret_reads",
    );
    refused(
        &["run", "--secret-reads", "--secret-read-window-seconds", "0"],
        "setting secret_read_window_seconds: must be 1 to 86400",
    );
    refused(
        &["replay", "--secret-reads"],
        "setting secret_reads: only edgewise run uses it",
    );
    if !is_root() {
        skip("the secret-volume observer needs root to get as far as its files");
        return;
    }
    refused(
        &[
            "run",
            "--secret-reads",
            "--mountinfo",
            "/nonexistent/mountinfo",
        ],
        "secret reads: the mount table /nonexistent/mountinfo",
    );
    refused(
        &["run", "--secret-reads", "--cgroup-root", "/nonexistent"],
        "secret reads: cgroup_root /nonexistent: not a folder",
    );
}
