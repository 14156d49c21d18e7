//! The secret-volume observer on the real kernel: a pod's secret volume
//! laid out as the kubelet does (a tmpfs, the atomic writer's links) and
//! its cgroup; a process in that cgroup reads a key through the volume's
//! link, and reads an unrelated file; another writes into the volume.
//! Exactly the read of the key is reported, with the cgroup that leads
//! back to the pod, the command, and the key's name inside the volume.
//! Every hook the kernel accepts is tried (LSM, fentry, the open system calls' tracepoints), and
//! `auto` must pick the first of them.
//!
//! Needs root; skips with the reason otherwise (a failure under `CI=true`).

use std::time::{Duration, Instant};

use edgewise_capture::secrets::{
    CgroupPaths, SecretHook, SecretObserver, SecretOpen, kernel::bpf_lsm_active, pod_uid_of_cgroup,
    secret_volumes,
};
use edgewise_test_support::kubelet::{KubeletPod, cgroup2_root};
use edgewise_test_support::{is_root, skip};

const UID: &str = "0b5c7a38-1d2e-4f60-8a9b-c0d1e2f3a4b5";

fn opens(observer: &mut SecretObserver) -> Vec<SecretOpen> {
    let mut opens = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        observer
            .poll(Duration::from_millis(50), |open| opens.push(open))
            .unwrap();
    }
    opens
}

#[test]
fn reads_of_a_secret_volume_are_reported_with_the_readers_cgroup() {
    if !is_root() {
        skip("attaching the secret-volume observer needs root");
        return;
    }
    let pod = KubeletPod::create("capture", UID, "db-creds", &[("password", "hunter2")]);
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let volumes = secret_volumes(&table);
    let volume = volumes
        .iter()
        .find(|v| v.pod_uid == UID)
        .expect("the volume is found in the mount table");
    assert_eq!(volume.volume, "db-creds");
    // Every hook this kernel accepts: some refuse BPF trampolines (LSM and
    // fentry) and leave the tracepoints, which must then be what `auto` picks.
    let mut hooks = Vec::new();
    for hook in [SecretHook::Lsm, SecretHook::Fentry, SecretHook::Tracepoint] {
        match SecretObserver::attach(hook, 1 << 16) {
            Ok(_) => hooks.push(hook),
            Err(error) => eprintln!("the {} hook is refused here: {error}", hook.as_str()),
        }
    }
    let auto = SecretObserver::attach(SecretHook::Auto, 1 << 16).unwrap();
    assert_eq!(
        Some(&auto.hook()),
        hooks.first(),
        "auto takes the first accepted"
    );
    assert!(bpf_lsm_active() || auto.hook() != SecretHook::Lsm);
    drop(auto);
    let mut cgroups = CgroupPaths::new(cgroup2_root().unwrap());
    for hook in hooks {
        let mut observer = SecretObserver::attach(hook, 1 << 16).unwrap();
        assert_eq!(observer.hook(), hook);
        let key = pod.volume_dir.join("password");
        let script = format!(
            "cat '{}' >/dev/null && cat /etc/hostname >/dev/null",
            key.display()
        );
        // Before the filter holds the volume, nothing is reported.
        assert!(pod.run_in_pod(&script).status.success());
        assert!(opens(&mut observer).is_empty(), "{hook:?}: no filter yet");
        observer.set_volumes([volume.dev]).unwrap();
        assert!(pod.run_in_pod(&script).status.success());
        // A write (the kubelet updating the volume) is not a read.
        let write = format!(
            "echo x > '{}'",
            pod.volume_dir.join("..data/extra").display()
        );
        assert!(pod.run_in_pod(&write).status.success());
        let seen = opens(&mut observer);
        assert_eq!(seen.len(), 1, "{hook:?}: {seen:?}");
        let open = &seen[0];
        assert_eq!(
            (open.command.as_str(), open.file.as_str()),
            ("cat", "password")
        );
        assert_eq!(open.dev, volume.dev);
        assert!(open.pid > 0 && !open.truncated);
        let path = cgroups
            .path(open.cgroup_id, Instant::now())
            .map(str::to_owned);
        assert_eq!(
            path.as_deref().and_then(pod_uid_of_cgroup).as_deref(),
            Some(UID),
            "{hook:?}: cgroup {path:?}"
        );
        let counters = observer.counters().unwrap();
        assert_eq!((counters.events, counters.lost), (1, 0));
        // Removed from the filter, the volume is not reported any more.
        observer.set_volumes([]).unwrap();
        assert!(pod.run_in_pod(&script).status.success());
        assert!(opens(&mut observer).is_empty());
    }
}
