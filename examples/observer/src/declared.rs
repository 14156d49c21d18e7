//! Declared edges as documents: NetworkPolicies and Namespaces from
//! Kubernetes JSON (files or the cluster watch) and allow-list files, in
//! the form the policy stream carries ([`PolicyDocument`]), and compiled
//! into a [`PolicySet`] the same way whether they came from files or from
//! a stream.
//!
//! A document keeps what a verdict needs and nothing else: a
//! NetworkPolicy's kind, name, namespace and spec; a Namespace's name and
//! labels. So the stream does not carry `managedFields` or status, and a
//! change of those publishes nothing.

use std::path::{Path, PathBuf};

use edgewise_edge_set::{DeclaredPolicies, PolicySet};
use edgewise_identity::PolicyDocument;
use edgewise_identity::policy::DocumentKind;
use edgewise_ip_index::kube::{Found, walk};
use serde_json::{Value, json};

use crate::FileError;
use crate::edges::EdgesError;

/// The document of a NetworkPolicy or Namespace object (`None` for any
/// other kind, or one without a name).
pub fn document_of(object: &Value) -> Option<PolicyDocument> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    let metadata = object.get("metadata")?;
    let name = metadata.get("name").and_then(Value::as_str)?;
    match kind {
        "NetworkPolicy" => {
            let namespace = metadata.get("namespace").and_then(Value::as_str)?;
            let body = json!({
                "kind": "NetworkPolicy",
                "apiVersion": "networking.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace},
                "spec": object.get("spec").cloned().unwrap_or(Value::Null),
            });
            Some(PolicyDocument {
                key: format!("NetworkPolicy/{namespace}/{name}"),
                body: body.to_string(),
            })
        }
        "Namespace" => {
            let body = json!({
                "kind": "Namespace",
                "apiVersion": "v1",
                "metadata": {
                    "name": name,
                    "labels": metadata.get("labels").cloned().unwrap_or_else(|| json!({})),
                },
            });
            Some(PolicyDocument {
                key: format!("Namespace/{name}"),
                body: body.to_string(),
            })
        }
        _ => None,
    }
}

/// The documents of Kubernetes JSON files (objects and policies files;
/// objects of other kinds are passed over) and of allow-list files.
///
/// # Errors
/// [`EdgesError`] naming a file that cannot be read.
pub fn documents_of_files(
    kube_files: &[PathBuf],
    allow_lists: &[PathBuf],
) -> Result<Vec<PolicyDocument>, EdgesError> {
    let mut documents = Vec::new();
    for path in kube_files {
        let bytes = read(path)?;
        walk(&bytes, |found| {
            if let Found::Object(object) = found
                && !object.deleted
            {
                let mut value = object.value;
                if value.get("kind").is_none()
                    && let Some(map) = value.as_object_mut()
                {
                    map.insert("kind".to_owned(), Value::from(object.kind));
                }
                documents.extend(document_of(&value));
            }
        });
    }
    for path in allow_lists {
        let text = String::from_utf8_lossy(&read(path)?).into_owned();
        documents.push(PolicyDocument {
            key: format!("AllowList/{}", path.display()),
            body: text,
        });
    }
    Ok(documents)
}

fn read(path: &Path) -> Result<Vec<u8>, EdgesError> {
    Ok(std::fs::read(path).map_err(FileError::at(path))?)
}

/// Compiles documents into policies, as files are compiled.
///
/// # Errors
/// [`EdgesError`] for a document that cannot be used (naming its key).
pub fn compile(
    documents: impl IntoIterator<Item = PolicyDocument>,
) -> Result<PolicySet, EdgesError> {
    let mut declared = DeclaredPolicies::default();
    for document in documents {
        match document.kind() {
            Some(DocumentKind::AllowList) => {
                let name = document.key.trim_start_matches("AllowList/");
                declared
                    .load_allow_list(name, &document.body)
                    .map_err(|errors| EdgesError::AllowList { errors })?;
            }
            Some(DocumentKind::NetworkPolicy | DocumentKind::Namespace) => {
                if let Some(error) = declared
                    .load(document.body.as_bytes())
                    .errors
                    .into_iter()
                    .next()
                {
                    return Err(EdgesError::Policy {
                        path: PathBuf::from(document.key),
                        error,
                    });
                }
            }
            None => {}
        }
    }
    Ok(declared.compile())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_what_a_verdict_needs_and_compile() {
        let policy = json!({"kind": "NetworkPolicy", "metadata": {"name": "db", "namespace": "shop",
            "managedFields": [{"manager": "kubectl"}], "resourceVersion": "7"},
            "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"]}});
        let document = document_of(&policy).unwrap();
        assert_eq!(document.key, "NetworkPolicy/shop/db");
        assert!(!document.body.contains("managedFields"));
        let namespace = json!({"kind": "Namespace", "metadata": {"name": "shop",
            "labels": {"team": "a"}}, "status": {"phase": "Active"}});
        let ns = document_of(&namespace).unwrap();
        assert_eq!(ns.key, "Namespace/shop");
        assert!(document_of(&json!({"kind": "Pod", "metadata": {"name": "x"}})).is_none());
        let allow = PolicyDocument {
            key: "AllowList/ops.allow".into(),
            body: "shop/web -> shop/db 5432\n".into(),
        };
        let set = compile([document, ns, allow]).unwrap();
        assert_eq!(set.len(), 2);
        let wrong = PolicyDocument {
            key: "AllowList/bad".into(),
            body: "this is not a line\n".into(),
        };
        assert!(compile([wrong]).is_err());
    }
}
