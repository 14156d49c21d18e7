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
    // Byte order for text on Postgres: index comparisons skip the
    // locale's collation (the costliest part of a merge otherwise), and
    // orders and maxima agree with SQLite's and Rust's.
    let (int, text) = match dialect {
        Dialect::Postgres => ("BIGINT", "TEXT COLLATE \"C\""),
        Dialect::Sqlite => ("INTEGER", "TEXT"),
    };
    let mut statements = Vec::new();
    for table in PARTITIONED {
        let create = table.create(int, text);
        statements.push(match dialect {
            Dialect::Postgres => format!("{create} PARTITION BY RANGE ({})", table.day_column()),
            Dialect::Sqlite => create,
        });
    }
    statements.push(AGENTS.create(int, text));
    statements.push(format!(
        "CREATE TABLE digest_runs (ran_at {int} NOT NULL, ok {int} NOT NULL, detail {text} NOT NULL)"
    ));
    // `edges` has no index but its key: every window rewrites the rows of
    // its hour, and each index would be written again with them. Recipes
    // read it by `bucket`, which the key starts with (and Postgres prunes
    // the day partitions outside the range).
    statements.push("CREATE INDEX external_by_src_ns ON external_edges (src_ns, day)".to_owned());
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
