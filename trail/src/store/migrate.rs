//! The schema's versions, for both engines. A store records the versions
//! applied in `schema_migrations`; opening it applies the missing ones in
//! order, each in a transaction, and refuses a store whose schema is newer
//! than this build knows.

use crate::schema::{AGENTS, PARTITIONED, Type};

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
    vec![(1, first(dialect)), (2, added_columns(dialect, 2))]
}

/// The columns version `version` added, with `''` or 0 for older rows (a
/// partitioned table passes the column to every partition).
fn added_columns(dialect: Dialect, version: i64) -> Vec<String> {
    let (int, text) = types(dialect);
    PARTITIONED
        .iter()
        .chain([&AGENTS])
        .flat_map(|table| {
            table
                .columns
                .iter()
                .filter(move |c| c.since == version)
                .map(move |c| {
                    let (ty, zero) = match c.ty {
                        Type::Int => (int, "0"),
                        Type::Text => (text, "''"),
                    };
                    format!(
                        "ALTER TABLE {} ADD COLUMN {} {ty} NOT NULL DEFAULT {zero}",
                        table.name, c.name
                    )
                })
        })
        .collect()
}

fn types(dialect: Dialect) -> (&'static str, &'static str) {
    // Byte order for text on Postgres: index comparisons skip the
    // locale's collation (the costliest part of a merge otherwise), and
    // orders and maxima agree with SQLite's and Rust's.
    match dialect {
        Dialect::Postgres => ("BIGINT", "TEXT COLLATE \"C\""),
        Dialect::Sqlite => ("INTEGER", "TEXT"),
    }
}

/// The newest version this build knows.
pub(super) fn newest() -> i64 {
    migrations(Dialect::Sqlite)
        .last()
        .map_or(0, |(version, _)| *version)
}

fn first(dialect: Dialect) -> Vec<String> {
    let (int, text) = types(dialect);
    let mut statements = Vec::new();
    for table in PARTITIONED {
        let create = table.create(1, int, text);
        statements.push(match dialect {
            Dialect::Postgres => format!("{create} PARTITION BY RANGE ({})", table.day_column()),
            Dialect::Sqlite => create,
        });
    }
    statements.push(AGENTS.create(1, int, text));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::Value;
    use crate::schema::{EDGES, Type as T};
    use crate::store::{Store, StoreUrl};

    #[test]
    fn a_version_one_store_gains_the_labels_column_and_keeps_its_rows() {
        let dir = std::env::temp_dir().join(format!("edgewise-migrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v1.db");
        let _ = std::fs::remove_file(&path);
        {
            let db = rusqlite::Connection::open(&path).unwrap();
            db.execute_batch(LEDGER).unwrap();
            for statement in first(Dialect::Sqlite) {
                db.execute_batch(&statement).unwrap();
            }
            db.execute("INSERT INTO schema_migrations VALUES (1, 0)", [])
                .unwrap();
            let v1: Vec<&str> = EDGES
                .columns
                .iter()
                .filter(|c| c.since == 1)
                .map(|c| c.name)
                .collect();
            let values: Vec<String> = EDGES
                .columns
                .iter()
                .filter(|c| c.since == 1)
                .map(|c| match c.ty {
                    T::Int => "7".to_owned(),
                    T::Text => format!("'{}'", c.name),
                })
                .collect();
            db.execute_batch(&format!(
                "INSERT INTO edges ({}) VALUES ({})",
                v1.join(", "),
                values.join(", ")
            ))
            .unwrap();
        }
        let mut store = Store::open(&StoreUrl::Sqlite(path.clone()), 0).unwrap();
        let rows = store
            .query(
                "SELECT src_ip, dst_labels FROM edges",
                &[],
                &[T::Text, T::Text],
            )
            .unwrap();
        assert_eq!(
            rows,
            [vec![
                Value::Text("src_ip".into()),
                Value::Text(String::new())
            ]]
        );
        let versions = store
            .query("SELECT max(version) FROM schema_migrations", &[], &[T::Int])
            .unwrap();
        assert_eq!(versions, [vec![Value::Int(newest())]]);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
