//! Cgroup v2 ids back to paths: the kernel reports the opener's cgroup id
//! (`bpf_get_current_cgroup_id`), which is the inode number of the
//! cgroup's folder in the cgroup v2 hierarchy. [`CgroupPaths`] walks that
//! hierarchy and keeps the answers; an id it does not know makes it walk
//! again, at most once per [`RESCAN_EVERY`], so a flood of unknown ids
//! costs one walk per interval. An id met while walking is not allowed
//! yet is [`CgroupLookup::Later`]: the caller asks again once the interval
//! has passed (a cgroup made since the last walk, such as a new pod's).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The least time between two walks of the hierarchy.
pub const RESCAN_EVERY: Duration = Duration::from_secs(1);

/// The most folders one walk visits (a node has a few thousand).
pub const MAX_CGROUPS: usize = 200_000;

/// What [`CgroupPaths::lookup`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLookup<'a> {
    /// The cgroup's path.
    Found(&'a str),
    /// Not in the hierarchy at the last walk, made after the id was seen:
    /// the cgroup is gone (or was never in this hierarchy).
    Missing,
    /// Not known, and the last walk is too recent to walk again: ask once
    /// [`RESCAN_EVERY`] has passed.
    Later,
}

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
        match self.lookup(id, now) {
            CgroupLookup::Found(path) => Some(path),
            _ => None,
        }
    }

    /// The path of cgroup `id`, or why there is none (see
    /// [`CgroupLookup`]).
    pub fn lookup(&mut self, id: u64, now: Instant) -> CgroupLookup<'_> {
        if !self.paths.contains_key(&id) {
            let may_walk = self
                .last_walk
                .is_none_or(|at| now.saturating_duration_since(at) >= RESCAN_EVERY);
            if !may_walk {
                return CgroupLookup::Later;
            }
            self.walk(now);
        }
        self.paths
            .get(&id)
            .map_or(CgroupLookup::Missing, |path| CgroupLookup::Found(path))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Any folder tree stands for the hierarchy: a cgroup's id is its
    /// folder's inode number.
    #[test]
    fn a_cgroup_made_after_the_last_walk_is_found_at_the_next() {
        let root = std::env::temp_dir().join(format!("edgewise-cgroups-{}", std::process::id()));
        let pod = root.join("kubepods.slice/kubepods-pod1.slice");
        std::fs::create_dir_all(&pod).unwrap();
        let ino = |path: &Path| std::fs::metadata(path).unwrap().ino();
        let mut paths = CgroupPaths::new(root.clone());
        let start = Instant::now();
        assert_eq!(
            paths.lookup(ino(&pod), start),
            CgroupLookup::Found("/kubepods.slice/kubepods-pod1.slice")
        );
        assert_eq!(paths.path(ino(&root), start), Some("/"));
        let newer = pod.join("cri-containerd-a.scope");
        std::fs::create_dir(&newer).unwrap();
        assert_eq!(paths.lookup(ino(&newer), start), CgroupLookup::Later);
        let later = start + RESCAN_EVERY;
        assert_eq!(
            paths.lookup(ino(&newer), later),
            CgroupLookup::Found("/kubepods.slice/kubepods-pod1.slice/cri-containerd-a.scope")
        );
        assert_eq!(
            paths.lookup(u64::MAX, later + RESCAN_EVERY),
            CgroupLookup::Missing
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
