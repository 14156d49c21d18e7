//! The recipes of `edgewise trail query`: the questions users ask of the
//! trail, each one SQL statement that runs unchanged on Postgres and
//! SQLite (the README prints them for psql). Results are an [`Answer`]:
//! named columns, rendered as an aligned table for a terminal or as JSON
//! lines for a pipe, times as RFC 3339.
//!
//! Edges are grouped by the *labels* of their ends: the workload
//! (`namespace/Kind/name`) when known, else the object (`namespace/name`,
//! `node/name`), else the address.

use std::fmt::Write as _;

use crate::TrailError;
use crate::rows::{HOUR_MS, Value};
use crate::schema::Type;
use crate::store::Store;
use crate::time::rfc3339;

/// What a column holds, for rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text.
    Text,
    /// A number.
    Int,
    /// A time (Unix milliseconds).
    Time,
}

impl Kind {
    fn ty(self) -> Type {
        match self {
            Self::Text => Type::Text,
            Self::Int | Self::Time => Type::Int,
        }
    }
}

/// A recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipe {
    /// Edges from or to a namespace, active since a time.
    Edges {
        /// The namespace.
        namespace: String,
        /// Since (Unix milliseconds).
        since_ms: i64,
    },
    /// Edges first seen since a time and never before.
    New {
        /// Since.
        since_ms: i64,
    },
    /// Where a namespace's workloads went outside it (other namespaces,
    /// addresses outside the cluster), with the FQDN the client resolved.
    Egress {
        /// The namespace.
        namespace: String,
        /// Since.
        since_ms: i64,
    },
    /// Edges with a `violation` verdict active since a time.
    Violations {
        /// Since.
        since_ms: i64,
    },
}

/// The columns of the edge recipes, the fifth named `fifth` (`verdict`,
/// or `policy` for violations).
pub(crate) fn edge_columns(fifth: &'static str) -> Vec<(&'static str, Kind)> {
    vec![
        ("src", Kind::Text),
        ("dst", Kind::Text),
        ("port", Kind::Int),
        ("proto", Kind::Text),
        (fifth, Kind::Text),
        ("flows", Kind::Int),
        ("first_seen", Kind::Time),
        ("last_seen", Kind::Time),
    ]
}

/// `edges --namespace NS --since D`: $1 the first hour bucket, $2 the
/// time, $3 the namespace.
pub const EDGES_SQL: &str = "\
SELECT src_label, dst_label, port, proto, max(verdict),
       CAST(sum(flow_count) AS BIGINT), min(first_seen), max(last_seen)
FROM edges
WHERE bucket >= $1 AND last_seen >= $2 AND (src_ns = $3 OR dst_ns = $3)
GROUP BY src_label, dst_label, port, proto
ORDER BY src_label, dst_label, port, proto";

/// `new --since D`: $1 the first hour bucket, $2 the time.
pub const NEW_SQL: &str = "\
SELECT src_label, dst_label, port, proto, max(verdict),
       CAST(sum(flow_count) AS BIGINT), min(first_seen), max(last_seen)
FROM edges
WHERE (src_label, dst_label, port, proto) IN
      (SELECT src_label, dst_label, port, proto FROM edges WHERE bucket >= $1)
GROUP BY src_label, dst_label, port, proto
HAVING min(first_seen) >= $2
ORDER BY min(first_seen), src_label, dst_label, port";

/// `egress --namespace NS [--since D]`: $1 the first hour bucket, $2 the
/// namespace.
pub const EGRESS_SQL: &str = "\
SELECT dst_label, dst_ns, dst_fqdn, port, proto, max(verdict),
       CAST(sum(flow_count) AS BIGINT), min(first_seen), max(last_seen)
FROM edges
WHERE bucket >= $1 AND src_ns = $2 AND dst_ns <> $2
GROUP BY dst_label, dst_ns, dst_fqdn, port, proto
ORDER BY dst_ns, dst_label, dst_fqdn, port, proto";

/// `violations --since D`: $1 the first hour bucket, $2 the time.
pub const VIOLATIONS_SQL: &str = "\
SELECT src_label, dst_label, port, proto, max(policy),
       CAST(sum(flow_count) AS BIGINT), min(first_seen), max(last_seen)
FROM edges
WHERE bucket >= $1 AND last_seen >= $2 AND verdict = 'violation'
GROUP BY src_label, dst_label, port, proto
ORDER BY max(last_seen) DESC, src_label, dst_label, port";

/// A query's answer: named columns and rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The columns' names and kinds.
    pub columns: Vec<(&'static str, Kind)>,
    /// The rows.
    pub rows: Vec<Vec<Value>>,
}

fn bucket(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

impl Recipe {
    /// Its SQL, parameters and columns.
    fn parts(&self) -> (&'static str, Vec<Value>, Vec<(&'static str, Kind)>) {
        match self {
            Self::Edges {
                namespace,
                since_ms,
            } => (
                EDGES_SQL,
                vec![
                    Value::Int(bucket(*since_ms)),
                    Value::Int(*since_ms),
                    Value::Text(namespace.clone()),
                ],
                edge_columns("verdict"),
            ),
            Self::New { since_ms } => (
                NEW_SQL,
                vec![Value::Int(bucket(*since_ms)), Value::Int(*since_ms)],
                edge_columns("verdict"),
            ),
            Self::Egress {
                namespace,
                since_ms,
            } => (
                EGRESS_SQL,
                vec![
                    Value::Int(bucket(*since_ms)),
                    Value::Text(namespace.clone()),
                ],
                vec![
                    ("dst", Kind::Text),
                    ("dst_namespace", Kind::Text),
                    ("fqdn", Kind::Text),
                    ("port", Kind::Int),
                    ("proto", Kind::Text),
                    ("verdict", Kind::Text),
                    ("flows", Kind::Int),
                    ("first_seen", Kind::Time),
                    ("last_seen", Kind::Time),
                ],
            ),
            Self::Violations { since_ms } => (
                VIOLATIONS_SQL,
                vec![Value::Int(bucket(*since_ms)), Value::Int(*since_ms)],
                edge_columns("policy"),
            ),
        }
    }

    /// Runs it.
    ///
    /// # Errors
    /// [`TrailError::Store`].
    pub fn run(&self, store: &mut Store) -> Result<Answer, TrailError> {
        let (sql, params, columns) = self.parts();
        run(store, sql, &params, columns)
    }
}

/// Runs `sql` and names its columns.
pub(crate) fn run(
    store: &mut Store,
    sql: &str,
    params: &[Value],
    columns: Vec<(&'static str, Kind)>,
) -> Result<Answer, TrailError> {
    let types: Vec<Type> = columns.iter().map(|(_, kind)| kind.ty()).collect();
    let rows = store.query(sql, params, &types)?;
    Ok(Answer { columns, rows })
}

impl Answer {
    fn cell(&self, column: usize, value: &Value) -> String {
        match (self.columns[column].1, value) {
            (Kind::Time, Value::Int(ms)) => rfc3339(*ms),
            (_, Value::Int(n)) => n.to_string(),
            (_, Value::Text(text)) => text.clone(),
        }
    }

    /// One JSON object per row, a line each: `schema` ([`ROW_SCHEMA`]),
    /// then the columns in order; numbers as numbers, times as RFC 3339.
    pub fn json_lines(&self) -> String {
        let mut out = String::new();
        for row in &self.rows {
            let line = RowJson {
                answer: self,
                row,
                schema: Some(ROW_SCHEMA),
            };
            // Strings and integers always serialize.
            out.push_str(&serde_json::to_string(&line).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// An aligned table with a header (`-` for an empty cell).
    pub fn table(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .map(|(i, v)| match self.cell(i, v) {
                        empty if empty.is_empty() => "-".to_owned(),
                        text => text,
                    })
                    .collect()
            })
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|(name, _)| name.len()).collect();
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>| {
            let padded: Vec<String> = cells
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            padded.join("  ").trim_end().to_owned() + "\n"
        };
        let mut out = line(&mut self.columns.iter().map(|(name, _)| *name));
        for row in &cells {
            out.push_str(&line(&mut row.iter().map(String::as_str)));
        }
        out
    }

    /// A markdown table (for the digest).
    pub fn markdown(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
        let mut out = format!(
            "| {} |\n|{}\n",
            names.join(" | "),
            " --- |".repeat(names.len())
        );
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, v)| self.cell(i, v).replace('|', "\\|"))
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }

    /// The rows as JSON objects.
    pub fn json(&self) -> serde_json::Value {
        self.rows
            .iter()
            .map(|row| {
                let row = RowJson {
                    answer: self,
                    row,
                    schema: None,
                };
                serde_json::to_value(row).unwrap_or_default()
            })
            .collect()
    }
}

/// The schema tag of each line of [`Answer::json_lines`]
/// (`schemas/trail-row.schema.json`).
pub const ROW_SCHEMA: &str = "edgewise.trail-row/v1";

/// One row as a JSON object, its columns in order.
struct RowJson<'a> {
    answer: &'a Answer,
    row: &'a [Value],
    schema: Option<&'static str>,
}

impl serde::Serialize for RowJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(None)?;
        if let Some(schema) = self.schema {
            map.serialize_entry("schema", schema)?;
        }
        for (i, value) in self.row.iter().enumerate() {
            let name = self.answer.columns[i].0;
            match (self.answer.columns[i].1, value) {
                (Kind::Int, Value::Int(n)) => map.serialize_entry(name, n)?,
                _ => map.serialize_entry(name, &self.answer.cell(i, value))?,
            }
        }
        map.end()
    }
}
