//! Server TLS (rustls, the ring provider) from PEM files, read again when
//! they change.
//!
//! [`TlsFiles`] names a certificate chain, its private key and, for mutual
//! TLS, a bundle of client CAs (a client without a certificate signed by
//! one of them is refused in the handshake). [`load`] reads them into a
//! rustls configuration that offers HTTP/2 and HTTP/1.1 by ALPN; every
//! error names the file and what is wrong with it. A running server looks
//! at the files' modification times and sizes every
//! [`RELOAD_CHECK`] and swaps in a configuration read again; a rewrite
//! that does not load (a key that does not match, a half-written file)
//! keeps the previous one and is counted, so a rotation never takes the
//! listener down. Connections already open keep the certificate they
//! started with.
//!
//! A failed handshake is counted and logged at most once per peer address
//! a minute ([`PeerLog`]), so a scanner cannot flood the log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// How often a running server looks for changed TLS files.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// The PEM files of a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates that client certificates must chain to; set, every
    /// client must present one (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind needed.
    #[error("{}: {problem}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        problem: String,
    },
    /// rustls refused the combination (a key that does not match the
    /// certificate, a CA that cannot be used).
    #[error("{}: {problem}", path.display())]
    Config {
        /// The file at fault (the key, or the client CA bundle).
        path: PathBuf,
        /// rustls's reason.
        problem: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The certificates of a PEM file (at least one).
///
/// # Errors
/// [`TlsError`] naming the file.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            problem: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            problem: "no CERTIFICATE block".to_owned(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM file.
///
/// # Errors
/// [`TlsError`] naming the file.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        problem: format!("no usable private key ({e})"),
    })
}

/// A rustls configuration from `files` (see the module docs).
///
/// # Errors
/// [`TlsError`] naming the file at fault.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certificates(&files.cert)?;
    let key = read_private_key(&files.key)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config {
            path: files.cert.clone(),
            problem: e.to_string(),
        })?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(path)? {
                roots.add(cert).map_err(|e| TlsError::Config {
                    path: path.clone(),
                    problem: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Config {
                    path: path.clone(),
                    problem: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config {
            path: files.key.clone(),
            problem: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The files' modification times and sizes, to notice a rewrite.
pub(crate) fn stamps(files: &TlsFiles) -> Vec<Option<(SystemTime, u64)>> {
    std::iter::once(&files.cert)
        .chain(std::iter::once(&files.key))
        .chain(files.client_ca.as_ref())
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

/// The configuration in use, swapped when the files change.
pub(crate) struct Reloading {
    files: TlsFiles,
    stamps: Vec<Option<(SystemTime, u64)>>,
    current: Arc<ServerConfig>,
}

impl Reloading {
    pub(crate) fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let stamps = stamps(&files);
        let current = load(&files)?;
        Ok(Self {
            files,
            stamps,
            current,
        })
    }

    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current)
    }

    /// Reads the files again when they changed: `Some(Ok)` swapped in,
    /// `Some(Err)` kept the old one, `None` nothing changed.
    pub(crate) fn check(&mut self) -> Option<Result<(), TlsError>> {
        let now = stamps(&self.files);
        if now == self.stamps {
            return None;
        }
        self.stamps = now;
        Some(load(&self.files).map(|config| self.current = config))
    }
}

/// Remembers when each peer was last logged, so that a failure is logged
/// at most once per peer and interval; the memory is bounded
/// (the oldest entries are forgotten first when full).
#[derive(Debug)]
pub struct PeerLog {
    every: Duration,
    max_peers: usize,
    last: Mutex<HashMap<IpAddr, Instant, foldhash::fast::RandomState>>,
}

impl PeerLog {
    /// At most once per peer and `every`, remembering `max_peers` peers.
    pub fn new(every: Duration, max_peers: usize) -> Self {
        Self {
            every,
            max_peers: max_peers.max(1),
            last: Mutex::default(),
        }
    }

    /// Whether a failure of `peer` at `now` should be logged.
    pub fn should_log(&self, peer: IpAddr, now: Instant) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = last.get(&peer)
            && now.saturating_duration_since(*at) < self.every
        {
            return false;
        }
        if last.len() >= self.max_peers && !last.contains_key(&peer) {
            let every = self.every;
            last.retain(|_, at| now.saturating_duration_since(*at) < every);
            if last.len() >= self.max_peers
                && let Some(oldest) = last.iter().min_by_key(|(_, at)| **at).map(|(p, _)| *p)
            {
                last.remove(&oldest);
            }
        }
        last.insert(peer, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_logged_once_a_minute_and_memory_stays_bounded() {
        let log = PeerLog::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(log.should_log(a, t0));
        assert!(!log.should_log(a, t0 + Duration::from_secs(59)));
        assert!(log.should_log(a, t0 + Duration::from_secs(61)));
        for n in 2..100u8 {
            log.should_log(IpAddr::from([10, 0, 0, n]), t0 + Duration::from_secs(62));
        }
        assert!(log.last.lock().unwrap().len() <= 2);
    }

    #[test]
    fn missing_and_wrong_files_are_named() {
        let files = TlsFiles {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
            client_ca: None,
        };
        let error = load(&files).err().unwrap().to_string();
        assert!(error.starts_with("/nonexistent/cert.pem"), "{error}");
        let dir = std::env::temp_dir().join(format!("edgewise-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, "not a pem\n").unwrap();
        let error = read_certificates(&cert).err().unwrap().to_string();
        assert!(error.contains("no CERTIFICATE block"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
