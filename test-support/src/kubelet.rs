//! A pod as the kubelet lays it out on a node, for the secret-volume
//! tests: a tmpfs secret volume at
//! `ROOT/pods/UID/volumes/kubernetes.io~secret/VOLUME` written the way
//! the kubelet's atomic writer writes it (`..TIMESTAMP/KEY`, `..data`
//! pointing there, `KEY` pointing into `..data`), and the pod's cgroup in
//! the cgroup v2 hierarchy under the systemd driver's names. Everything is
//! unmounted and removed when dropped, also when the test panics. Needs
//! root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A pod's secret volume and cgroup.
pub struct KubeletPod {
    /// The pod's uid.
    pub uid: String,
    /// The kubelet's root folder (a temporary one).
    pub root: PathBuf,
    /// The volume's mount point.
    pub volume_dir: PathBuf,
    /// The pod's container cgroup (absolute, in the v2 hierarchy).
    pub cgroup_dir: PathBuf,
    cgroup_chain: Vec<PathBuf>,
}

/// The cgroup v2 mount (hybrid hosts have it at `/sys/fs/cgroup/unified`).
///
/// # Panics
/// If the mount table cannot be read.
pub fn cgroup2_root() -> Option<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mounts").expect("read /proc/self/mounts");
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(fields[1]))
    })
}

impl KubeletPod {
    /// Lays out pod `uid` with one secret volume `volume` holding `keys`
    /// (name, value), under a temporary kubelet root named by `tag`.
    ///
    /// # Panics
    /// If a step fails (a test's set-up).
    pub fn create(tag: &str, uid: &str, volume: &str, keys: &[(&str, &str)]) -> Self {
        let root =
            std::env::temp_dir().join(format!("edgewise-kubelet-{tag}-{}", std::process::id()));
        let volume_dir = root.join(format!("pods/{uid}/volumes/kubernetes.io~secret/{volume}"));
        std::fs::create_dir_all(&volume_dir).expect("create the volume folder");
        crate::run(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "tmpfs",
            &volume_dir.to_string_lossy(),
        ]);
        let stamped = volume_dir.join("..2026_12_01_04_00_00.000000001");
        std::fs::create_dir(&stamped).expect("create the timestamped folder");
        for (key, value) in keys {
            std::fs::write(stamped.join(key), value).expect("write a key");
        }
        std::os::unix::fs::symlink("..2026_12_01_04_00_00.000000001", volume_dir.join("..data"))
            .expect("link ..data");
        for (key, _) in keys {
            std::os::unix::fs::symlink(format!("..data/{key}"), volume_dir.join(key))
                .expect("link a key");
        }
        let cgroup_root = cgroup2_root().expect("a cgroup v2 mount");
        let underscored = uid.replace('-', "_");
        let mut cgroup_chain = Vec::new();
        let mut dir = cgroup_root;
        for name in [
            format!("edgewise-test-{tag}.slice"),
            format!("kubepods-besteffort-pod{underscored}.slice"),
            format!("cri-containerd-{tag}.scope"),
        ] {
            dir = dir.join(name);
            std::fs::create_dir_all(&dir).expect("create a cgroup");
            cgroup_chain.push(dir.clone());
        }
        Self {
            uid: uid.to_owned(),
            root,
            volume_dir,
            cgroup_dir: dir,
            cgroup_chain,
        }
    }

    /// Runs `script` with `sh -c` inside the pod's cgroup (it moves itself
    /// there first) and waits for it.
    ///
    /// # Panics
    /// If it cannot start.
    pub fn run_in_pod(&self, script: &str) -> Output {
        in_cgroup(&self.cgroup_dir, script)
    }
}

/// Runs `script` with `sh -c` inside cgroup `dir` and waits for it.
///
/// # Panics
/// If it cannot start.
pub fn in_cgroup(dir: &Path, script: &str) -> Output {
    let procs = dir.join("cgroup.procs");
    Command::new("sh")
        .args([
            "-c",
            &format!("echo $$ > '{}' && {script}", procs.display()),
        ])
        .output()
        .expect("run sh")
}

impl Drop for KubeletPod {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.volume_dir).status();
        let _ = std::fs::remove_dir_all(&self.root);
        for dir in self.cgroup_chain.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}
