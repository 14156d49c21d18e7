//! The trail's tables, described once: every column with its type and
//! how two reports of the same row merge. The description drives
//! everything that touches a table: `CREATE TABLE`, the batch merge in
//! [`crate::rows`] and the `INSERT ... ON CONFLICT DO UPDATE` of both
//! stores, so the merge in Rust and the merge in SQL cannot drift apart.
//!
//! Keys put the fixed-width columns first (the day, the port), then the
//! addresses: an index comparison is mostly decided before the first
//! variable-length column, whose offset Postgres can cache.
//!
//! Every table but `agents` is keyed by a day column (`day`, or `bucket`
//! for hourly edges) first: on Postgres each table is partitioned by day and
//! retention drops whole partitions; on SQLite retention deletes by it.
//! Times are Unix milliseconds (`BIGINT`); absent strings are `''` (so
//! that they can be part of a key on both engines).

/// A column's SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// `BIGINT` (Postgres) / `INTEGER` (SQLite): an `i64`.
    Int,
    /// `TEXT`.
    Text,
}

/// How a column merges when the same row is reported again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Part of the key.
    Key,
    /// The first report's value stays.
    Keep,
    /// Summed.
    Sum,
    /// The smaller.
    Min,
    /// The larger.
    Max,
    /// The latest report's (by `last_seen`, then by the `Latest` columns'
    /// values, so that ties are broken the same way in any order).
    Latest,
    /// The latest non-empty value (an FQDN seen once stays).
    LatestNonEmpty,
    /// A sorted, comma-separated set of agent names, united.
    Agents,
}

/// A column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub ty: Type,
    /// How it merges.
    pub merge: Merge,
    /// The schema version that added it (see `store::migrate`).
    pub since: i64,
}

const fn col(name: &'static str, ty: Type, merge: Merge) -> Column {
    Column {
        name,
        ty,
        merge,
        since: 1,
    }
}

/// A column added by schema version `since` (with `''` or 0 for the rows
/// written before it).
const fn added(since: i64, name: &'static str, ty: Type, merge: Merge) -> Column {
    Column {
        name,
        ty,
        merge,
        since,
    }
}

/// A table of the trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// Its name.
    pub name: &'static str,
    /// Its columns; the first is the day column partitions are cut by.
    pub columns: &'static [Column],
}

use Merge::{Agents, Keep, Key, Latest, LatestNonEmpty, Max, Min, Sum};
use Type::{Int, Text};

/// The name of the column `Latest` merges compare first.
pub const LAST_SEEN: &str = "last_seen";

/// Address-level edges per hour: who (namespace, object, workload,
/// `service-identity` label, label as the recipes print it) talked to
/// whom on which port, the verdict and deciding policy, the FQDN the
/// client resolved, first and last seen, flows, bytes, reporting agents,
/// and (since version 2) the server's stable labels as a JSON object (what
/// `edgewise advise` writes pod selectors from).
pub const EDGES: Table = Table {
    name: "edges",
    columns: &[
        col("bucket", Int, Key),
        col("port", Int, Key),
        col("src_ip", Text, Key),
        col("dst_ip", Text, Key),
        col("src_ns", Text, Key),
        col("src_name", Text, Key),
        col("dst_ns", Text, Key),
        col("dst_name", Text, Key),
        col("proto", Text, Key),
        col("src_kind", Text, Keep),
        col("src_workload_kind", Text, Keep),
        col("src_workload", Text, Keep),
        col("src_identity", Text, Keep),
        col("src_label", Text, Keep),
        col("dst_kind", Text, Keep),
        col("dst_workload_kind", Text, Keep),
        col("dst_workload", Text, Keep),
        col("dst_identity", Text, Keep),
        col("dst_label", Text, Keep),
        col("dst_fqdn", Text, LatestNonEmpty),
        col("verdict", Text, Latest),
        col("policy", Text, Latest),
        col("first_seen", Int, Min),
        col("last_seen", Int, Max),
        col("flow_count", Int, Sum),
        col("byte_count", Int, Sum),
        col("agents", Text, Agents),
        added(2, "dst_labels", Text, Keep),
    ],
};

/// Namespace-level edges per day (the seeds' table), refined by the
/// `service-identity` label where it is set; self-edges and flows without
/// a namespace on both ends are not in it.
pub const NAMESPACE_EDGES: Table = Table {
    name: "namespace_edges",
    columns: &[
        col("day", Int, Key),
        col("src_ns", Text, Key),
        col("src_identity", Text, Key),
        col("dst_ns", Text, Key),
        col("dst_identity", Text, Key),
        col("verdict", Text, Key),
        col("first_seen", Int, Min),
        col("last_seen", Int, Max),
        col("flow_count", Int, Sum),
    ],
};

/// Egress to addresses outside the cluster per day, by source namespace
/// (and `service-identity`), with the FQDN the client resolved.
pub const EXTERNAL_EDGES: Table = Table {
    name: "external_edges",
    columns: &[
        col("day", Int, Key),
        col("port", Int, Key),
        col("dst_ip", Text, Key),
        col("src_ns", Text, Key),
        col("src_identity", Text, Key),
        col("proto", Text, Key),
        col("dst_fqdn", Text, LatestNonEmpty),
        col("verdict", Text, Latest),
        col("policy", Text, Latest),
        col("first_seen", Int, Min),
        col("last_seen", Int, Max),
        col("flow_count", Int, Sum),
    ],
};

/// What was seen of each address per day: one row per fact (`ja4t`,
/// `ja4ts`, `ja4`, `ja4s`, `service` or `product`, the last two with the
/// service's port and protocol).
pub const NODES: Table = Table {
    name: "nodes",
    columns: &[
        col("day", Int, Key),
        col("port", Int, Key),
        col("ip", Text, Key),
        col("ns", Text, Key),
        col("name", Text, Key),
        col("fact", Text, Key),
        col("value", Text, Key),
        col("proto", Text, Key),
        col("kind", Text, Keep),
        col("label", Text, Keep),
        col("first_seen", Int, Min),
        col("last_seen", Int, Max),
    ],
};

/// The slices merged, one row each (the window in Unix nanoseconds, as
/// the agent sent it): what makes a second copy a no-op.
pub const SLICES: Table = Table {
    name: "slices",
    columns: &[
        col("day", Int, Key),
        col("agent", Text, Key),
        col("window_start_ns", Int, Key),
        col("window_end_ns", Int, Key),
        col("seq", Int, Key),
        col("received_at", Int, Keep),
        col("edges", Int, Keep),
        col("flows", Int, Keep),
    ],
};

/// One row per agent: when it first and last sent, the end of its
/// latest window, its export interval, how many slices it sent. Not
/// partitioned: agents are few and their rows are what tells a silent
/// one.
pub const AGENTS: Table = Table {
    name: "agents",
    columns: &[
        col("agent", Text, Key),
        col("first_seen", Int, Min),
        col("last_seen", Int, Max),
        col("window_end", Int, Max),
        col("interval_ms", Int, Latest),
        col("slices", Int, Sum),
    ],
};

/// The tables of merged data, in the order a batch writes them.
pub const DATA_TABLES: [Table; 4] = [EDGES, NAMESPACE_EDGES, EXTERNAL_EDGES, NODES];

/// Every day-partitioned table.
pub const PARTITIONED: [Table; 5] = [SLICES, EDGES, NAMESPACE_EDGES, EXTERNAL_EDGES, NODES];

impl Table {
    /// The key columns.
    pub fn key(&self) -> impl Iterator<Item = &'static Column> {
        self.columns.iter().filter(|c| c.merge == Key)
    }

    /// The day column (the first).
    pub fn day_column(&self) -> &'static str {
        self.columns[0].name
    }

    /// Where a column is, by name.
    ///
    /// # Panics
    /// When the table has no such column (a bug in this module).
    pub fn index(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("{} has no column {name}", self.name))
    }

    /// `CREATE TABLE` as schema version `version` had it, with the
    /// engine's integer and text types (without partitioning; the stores
    /// add it).
    pub fn create(&self, version: i64, int: &str, text: &str) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .filter(|c| c.since <= version)
            .map(|c| {
                let ty = match c.ty {
                    Int => int,
                    Text => text,
                };
                format!("{} {ty} NOT NULL", c.name)
            })
            .collect();
        let key: Vec<&str> = self.key().map(|c| c.name).collect();
        format!(
            "CREATE TABLE {} ({}, PRIMARY KEY ({}))",
            self.name,
            columns.join(", "),
            key.join(", ")
        )
    }

    /// `INSERT` of one row, its values numbered parameters written with
    /// `mark` (`$` for Postgres, `?` for SQLite), merged by
    /// [`Table::on_conflict`].
    pub fn insert(&self, mark: char) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("{mark}{i}")).collect();
        format!(
            "INSERT INTO {} ({}) VALUES ({}) {}",
            self.name,
            names.join(", "),
            marks.join(", "),
            self.on_conflict()
        )
    }

    /// The `ON CONFLICT (key) DO UPDATE SET ...` (or `DO NOTHING`) clause
    /// that merges `excluded` into the stored row, as [`Merge`] says.
    pub fn on_conflict(&self) -> String {
        let key: Vec<&str> = self.key().map(|c| c.name).collect();
        let sets = self.merge_sets(self.name, "excluded");
        if sets.is_empty() {
            format!("ON CONFLICT ({}) DO NOTHING", key.join(", "))
        } else {
            format!(
                "ON CONFLICT ({}) DO UPDATE SET {}",
                key.join(", "),
                sets.join(", ")
            )
        }
    }

    /// The assignments `column = ...` that merge the row called `theirs`
    /// into the stored row called `mine` (none for a table that only
    /// inserts).
    pub fn merge_sets(&self, mine: &str, theirs: &str) -> Vec<String> {
        let (t, x) = (mine, theirs);
        let latest: Vec<&str> = self
            .columns
            .iter()
            .filter(|c| c.merge == Latest)
            .map(|c| c.name)
            .collect();
        let newer = {
            let mut tuple = vec![LAST_SEEN];
            tuple.extend(&latest);
            let stored: Vec<String> = tuple.iter().map(|c| format!("{t}.{c}")).collect();
            let new: Vec<String> = tuple.iter().map(|c| format!("{x}.{c}")).collect();
            format!("({}) > ({})", new.join(", "), stored.join(", "))
        };
        self.columns
            .iter()
            .filter_map(|c| {
                let n = c.name;
                let value = match c.merge {
                    Key | Keep => return None,
                    Sum => format!("{t}.{n} + {x}.{n}"),
                    Min => format!("CASE WHEN {x}.{n} < {t}.{n} THEN {x}.{n} ELSE {t}.{n} END"),
                    Max => format!("CASE WHEN {x}.{n} > {t}.{n} THEN {x}.{n} ELSE {t}.{n} END"),
                    Latest => format!("CASE WHEN {newer} THEN {x}.{n} ELSE {t}.{n} END"),
                    LatestNonEmpty => format!(
                        "CASE WHEN {x}.{n} <> '' AND ({t}.{n} = '' OR ({x}.{LAST_SEEN}, {x}.{n}) > ({t}.{LAST_SEEN}, {t}.{n})) THEN {x}.{n} ELSE {t}.{n} END"
                    ),
                    // The same agent reporting again is the common case:
                    // no call then.
                    Agents => format!(
                        "CASE WHEN {t}.{n} = {x}.{n} THEN {t}.{n} ELSE agents_union({t}.{n}, {x}.{n}) END"
                    ),
                };
                Some(format!("{n} = {value}"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_starts_with_its_day_and_has_a_key() {
        for table in PARTITIONED {
            assert_eq!(table.columns[0].merge, Key, "{}", table.name);
            assert!(table.key().count() >= 2, "{}", table.name);
        }
    }

    #[test]
    fn latest_columns_compare_last_seen_first() {
        let clause = EDGES.on_conflict();
        assert!(
            clause.contains("(excluded.last_seen, excluded.verdict, excluded.policy) > (edges.last_seen, edges.verdict, edges.policy)"),
            "{clause}"
        );
        assert_eq!(
            SLICES.on_conflict(),
            "ON CONFLICT (day, agent, window_start_ns, window_end_ns, seq) DO NOTHING"
        );
    }
}
