//! [`Pki`]: a throwaway certificate authority for TLS tests, written as PEM
//! files into a folder: a CA, a server certificate it signed for
//! `127.0.0.1` and `localhost`, a client certificate it signed, a server
//! certificate that expired, and a second CA that signed nothing the
//! others trust.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};

/// The files of a [`Pki`].
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate.
    pub ca: PathBuf,
    /// Another CA, which signed nothing here.
    pub other_ca: PathBuf,
    /// The server's certificate and key.
    pub server: (PathBuf, PathBuf),
    /// A server certificate that expired in 2020, and its key.
    pub expired: (PathBuf, PathBuf),
    /// A client certificate and key.
    pub client: (PathBuf, PathBuf),
}

fn ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let key = KeyPair::generate().expect("a CA key");
    let mut params = CertificateParams::new(Vec::new()).expect("CA parameters");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).expect("a CA certificate");
    (Issuer::new(params, key), cert.pem())
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    usage: ExtendedKeyUsagePurpose,
    expired: bool,
) -> (String, String) {
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, "edgewise test");
    params.extended_key_usages = vec![usage];
    if expired {
        params.not_before = date_time_ymd(2019, 1, 1);
        params.not_after = date_time_ymd(2020, 1, 1);
    }
    let cert = params.signed_by(&key, issuer).expect("a certificate");
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("a PEM file");
    path
}

impl Pki {
    /// Makes the files in `dir` (created if needed).
    ///
    /// # Panics
    /// When the folder cannot be written.
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("the PKI folder");
        let (issuer, ca_pem) = ca("edgewise test CA");
        let (_, other_pem) = ca("another CA");
        let (server, server_key) = leaf(&issuer, ExtendedKeyUsagePurpose::ServerAuth, false);
        let (expired, expired_key) = leaf(&issuer, ExtendedKeyUsagePurpose::ServerAuth, true);
        let (client, client_key) = leaf(&issuer, ExtendedKeyUsagePurpose::ClientAuth, false);
        Self {
            ca: write(dir, "ca.pem", &ca_pem),
            other_ca: write(dir, "other-ca.pem", &other_pem),
            server: (
                write(dir, "server.pem", &server),
                write(dir, "server-key.pem", &server_key),
            ),
            expired: (
                write(dir, "expired.pem", &expired),
                write(dir, "expired-key.pem", &expired_key),
            ),
            client: (
                write(dir, "client.pem", &client),
                write(dir, "client-key.pem", &client_key),
            ),
        }
    }
}
