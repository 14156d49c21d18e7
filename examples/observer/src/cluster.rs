//! `--kubeconfig FILE` / `--kube` for the commands that read Kubernetes
//! objects: the cluster is watched (`edgewise-k8s`, [`watch`]). The
//! one-shot commands (`resolve`, `edges`, `identity build`) get its
//! objects, once listed, in a file of their own that they read beside the
//! ones they were given ([`ClusterFile`]); `identity serve` follows the
//! watch's changes itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use edgewise_k8s::{ClusterWatch, Synced, WatchError};

/// How long a command waits for the cluster's first full list.
pub const SYNC_WAIT: Duration = Duration::from_secs(30);

/// Failed list or watch attempts after which a command gives up.
pub const FAILED_ATTEMPTS: u64 = 3;

/// Where the objects come from besides files.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// Watch the cluster this kubeconfig names for the objects (pods,
    /// services, EndpointSlices, nodes, namespaces, NetworkPolicies).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Watch the cluster found as kubectl finds it: in-cluster, else
    /// `$KUBECONFIG` or `~/.kube/config`.
    #[arg(long)]
    pub kube: bool,
}

/// Why the cluster's objects cannot be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The watch cannot start.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// The cluster was not listed in time.
    #[error("the cluster was not listed within {} s", SYNC_WAIT.as_secs())]
    NotSynced,
    /// Listing kept failing (unreachable, refused, forbidden).
    #[error("the cluster cannot be listed ({0} failed attempts)")]
    Unreachable(u64),
    /// The objects file cannot be written.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The cluster's objects in a file, removed when dropped.
pub struct ClusterFile {
    path: PathBuf,
}

fn write(path: &Path, json: &[u8]) -> Result<(), ClusterError> {
    // Written beside and renamed: a reader never sees half a file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, json)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|source| ClusterError::Write {
            path: path.to_owned(),
            source,
        })
}

/// Watches the cluster `args` name, if any, once every kind is listed.
///
/// # Errors
/// [`ClusterError`] when the watch cannot start or the cluster is not
/// listed within [`SYNC_WAIT`].
pub fn watch(args: &ClusterArgs) -> Result<Option<ClusterWatch>, ClusterError> {
    if args.kubeconfig.is_none() && !args.kube {
        return Ok(None);
    }
    let watch = ClusterWatch::start(args.kubeconfig.as_deref())?;
    match watch.wait_synced(SYNC_WAIT, FAILED_ATTEMPTS) {
        Synced::Listed => Ok(Some(watch)),
        Synced::TimedOut => Err(ClusterError::NotSynced),
        Synced::Failing(errors) => Err(ClusterError::Unreachable(errors)),
    }
}

impl ClusterFile {
    /// Watches the cluster `args` name, if any, and writes its objects once
    /// listed.
    ///
    /// # Errors
    /// [`ClusterError`] when the watch cannot start, the cluster is not
    /// listed within [`SYNC_WAIT`], or the file cannot be written.
    pub fn start(args: &ClusterArgs) -> Result<Option<Self>, ClusterError> {
        let Some(watch) = watch(args)? else {
            return Ok(None);
        };
        let path =
            std::env::temp_dir().join(format!("edgewise-cluster-{}.json", std::process::id()));
        write(&path, &watch.everything().0)?;
        Ok(Some(Self { path }))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ClusterFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
