//! The writer: [`IpIndex`] keeps every object it was given, every claim on
//! every address, and publishes each address's owner for readers.
//!
//! Who owns an address (the recycle guard):
//! - a pod that has finished (Succeeded / Failed), a `hostNetwork` pod, a
//!   headless service claim nothing;
//! - a Pod beats a Service, which beats a Node;
//! - among pods, a Running, Ready, not terminating pod beats one that is
//!   not; among equals the most recently started wins (start time, else
//!   creation time);
//! - claims are kept per object (by uid): a late `DELETED` or update of an
//!   old pod touches only the old pod's claim, and when the owner goes the
//!   next claimant takes over;
//! - when the best claimants rank the same (same kind, readiness and start
//!   second), the address is [`Lookup::Ambiguous`](crate::Lookup): the index
//!   says so instead of guessing, naming the first [`MAX_AMBIGUOUS`] of them
//!   by name.
//!
//! Each address keeps its claims ordered by rank (then name), so an upsert
//! or delete costs O(log n) in the n claimants of each address it touches,
//! however many objects claim one address.
//!
//! Events are taken at face value in arrival order, with two guards: an
//! update whose integer `resourceVersion` is older than the one applied for
//! the same object is ignored, and an object deleted by uid does not come
//! back through a late update (the last [`IndexConfig::tombstones`] deleted
//! uids are remembered).
//!
//! Changes reach readers at [`IpIndex::publish`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use foldhash::fast::RandomState;
use left_right::{ReadHandle, WriteHandle};
use smallvec::SmallVec;

use crate::kube::{Change, Objects, read_objects};
use crate::object::{ClusterObject, Entry, Object, ObjectKind, PodPhase, Timestamp, Workload};
use crate::published::{IndexReader, Op, Published, Snapshot};
use crate::ranges::{NamedRange, RangeTable, ip_key};
use crate::volumes::SecretVolumeSpec;
use crate::workload::{DEFAULT_CHURN_LABELS, node_object, pod_object, service_object};

/// How an [`IpIndex`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexConfig {
    /// Labelled ranges for addresses no object owns (longest prefix wins).
    pub ranges: Vec<NamedRange>,
    /// Label keys left out of [`ClusterObject::labels`]; defaults to
    /// [`DEFAULT_CHURN_LABELS`].
    pub churn_labels: BTreeSet<String>,
    /// How many deleted uids are remembered so that a late update cannot
    /// bring their object back (65,536 by default; the oldest is forgotten
    /// first).
    pub tombstones: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            ranges: Vec::new(),
            churn_labels: DEFAULT_CHURN_LABELS
                .iter()
                .map(|label| (*label).to_owned())
                .collect(),
            tombstones: 65_536,
        }
    }
}

/// What applying one change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The object was added or updated (whether or not it claims anything).
    Upserted,
    /// The object was removed.
    Deleted,
    /// A delete of an object the index does not hold: nothing to do.
    UnknownDelete,
    /// An update older (by `resourceVersion`) than the one applied: ignored.
    Stale,
    /// An update of an object already deleted: ignored.
    AfterDelete,
}

/// Counters over the index's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Objects held, by kind.
    pub pods: usize,
    /// Services held.
    pub services: usize,
    /// Nodes held.
    pub nodes: usize,
    /// Addresses with at least one claim.
    pub addresses: usize,
    /// Addresses whose best claimants tie.
    pub ambiguous: usize,
    /// Updates ignored as older than the applied version.
    pub stale: u64,
    /// Updates ignored because their object was deleted.
    pub after_delete: u64,
    /// Deletes of objects the index did not hold.
    pub unknown_deletes: u64,
}

/// What [`IpIndex::load`] read and applied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// Changes applied (counted whatever [`Applied`] said).
    pub applied: usize,
    /// Objects of other kinds, by kind.
    pub skipped_kinds: BTreeMap<String, usize>,
    /// What could not be used (see [`crate::InputError`]).
    pub errors: Vec<crate::InputError>,
}

/// The most claimants an ambiguous address names.
pub const MAX_AMBIGUOUS: usize = 8;

/// Objects are told apart by kind and uid (or `namespace/name` without one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ObjectKey {
    kind: ObjectKind,
    id: Box<str>,
}

/// How strongly a claim holds; the greater wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    kind: ObjectKind,
    live: bool,
    started: Timestamp,
}

/// One claim on an address; claims sort by rank, then by name and uid
/// (the order an ambiguous address lists its claimants in), then by
/// object.
#[derive(Debug, Clone)]
struct Claim {
    rank: Rank,
    object: Arc<ClusterObject>,
    key: ObjectKey,
}

impl Claim {
    fn sort_key(&self) -> (Rank, &str, Option<&str>, &ObjectKey) {
        (
            self.rank,
            &self.object.display,
            self.object.uid.as_deref(),
            &self.key,
        )
    }
}

impl PartialEq for Claim {
    fn eq(&self, other: &Self) -> bool {
        self.sort_key() == other.sort_key()
    }
}

impl Eq for Claim {}

impl PartialOrd for Claim {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Claim {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

/// The claims on one address: most addresses have one, kept inline; more
/// are kept ordered.
#[derive(Debug)]
enum Claims {
    One(Claim),
    Many(BTreeSet<Claim>),
}

impl Claims {
    fn insert(&mut self, claim: Claim) {
        match self {
            Self::One(held) if *held == claim => *held = claim,
            Self::One(held) => {
                let first = held.clone();
                *self = Self::Many([first, claim].into_iter().collect());
            }
            Self::Many(set) => {
                set.replace(claim);
            }
        }
    }

    /// Removes `claim`; whether none is left.
    fn remove(&mut self, claim: &Claim) -> bool {
        match self {
            Self::One(held) => held == claim,
            Self::Many(set) => {
                set.remove(claim);
                if set.len() == 1
                    && let Some(last) = set.pop_first()
                {
                    *self = Self::One(last);
                }
                matches!(self, Self::Many(set) if set.is_empty())
            }
        }
    }
}

/// What an object claims and how readers see it.
struct Described {
    ips: SmallVec<[u128; 2]>,
    rank: Rank,
    object: ClusterObject,
    /// The (namespace, service account) and workload a live pod counts for.
    runs_as: Option<((String, String), Workload)>,
}

#[derive(Debug)]
struct Stored {
    ips: SmallVec<[u128; 2]>,
    /// Its claim on each of them.
    claim: Claim,
    resource_version: Option<u64>,
    /// The (namespace, service account) and workload a live pod counts for.
    runs_as: Option<((String, String), Workload)>,
    /// A pod's secret volumes.
    volumes: Vec<SecretVolumeSpec>,
}

/// The index: apply changes, publish, read through [`IndexReader`]s.
pub struct IpIndex {
    writer: WriteHandle<Published, Op>,
    ranges: Arc<RangeTable>,
    churn_labels: BTreeSet<String>,
    objects: HashMap<ObjectKey, Stored, RandomState>,
    claims: HashMap<u128, Claims, RandomState>,
    tombstones: Tombstones,
    service_accounts: HashMap<(String, String), BTreeMap<Workload, usize>, RandomState>,
    ambiguous: HashSet<u128, RandomState>,
    stats: IndexStats,
    /// An object that sorts before every other of its rank (no name).
    floor: Arc<ClusterObject>,
}

impl Default for IpIndex {
    fn default() -> Self {
        Self::new(IndexConfig::default())
    }
}

impl core::fmt::Debug for IpIndex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IpIndex")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl IpIndex {
    /// An empty index.
    pub fn new(config: IndexConfig) -> Self {
        let (writer, _) = left_right::new::<Published, Op>();
        Self {
            writer,
            ranges: Arc::new(RangeTable::new(&config.ranges)),
            churn_labels: config.churn_labels,
            objects: HashMap::default(),
            claims: HashMap::default(),
            tombstones: Tombstones::new(config.tombstones),
            service_accounts: HashMap::default(),
            ambiguous: HashSet::default(),
            stats: IndexStats::default(),
            floor: Arc::new({
                let mut floor = ClusterObject::new(ObjectKind::Pod, None, "");
                floor.display = Box::from("");
                floor
            }),
        }
    }

    /// A handle for reading from another thread.
    pub fn reader(&self) -> IndexReader {
        IndexReader {
            handle: ReadHandle::clone(&self.writer),
            ranges: Arc::clone(&self.ranges),
        }
    }

    /// A consistent view as of the last publish, read from the writer's
    /// thread.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot::new(&self.writer, &self.ranges)
    }

    /// Makes every change applied so far visible to readers. Waits until
    /// readers have left the copy it is about to change (they never wait).
    pub fn publish(&mut self) {
        self.writer.publish();
    }

    /// Reads every document of `input` (see [`crate::kube`]), applies what
    /// it can and publishes.
    pub fn load(&mut self, input: &[u8]) -> LoadReport {
        let Objects {
            changes,
            skipped_kinds,
            bookmarks: _,
            errors,
        } = read_objects(input);
        let applied = changes.len();
        for change in changes {
            self.apply(change);
        }
        self.publish();
        LoadReport {
            applied,
            skipped_kinds,
            errors,
        }
    }

    /// Applies one change (not yet visible to readers: see
    /// [`IpIndex::publish`]). Costs O(addresses the object claimed or
    /// claims).
    pub fn apply(&mut self, change: Change) -> Applied {
        match change {
            Change::Upsert(object) => self.upsert(&object),
            Change::Delete(object) => self.delete(&object),
        }
    }

    /// Workloads with a pod running as service account `namespace/name` (a
    /// pod that has not finished), in order. A service account backing many
    /// workloads gives them all.
    pub fn workloads_of_service_account(&self, namespace: &str, name: &str) -> Vec<Workload> {
        self.service_accounts
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|workloads| workloads.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The pod of uid `uid` (finished, host-network and address-less pods
    /// included) and its secret volumes.
    pub fn pod_by_uid(&self, uid: &str) -> Option<(&Arc<ClusterObject>, &[SecretVolumeSpec])> {
        // A pod with a uid is stored under it.
        let stored = self.objects.get(&ObjectKey {
            kind: ObjectKind::Pod,
            id: uid.into(),
        })?;
        Some((&stored.claim.object, &stored.volumes))
    }

    /// Counters and sizes.
    pub fn stats(&self) -> IndexStats {
        let mut stats = self.stats;
        stats.addresses = self.claims.len();
        stats.ambiguous = self.ambiguous.len();
        stats
    }

    fn upsert(&mut self, object: &Object) -> Applied {
        let key = object_key(object);
        if self.tombstones.contains(&key) {
            self.stats.after_delete += 1;
            return Applied::AfterDelete;
        }
        let version = object
            .meta()
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(new), Some(Some(old))) = (
            version,
            self.objects.get(&key).map(|stored| stored.resource_version),
        ) && new < old
        {
            self.stats.stale += 1;
            return Applied::Stale;
        }
        let Described {
            ips: claimed,
            rank,
            object: cluster_object,
            runs_as,
        } = self.describe(object);
        let old_ips = self.remove_object(&key);
        let claim = Claim {
            rank,
            object: Arc::new(cluster_object),
            key: key.clone(),
        };
        for &ip in &claimed {
            match self.claims.get_mut(&ip) {
                Some(claims) => claims.insert(claim.clone()),
                None => {
                    self.claims.insert(ip, Claims::One(claim.clone()));
                }
            }
        }
        if let Some((account, workload)) = &runs_as {
            *self
                .service_accounts
                .entry(account.clone())
                .or_default()
                .entry(workload.clone())
                .or_default() += 1;
        }
        let touched: SmallVec<[u128; 4]> = old_ips
            .iter()
            .chain(&claimed)
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self.count(key.kind, 1);
        let volumes = match object {
            Object::Pod(pod) => pod.secret_volumes.clone(),
            _ => Vec::new(),
        };
        self.objects.insert(
            key,
            Stored {
                ips: claimed,
                claim,
                resource_version: version,
                runs_as,
                volumes,
            },
        );
        for ip in touched {
            self.republish(ip);
        }
        Applied::Upserted
    }

    fn delete(&mut self, object: &Object) -> Applied {
        let key = object_key(object);
        if object.meta().uid.is_some() {
            self.tombstones.insert(key.clone());
        }
        if !self.objects.contains_key(&key) {
            self.stats.unknown_deletes += 1;
            return Applied::UnknownDelete;
        }
        for ip in self.remove_object(&key) {
            self.republish(ip);
        }
        Applied::Deleted
    }

    /// Forgets `key`'s object and claims; returns the addresses it claimed.
    fn remove_object(&mut self, key: &ObjectKey) -> SmallVec<[u128; 2]> {
        let Some(stored) = self.objects.remove(key) else {
            return SmallVec::new();
        };
        self.count(key.kind, -1);
        for ip in &stored.ips {
            if let Some(claims) = self.claims.get_mut(ip)
                && claims.remove(&stored.claim)
            {
                self.claims.remove(ip);
            }
        }
        if let Some((account, workload)) = stored.runs_as
            && let Some(workloads) = self.service_accounts.get_mut(&account)
        {
            if let Some(count) = workloads.get_mut(&workload) {
                *count -= 1;
                if *count == 0 {
                    workloads.remove(&workload);
                }
            }
            if workloads.is_empty() {
                self.service_accounts.remove(&account);
            }
        }
        stored.ips
    }

    /// The addresses an object claims, how strongly, what readers see of it
    /// and the service account it runs as.
    fn describe(&self, object: &Object) -> Described {
        let meta = object.meta();
        // Services and nodes rank by kind, terminating or not, and age.
        let rank_of = |kind| Rank {
            kind,
            live: !meta.terminating,
            started: meta.created.unwrap_or_default(),
        };
        let keys = |ips: &[core::net::IpAddr]| ips.iter().map(|ip| ip_key(*ip)).collect();
        match object {
            Object::Pod(pod) => {
                let cluster_object = pod_object(pod, &self.churn_labels);
                let finished = pod.phase.is_finished();
                let runs_as = if finished {
                    None
                } else {
                    cluster_object.workload.clone().map(|workload| {
                        let account = pod
                            .service_account
                            .clone()
                            .unwrap_or_else(|| "default".to_owned());
                        ((workload.namespace.clone(), account), workload)
                    })
                };
                Described {
                    ips: if finished || pod.host_network {
                        SmallVec::new()
                    } else {
                        keys(&pod.ips)
                    },
                    rank: Rank {
                        kind: ObjectKind::Pod,
                        live: pod.phase == PodPhase::Running && pod.ready && !meta.terminating,
                        started: pod.started.or(meta.created).unwrap_or_default(),
                    },
                    object: cluster_object,
                    runs_as,
                }
            }
            Object::Service(service) => Described {
                ips: keys(&service.cluster_ips),
                rank: rank_of(ObjectKind::Service),
                object: service_object(service, &self.churn_labels),
                runs_as: None,
            },
            Object::Node(node) => Described {
                ips: keys(&node.internal_ips),
                rank: rank_of(ObjectKind::Node),
                object: node_object(node, &self.churn_labels),
                runs_as: None,
            },
        }
    }

    /// Recomputes the owner of `ip` and queues it for readers.
    fn republish(&mut self, ip: u128) {
        let Some(claims) = self.claims.get(&ip) else {
            self.ambiguous.remove(&ip);
            self.writer.append(Op::Remove(ip));
            return;
        };
        let entry = match claims {
            Claims::One(claim) => {
                self.ambiguous.remove(&ip);
                Entry::One(Arc::clone(&claim.object))
            }
            Claims::Many(set) => {
                let mut top = set.iter().rev();
                let (Some(best), second) = (top.next(), top.next()) else {
                    return;
                };
                if second.is_some_and(|claim| claim.rank == best.rank) {
                    self.ambiguous.insert(ip);
                    // The tied claimants, by name: from below the first
                    // of the best rank onwards.
                    let floor = Claim {
                        rank: best.rank,
                        object: Arc::clone(&self.floor),
                        key: ObjectKey {
                            kind: best.key.kind,
                            id: Box::from(""),
                        },
                    };
                    Entry::Ambiguous(
                        set.range(floor..)
                            .take(MAX_AMBIGUOUS)
                            .map(|claim| Arc::clone(&claim.object))
                            .collect(),
                    )
                } else {
                    self.ambiguous.remove(&ip);
                    Entry::One(Arc::clone(&best.object))
                }
            }
        };
        self.writer.append(Op::Set(ip, entry));
    }

    fn count(&mut self, kind: ObjectKind, delta: isize) {
        let counter = match kind {
            ObjectKind::Pod => &mut self.stats.pods,
            ObjectKind::Service => &mut self.stats.services,
            ObjectKind::Node => &mut self.stats.nodes,
        };
        *counter = counter.saturating_add_signed(delta);
    }
}

fn object_key(object: &Object) -> ObjectKey {
    let meta = object.meta();
    let id = match (&meta.uid, &meta.namespace) {
        (Some(uid), _) => uid.as_str().into(),
        (None, Some(namespace)) => format!("{namespace}/{}", meta.name).into(),
        (None, None) => meta.name.as_str().into(),
    };
    ObjectKey {
        kind: object.kind(),
        id,
    }
}

/// The most recently deleted object keys, bounded.
#[derive(Debug)]
struct Tombstones {
    order: VecDeque<ObjectKey>,
    set: HashSet<ObjectKey, RandomState>,
    capacity: usize,
}

impl Tombstones {
    fn new(capacity: usize) -> Self {
        Self {
            order: VecDeque::new(),
            set: HashSet::default(),
            capacity,
        }
    }

    fn contains(&self, key: &ObjectKey) -> bool {
        self.set.contains(key)
    }

    fn insert(&mut self, key: ObjectKey) {
        if self.capacity == 0 || !self.set.insert(key.clone()) {
            return;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.set.remove(&oldest);
        }
    }
}
