//! What a pod's secret volumes hold, from its spec (`spec.volumes`): which
//! Secret a file of a `secret` or `projected` volume comes from, so that a
//! read seen on the node ([`SecretFile`]) names the Secret, not only the
//! volume.
//!
//! A `secret` volume is one Secret (`secret.secretName`). A `projected`
//! volume mixes sources: Secrets, the service account token
//! (`serviceAccountToken.path`), ConfigMaps, the downward API and trust
//! bundles. A file is matched by the paths the sources name (`items[].path`
//! and the token's `path`); a file no path names belongs to the one Secret
//! source without items when there is exactly one, is not a secret when
//! only ConfigMap sources are without items, and is unknown otherwise.

use serde::Deserialize;

/// The most volumes, and sources per volume, read from one pod.
pub const MAX_VOLUMES: usize = 256;

/// One secret-bearing volume of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretVolumeSpec {
    /// The volume's name.
    pub volume: String,
    /// Files by the paths their sources name.
    pub paths: Vec<(String, SecretFile)>,
    /// What a file no path names is.
    pub otherwise: SecretFile,
}

/// What a file of a secret volume is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SecretFile {
    /// A key of this Secret (in the pod's namespace).
    Secret(String),
    /// The pod's service account token.
    ServiceAccountToken,
    /// Not a secret (a ConfigMap's key, the downward API, a trust bundle).
    NotSecret,
    /// The spec does not say (the volume is not in it, or several sources
    /// could hold the file).
    #[default]
    Unknown,
}

impl SecretVolumeSpec {
    /// What `file` (a path inside the volume) is.
    pub fn file(&self, file: &str) -> &SecretFile {
        self.paths
            .iter()
            .find(|(path, _)| path == file)
            .map_or(&self.otherwise, |(_, what)| what)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RawVolume {
    name: Option<String>,
    secret: Option<RawSecretSource>,
    projected: Option<RawProjected>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawSecretSource {
    secret_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawProjected {
    sources: Option<Vec<RawProjection>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawProjection {
    secret: Option<RawKeys>,
    config_map: Option<RawKeys>,
    #[serde(rename = "downwardAPI")]
    downward_api: Option<RawItems>,
    service_account_token: Option<RawPath>,
    cluster_trust_bundle: Option<RawPath>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawKeys {
    name: Option<String>,
    items: Option<Vec<RawPath>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawItems {
    items: Option<Vec<RawPath>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawPath {
    path: Option<String>,
}

/// The secret-bearing volumes of a pod's `spec.volumes` (others are
/// skipped; so is anything past [`MAX_VOLUMES`]).
pub(crate) fn secret_volumes(volumes: Vec<RawVolume>) -> Vec<SecretVolumeSpec> {
    volumes
        .into_iter()
        .take(MAX_VOLUMES)
        .filter_map(|raw| {
            let volume = raw.name.filter(|name| !name.is_empty())?;
            if let Some(secret) = raw.secret {
                let otherwise = secret
                    .secret_name
                    .filter(|name| !name.is_empty())
                    .map_or(SecretFile::Unknown, SecretFile::Secret);
                return Some(SecretVolumeSpec {
                    volume,
                    paths: Vec::new(),
                    otherwise,
                });
            }
            let sources = raw.projected?.sources.unwrap_or_default();
            Some(projected(volume, sources))
        })
        .collect()
}

fn projected(volume: String, sources: Vec<RawProjection>) -> SecretVolumeSpec {
    let mut spec = SecretVolumeSpec {
        volume,
        ..SecretVolumeSpec::default()
    };
    let mut whole_secrets = Vec::new();
    let mut whole_others = 0;
    let paths = |items: Option<Vec<RawPath>>| {
        items
            .into_iter()
            .flatten()
            .filter_map(|item| item.path)
            .collect::<Vec<_>>()
    };
    for source in sources.into_iter().take(MAX_VOLUMES) {
        if let Some(secret) = source.secret {
            let name = secret.name.unwrap_or_default();
            match secret.items {
                Some(items) if !items.is_empty() => {
                    for path in paths(Some(items)) {
                        spec.paths.push((path, SecretFile::Secret(name.clone())));
                    }
                }
                _ => whole_secrets.push(name),
            }
        }
        if let Some(config_map) = source.config_map {
            match config_map.items {
                Some(items) if !items.is_empty() => {
                    for path in paths(Some(items)) {
                        spec.paths.push((path, SecretFile::NotSecret));
                    }
                }
                _ => whole_others += 1,
            }
        }
        if let Some(downward) = source.downward_api {
            for path in paths(downward.items) {
                spec.paths.push((path, SecretFile::NotSecret));
            }
        }
        for (path, what) in [
            (
                source.service_account_token,
                SecretFile::ServiceAccountToken,
            ),
            (source.cluster_trust_bundle, SecretFile::NotSecret),
        ] {
            if let Some(path) = path.and_then(|p| p.path) {
                spec.paths.push((path, what));
            }
        }
    }
    spec.otherwise = match (whole_secrets.as_slice(), whole_others) {
        ([one], _) if !one.is_empty() && whole_others == 0 => SecretFile::Secret(one.clone()),
        ([], others) if others > 0 => SecretFile::NotSecret,
        _ => SecretFile::Unknown,
    };
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Vec<SecretVolumeSpec> {
        secret_volumes(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn secret_and_projected_volumes_name_their_files() {
        let specs = read(
            r#"[
            {"name": "db-creds", "secret": {"secretName": "postgres-password"}},
            {"name": "cache", "emptyDir": {}},
            {"name": "kube-api-access-x2x4", "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
            ]}},
            {"name": "mixed", "projected": {"sources": [
                {"secret": {"name": "tls", "items": [{"key": "tls.key", "path": "certs/tls.key"}]}},
                {"secret": {"name": "api-keys"}}
            ]}}
        ]"#,
        );
        let names: Vec<&str> = specs.iter().map(|s| s.volume.as_str()).collect();
        assert_eq!(names, ["db-creds", "kube-api-access-x2x4", "mixed"]);
        let secret = |name: &str| SecretFile::Secret(name.to_owned());
        assert_eq!(specs[0].file("password"), &secret("postgres-password"));
        assert_eq!(specs[1].file("token"), &SecretFile::ServiceAccountToken);
        assert_eq!(specs[1].file("ca.crt"), &SecretFile::NotSecret);
        assert_eq!(specs[1].file("namespace"), &SecretFile::NotSecret);
        assert_eq!(specs[1].file("other"), &SecretFile::Unknown);
        assert_eq!(specs[2].file("certs/tls.key"), &secret("tls"));
        assert_eq!(specs[2].file("stripe"), &secret("api-keys"));
    }

    #[test]
    fn several_whole_sources_leave_a_file_unknown() {
        let specs = read(
            r#"[{"name": "v", "projected": {"sources": [
                {"secret": {"name": "a"}}, {"secret": {"name": "b"}}]}},
                {"name": "w", "projected": {"sources": [{"configMap": {"name": "c"}}]}},
                {"name": "x", "secret": {}}]"#,
        );
        assert_eq!(specs[0].file("k"), &SecretFile::Unknown);
        assert_eq!(specs[1].file("k"), &SecretFile::NotSecret);
        assert_eq!(specs[2].file("k"), &SecretFile::Unknown);
    }
}
