//! The schema's versions, for both engines. A store records the versions
//! applied in `schema_migrations`; opening it applies the missing ones in
//! order, each in a transaction, and refuses a store whose schema is newer
//! than this build knows.

use crate::schema::{AGENTS, PARTITIONED};

/// The engines' dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Postgres,
    Sqlite,
}

/// The table of applied versions.
pub(super) const LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

/// Every version, in order: its number and statements.
pub(super) fn migrations(dialect: Dialect) -> Vec<(i64, Vec<String>)> {
    vec![(1, first(dialect))]
}

/// The newest version this build knows.
pub(super) fn newest() -> i64 {
    migrations(Dialect::Sqlite)
        .last()
        .map_or(0, |(version, _)| *version)
}

fn first(dialect: Dialect) -> Vec<String> {
    let int = match dialect {
        Dialect::Postgres => "BIGINT",
        Dialect::Sqlite => "INTEGER",
    };
    let mut statements = Vec::new();
    for table in PARTITIONED {
        let create = table.create(int);
        statements.push(match dialect {
            Dialect::Postgres => format!("{create} PARTITION BY RANGE ({})", table.day_column()),
            Dialect::Sqlite => create,
        });
    }
    statements.push(AGENTS.create(int));
    statements.push(format!(
        "CREATE TABLE digest_runs (ran_at {int} NOT NULL, ok {int} NOT NULL, detail TEXT NOT NULL)"
    ));
    for (name, columns) in [
        ("edges_by_src_ns", "edges (src_ns, bucket)"),
        ("edges_by_dst_ns", "edges (dst_ns, bucket)"),
        ("external_by_src_ns", "external_edges (src_ns, day)"),
    ] {
        statements.push(format!("CREATE INDEX {name} ON {columns}"));
    }
    if dialect == Dialect::Postgres {
        // SQLite gets the same function from the store (a Rust closure).
        statements.push(
            "CREATE OR REPLACE FUNCTION agents_union(a text, b text) RETURNS text \
             LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ \
             SELECT coalesce(string_agg(DISTINCT x, ',' ORDER BY x), '') \
             FROM unnest(string_to_array(a || ',' || b, ',')) AS x WHERE x <> '' $$"
                .to_owned(),
        );
    }
    statements
}
