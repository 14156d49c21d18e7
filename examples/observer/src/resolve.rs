//! `edgewise resolve`: Kubernetes objects in, peer strings resolved out.
//!
//! Every `--objects` file (a `kubectl ... -o json` list, single objects or
//! watch events) is loaded in order into one [`IpIndex`]; any object that
//! cannot be used fails the command, naming the file and the object, so a
//! peer is never printed as unknown because its pod was silently dropped.

use std::path::PathBuf;

use edgewise_ip_index::{InputError, IpIndex, PeerResolver};
use edgewise_time::UnixNanos;

/// Why `edgewise resolve` could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// An objects file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An objects file holds something that cannot be used.
    #[error("{}: {error}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// The first problem in it.
        error: InputError,
    },
}

/// Builds an index from the `objects` files, in order.
///
/// # Errors
/// [`ResolveError`] for the first file that cannot be read or that holds
/// anything that cannot be used.
pub fn load_index(objects: &[PathBuf]) -> Result<IpIndex, ResolveError> {
    let mut index = IpIndex::default();
    for path in objects {
        let input = std::fs::read(path).map_err(|source| ResolveError::Read {
            path: path.clone(),
            source,
        })?;
        if let Some(error) = index.load(&input).errors.into_iter().next() {
            return Err(ResolveError::Input {
                path: path.clone(),
                error,
            });
        }
    }
    Ok(index)
}

/// Resolves each peer in order (`internet` marks them all as internet
/// peers, which stay as given).
pub fn resolve_peers(index: &IpIndex, peers: &[String], internet: bool) -> Vec<String> {
    let mut resolver = PeerResolver::new(index.reader());
    let now = UnixNanos::from_system_time(std::time::SystemTime::now());
    peers
        .iter()
        .map(|peer| resolver.resolve_peer_str(peer, internet, now).into_owned())
        .collect()
}
