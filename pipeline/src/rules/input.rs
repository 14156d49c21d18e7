//! What the rules see of an edge: [`RuleInput`], the variable tree, and
//! the types the load-time check holds expressions against.

use std::collections::BTreeMap;

use cel::Context;
use edgewise_ip_index::ClusterObject;
use serde::Serialize;

use super::check::Ty;
use crate::records::EdgeRecord;

/// The variables an expression may use.
pub const VARIABLES: &[&str] = &[
    "identity",
    "src_label",
    "dst_label",
    "src_ip",
    "dst_ip",
    "dst_port",
    "proto",
    "dns",
    "edge",
    "ja4t",
    "ja4ts",
    "ja4",
    "ja4s",
    "tls",
    "service",
    "service_product",
    "service_version",
    "flow",
    "net",
];

/// What the rules see of an edge (see the module docs of
/// [`crate::rules`] for each field).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleInput {
    /// `identity.k8s.*`.
    pub identity: IdentityInput,
    /// The source's labels.
    pub src_label: BTreeMap<String, String>,
    /// The destination's labels.
    pub dst_label: BTreeMap<String, String>,
    /// The client's address.
    pub src_ip: String,
    /// The server's address.
    pub dst_ip: String,
    /// The server's port (a CEL `int`).
    pub dst_port: i64,
    /// `tcp` or `udp`.
    pub proto: String,
    /// `dns.fqdn`.
    pub dns: DnsInput,
    /// `edge.*`.
    pub edge: EdgeInput,
    /// The client's JA4T.
    pub ja4t: String,
    /// The server's JA4TS.
    pub ja4ts: String,
    /// The client's JA4 (its ClientHello to this server).
    pub ja4: String,
    /// The server's JA4S.
    pub ja4s: String,
    /// `tls.*`: what the ClientHello asked for.
    pub tls: TlsInput,
    /// The service the first payload showed.
    pub service: String,
    /// The server's product (nmap's database).
    pub service_product: String,
    /// Its version.
    pub service_version: String,
    /// `flow.*`: the client address's behaviour over the last minute.
    pub flow: FlowInput,
    /// `net.*`: where the addresses are.
    pub net: NetInput,
}

/// `identity`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdentityInput {
    /// `identity.k8s`.
    pub k8s: K8sInput,
}

/// `identity.k8s`.
#[derive(Debug, Clone, Default, Serialize)]
#[expect(missing_docs, reason = "documented in the rules module's table")]
pub struct K8sInput {
    pub src_namespace: String,
    pub src_workload: String,
    pub src_kind: String,
    pub src_name: String,
    pub src_service_account: String,
    pub src_label: BTreeMap<String, String>,
    pub dst_namespace: String,
    pub dst_workload: String,
    pub dst_kind: String,
    pub dst_name: String,
    pub dst_service_account: String,
    pub dst_label: BTreeMap<String, String>,
}

/// `dns`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DnsInput {
    /// The name this edge's client resolved the server from (empty when
    /// only other clients did).
    pub fqdn: String,
}

/// `tls`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsInput {
    /// The server name the client asked for (SNI).
    pub sni: String,
    /// The first protocol it offered by ALPN.
    pub alpn: String,
}

/// `edge`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EdgeInput {
    /// Allowed by NetworkPolicy.
    pub declared: bool,
    /// Denied by NetworkPolicy.
    pub policy_violation: bool,
    /// `declared`, `violation` or `not_governed`.
    pub verdict: String,
}

/// `flow`: what the client address did over the last minute.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct FlowInput {
    /// Distinct server ports it connected to.
    pub unique_dst_ports: i64,
    /// New flows it started.
    pub flows_per_min: i64,
    /// Shannon entropy (bits) of its flows' server ports.
    pub dst_port_entropy: f64,
}

/// `net`: where the edge's addresses are.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "the rule variables net.*, as rules name them"
)]
pub struct NetInput {
    /// The client is inside the pod CIDRs.
    pub src_pod: bool,
    /// The server is inside the pod CIDRs.
    pub dst_pod: bool,
    /// The server is inside the home networks.
    pub dst_home: bool,
    /// The server is outside them.
    pub dst_external: bool,
}

impl RuleInput {
    /// What the rules see of an edge record, its client's behaviour and
    /// where its addresses are.
    pub fn of(record: &EdgeRecord, flow: FlowInput, net: NetInput) -> Self {
        let mut input = Self {
            src_ip: record.src.ip.to_string(),
            dst_ip: record.dst.ip.to_string(),
            dst_port: i64::from(record.dst.port),
            proto: record.proto.as_str().to_owned(),
            ja4t: record.ja4t.clone().unwrap_or_default(),
            ja4ts: record.ja4ts.clone().unwrap_or_default(),
            ja4: record.ja4.clone().unwrap_or_default(),
            ja4s: record.ja4s.clone().unwrap_or_default(),
            tls: TlsInput {
                sni: record
                    .tls
                    .as_ref()
                    .and_then(|t| t.sni.clone())
                    .unwrap_or_default(),
                alpn: record
                    .tls
                    .as_ref()
                    .and_then(|t| t.alpn.clone())
                    .unwrap_or_default(),
            },
            service: record.service.clone().unwrap_or_default(),
            service_product: record.service_product.clone().unwrap_or_default(),
            service_version: record.service_version.clone().unwrap_or_default(),
            flow,
            net,
            ..RuleInput::default()
        };
        if record.dst.fqdn_source == Some(crate::FqdnSource::Client) {
            input.dns.fqdn = record.dst.fqdn.clone().unwrap_or_default();
        }
        record.verdict.clone_into(&mut input.edge.verdict);
        input.edge.declared = record.verdict == "declared";
        input.edge.policy_violation = record.verdict == "violation";
        let k8s = &mut input.identity.k8s;
        if let Some(object) = &record.src.identity {
            let fields = [
                &mut k8s.src_namespace,
                &mut k8s.src_workload,
                &mut k8s.src_kind,
                &mut k8s.src_name,
                &mut k8s.src_service_account,
            ];
            fill_side(object, fields, &mut input.src_label);
            k8s.src_label.clone_from(&input.src_label);
        }
        if let Some(object) = &record.dst.identity {
            let fields = [
                &mut k8s.dst_namespace,
                &mut k8s.dst_workload,
                &mut k8s.dst_kind,
                &mut k8s.dst_name,
                &mut k8s.dst_service_account,
            ];
            fill_side(object, fields, &mut input.dst_label);
            k8s.dst_label.clone_from(&input.dst_label);
        }
        input
    }
}

/// One side of `identity.k8s` (namespace, workload name, kind, name,
/// service account) and its labels, from `object`.
fn fill_side(
    object: &ClusterObject,
    [namespace, workload, kind, name, account]: [&mut String; 5],
    labels: &mut BTreeMap<String, String>,
) {
    *namespace = object.namespace.clone().unwrap_or_default();
    *workload = object
        .workload
        .as_ref()
        .map(|w| w.name.clone())
        .unwrap_or_default();
    kind.push_str(object.kind.as_str());
    name.clone_from(&object.name);
    *account = object.service_account.clone().unwrap_or_default();
    labels.clone_from(&object.labels);
}

/// A scope over `root` holding `input`'s fields as variables.
pub(super) fn scope_of<'p>(
    root: &'p Context<'static, 'static>,
    input: &RuleInput,
) -> Option<Context<'p, 'static>> {
    let mut context = root.new_inner_scope();
    context.add_variable("identity", &input.identity).ok()?;
    context.add_variable("src_label", &input.src_label).ok()?;
    context.add_variable("dst_label", &input.dst_label).ok()?;
    context.add_variable("src_ip", input.src_ip.as_str()).ok()?;
    context.add_variable("dst_ip", input.dst_ip.as_str()).ok()?;
    context.add_variable("dst_port", input.dst_port).ok()?;
    context.add_variable("proto", input.proto.as_str()).ok()?;
    context.add_variable("dns", &input.dns).ok()?;
    context.add_variable("edge", &input.edge).ok()?;
    context.add_variable("ja4t", input.ja4t.as_str()).ok()?;
    context.add_variable("ja4ts", input.ja4ts.as_str()).ok()?;
    context.add_variable("ja4", input.ja4.as_str()).ok()?;
    context.add_variable("ja4s", input.ja4s.as_str()).ok()?;
    context.add_variable("tls", &input.tls).ok()?;
    context
        .add_variable("service", input.service.as_str())
        .ok()?;
    context
        .add_variable("service_product", input.service_product.as_str())
        .ok()?;
    context
        .add_variable("service_version", input.service_version.as_str())
        .ok()?;
    context.add_variable("flow", input.flow).ok()?;
    context.add_variable("net", input.net).ok()?;
    Some(context)
}

/// The type of a label map.
pub(super) fn labels() -> Ty {
    Ty::Map(Box::new(Ty::String), Box::new(Ty::String))
}

/// The type of a top-level variable.
pub(super) fn root(name: &str) -> Option<Ty> {
    Some(match name {
        "identity" => Ty::Object("identity", identity, &["k8s"]),
        "src_label" | "dst_label" => labels(),
        "src_ip" | "dst_ip" | "proto" | "ja4t" | "ja4ts" | "ja4" | "ja4s" | "service"
        | "service_product" | "service_version" => Ty::String,
        "tls" => Ty::Object("tls", tls, &["sni", "alpn"]),
        "dst_port" => Ty::Int,
        "dns" => Ty::Object("dns", dns, &["fqdn"]),
        "edge" => Ty::Object("edge", edge, &["declared", "policy_violation", "verdict"]),
        "flow" => Ty::Object(
            "flow",
            flow,
            &["unique_dst_ports", "flows_per_min", "dst_port_entropy"],
        ),
        "net" => Ty::Object(
            "net",
            net,
            &["src_pod", "dst_pod", "dst_home", "dst_external"],
        ),
        _ => return None,
    })
}

fn identity(name: &str) -> Option<Ty> {
    (name == "k8s").then_some(Ty::Object("identity.k8s", k8s, K8S_MEMBERS))
}

/// The source's members first: [`SRC_MEMBERS`] is their run.
const K8S_MEMBERS: &[&str] = &[
    "src_namespace",
    "src_workload",
    "src_kind",
    "src_name",
    "src_service_account",
    "src_label",
    "dst_namespace",
    "dst_workload",
    "dst_kind",
    "dst_name",
    "dst_service_account",
    "dst_label",
];

/// The members of `identity.k8s` about the source (what a `secret_read`
/// rule's reader has).
pub(super) const SRC_MEMBERS: &[&str] = K8S_MEMBERS.split_at(6).0;

fn k8s(name: &str) -> Option<Ty> {
    match name {
        "src_label" | "dst_label" => Some(labels()),
        _ if K8S_MEMBERS.contains(&name) => Some(Ty::String),
        _ => None,
    }
}

fn tls(name: &str) -> Option<Ty> {
    matches!(name, "sni" | "alpn").then_some(Ty::String)
}

fn dns(name: &str) -> Option<Ty> {
    (name == "fqdn").then_some(Ty::String)
}

fn edge(name: &str) -> Option<Ty> {
    match name {
        "declared" | "policy_violation" => Some(Ty::Bool),
        "verdict" => Some(Ty::String),
        _ => None,
    }
}

fn flow(name: &str) -> Option<Ty> {
    match name {
        "unique_dst_ports" | "flows_per_min" => Some(Ty::Int),
        "dst_port_entropy" => Some(Ty::Double),
        _ => None,
    }
}

fn net(name: &str) -> Option<Ty> {
    matches!(name, "src_pod" | "dst_pod" | "dst_home" | "dst_external").then_some(Ty::Bool)
}
