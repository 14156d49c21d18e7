//! A small line format for hand-written allow-lists, compiled into the same
//! [`Policy`] form as NetworkPolicies.
//!
//! ```text
//! # One allowed edge per line: <source> -> <destination> [<port> ...]
//! frontend/web          -> analytics/influxdb   8086
//! monitoring/prometheus -> */*                  metrics 9100-9102
//! *                     -> kube-system/coredns  53/udp 53/tcp
//! analytics/*           -> 203.0.113.0/24       443
//! shop/app=checkout     -> payments/app=api,tier=backend   http
//! ```
//!
//! An endpoint is one of
//! - `<namespace>/<pods>`: `<namespace>` is a name or `*` (every
//!   namespace); `<pods>` is `*` (every pod), a workload name (a
//!   Deployment's, StatefulSet's, ... or a bare pod's), or labels
//!   `key=value[,key=value...]` that must all match;
//! - an IP address or CIDR (IPv4 or IPv6);
//! - `*`, anything at all (source only).
//!
//! A port is `N`, `N-M` or a named container port of the destination, each
//! TCP unless followed by `/udp`, `/sctp` (or `/tcp`); no port means every
//! port of every protocol. `#` starts a comment; blank lines are ignored.
//!
//! A line whose destination is pods becomes an ingress policy on those pods
//! (so they become governed: a source not listed for them is a violation);
//! a line whose destination is an address becomes an egress policy on the
//! source pods. Each policy is named `<source>:<line>`.

use edgewise_ip_index::Protocol;
use ipnet::IpNet;

use super::{DeclaredPolicies, IpBlock, Namespaces, Peer, PodSet, Pods, Policy, PortRule, Rule};
use crate::EdgeSetError;
use crate::selector::LabelSelector;

/// One side of a line.
enum Side {
    Anything,
    Address(IpNet),
    Pods(PodSet),
}

impl DeclaredPolicies {
    /// Reads an allow-list (see the module docs) and adds one policy per
    /// line, replacing those of an earlier load of the same `source`. The
    /// list is all or nothing: if any line is wrong, nothing is added and
    /// every wrong line is reported.
    ///
    /// # Errors
    /// One [`EdgeSetError::AllowList`] per wrong line, naming `source`, the
    /// line and the problem.
    pub fn load_allow_list(
        &mut self,
        source: &str,
        text: &str,
    ) -> Result<usize, Vec<EdgeSetError>> {
        let mut policies = Vec::new();
        let mut errors = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            let content = line.split('#').next().unwrap_or_default().trim();
            if content.is_empty() {
                continue;
            }
            match read_line(content, &format!("{source}:{line_number}")) {
                Ok(policy) => policies.push(policy),
                Err(problem) => errors.push(EdgeSetError::AllowList {
                    file: source.to_owned(),
                    line: line_number,
                    problem,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let prefix = format!("{source}:");
        let stale: Vec<String> = self
            .policies()
            .filter(|p| {
                p.name
                    .strip_prefix(&prefix)
                    .is_some_and(|n| n.parse::<usize>().is_ok())
            })
            .map(|p| p.name.clone())
            .collect();
        for name in stale {
            self.remove(&name);
        }
        let count = policies.len();
        for policy in policies {
            self.insert(policy);
        }
        Ok(count)
    }
}

fn read_line(content: &str, name: &str) -> Result<Policy, String> {
    let (source, rest) = content
        .split_once("->")
        .ok_or("expected `<source> -> <destination> [<port> ...]`")?;
    let mut words = rest.split_whitespace();
    let source = read_side(source.trim())?;
    let destination = read_side(words.next().ok_or("the destination is missing")?)?;
    let ports = words.map(read_port).collect::<Result<Vec<_>, _>>()?;
    let ports = (!ports.is_empty()).then_some(ports);
    match (source, destination) {
        (_, Side::Anything) => Err("the destination must be pods or an address, not `*`".into()),
        (source, Side::Pods(pods)) => {
            let peers = match source {
                Side::Anything => None,
                Side::Address(net) => Some(vec![Peer::IpBlock(block(net))]),
                Side::Pods(set) => Some(vec![Peer::Pods(set)]),
            };
            Ok(Policy {
                name: name.to_owned(),
                applies_to: pods,
                ingress: Some(vec![Rule { peers, ports }]),
                egress: None,
            })
        }
        (Side::Pods(pods), Side::Address(net)) => Ok(Policy {
            name: name.to_owned(),
            applies_to: pods,
            ingress: None,
            egress: Some(vec![Rule {
                peers: Some(vec![Peer::IpBlock(block(net))]),
                ports,
            }]),
        }),
        (_, Side::Address(_)) => {
            Err("from an address or `*` to an address: one side must be pods".into())
        }
    }
}

fn block(cidr: IpNet) -> IpBlock {
    IpBlock {
        cidr: cidr.trunc(),
        except: Vec::new(),
    }
}

fn read_side(word: &str) -> Result<Side, String> {
    if word == "*" {
        return Ok(Side::Anything);
    }
    if let Ok(net) = word.parse::<IpNet>() {
        return Ok(Side::Address(net));
    }
    if let Ok(ip) = word.parse::<core::net::IpAddr>() {
        return Ok(Side::Address(IpNet::from(ip)));
    }
    let (namespace, pods) = word
        .split_once('/')
        .ok_or_else(|| format!("{word:?} is not `<namespace>/<pods>`, an address or a CIDR"))?;
    if namespace.is_empty() || pods.is_empty() || word.contains(char::is_whitespace) {
        return Err(format!("{word:?} is not `<namespace>/<pods>`"));
    }
    let namespaces = if namespace == "*" {
        Namespaces::Selector(LabelSelector::everything())
    } else {
        Namespaces::Named(namespace.to_owned())
    };
    let pods = if pods == "*" {
        Pods::Selector(LabelSelector::everything())
    } else if pods.contains('=') {
        let mut pairs = Vec::new();
        for pair in pods.split(',') {
            match pair.split_once('=') {
                Some((key, value)) if !key.is_empty() => pairs.push((key, value)),
                _ => return Err(format!("{pair:?} in {word:?} is not `key=value`")),
            }
        }
        Pods::Selector(LabelSelector::match_labels(pairs))
    } else {
        Pods::Workload(pods.to_owned())
    };
    Ok(Side::Pods(PodSet { namespaces, pods }))
}

fn read_port(word: &str) -> Result<PortRule, String> {
    let (port, protocol) = match word.split_once('/') {
        None => (word, Protocol::Tcp),
        Some((port, protocol)) => (
            port,
            Protocol::parse(protocol)
                .ok_or_else(|| format!("{protocol:?} in {word:?} is not tcp, udp or sctp"))?,
        ),
    };
    let number = |text: &str| {
        text.parse::<u16>()
            .ok()
            .filter(|&n| n != 0)
            .ok_or_else(|| format!("{text:?} in {word:?} is not a port in 1..=65535"))
    };
    if port.starts_with(|c: char| c.is_ascii_digit()) {
        let (first, last) = match port.split_once('-') {
            None => (number(port)?, number(port)?),
            Some((first, last)) => (number(first)?, number(last)?),
        };
        if last < first {
            return Err(format!("{word:?}: the range ends below its start"));
        }
        return Ok(PortRule::Range {
            protocol,
            first,
            last,
        });
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("{word:?} is not a port, a range or a port name"));
    }
    Ok(PortRule::Named {
        protocol,
        name: port.to_owned(),
    })
}
