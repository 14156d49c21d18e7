//! Secret reads from both sources, as one `secret_read` record
//! ([`SecretReadRecord`]):
//!
//! - **mounted**: a process opened a file of a pod's secret volume (the
//!   kernel's secret-volume observer). The secret is named from the pod's
//!   volume spec when the objects are known (`secret.secretName`, a
//!   projected volume's sources: a ConfigMap's or the downward API's file
//!   is not a secret and gives no record), the service account token of a
//!   `kube-api-access-*` volume by its file name otherwise, else by the
//!   volume's name (`"secret_kind": "volume"`). The reader is the pod its
//!   cgroup belongs to (with its workload and service account), or, for a
//!   process outside any pod, its cgroup and command.
//! - **api**: an allowed get, list or watch of a Secret by a service
//!   account, from the API server's audit webhook, attributed to every
//!   workload running as the account (the ambiguity kept).
//!
//! Attribution works with each kind of identities: objects (ip-index), and
//! the identity client's table (an MMDB baseline, a stream), where pods
//! are found by uid and workloads by service account in the table itself
//! (indexed once per table version).
//!
//! **A record means a new observation** ([`store`]): an API read whose
//! `auditID` was seen within the window (the API server retrying a batch)
//! is a repeat; so is any read of the same secret by the same reader from
//! the same source within the window of the first (default 300 s; the
//! window is not extended by repeats, so a secret read all along gives a
//! record per window). Repeats are counted, by source.

pub mod store;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use edgewise_capture::secrets::{SecretOpen, SecretVolume, VolumeKind, pod_uid_of_cgroup};
use edgewise_ip_index::{ClusterObject, SecretAccess, SecretFile, SecretVolumeSpec, Workload};
use edgewise_time::UnixNanos;
use serde::Serialize;

use crate::identities::Identities;
use crate::records::{MountedRead, SecretReadRecord};
use crate::rules::{Action, Candidate, ReaderInput, Rules, SecretInput, SecretReadInput};
pub use store::{DEFAULT_TTL, MAX_REMEMBERED, ReadStore};

/// Counters of the secret reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SecretReadCounts {
    /// Records, by source (`mounted`, `api`).
    pub records: std::collections::BTreeMap<&'static str, u64>,
    /// Repeats within the window, by source.
    pub repeats: std::collections::BTreeMap<&'static str, u64>,
    /// Mounted reads of files that are not secrets (a projected volume's
    /// ConfigMap or downward API files).
    pub not_secret: u64,
    /// Mounted reads of a device no known volume has (a volume that went
    /// between the kernel's report and the read).
    pub unknown_volume: u64,
    /// Remembered reads forgotten before their window ended, to stay
    /// within [`MAX_REMEMBERED`].
    pub forgotten: u64,
    /// Mounted reads the kernel could not report (a full ring); filled by
    /// the driver.
    pub lost: u64,
    /// Where the kernel observer hooks file opens (`lsm`, `fentry`,
    /// `tracepoint`; none without one); filled by the driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<&'static str>,
}

/// The secret reads: attribution, the window, the counters.
#[derive(Debug)]
pub struct SecretReads {
    store: ReadStore,
    counts: SecretReadCounts,
    table: TableIndex,
}

/// The identity table's pods by uid and workloads by service account,
/// made again when the table moves to another version.
#[derive(Debug, Default)]
struct TableIndex {
    version: Option<edgewise_identity::Version>,
    built: bool,
    pods: HashMap<String, Arc<ClusterObject>>,
    accounts: HashMap<(String, String), BTreeSet<Workload>>,
}

impl TableIndex {
    fn refresh(&mut self, identities: &Identities) {
        let Identities::Client(reader, _) = identities else {
            return;
        };
        let snapshot = reader.snapshot();
        if self.built && snapshot.version() == self.version {
            return;
        }
        self.pods.clear();
        self.accounts.clear();
        for object in snapshot.objects() {
            if let Some(uid) = &object.uid {
                self.pods.insert(uid.clone(), Arc::clone(object));
            }
            if let (Some(namespace), Some(account), Some(workload)) =
                (&object.namespace, &object.service_account, &object.workload)
            {
                self.accounts
                    .entry((namespace.clone(), account.clone()))
                    .or_default()
                    .insert(workload.clone());
            }
        }
        self.version = snapshot.version();
        self.built = true;
    }
}

/// A pod found by uid, and its secret volumes when the objects are known.
struct FoundPod<'a> {
    object: Arc<ClusterObject>,
    volumes: Option<&'a [SecretVolumeSpec]>,
}

impl SecretReads {
    /// Reads remembered for `ttl_ns` nanoseconds.
    pub fn new(ttl_ns: u64) -> Self {
        Self {
            store: ReadStore::new(ttl_ns, MAX_REMEMBERED),
            counts: SecretReadCounts::default(),
            table: TableIndex::default(),
        }
    }

    /// The counters.
    pub fn counts(&self) -> SecretReadCounts {
        let mut counts = self.counts.clone();
        counts.forgotten = self.store.forgotten();
        counts
    }

    /// Sets the kernel observer's hook and its count of lost reports.
    pub fn set_observer(&mut self, hook: &'static str, lost: u64) {
        self.counts.hook = Some(hook);
        self.counts.lost = lost;
    }

    /// Forgets what is older than the window.
    pub fn expire(&mut self, now: UnixNanos) {
        self.store.expire(now);
    }

    /// The records of an audit batch's reads that are new observations.
    pub fn api_reads(
        &mut self,
        accesses: Vec<SecretAccess>,
        identities: &Identities,
        rules: &Rules,
        now: UnixNanos,
    ) -> Vec<SecretReadRecord> {
        let now_ns = now.as_nanos();
        self.table.refresh(identities);
        let mut records = Vec::new();
        for access in accesses {
            let account = format!("{}/{}", access.account_namespace, access.account);
            let secret = format!(
                "{}/{}",
                access.namespace.as_deref().unwrap_or("*"),
                access.name.as_deref().unwrap_or("*")
            );
            if !self
                .store
                .first("api", &account, &secret, access.audit_id.as_deref(), now)
            {
                *self.counts.repeats.entry("api").or_default() += 1;
                continue;
            }
            let workloads = self.workloads_of(identities, &access);
            let input = SecretReadInput {
                secret: SecretInput {
                    name: access.name.clone().unwrap_or_default(),
                    namespace: access.namespace.clone().unwrap_or_default(),
                    source: "api".to_owned(),
                    kind: "secret".to_owned(),
                    verb: access.verb.as_str().to_owned(),
                    file: String::new(),
                },
                reader: ReaderInput {
                    command: String::new(),
                    in_pod: true,
                },
                candidates: workloads
                    .iter()
                    .map(|workload| Candidate {
                        namespace: workload.namespace.clone(),
                        workload: workload.name.clone(),
                        service_account: access.account.clone(),
                        ..Candidate::default()
                    })
                    .collect(),
            };
            let mut record = SecretReadRecord {
                time_ns: now_ns,
                source: "api",
                secret,
                secret_kind: "secret",
                verb: access.verb.as_str(),
                time_s: access.time.map(|t| t.0),
                audit_id: access.audit_id.clone(),
                service_account: Some(account),
                workloads: workloads.iter().map(ToString::to_string).collect(),
                pod: None,
                mounted: None,
                rules: Vec::new(),
                allowed: false,
            };
            judge(rules, &input, &mut record);
            *self.counts.records.entry("api").or_default() += 1;
            records.push(record);
        }
        records
    }

    fn workloads_of(&self, identities: &Identities, access: &SecretAccess) -> Vec<Workload> {
        match identities {
            Identities::Index(index) => {
                index.workloads_of_service_account(&access.account_namespace, &access.account)
            }
            Identities::Client(..) => self
                .table
                .accounts
                .get(&(access.account_namespace.clone(), access.account.clone()))
                .map(|workloads| workloads.iter().cloned().collect())
                .unwrap_or_default(),
            Identities::None => Vec::new(),
        }
    }

    fn pod<'a>(&'a self, identities: &'a Identities, uid: &str) -> Option<FoundPod<'a>> {
        match identities {
            Identities::Index(index) => index.pod_by_uid(uid).map(|(object, volumes)| FoundPod {
                object: Arc::clone(object),
                volumes: Some(volumes),
            }),
            Identities::Client(..) => self.table.pods.get(uid).map(|object| FoundPod {
                object: Arc::clone(object),
                volumes: None,
            }),
            Identities::None => None,
        }
    }

    /// The record of a mounted read, when it is a new observation of a
    /// secret. `volume` is the volume of the open's device (none when no
    /// known volume has it), `cgroup` the opener's cgroup path when it
    /// could be found.
    pub fn mounted_read(
        &mut self,
        open: &SecretOpen,
        volume: Option<&SecretVolume>,
        cgroup: Option<&str>,
        identities: &Identities,
        rules: &Rules,
        now: UnixNanos,
    ) -> Option<SecretReadRecord> {
        let now_ns = now.as_nanos();
        self.table.refresh(identities);
        let Some(volume) = volume else {
            self.counts.unknown_volume += 1;
            return None;
        };
        let owner = self.pod(identities, &volume.pod_uid);
        let Some((name, kind)) = secret_of(owner.as_ref(), volume, &open.file) else {
            self.counts.not_secret += 1;
            return None;
        };
        let namespace = owner
            .as_ref()
            .and_then(|pod| pod.object.namespace.clone())
            .unwrap_or_else(|| "?".to_owned());
        let secret = format!("{namespace}/{name}");
        let reader_uid = cgroup.and_then(pod_uid_of_cgroup);
        let reader = reader_uid
            .as_deref()
            .and_then(|uid| self.pod(identities, uid))
            .map(|pod| pod.object);
        let reader_key = match (&reader, &reader_uid) {
            (Some(pod), _) => pod.display.to_string(),
            (None, Some(uid)) => format!("pod-uid:{uid}"),
            (None, None) => format!("{}:{}", cgroup.unwrap_or("?"), open.command),
        };
        if !self.store.first("mounted", &reader_key, &secret, None, now) {
            *self.counts.repeats.entry("mounted").or_default() += 1;
            return None;
        }
        let workload = reader.as_ref().and_then(|pod| pod.workload.clone());
        let input = SecretReadInput {
            secret: SecretInput {
                name: name.clone(),
                namespace,
                source: "mounted".to_owned(),
                kind: kind.to_owned(),
                verb: "open".to_owned(),
                file: open.file.clone(),
            },
            reader: ReaderInput {
                command: open.command.clone(),
                in_pod: reader_uid.is_some(),
            },
            candidates: reader.iter().map(|pod| candidate(pod)).collect(),
        };
        let mut record = SecretReadRecord {
            time_ns: now_ns,
            source: "mounted",
            secret,
            secret_kind: kind,
            verb: "open",
            time_s: None,
            audit_id: None,
            service_account: reader.as_ref().and_then(|pod| {
                Some(format!(
                    "{}/{}",
                    pod.namespace.as_deref()?,
                    pod.service_account.as_deref()?
                ))
            }),
            workloads: workload.iter().map(ToString::to_string).collect(),
            pod: reader.as_ref().map(|pod| pod.display.to_string()),
            mounted: Some(MountedRead {
                volume: volume.volume.clone(),
                volume_kind: volume.kind.as_str(),
                file: open.file.clone(),
                pod_uid: reader_uid,
                pid: open.pid,
                command: open.command.clone(),
                cgroup: cgroup.map(str::to_owned),
            }),
            rules: Vec::new(),
            allowed: false,
        };
        judge(rules, &input, &mut record);
        *self.counts.records.entry("mounted").or_default() += 1;
        Some(record)
    }
}

fn candidate(pod: &ClusterObject) -> Candidate {
    Candidate {
        namespace: pod.namespace.clone().unwrap_or_default(),
        workload: pod
            .workload
            .as_ref()
            .map(|w| w.name.clone())
            .unwrap_or_default(),
        kind: pod.kind.as_str().to_owned(),
        name: pod.name.clone(),
        service_account: pod.service_account.clone().unwrap_or_default(),
        labels: pod.labels.clone(),
    }
}

/// The secret a file of `volume` is (its name and `secret_kind`), none
/// when the file is not a secret.
fn secret_of(
    owner: Option<&FoundPod<'_>>,
    volume: &SecretVolume,
    file: &str,
) -> Option<(String, &'static str)> {
    let spec = owner
        .and_then(|pod| pod.volumes)
        .and_then(|specs| specs.iter().find(|spec| spec.volume == volume.volume));
    let what = match spec {
        Some(spec) => spec.file(file).clone(),
        // Without the spec, the layout every pod's API access volume has.
        None if volume.kind == VolumeKind::Projected
            && volume.volume.starts_with("kube-api-access-") =>
        {
            match file {
                "token" => SecretFile::ServiceAccountToken,
                "ca.crt" | "namespace" => SecretFile::NotSecret,
                _ => SecretFile::Unknown,
            }
        }
        None => SecretFile::Unknown,
    };
    match what {
        SecretFile::Secret(name) => Some((name, "secret")),
        SecretFile::ServiceAccountToken => {
            let account = owner
                .and_then(|pod| pod.object.service_account.clone())
                .unwrap_or_else(|| volume.volume.clone());
            Some((account, "service_account_token"))
        }
        SecretFile::NotSecret => None,
        SecretFile::Unknown => Some((volume.volume.clone(), "volume")),
    }
}

/// The secret-read rules' outcome onto `record`.
fn judge(rules: &Rules, input: &SecretReadInput, record: &mut SecretReadRecord) {
    if !rules.judges(crate::rules::Subject::SecretRead) {
        return;
    }
    let outcome = rules.evaluate_secret_read(input);
    record.rules = rules
        .rules()
        .iter()
        .enumerate()
        .filter(|(index, rule)| outcome.matched(*index) && rule.action != Action::Drop)
        .map(|(_, rule)| rule.name.clone())
        .collect();
    record.allowed = outcome.allowed;
}
