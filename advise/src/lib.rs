//! `edgewise-advise`: from what a cluster's workloads were seen to reach
//! to per-namespace egress allowlists a team can roll out, and a check of
//! a candidate policy set against the same history. Sans-IO: observations
//! come in as values ([`Observation`], from graph files with
//! [`observation::from_graph`] or from the trail's rows by the caller),
//! reports and policies go out as values and text.
//!
//! The analysis ([`analyze`]):
//! - **sources** are pods, grouped by namespace, or by namespace and
//!   `service-identity` label ([`Granularity`]); addresses that are not
//!   pods (nodes, outside clients) are not sources;
//! - **destinations** ([`Target`]) are pods of another namespace (by
//!   workload), Services, nodes, names the client resolved (every address
//!   of a name is one destination) and addresses without a name; a
//!   source's own namespace is not an egress destination (every policy
//!   lets it in whole);
//! - the **baseline** is every destination at least
//!   [`Settings::baseline_share`] of the sources use;
//! - the **tier** ([`Tier`]) sorts sources by fan-out: A (pilot) at most
//!   [`Settings::pilot_max_destinations`] destinations, B (small) at most
//!   [`Settings::small_max_external`] outside and
//!   [`Settings::small_max_internal`] inside, D (broad) at least
//!   [`Settings::broad_min_external`] outside, which never gets a static
//!   list, and C (moderate) the rest;
//! - **confidence** is low while the source's horizon is under
//!   [`Settings::min_days`] days or a new destination appeared in its last
//!   [`Settings::stable_days`] days;
//! - addresses without a name are grouped into the widest CIDRs that leave
//!   at most [`Settings::cidr_max_unseen`] of their space unseen, or into
//!   a user's ranges ([`Prefixes`]); a name whose addresses rotate is never
//!   pinned to its addresses (see [`policies`]).

#![forbid(unsafe_code)]

// The edgewise crates whose types this crate's API uses, so that a user
// names them at the version this crate was built with.
pub use edgewise_edge_set as edge_set;
pub use edgewise_ip_index as ip_index;

pub mod analysis;
pub mod check;
pub mod cidr;
pub mod observation;
pub mod policies;
pub mod render;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;

pub use analysis::{Block, BlockOrigin, Confidence, Destination, FanOut, Group, Report, analyze};
pub use check::{CheckReport, Denial, check};
pub use cidr::{Prefix, Prefixes};
pub use observation::{Observation, Source, Target};
pub use settings::{Granularity, Settings, Tier};

/// Why advice could not be given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdviseError {
    /// A graph file is not an `edgewise.graph/v1` document.
    #[error("{source_name}: {problem}")]
    Graph {
        /// The file (as the caller named it).
        source_name: String,
        /// What is wrong.
        problem: String,
    },
    /// A prefixes file is not a JSON list of `{"prefix", "name"}`.
    #[error("{source_name}: {problem}")]
    Prefixes {
        /// The file.
        source_name: String,
        /// What is wrong.
        problem: String,
    },
    /// A settings value is out of its range.
    #[error("settings: {0}")]
    Settings(String),
    /// A tier that is not A, B, C or D (or pilot, small, moderate, broad).
    #[error("{0:?} is not a tier: expected A, B, C, D (or pilot, small, moderate, broad)")]
    Tier(String),
    /// The input spans more days than [`analysis::MAX_DAYS`] (clocks that
    /// are not Unix time, or files of years apart).
    #[error(
        "the input spans {days} days, {first} to {last}: at most 731 (pick fewer files or a shorter --since)"
    )]
    Span {
        /// Days spanned.
        days: i64,
        /// The first.
        first: String,
        /// The last.
        last: String,
    },
    /// There was nothing to analyse.
    #[error("no egress from pods was observed in the input")]
    Empty,
}

/// Milliseconds in a day; days are UTC days in Unix milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The start of the UTC day of `ms`.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// Entry points for the cargo-fuzz targets (not part of the API).
#[doc(hidden)]
pub mod fuzzing {
    /// Never-panic: a graph document through the analysis, every tier's
    /// policies and every rendering.
    pub fn advise_graph(data: &[u8]) {
        let Ok(observations) = crate::observation::from_graph("fuzz", data) else {
            return;
        };
        let Ok(report) = crate::analyze(
            &observations,
            &crate::Settings::default(),
            &crate::Prefixes::default(),
        ) else {
            return;
        };
        let tiers = [
            crate::Tier::A,
            crate::Tier::B,
            crate::Tier::C,
            crate::Tier::D,
        ];
        let policies = crate::policies::generate(&report, &tiers, 300);
        let _ = crate::policies::yaml(&policies.network_policies);
        let _ = crate::render::markdown(&report);
        let _ = crate::render::html(&report);
        let _ = crate::render::json(&report);
        let _ = crate::Prefixes::from_json("fuzz", data);
    }
}
