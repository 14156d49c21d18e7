//! From an input object to the [`ClusterObject`] readers get: the workload
//! through the owner chain, labels without churn labels, the display name.
//!
//! Owner chain (pods only carry their direct owner, so the rest is read from
//! names the controllers give):
//! - ReplicaSet `influxdb-7d4b9c8f6` with label `pod-template-hash:
//!   7d4b9c8f6` -> Deployment `influxdb`. Without the label, a last segment
//!   of 5 to 10 characters of the alphabet Kubernetes draws hashes from is
//!   trimmed the same way; anything else stays a ReplicaSet.
//! - Job `backup-28485120` (a name ending in 8 or more digits, the scheduled
//!   minute a CronJob appends) -> CronJob `backup`; other Jobs stay Jobs.
//! - StatefulSet, DaemonSet and other kinds are taken as named; a pod with
//!   no owner is its own workload (kind Pod). A StatefulSet pod keeps its
//!   ordinal name as the object name.

use std::collections::{BTreeMap, BTreeSet};

use crate::object::{ClusterObject, Node, ObjectMeta, Pod, Service, Workload, WorkloadKind};

/// Labels that change with every rollout or every pod, which would split
/// one workload's identity: dropped from [`ClusterObject::labels`] unless
/// configured otherwise.
pub const DEFAULT_CHURN_LABELS: [&str; 9] = [
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
    "job-name",
    "batch.kubernetes.io/job-name",
];

/// Characters Kubernetes uses for generated suffixes (`SafeEncodeString`).
const HASH_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub(crate) fn pod_object(pod: &Pod, churn: &BTreeSet<String>) -> ClusterObject {
    let namespace = namespace_of(&pod.meta);
    ClusterObject {
        kind: crate::ObjectKind::Pod,
        display: format!("{namespace}/{}", pod.meta.name).into(),
        workload: Some(workload(&pod.meta, &namespace)),
        namespace: Some(namespace),
        name: pod.meta.name.clone(),
        uid: pod.meta.uid.clone(),
        labels: stable_labels(&pod.meta.labels, churn),
        service_account: pod.service_account.clone(),
        node_name: pod.node_name.clone(),
        named_ports: pod.named_ports.clone(),
    }
}

pub(crate) fn service_object(service: &Service, churn: &BTreeSet<String>) -> ClusterObject {
    let namespace = namespace_of(&service.meta);
    ClusterObject {
        kind: crate::ObjectKind::Service,
        display: format!("{namespace}/{}", service.meta.name).into(),
        namespace: Some(namespace),
        name: service.meta.name.clone(),
        uid: service.meta.uid.clone(),
        workload: None,
        labels: stable_labels(&service.meta.labels, churn),
        service_account: None,
        node_name: None,
        named_ports: Vec::new(),
    }
}

pub(crate) fn node_object(node: &Node, churn: &BTreeSet<String>) -> ClusterObject {
    ClusterObject {
        kind: crate::ObjectKind::Node,
        display: format!("node/{}", node.meta.name).into(),
        namespace: None,
        name: node.meta.name.clone(),
        uid: node.meta.uid.clone(),
        workload: None,
        labels: stable_labels(&node.meta.labels, churn),
        service_account: None,
        node_name: Some(node.meta.name.clone()),
        named_ports: Vec::new(),
    }
}

pub(crate) fn namespace_of(meta: &ObjectMeta) -> String {
    meta.namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned())
}

/// The workload of a pod with metadata `meta` in `namespace`.
pub(crate) fn workload(meta: &ObjectMeta, namespace: &str) -> Workload {
    let (kind, name) = match &meta.owner {
        None => (WorkloadKind::Pod, meta.name.as_str()),
        Some(owner) => match owner.kind.as_str() {
            "ReplicaSet" => {
                match deployment_of(&owner.name, meta.labels.get("pod-template-hash")) {
                    Some(deployment) => (WorkloadKind::Deployment, deployment),
                    None => (WorkloadKind::ReplicaSet, owner.name.as_str()),
                }
            }
            "Job" => match cronjob_of(&owner.name) {
                Some(cronjob) => (WorkloadKind::CronJob, cronjob),
                None => (WorkloadKind::Job, owner.name.as_str()),
            },
            other => (WorkloadKind::parse(other), owner.name.as_str()),
        },
    };
    Workload {
        namespace: namespace.to_owned(),
        kind,
        name: name.to_owned(),
    }
}

fn deployment_of<'a>(replica_set: &'a str, hash_label: Option<&String>) -> Option<&'a str> {
    let (prefix, suffix) = replica_set.rsplit_once('-')?;
    let is_hash = match hash_label {
        Some(hash) => suffix == hash,
        None => {
            (5..=10).contains(&suffix.len()) && suffix.bytes().all(|b| HASH_ALPHABET.contains(&b))
        }
    };
    (is_hash && !prefix.is_empty()).then_some(prefix)
}

fn cronjob_of(job: &str) -> Option<&str> {
    let (prefix, suffix) = job.rsplit_once('-')?;
    (suffix.len() >= 8 && suffix.bytes().all(|b| b.is_ascii_digit()) && !prefix.is_empty())
        .then_some(prefix)
}

fn stable_labels(
    labels: &BTreeMap<String, String>,
    churn: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(key, _)| !churn.contains(*key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::OwnerRef;

    fn meta(name: &str, owner: Option<(&str, &str)>, labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: name.to_owned(),
            namespace: Some("analytics".to_owned()),
            owner: owner.map(|(kind, name)| OwnerRef {
                kind: kind.to_owned(),
                name: name.to_owned(),
            }),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..ObjectMeta::default()
        }
    }

    fn workload_of(meta: &ObjectMeta) -> (WorkloadKind, String) {
        let workload = workload(meta, "analytics");
        (workload.kind, workload.name)
    }

    #[test]
    fn replica_set_hash_trimmed_to_the_deployment() {
        let with_label = meta(
            "influxdb-7d4b9c8f6-x2x9k",
            Some(("ReplicaSet", "influxdb-7d4b9c8f6")),
            &[("pod-template-hash", "7d4b9c8f6")],
        );
        assert_eq!(
            workload_of(&with_label),
            (WorkloadKind::Deployment, "influxdb".into())
        );
        let without_label = meta(
            "api-v2-5fd9cb7b58-abcde",
            Some(("ReplicaSet", "api-v2-5fd9cb7b58")),
            &[],
        );
        assert_eq!(
            workload_of(&without_label),
            (WorkloadKind::Deployment, "api-v2".into())
        );
        let hand_made = meta("web-1", Some(("ReplicaSet", "web-frontend")), &[]);
        assert_eq!(
            workload_of(&hand_made),
            (WorkloadKind::ReplicaSet, "web-frontend".into())
        );
        let wrong_label = meta(
            "x",
            Some(("ReplicaSet", "web-abc12")),
            &[("pod-template-hash", "zzz")],
        );
        assert_eq!(
            workload_of(&wrong_label),
            (WorkloadKind::ReplicaSet, "web-abc12".into())
        );
    }

    #[test]
    fn other_controllers() {
        let ordinal = meta("influxdb-0", Some(("StatefulSet", "influxdb")), &[]);
        assert_eq!(
            workload_of(&ordinal),
            (WorkloadKind::StatefulSet, "influxdb".into())
        );
        let daemon = meta("fluent-bit-8xk2p", Some(("DaemonSet", "fluent-bit")), &[]);
        assert_eq!(
            workload_of(&daemon),
            (WorkloadKind::DaemonSet, "fluent-bit".into())
        );
        let cron = meta(
            "backup-28485120-q7x2m",
            Some(("Job", "backup-28485120")),
            &[],
        );
        assert_eq!(workload_of(&cron), (WorkloadKind::CronJob, "backup".into()));
        let job = meta("migrate-v3-abcde", Some(("Job", "migrate-v3")), &[]);
        assert_eq!(workload_of(&job), (WorkloadKind::Job, "migrate-v3".into()));
        let custom = meta("db-1", Some(("Cluster", "pg-main")), &[]);
        assert_eq!(
            workload_of(&custom),
            (WorkloadKind::Other("Cluster".into()), "pg-main".into())
        );
        let bare = meta("debug-shell", None, &[]);
        assert_eq!(
            workload_of(&bare),
            (WorkloadKind::Pod, "debug-shell".into())
        );
    }

    #[test]
    fn churn_labels_are_dropped() {
        let churn = DEFAULT_CHURN_LABELS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let pod = Pod {
            meta: meta(
                "influxdb-0",
                Some(("StatefulSet", "influxdb")),
                &[
                    ("app", "influxdb"),
                    ("controller-revision-hash", "influxdb-5d8f"),
                    ("statefulset.kubernetes.io/pod-name", "influxdb-0"),
                ],
            ),
            ..Pod::default()
        };
        let object = pod_object(&pod, &churn);
        assert_eq!(object.labels.keys().collect::<Vec<_>>(), ["app"]);
        assert_eq!(&*object.display, "analytics/influxdb-0");
    }
}
