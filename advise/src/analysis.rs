//! The analysis: observations in, a [`Report`] out (see the crate docs
//! for what each part means).

use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet};

use edgewise_ip_index::Protocol;
use ipnet::IpNet;
use serde::{Serialize, Serializer};

use crate::cidr::{Prefixes, cover, size, unseen_share};
use crate::observation::{Observation, Source, Target};
use crate::settings::{Granularity, Settings, Tier};
use crate::{AdviseError, DAY_MS, day_of};

/// A port and protocol, written `53/udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    /// The port.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}/{}", self.port, self.protocol.as_str()))
    }
}

/// The most days an input may span (two years).
pub const MAX_DAYS: i64 = 731;

/// What the whole input says.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The thresholds used.
    pub settings: Settings,
    /// Every day of the input, first to last (Unix milliseconds).
    pub days: Vec<i64>,
    /// Destinations most sources share.
    pub baseline: Vec<Baseline>,
    /// Each source, by namespace (and identity).
    pub groups: Vec<Group>,
}

/// A baseline destination.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    /// Who.
    pub target: Target,
    /// On which ports, over all sources.
    pub ports: BTreeSet<Port>,
    /// How many sources use it.
    pub used_by: usize,
}

/// One source's destinations and what they say.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The source pods.
    pub source: Source,
    /// Where they went, in target order.
    pub destinations: Vec<Destination>,
    /// Counts of them.
    pub fan_out: FanOut,
    /// The rollout tier ...
    pub tier: Tier,
    /// ... and why.
    pub tier_reason: String,
    /// The baseline destinations it uses.
    pub baseline: Vec<Target>,
    /// The day it was first seen.
    pub first_day: i64,
    /// Days from then to the end of the input.
    pub horizon_days: u32,
    /// The last day a destination was new.
    pub last_new_day: i64,
    /// Whether its list can be called complete.
    pub confidence: Confidence,
    /// New destinations per day of [`Report::days`].
    pub new_per_day: Vec<u32>,
    /// Destinations seen per day of [`Report::days`].
    pub seen_per_day: Vec<u32>,
    /// The CIDRs its outside addresses are allowed by (policies without
    /// names use them).
    pub blocks: Vec<Block>,
    /// Names whose addresses rotate and that no user range covers: only a
    /// policy that follows names (Cilium, Calico, edgewise rules) can
    /// allow them; a NetworkPolicy does not.
    pub names_only: Vec<String>,
}

/// A destination of a group.
#[derive(Debug, Clone, Serialize)]
pub struct Destination {
    /// Who.
    pub target: Target,
    /// The ports used.
    pub ports: BTreeSet<Port>,
    /// The addresses seen.
    pub addresses: BTreeSet<IpAddr>,
    /// The labels every pod seen of it had (what a pod selector uses).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// First seen (day).
    pub first_day: i64,
    /// Last seen (day).
    pub last_day: i64,
    /// Flows.
    pub flows: u64,
    /// Part of the baseline.
    pub baseline: bool,
    /// A name whose addresses changed from day to day.
    pub rotates: bool,
}

/// A group's fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FanOut {
    /// Destinations, all kinds.
    pub destinations: usize,
    /// Other namespaces whose pods it reached.
    pub pod_namespaces: usize,
    /// Services.
    pub services: usize,
    /// Outside the pod network (names, addresses, nodes).
    pub external: usize,
    /// Inside (pods and Services).
    pub internal: usize,
}

/// Whether a group's list can be called complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confidence {
    /// `high` or `low`.
    pub level: &'static str,
    /// Why it is low.
    pub reasons: Vec<String>,
}

/// Where a CIDR came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "origin", rename_all = "snake_case")]
pub enum BlockOrigin {
    /// Addresses grouped by [`cover`].
    Grouped,
    /// A user's range.
    Prefix {
        /// Its name.
        name: String,
    },
}

/// A CIDR an egress rule allows.
#[derive(Debug, Clone, Serialize)]
pub struct Block {
    /// The block.
    pub cidr: IpNet,
    /// Where it came from.
    #[serde(flatten)]
    pub origin: BlockOrigin,
    /// Addresses seen in it.
    pub seen: usize,
    /// Addresses it holds.
    pub covers: f64,
    /// The share of it never seen.
    pub unseen_share: f64,
    /// The ports used in it.
    pub ports: BTreeSet<Port>,
    /// The destinations in it.
    pub targets: Vec<Target>,
}

#[derive(Default)]
struct Accumulated {
    ports: BTreeSet<Port>,
    addresses: BTreeMap<IpAddr, i64>,
    address_ports: BTreeMap<IpAddr, BTreeSet<Port>>,
    labels: Option<BTreeMap<String, String>>,
    first_day: i64,
    last_day: i64,
    days: BTreeSet<i64>,
    flows: u64,
}

/// Analyses `observations` (see the crate docs).
///
/// # Errors
/// [`AdviseError::Settings`] for settings out of range,
/// [`AdviseError::Empty`] when no observation has a pod source.
pub fn analyze(
    observations: &[Observation],
    settings: &Settings,
    prefixes: &Prefixes,
) -> Result<Report, AdviseError> {
    settings.check()?;
    let mut by_source: BTreeMap<Source, BTreeMap<Target, Accumulated>> = BTreeMap::new();
    // When each source was first seen, its own namespace's traffic
    // included.
    let mut since: BTreeMap<Source, i64> = BTreeMap::new();
    // The input's days are those edges were last seen on; a first seen
    // time before them (an edge older than the input) counts from the
    // first of them.
    let first = observations.iter().map(|o| o.day).min().unwrap_or(0);
    let last = observations.iter().map(|o| o.day).max().unwrap_or(0);
    let span = (last - first) / DAY_MS + 1;
    if span > MAX_DAYS {
        return Err(AdviseError::Span {
            days: span,
            first: crate::render::date(first),
            last: crate::render::date(last),
        });
    }
    for o in observations {
        let first_day = day_of(o.first_seen_ms).clamp(first, o.day);
        let source = Source {
            namespace: o.namespace.clone(),
            identity: match settings.granularity {
                Granularity::Namespace => String::new(),
                Granularity::ServiceIdentity => o.service_identity.clone(),
            },
        };
        let seen_from = since.entry(source.clone()).or_insert(first_day);
        *seen_from = (*seen_from).min(first_day);
        let targets = by_source.entry(source).or_default();
        if o.target.namespace() == Some(o.namespace.as_str()) {
            continue;
        }
        let port = Port {
            port: o.port,
            protocol: o.protocol,
        };
        let a = targets
            .entry(o.target.clone())
            .or_insert_with(|| Accumulated {
                first_day,
                last_day: o.day,
                ..Accumulated::default()
            });
        a.ports.insert(port);
        let seen = a.addresses.entry(o.ip).or_insert(first_day);
        *seen = (*seen).min(first_day);
        a.address_ports.entry(o.ip).or_default().insert(port);
        a.labels = Some(match a.labels.take() {
            None => o.labels.clone(),
            Some(mut held) => {
                held.retain(|k, v| o.labels.get(k) == Some(v));
                held
            }
        });
        a.first_day = a.first_day.min(first_day);
        a.last_day = a.last_day.max(o.day);
        a.days.extend([first_day, o.day]);
        a.flows = a.flows.saturating_add(o.flows);
    }
    if by_source.is_empty() {
        return Err(AdviseError::Empty);
    }
    let days: Vec<i64> = (0..=(last - first) / DAY_MS)
        .map(|i| first + i * DAY_MS)
        .collect();
    let baseline = baseline(&by_source, settings);
    let baseline_targets: BTreeSet<&Target> = baseline.iter().map(|b| &b.target).collect();
    let groups = by_source
        .iter()
        .map(|(source, targets)| {
            let first_day = since.get(source).copied().unwrap_or(first);
            let seen = Seen {
                baseline: &baseline_targets,
                days: &days,
                first_day,
            };
            group(source, targets, &seen, settings, prefixes)
        })
        .collect();
    Ok(Report {
        settings: settings.clone(),
        days,
        baseline,
        groups,
    })
}

fn baseline(
    by_source: &BTreeMap<Source, BTreeMap<Target, Accumulated>>,
    settings: &Settings,
) -> Vec<Baseline> {
    let mut used: BTreeMap<&Target, (usize, BTreeSet<Port>)> = BTreeMap::new();
    for targets in by_source.values() {
        for (target, a) in targets {
            let entry = used.entry(target).or_default();
            entry.0 += 1;
            entry.1.extend(&a.ports);
        }
    }
    #[expect(clippy::cast_precision_loss, reason = "a share")]
    let sources = by_source.len() as f64;
    used.into_iter()
        .filter(|(_, (count, _))| {
            #[expect(clippy::cast_precision_loss, reason = "a share")]
            let share = *count as f64 / sources;
            *count >= 2 && share >= settings.baseline_share
        })
        .map(|(target, (used_by, ports))| Baseline {
            target: target.clone(),
            ports,
            used_by,
        })
        .collect()
}

/// What a group is judged against: the baseline, the input's days and
/// the day the group was first seen.
struct Seen<'a> {
    baseline: &'a BTreeSet<&'a Target>,
    days: &'a [i64],
    first_day: i64,
}

fn group(
    source: &Source,
    targets: &BTreeMap<Target, Accumulated>,
    seen: &Seen<'_>,
    settings: &Settings,
    prefixes: &Prefixes,
) -> Group {
    let Seen {
        baseline,
        days,
        first_day,
    } = *seen;
    let last = days.last().copied().unwrap_or_default();
    let destinations: Vec<Destination> = targets
        .iter()
        .map(|(target, a)| Destination {
            target: target.clone(),
            ports: a.ports.clone(),
            addresses: a.addresses.keys().copied().collect(),
            labels: a.labels.clone().unwrap_or_default(),
            first_day: a.first_day,
            last_day: a.last_day,
            flows: a.flows,
            baseline: baseline.contains(target),
            rotates: matches!(target, Target::Name { .. })
                && a.addresses.values().collect::<BTreeSet<_>>().len() > 1,
        })
        .collect();
    let fan_out = fan_out(&destinations);
    let (tier, tier_reason) = tier(&fan_out, settings);
    let last_new_day = targets
        .values()
        .map(|a| a.first_day)
        .max()
        .unwrap_or(first_day);
    let horizon_days = u32::try_from((last - first_day) / DAY_MS + 1).unwrap_or(u32::MAX);
    let per_day = |count: &dyn Fn(&Accumulated, i64) -> bool| -> Vec<u32> {
        days.iter()
            .map(|&d| {
                u32::try_from(targets.values().filter(|a| count(a, d)).count()).unwrap_or(u32::MAX)
            })
            .collect()
    };
    let new_per_day = per_day(&|a, d| a.first_day == d);
    let seen_per_day = per_day(&|a, d| a.days.contains(&d));
    let confidence = confidence(
        &destinations,
        horizon_days,
        last_new_day,
        first_day,
        last,
        settings,
    );
    let (blocks, names_only) = blocks(targets, &destinations, settings, prefixes);
    Group {
        source: source.clone(),
        baseline: destinations
            .iter()
            .filter(|d| d.baseline)
            .map(|d| d.target.clone())
            .collect(),
        destinations,
        fan_out,
        tier,
        tier_reason,
        first_day,
        horizon_days,
        last_new_day,
        confidence,
        new_per_day,
        seen_per_day,
        blocks,
        names_only,
    }
}

fn fan_out(destinations: &[Destination]) -> FanOut {
    let pod_namespaces: BTreeSet<&str> = destinations
        .iter()
        .filter(|d| matches!(d.target, Target::Workload { .. }))
        .filter_map(|d| d.target.namespace())
        .collect();
    let external = destinations
        .iter()
        .filter(|d| d.target.is_external())
        .count();
    FanOut {
        destinations: destinations.len(),
        pod_namespaces: pod_namespaces.len(),
        services: destinations
            .iter()
            .filter(|d| matches!(d.target, Target::Service { .. }))
            .count(),
        external,
        internal: destinations.len() - external,
    }
}

fn tier(f: &FanOut, s: &Settings) -> (Tier, String) {
    if f.external >= s.broad_min_external {
        return (
            Tier::D,
            format!(
                "{} outside destinations (at least {}): too broad for a static list",
                f.external, s.broad_min_external
            ),
        );
    }
    if f.destinations <= s.pilot_max_destinations {
        return (
            Tier::A,
            format!(
                "{} destinations (at most {}): a pilot",
                f.destinations, s.pilot_max_destinations
            ),
        );
    }
    if f.external <= s.small_max_external && f.internal <= s.small_max_internal {
        return (
            Tier::B,
            format!(
                "{} outside (at most {}) and {} inside (at most {}): enforce in a batch",
                f.external, s.small_max_external, f.internal, s.small_max_internal
            ),
        );
    }
    (
        Tier::C,
        format!(
            "{} outside (small is at most {}) and {} inside (small is at most {}): review each destination",
            f.external, s.small_max_external, f.internal, s.small_max_internal
        ),
    )
}

fn confidence(
    destinations: &[Destination],
    horizon_days: u32,
    last_new_day: i64,
    first_day: i64,
    last: i64,
    settings: &Settings,
) -> Confidence {
    let mut reasons = Vec::new();
    if horizon_days < settings.min_days {
        reasons.push(format!(
            "observed for {horizon_days} days, fewer than {}",
            settings.min_days
        ));
    }
    let settled_from = last - (i64::from(settings.stable_days) - 1) * DAY_MS;
    if last_new_day > first_day && last_new_day >= settled_from {
        let late: Vec<String> = destinations
            .iter()
            .filter(|d| d.first_day == last_new_day)
            .map(|d| d.target.to_string())
            .collect();
        reasons.push(format!(
            "new on {} (within the last {} days): {}",
            crate::render::date(last_new_day),
            settings.stable_days,
            late.join(", ")
        ));
    }
    Confidence {
        level: if reasons.is_empty() { "high" } else { "low" },
        reasons,
    }
}

/// An address of a pool: its ports and destinations.
type Pooled<'a> = (BTreeSet<Port>, Vec<&'a Target>);
/// A user's range: the addresses, ports and destinations in it.
type InPrefix<'a> = (BTreeSet<IpAddr>, BTreeSet<Port>, BTreeSet<&'a Target>);

/// The CIDRs of a group's outside addresses, and the rotating names left
/// to policies that follow names.
fn blocks(
    targets: &BTreeMap<Target, Accumulated>,
    destinations: &[Destination],
    settings: &Settings,
    prefixes: &Prefixes,
) -> (Vec<Block>, Vec<String>) {
    // Pools of addresses grouped together: the addresses without a name
    // (and nodes) in one, each name that does not rotate in its own.
    let mut pools: BTreeMap<Option<&Target>, BTreeMap<IpAddr, Pooled<'_>>> = BTreeMap::new();
    let mut by_prefix: BTreeMap<(IpNet, String), InPrefix<'_>> = BTreeMap::new();
    let mut names_only = Vec::new();
    for (d, (target, a)) in destinations.iter().zip(targets) {
        if !target.is_external() {
            continue;
        }
        let mut pinned_nowhere = false;
        for (ip, ports) in &a.address_ports {
            if let Some(prefix) = prefixes.find(*ip) {
                let entry = by_prefix
                    .entry((prefix.prefix, prefix.name.clone()))
                    .or_default();
                entry.0.insert(*ip);
                entry.1.extend(ports);
                entry.2.insert(target);
                continue;
            }
            if d.rotates {
                pinned_nowhere = true;
                continue;
            }
            let pool = match target {
                Target::Name { .. } => Some(target),
                _ => None,
            };
            let entry = pools.entry(pool).or_default().entry(*ip).or_default();
            entry.0.extend(ports);
            entry.1.push(target);
        }
        if pinned_nowhere {
            names_only.push(target.to_string());
        }
    }
    let mut blocks = Vec::new();
    for ((cidr, name), (seen, ports, in_it)) in by_prefix {
        blocks.push(Block {
            cidr,
            origin: BlockOrigin::Prefix { name },
            seen: seen.len(),
            covers: size(&cidr),
            unseen_share: unseen_share(&cidr, seen.len()),
            ports,
            targets: in_it.into_iter().cloned().collect(),
        });
    }
    for addresses in pools.values() {
        let set: BTreeSet<IpAddr> = addresses.keys().copied().collect();
        for (cidr, seen) in cover(
            &set,
            settings.cidr_max_unseen,
            settings.cidr_widest_v4,
            settings.cidr_widest_v6,
        ) {
            let inside = addresses.iter().filter(|(ip, _)| cidr.contains(*ip));
            let mut ports = BTreeSet::new();
            let mut in_it = BTreeSet::new();
            for (_, (p, t)) in inside {
                ports.extend(p);
                in_it.extend(t.iter().copied());
            }
            blocks.push(Block {
                cidr,
                origin: BlockOrigin::Grouped,
                seen,
                covers: size(&cidr),
                unseen_share: unseen_share(&cidr, seen),
                ports,
                targets: in_it.into_iter().cloned().collect(),
            });
        }
    }
    blocks.sort_by_key(|b| b.cidr);
    (blocks, names_only)
}
