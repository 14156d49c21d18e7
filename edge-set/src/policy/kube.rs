//! Kubernetes `NetworkPolicy` JSON (`kubectl get networkpolicies -A -o
//! json`, single objects or watch events) and `Namespace` objects (for
//! `namespaceSelector`), read into [`DeclaredPolicies`].
//!
//! A policy is checked as the API server validates it (`networking/v1`):
//! a peer with an `ipBlock` has no selector; an `ipBlock`'s CIDR parses and
//! each `except` lies strictly inside it; a port is 1..=65535 or an IANA
//! service name (at most 15 lower-case letters, digits and `-`); `endPort`
//! needs a numeric `port` and is not below it; a protocol is TCP, UDP or
//! SCTP; `policyTypes` holds only `Ingress` and `Egress`. A policy that
//! fails is an [`InputError`] naming it and the field, and the version
//! already held under its name (if any) stays. Other kinds are skipped and
//! counted.
//!
//! `policyTypes`, when absent, is `Ingress`, plus `Egress` when the policy
//! has egress rules, as the API server defaults it.

use std::collections::BTreeMap;

use edgewise_ip_index::{Found, FoundObject, InputError, Protocol, walk};
use ipnet::IpNet;
use serde::Deserialize;

use super::{IpBlock, Namespaces, Peer, PodSet, Pods, Policy, PolicySet, PortRule, Rule};
use crate::selector::{LabelSelector, RawSelector};

/// The policies and namespace labels known, by name, as they change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredPolicies {
    policies: BTreeMap<String, Policy>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

/// What one [`DeclaredPolicies::load`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// Policies added or replaced.
    pub policies: usize,
    /// Namespaces added or replaced.
    pub namespaces: usize,
    /// Policies and namespaces removed (`DELETED` events).
    pub deleted: usize,
    /// Objects of other kinds, counted by kind.
    pub skipped_kinds: BTreeMap<String, usize>,
    /// What could not be used (nothing of it was applied).
    pub errors: Vec<InputError>,
}

impl DeclaredPolicies {
    /// Reads NetworkPolicy and Namespace objects from Kubernetes JSON and
    /// applies them in input order.
    pub fn load(&mut self, input: &[u8]) -> LoadReport {
        let mut report = LoadReport::default();
        walk(input, |found| match found {
            Found::Object(object) => self.apply(&object, &mut report),
            Found::Bookmark => {}
            Found::Error(error) => report.errors.push(error),
        });
        report
    }

    fn apply(&mut self, found: &FoundObject, report: &mut LoadReport) {
        let result = match found.kind.as_str() {
            "NetworkPolicy" => read_policy(found).map(|policy| {
                if found.deleted {
                    report.deleted += usize::from(self.policies.remove(&policy.name).is_some());
                } else {
                    report.policies += 1;
                    self.insert(policy);
                }
            }),
            "Namespace" => read_namespace(found).map(|(name, labels)| {
                if found.deleted {
                    report.deleted += usize::from(self.namespaces.remove(&name).is_some());
                } else {
                    report.namespaces += 1;
                    self.namespaces.insert(name, labels);
                }
            }),
            other => {
                let label = if other.is_empty() { "<no kind>" } else { other };
                *report.skipped_kinds.entry(label.to_owned()).or_default() += 1;
                Ok(())
            }
        };
        if let Err(problem) = result {
            report.errors.push(found.error(problem));
        }
    }

    /// Adds `policy`, replacing the one of the same name.
    pub fn insert(&mut self, policy: Policy) {
        self.policies.insert(policy.name.clone(), policy);
    }

    /// Removes the policy named `name`; whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        self.policies.remove(name).is_some()
    }

    /// Sets a namespace's labels.
    pub fn set_namespace(&mut self, name: String, labels: BTreeMap<String, String>) {
        self.namespaces.insert(name, labels);
    }

    /// The policies, in name order.
    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values()
    }

    /// The number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The set that evaluates edges against these policies.
    pub fn compile(&self) -> PolicySet {
        PolicySet::new(self.policies.values().cloned(), self.namespaces.clone())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
/// A NetworkPolicy, or the metadata of a Namespace.
struct RawNetworkPolicy {
    metadata: RawMeta,
    spec: RawSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawMeta {
    name: Option<String>,
    namespace: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawSpec {
    pod_selector: Option<RawSelector>,
    policy_types: Option<Vec<String>>,
    ingress: Option<Vec<RawRule>>,
    egress: Option<Vec<RawRule>>,
}

/// An ingress rule (`from`) or egress rule (`to`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawRule {
    from: Option<Vec<RawPeer>>,
    to: Option<Vec<RawPeer>>,
    ports: Option<Vec<RawPort>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawPeer {
    pod_selector: Option<RawSelector>,
    namespace_selector: Option<RawSelector>,
    ip_block: Option<RawIpBlock>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawIpBlock {
    cidr: Option<String>,
    except: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawPort {
    protocol: Option<String>,
    port: Option<IntOrString>,
    end_port: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IntOrString {
    Int(i64),
    String(String),
}

/// The object's fields and its name, which every object needs.
fn read_raw(found: &FoundObject) -> Result<(RawNetworkPolicy, String), String> {
    let mut raw = RawNetworkPolicy::deserialize(&found.value).map_err(|e| e.to_string())?;
    let name = raw
        .metadata
        .name
        .take()
        .filter(|n| !n.is_empty())
        .ok_or("metadata.name is missing")?;
    Ok((raw, name))
}

fn read_namespace(found: &FoundObject) -> Result<(String, BTreeMap<String, String>), String> {
    let (raw, name) = read_raw(found)?;
    Ok((name, raw.metadata.labels.unwrap_or_default()))
}

fn read_policy(found: &FoundObject) -> Result<Policy, String> {
    let (raw, name) = read_raw(found)?;
    let namespace = raw
        .metadata
        .namespace
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let spec = raw.spec;
    let pods = spec
        .pod_selector
        .unwrap_or_default()
        .compile("spec.podSelector")?;
    let has_egress = spec.egress.as_ref().is_some_and(|rules| !rules.is_empty());
    let (mut governs_ingress, mut governs_egress) = (true, has_egress);
    if let Some(types) = spec.policy_types {
        (governs_ingress, governs_egress) = (false, false);
        for (index, kind) in types.iter().enumerate() {
            match kind.as_str() {
                "Ingress" => governs_ingress = true,
                "Egress" => governs_egress = true,
                other => {
                    return Err(format!(
                        "spec.policyTypes[{index}] {other:?} is not Ingress or Egress"
                    ));
                }
            }
        }
    }
    let ingress = read_rules(spec.ingress, "ingress", &namespace)?;
    let egress = read_rules(spec.egress, "egress", &namespace)?;
    Ok(Policy {
        name: format!("{namespace}/{name}"),
        applies_to: PodSet {
            namespaces: Namespaces::Named(namespace),
            pods: Pods::Selector(pods),
        },
        ingress: governs_ingress.then_some(ingress),
        egress: governs_egress.then_some(egress),
    })
}

fn read_rules(
    rules: Option<Vec<RawRule>>,
    direction: &str,
    namespace: &str,
) -> Result<Vec<Rule>, String> {
    let mut compiled = Vec::new();
    for (index, rule) in rules.into_iter().flatten().enumerate() {
        let field = format!("spec.{direction}[{index}]");
        let (peers, peers_field) = if direction == "ingress" {
            (rule.from, "from")
        } else {
            (rule.to, "to")
        };
        let mut compiled_peers = Vec::new();
        for (p, peer) in peers.into_iter().flatten().enumerate() {
            let at = format!("{field}.{peers_field}[{p}]");
            compiled_peers.push(read_peer(peer, &at, namespace)?);
        }
        let mut compiled_ports = Vec::new();
        for (p, port) in rule.ports.into_iter().flatten().enumerate() {
            compiled_ports.push(read_port(port, &format!("{field}.ports[{p}]"))?);
        }
        compiled.push(Rule {
            peers: (!compiled_peers.is_empty()).then_some(compiled_peers),
            ports: (!compiled_ports.is_empty()).then_some(compiled_ports),
        });
    }
    Ok(compiled)
}

fn read_peer(peer: RawPeer, at: &str, namespace: &str) -> Result<Peer, String> {
    match (peer.ip_block, peer.pod_selector, peer.namespace_selector) {
        (Some(block), None, None) => {
            read_ip_block(block, &format!("{at}.ipBlock")).map(Peer::IpBlock)
        }
        (Some(_), _, _) => Err(format!(
            "{at}: an ipBlock cannot be combined with a podSelector or namespaceSelector"
        )),
        (None, None, None) => Err(format!(
            "{at}: a peer needs a podSelector, a namespaceSelector or an ipBlock"
        )),
        (None, pods, namespaces) => {
            let pods = match pods {
                Some(raw) => raw.compile(&format!("{at}.podSelector"))?,
                None => LabelSelector::everything(),
            };
            let namespaces = match namespaces {
                Some(raw) => Namespaces::Selector(raw.compile(&format!("{at}.namespaceSelector"))?),
                None => Namespaces::Named(namespace.to_owned()),
            };
            Ok(Peer::Pods(PodSet {
                namespaces,
                pods: Pods::Selector(pods),
            }))
        }
    }
}

fn read_ip_block(block: RawIpBlock, at: &str) -> Result<IpBlock, String> {
    let text = block.cidr.unwrap_or_default();
    let cidr: IpNet = text
        .parse()
        .map_err(|_| format!("{at}.cidr {text:?} is not a CIDR"))?;
    let mut except = Vec::new();
    for (index, text) in block.except.into_iter().flatten().enumerate() {
        let net: IpNet = text
            .parse()
            .map_err(|_| format!("{at}.except[{index}] {text:?} is not a CIDR"))?;
        if !cidr.contains(&net) || net.prefix_len() <= cidr.prefix_len() {
            return Err(format!(
                "{at}.except[{index}] {text:?} is not strictly inside {cidr}"
            ));
        }
        except.push(net.trunc());
    }
    Ok(IpBlock {
        cidr: cidr.trunc(),
        except,
    })
}

fn read_port(port: RawPort, at: &str) -> Result<PortRule, String> {
    let protocol = match port.protocol.as_deref() {
        None | Some("") => Protocol::Tcp,
        Some(text) => Protocol::parse(text)
            .ok_or_else(|| format!("{at}.protocol {text:?} is not TCP, UDP or SCTP"))?,
    };
    let number = |n: i64, field: &str| {
        u16::try_from(n)
            .ok()
            .filter(|&n| n != 0)
            .ok_or_else(|| format!("{at}.{field} {n} is not a port in 1..=65535"))
    };
    match (port.port, port.end_port) {
        (None, None) => Ok(PortRule::Any(protocol)),
        (None, Some(_)) => Err(format!("{at}.endPort needs a port")),
        (Some(IntOrString::String(name)), end_port) => {
            if end_port.is_some() {
                return Err(format!("{at}.endPort needs a numeric port, not {name:?}"));
            }
            if !is_port_name(&name) {
                return Err(format!(
                    "{at}.port {name:?} is not a port name (1 to 15 lower-case letters, digits and '-', with a letter)"
                ));
            }
            Ok(PortRule::Named { protocol, name })
        }
        (Some(IntOrString::Int(n)), end_port) => {
            let first = number(n, "port")?;
            let last = match end_port {
                None => first,
                Some(end) => {
                    let last = number(end, "endPort")?;
                    if last < first {
                        return Err(format!("{at}.endPort {last} is below port {first}"));
                    }
                    last
                }
            };
            Ok(PortRule::Range {
                protocol,
                first,
                last,
            })
        }
    }
}

/// An IANA service name as Kubernetes checks it (`IsValidPortName`).
fn is_port_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}
