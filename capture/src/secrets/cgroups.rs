//! Cgroup v2 ids back to paths: the kernel reports the opener's cgroup id
//! (`bpf_get_current_cgroup_id`), which is the inode number of the
//! cgroup's folder in the cgroup v2 hierarchy. [`CgroupPaths`] walks that
//! hierarchy and keeps the answers; an id it does not know makes it walk
//! again, at most once per [`RESCAN_EVERY`], so a flood of unknown ids
//! costs one walk per interval.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The least time between two walks of the hierarchy.
pub const RESCAN_EVERY: Duration = Duration::from_secs(1);

/// The most folders one walk visits (a node has a few thousand).
pub const MAX_CGROUPS: usize = 200_000;

/// Cgroup ids to paths (relative to the hierarchy's root, `/`-led).
#[derive(Debug)]
pub struct CgroupPaths {
    root: PathBuf,
    paths: HashMap<u64, String>,
    last_walk: Option<Instant>,
}

impl CgroupPaths {
    /// Paths under `root`, the cgroup v2 mount (see [`Self::find_root`]).
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            paths: HashMap::new(),
            last_walk: None,
        }
    }

    /// The cgroup v2 mount in a mount table (`/sys/fs/cgroup`, or
    /// `/sys/fs/cgroup/unified` on a hybrid host).
    pub fn find_root(mountinfo: &str) -> Option<PathBuf> {
        super::mounts(mountinfo)
            .into_iter()
            .find(|mount| mount.fstype == "cgroup2")
            .map(|mount| PathBuf::from(mount.mount_point))
    }

    /// The root walked.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of cgroup `id` (walking the hierarchy again when it is not
    /// known and the last walk is older than [`RESCAN_EVERY`]).
    pub fn path(&mut self, id: u64, now: Instant) -> Option<&str> {
        if !self.paths.contains_key(&id)
            && self
                .last_walk
                .is_none_or(|at| now.duration_since(at) >= RESCAN_EVERY)
        {
            self.walk(now);
        }
        self.paths.get(&id).map(String::as_str)
    }

    fn walk(&mut self, now: Instant) {
        self.last_walk = Some(now);
        self.paths.clear();
        let mut pending = vec![(self.root.clone(), String::from("/"))];
        while let Some((folder, path)) = pending.pop() {
            if let Ok(meta) = std::fs::metadata(&folder) {
                self.paths.insert(meta.ino(), path.clone());
            }
            if self.paths.len() >= MAX_CGROUPS {
                break;
            }
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let child = if path == "/" {
                        format!("/{name}")
                    } else {
                        format!("{path}/{name}")
                    };
                    pending.push((entry.path(), child));
                }
            }
        }
    }
}
