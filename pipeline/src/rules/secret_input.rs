//! What `secret_read` rules see of a read: [`SecretReadInput`], its
//! variable tree (`secret`, `identity.k8s.src_*`, `src_label`, `reader`)
//! and the types the load-time check holds expressions against.

use std::collections::BTreeMap;

use cel::Context;
use serde::Serialize;

use super::check::Ty;
use super::input::{SRC_MEMBERS, labels};

/// What the rules see of a secret read (see the module docs of
/// [`crate::rules`]).
#[derive(Debug, Clone, Default)]
pub struct SecretReadInput {
    /// `secret.*`.
    pub secret: SecretInput,
    /// `reader.*`.
    pub reader: ReaderInput,
    /// The candidate readers: one for a mounted read, one per workload
    /// running as the account for an API read (none: the account alone).
    pub candidates: Vec<Candidate>,
}

/// `secret`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecretInput {
    /// The Secret's name (the service account's for its token, the
    /// volume's when nothing else is known).
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// `mounted` or `api`.
    pub source: String,
    /// `secret`, `service_account_token` or `volume`.
    pub kind: String,
    /// `open`, `get`, `list` or `watch`.
    pub verb: String,
    /// The file inside the volume (mounted reads).
    pub file: String,
}

/// `reader`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReaderInput {
    /// The process's command (mounted reads).
    pub command: String,
    /// The reader is a pod (false for a host process).
    pub in_pod: bool,
}

/// One candidate reader: `identity.k8s.src_*` and `src_label`.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    /// The namespace.
    pub namespace: String,
    /// The workload's name.
    pub workload: String,
    /// `Pod` (mounted reads), empty for an API read's candidates.
    pub kind: String,
    /// The pod's name.
    pub name: String,
    /// The service account.
    pub service_account: String,
    /// The pod's labels.
    pub labels: BTreeMap<String, String>,
}

impl SecretReadInput {
    /// The candidates to evaluate, at least one.
    pub(super) fn readers(&self) -> Vec<Candidate> {
        if self.candidates.is_empty() {
            vec![Candidate::default()]
        } else {
            self.candidates.clone()
        }
    }
}

#[derive(Serialize)]
struct IdentityView<'a> {
    k8s: K8sView<'a>,
}

/// The names are the rule variables' (`identity.k8s.src_*`).
#[derive(Serialize)]
#[expect(
    clippy::struct_field_names,
    reason = "the rule variables identity.k8s.src_*, as rules name them"
)]
struct K8sView<'a> {
    src_namespace: &'a str,
    src_workload: &'a str,
    src_kind: &'a str,
    src_name: &'a str,
    src_service_account: &'a str,
    src_label: &'a BTreeMap<String, String>,
}

/// A scope over `root` holding the read's variables, as `reader` sees it.
pub(super) fn scope_of<'p>(
    root: &'p Context<'static, 'static>,
    input: &SecretReadInput,
    reader: &Candidate,
) -> Option<Context<'p, 'static>> {
    let mut context = root.new_inner_scope();
    let identity = IdentityView {
        k8s: K8sView {
            src_namespace: &reader.namespace,
            src_workload: &reader.workload,
            src_kind: &reader.kind,
            src_name: &reader.name,
            src_service_account: &reader.service_account,
            src_label: &reader.labels,
        },
    };
    context.add_variable("identity", &identity).ok()?;
    context.add_variable("src_label", &reader.labels).ok()?;
    context.add_variable("secret", &input.secret).ok()?;
    context.add_variable("reader", &input.reader).ok()?;
    Some(context)
}

/// The type of a top-level variable of a `secret_read` rule.
pub(super) fn root(name: &str) -> Option<Ty> {
    Some(match name {
        "identity" => Ty::Object("identity", identity, &["k8s"]),
        "src_label" => labels(),
        "secret" => Ty::Object("secret", secret, SECRET_MEMBERS),
        "reader" => Ty::Object("reader", reader, &["command", "in_pod"]),
        _ => return None,
    })
}

fn identity(name: &str) -> Option<Ty> {
    (name == "k8s").then_some(Ty::Object("identity.k8s", k8s, SRC_MEMBERS))
}

fn k8s(name: &str) -> Option<Ty> {
    match name {
        "src_label" => Some(labels()),
        _ if SRC_MEMBERS.contains(&name) => Some(Ty::String),
        _ => None,
    }
}

const SECRET_MEMBERS: &[&str] = &["name", "namespace", "source", "kind", "verb", "file"];

fn secret(name: &str) -> Option<Ty> {
    SECRET_MEMBERS.contains(&name).then_some(Ty::String)
}

fn reader(name: &str) -> Option<Ty> {
    match name {
        "command" => Some(Ty::String),
        "in_pod" => Some(Ty::Bool),
        _ => None,
    }
}
