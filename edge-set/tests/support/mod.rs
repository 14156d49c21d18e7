//! Builders shared by the edge-set tests: pods as ip-index would resolve
//! them, and a verdict asked of a policy set.

#![allow(dead_code, unreachable_pub)]

use edgewise_edge_set::{EdgeQuery, Endpoint, PolicySet, VerdictKind};
use edgewise_ip_index::{ClusterObject, NamedPort, ObjectKind, Protocol, Workload, WorkloadKind};

/// A pod of the Deployment `workload` in `namespace` (the pod has the
/// workload's name).
pub fn pod(namespace: &str, workload: &str, labels: &[(&str, &str)]) -> ClusterObject {
    let mut pod = ClusterObject::new(ObjectKind::Pod, Some(namespace), workload);
    pod.workload = Some(Workload {
        namespace: namespace.to_owned(),
        kind: WorkloadKind::Deployment,
        name: workload.to_owned(),
    });
    pod.labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    pod
}

/// `pod` with one more named container port.
pub fn with_port(
    mut pod: ClusterObject,
    name: &str,
    port: u16,
    protocol: Protocol,
) -> ClusterObject {
    pod.named_ports.push(NamedPort {
        name: name.to_owned(),
        port,
        protocol,
    });
    pod
}

/// An endpoint: an address and maybe a pod.
pub type End<'a> = (&'a str, Option<&'a ClusterObject>);

/// The verdict and the deciding policy's name.
pub fn ask(
    set: &PolicySet,
    src: End<'_>,
    dst: End<'_>,
    port: u16,
    protocol: Protocol,
) -> (VerdictKind, Option<String>) {
    let verdict = set.evaluate(&EdgeQuery {
        src: Endpoint {
            ip: src.0.parse().unwrap(),
            identity: src.1,
        },
        dst: Endpoint {
            ip: dst.0.parse().unwrap(),
            identity: dst.1,
        },
        port,
        protocol,
    });
    let policy = verdict.deciding().map(|id| set.policy(id).name.clone());
    (verdict.kind(), policy)
}

/// The verdict on a TCP edge.
pub fn tcp(set: &PolicySet, src: End<'_>, dst: End<'_>, port: u16) -> VerdictKind {
    ask(set, src, dst, port, Protocol::Tcp).0
}
