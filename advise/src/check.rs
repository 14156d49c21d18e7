//! A candidate policy set replayed against the same history: what it
//! would have denied, per day.
//!
//! Each observation becomes an edge between reconstructed identities: the
//! source a pod of its namespace with its `service-identity` label (the
//! only label the trail keeps of a source), the destination a pod of its
//! workload with the labels seen, a Service, a node, or no object for an
//! outside address. Named container ports are not known, so a rule that
//! allows a port by name does not match here.

use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet};

use edgewise_edge_set::{EdgeQuery, Endpoint, PolicySet, SERVICE_IDENTITY_LABEL, VerdictKind};
use edgewise_ip_index::{ClusterObject, ObjectKind, Workload, WorkloadKind};
use serde::Serialize;

use crate::analysis::Port;
use crate::observation::{Observation, Source, Target};

/// One denied edge of a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// The day.
    pub day: i64,
    /// The source.
    pub source: Source,
    /// The destination.
    pub target: Target,
    /// The port.
    pub port: Port,
    /// Flows that day.
    pub flows: u64,
    /// The policy that denied it.
    pub policy: Option<String>,
}

/// A day's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// The day.
    pub day: i64,
    /// Edges denied (source, destination, port).
    pub denied: usize,
    /// Their flows.
    pub flows: u64,
}

/// What a policy set would have denied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Every day the input has, with its denials counted.
    pub days: Vec<DayCount>,
    /// The denials, by day, source, destination and port.
    pub denials: Vec<Denial>,
}

fn pod(
    namespace: &str,
    labels: BTreeMap<String, String>,
    workload: Option<Workload>,
) -> ClusterObject {
    let mut pod = ClusterObject::new(ObjectKind::Pod, Some(namespace), "");
    pod.labels = labels;
    pod.workload = workload;
    pod
}

fn destination(o: &Observation) -> Option<ClusterObject> {
    match &o.target {
        Target::Workload {
            namespace,
            workload_kind,
            name,
        } => Some(pod(
            namespace,
            o.labels.clone(),
            Some(Workload {
                namespace: namespace.clone(),
                kind: WorkloadKind::parse(workload_kind),
                name: name.clone(),
            }),
        )),
        Target::Service { namespace, name } => Some(ClusterObject::new(
            ObjectKind::Service,
            Some(namespace),
            name,
        )),
        Target::Node { name } => Some(ClusterObject::new(ObjectKind::Node, None, name)),
        Target::Name { .. } | Target::Address { .. } => None,
    }
}

/// A denial's day, source, destination and port.
type DenialKey = (i64, Source, Target, Port);

/// Replays `observations` against `policies`: every edge whose verdict is
/// a violation is a denial (sources named as `granularity` groups them).
pub fn check(
    observations: &[Observation],
    policies: &PolicySet,
    granularity: crate::Granularity,
) -> CheckReport {
    let mut denied: BTreeMap<DenialKey, (u64, Option<String>)> = BTreeMap::new();
    let mut days = BTreeSet::new();
    for o in observations {
        days.insert(o.day);
        let labels = if o.service_identity.is_empty() {
            BTreeMap::new()
        } else {
            BTreeMap::from([(
                SERVICE_IDENTITY_LABEL.to_owned(),
                o.service_identity.clone(),
            )])
        };
        let src = pod(&o.namespace, labels, None);
        let dst = destination(o);
        let verdict = policies.evaluate(&EdgeQuery {
            src: Endpoint {
                ip: IpAddr::from([0, 0, 0, 0]),
                identity: Some(&src),
            },
            dst: Endpoint {
                ip: o.ip,
                identity: dst.as_ref(),
            },
            port: o.port,
            protocol: o.protocol,
        });
        if verdict.kind() != VerdictKind::Violation {
            continue;
        }
        let source = Source {
            namespace: o.namespace.clone(),
            identity: match granularity {
                crate::Granularity::Namespace => String::new(),
                crate::Granularity::ServiceIdentity => o.service_identity.clone(),
            },
        };
        let port = Port {
            port: o.port,
            protocol: o.protocol,
        };
        let entry = denied
            .entry((o.day, source, o.target.clone(), port))
            .or_insert((0, None));
        entry.0 = entry.0.saturating_add(o.flows);
        if entry.1.is_none() {
            entry.1 = verdict
                .deciding()
                .map(|id| policies.policy(id).name.clone());
        }
    }
    let denials: Vec<Denial> = denied
        .into_iter()
        .map(|((day, source, target, port), (flows, policy))| Denial {
            day,
            source,
            target,
            port,
            flows,
            policy,
        })
        .collect();
    let days = days
        .into_iter()
        .map(|day| {
            let of_day = denials.iter().filter(|d| d.day == day);
            DayCount {
                day,
                denied: of_day.clone().count(),
                flows: of_day.map(|d| d.flows).sum(),
            }
        })
        .collect();
    CheckReport { days, denials }
}
