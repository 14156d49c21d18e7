//! The thresholds of the analysis, with their documented defaults, and
//! the tiers and granularities they sort into.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::AdviseError;

/// How sources are grouped.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// One source per namespace.
    #[default]
    Namespace,
    /// One source per namespace and `service-identity` label value (pods
    /// without the label are a source of their own).
    #[serde(rename = "namespace+service-identity")]
    ServiceIdentity,
}

impl FromStr for Granularity {
    type Err = AdviseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "namespace" => Ok(Self::Namespace),
            "namespace+service-identity" => Ok(Self::ServiceIdentity),
            _ => Err(AdviseError::Settings(format!(
                "granularity {text:?}: expected namespace or namespace+service-identity"
            ))),
        }
    }
}

/// A rollout tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tier {
    /// A pilot: one or two destinations.
    A,
    /// Small egress: enforceable in batches.
    B,
    /// Moderate egress: needs a review per destination.
    C,
    /// Broad egress (peer-to-peer and the like): never a static list.
    D,
}

impl Tier {
    /// `pilot`, `small`, `moderate`, `broad`.
    pub fn word(self) -> &'static str {
        match self {
            Self::A => "pilot",
            Self::B => "small",
            Self::C => "moderate",
            Self::D => "broad",
        }
    }

    /// Reads `A,B` or `pilot,small` (case does not matter).
    ///
    /// # Errors
    /// [`AdviseError::Tier`] naming the first word that is not a tier.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, AdviseError> {
        let mut tiers: Vec<Self> = text
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        tiers.sort_unstable();
        tiers.dedup();
        Ok(tiers)
    }
}

impl FromStr for Tier {
    type Err = AdviseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "a" | "pilot" => Ok(Self::A),
            "b" | "small" => Ok(Self::B),
            "c" | "moderate" => Ok(Self::C),
            "d" | "broad" => Ok(Self::D),
            _ => Err(AdviseError::Tier(text.to_owned())),
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self, self.word())
    }
}

/// The thresholds (a TOML table of these keys; every key optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// How sources are grouped (`namespace`).
    pub granularity: Granularity,
    /// A destination at least this share of sources use is baseline
    /// (0.8).
    pub baseline_share: f64,
    /// Tier A: at most this many destinations, baseline included (2).
    pub pilot_max_destinations: usize,
    /// Tier B: at most this many outside destinations (3) ...
    pub small_max_external: usize,
    /// ... and this many inside the cluster, baseline included (5).
    pub small_max_internal: usize,
    /// Tier D: at least this many outside destinations (50).
    pub broad_min_external: usize,
    /// Confidence is low under this many days of observation (7).
    pub min_days: u32,
    /// ... or when a new destination appeared in this many last days (3).
    pub stable_days: u32,
    /// A grouped CIDR leaves at most this share of its addresses unseen
    /// (0.25).
    pub cidr_max_unseen: f64,
    /// No grouped IPv4 CIDR is wider than this prefix length (24).
    pub cidr_widest_v4: u8,
    /// No grouped IPv6 CIDR is wider than this prefix length (64).
    pub cidr_widest_v6: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            granularity: Granularity::Namespace,
            baseline_share: 0.8,
            pilot_max_destinations: 2,
            small_max_external: 3,
            small_max_internal: 5,
            broad_min_external: 50,
            min_days: 7,
            stable_days: 3,
            cidr_max_unseen: 0.25,
            cidr_widest_v4: 24,
            cidr_widest_v6: 64,
        }
    }
}

impl Settings {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`AdviseError::Settings`] naming the first value out of range.
    pub fn check(&self) -> Result<(), AdviseError> {
        let share = |name: &str, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(AdviseError::Settings(format!(
                    "{name} = {value}: expected a share from 0 to 1"
                )))
            }
        };
        share("baseline_share", self.baseline_share)?;
        share("cidr_max_unseen", self.cidr_max_unseen)?;
        if self.baseline_share == 0.0 {
            return Err(AdviseError::Settings(
                "baseline_share = 0 would make every destination baseline".to_owned(),
            ));
        }
        if self.cidr_widest_v4 > 32 || self.cidr_widest_v6 > 128 {
            return Err(AdviseError::Settings(
                "cidr_widest_v4 is at most 32 and cidr_widest_v6 at most 128".to_owned(),
            ));
        }
        if self.min_days == 0 {
            return Err(AdviseError::Settings(
                "min_days must be at least 1".to_owned(),
            ));
        }
        if self.broad_min_external <= self.small_max_external {
            return Err(AdviseError::Settings(format!(
                "broad_min_external ({}) must be more than small_max_external ({})",
                self.broad_min_external, self.small_max_external
            )));
        }
        Ok(())
    }
}
