//! `edgewise run`'s secret-volume observer (`secret_reads`): the kernel
//! program on file opens ([`edgewise_capture::secrets`]), the node's mount
//! table naming the pods' secret volumes, and the cgroup v2 hierarchy
//! leading readers back to their pods; each read goes to the pipeline,
//! which names the secret and the reader and keeps only new observations.
//!
//! - The hook is chosen at start (`secret_hook`, `auto` by default: the
//!   first the kernel accepts of BPF LSM, fentry, the open system calls'
//!   tracepoints) and said in the log and in `stats` (`secret_reads.hook`).
//! - The mount table is read at start and again whenever the kernel says
//!   a mount came or went (checked on every turn of the loop, so a new
//!   pod's volumes are in the kernel filter within a fraction of a second,
//!   before its containers start), and at least every [`RESCAN_EVERY`].
//! - A reader's cgroup path is found from its id by walking the
//!   hierarchy (again at most once a second for ids not seen before: a read
//!   whose cgroup is newer than the last walk waits for the next one, at
//!   most [`MAX_WAITING`] reads); a cgroup gone by then leaves the reader
//!   unnamed, never the read unrecorded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgewise_capture::secrets::{
    CgroupLookup, CgroupPaths, MountTable, SecretHook, SecretObserver, SecretOpen, SecretVolume,
};
use edgewise_pipeline::{Pipeline, SecretReadRecord};
use edgewise_time::MonotonicOffset;

use super::DaemonError;
use super::config::Settings;

/// Where the mount table is read unless `mountinfo` says otherwise.
pub const DEFAULT_MOUNTINFO: &str = "/proc/self/mountinfo";

/// The secret-volume observer's ring.
const RING_BYTES: u32 = 1 << 20;

/// The longest time between two reads of the mount table.
pub const RESCAN_EVERY: Duration = Duration::from_secs(10);

/// The most reads waiting for the next walk of the cgroup hierarchy; past
/// it, a read goes on with its reader unnamed.
pub const MAX_WAITING: usize = 4_096;

/// The observer, the volumes it filters on and the cgroup paths.
pub struct SecretWatch {
    observer: SecretObserver,
    mounts: MountTable,
    volumes: HashMap<u32, SecretVolume>,
    cgroups: Option<CgroupPaths>,
    /// Reads whose cgroup is newer than the last walk.
    waiting: Vec<SecretOpen>,
    scanned: Instant,
}

impl SecretWatch {
    /// Starts the observer when `secret_reads` is set.
    ///
    /// # Errors
    /// [`DaemonError::Secrets`] naming what could not start.
    pub fn start(settings: &Settings) -> Result<Option<Self>, DaemonError> {
        if !settings.secret_reads {
            return Ok(None);
        }
        let failed = |what: String| DaemonError::Secrets(what);
        let hook = settings
            .secret_hook
            .as_deref()
            .and_then(SecretHook::parse)
            .unwrap_or_default();
        let observer = SecretObserver::attach(hook, RING_BYTES)
            .map_err(|e| failed(format!("attaching the observer: {e}")))?;
        let path = settings
            .mountinfo
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MOUNTINFO));
        let mut mounts = MountTable::open(&path)
            .map_err(|e| failed(format!("the mount table {}: {e}", path.display())))?;
        let table = mounts
            .read()
            .map_err(|e| failed(format!("the mount table {}: {e}", path.display())))?;
        let cgroups = cgroup_root(settings, &table)?.map(CgroupPaths::new);
        if let Some(paths) = &cgroups {
            tracing::info!(
                hook = observer.hook().as_str(),
                mountinfo = %path.display(),
                cgroups = %paths.root().display(),
                "secret-volume observer attached"
            );
        } else {
            tracing::warn!(
                hook = observer.hook().as_str(),
                "secret-volume observer attached, but no cgroup v2 hierarchy was found: readers will not be named"
            );
        }
        let mut watch = Self {
            observer,
            mounts,
            volumes: HashMap::new(),
            cgroups,
            waiting: Vec::new(),
            scanned: Instant::now(),
        };
        watch.rescan()?;
        Ok(Some(watch))
    }

    /// Reads the mount table again and gives the kernel filter its
    /// volumes.
    ///
    /// # Errors
    /// [`DaemonError::Secrets`] when the table cannot be read or the
    /// filter refuses (more volumes than it holds).
    pub fn rescan(&mut self) -> Result<(), DaemonError> {
        self.scanned = Instant::now();
        let path = self.mounts.path().display().to_string();
        let volumes = self
            .mounts
            .secret_volumes()
            .map_err(|e| DaemonError::Secrets(format!("the mount table {path}: {e}")))?;
        self.observer
            .set_volumes(volumes.iter().map(|volume| volume.dev))
            .map_err(|e| DaemonError::Secrets(e.to_string()))?;
        if volumes.len() != self.volumes.len() {
            tracing::debug!(volumes = volumes.len(), "secret volumes");
        }
        self.volumes = volumes
            .into_iter()
            .map(|volume| (volume.dev, volume))
            .collect();
        Ok(())
    }

    /// The records of the reads reported since the last call (the mount
    /// table read again first when it changed), and the hook and the
    /// kernel's count of lost reports told to the pipeline (for `stats`).
    /// `offset` turns the kernel's monotonic times into Unix time.
    ///
    /// # Errors
    /// [`DaemonError::Secrets`] when the ring or the table cannot be read.
    pub fn poll(
        &mut self,
        pipeline: &mut Pipeline,
        offset: MonotonicOffset,
    ) -> Result<Vec<SecretReadRecord>, DaemonError> {
        if self.mounts.changed().unwrap_or(true) || self.scanned.elapsed() >= RESCAN_EVERY {
            self.rescan()?;
        }
        let mut opens = std::mem::take(&mut self.waiting);
        self.observer
            .poll(Duration::ZERO, |open| opens.push(open))
            .map_err(|e| DaemonError::Secrets(e.to_string()))?;
        let now = Instant::now();
        let mut records = Vec::new();
        for open in opens {
            let cgroup = match self.cgroups.as_mut().map(|p| p.lookup(open.cgroup_id, now)) {
                Some(CgroupLookup::Found(path)) => Some(path.to_owned()),
                Some(CgroupLookup::Later) if self.waiting.len() < MAX_WAITING => {
                    self.waiting.push(open);
                    continue;
                }
                _ => None,
            };
            let record = pipeline.mounted_secret_read(
                &open,
                self.volumes.get(&open.dev),
                cgroup.as_deref(),
                offset.to_unix(open.time),
            );
            records.extend(record);
        }
        let lost = self.observer.counters().map_or(0, |c| c.lost);
        pipeline.set_secret_observer(self.observer.hook().as_str(), lost);
        Ok(records)
    }
}

/// The cgroup v2 hierarchy: `cgroup_root` (which must be a folder), else
/// the cgroup2 mount of the mount table, if any.
fn cgroup_root(settings: &Settings, table: &str) -> Result<Option<PathBuf>, DaemonError> {
    match &settings.cgroup_root {
        Some(root) if !root.is_dir() => Err(DaemonError::Secrets(format!(
            "cgroup_root {}: not a folder",
            root.display()
        ))),
        Some(root) => Ok(Some(root.clone())),
        None => Ok(CgroupPaths::find_root(table).filter(|root| Path::new(root).is_dir())),
    }
}
