//! The Postgres engine (see the module docs of [`super`]).

use std::collections::HashSet;
use std::error::Error as _;

use bytes::BytesMut;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{IsNull, ToSql, Type as PgType, to_sql_checked};
use postgres::{Client, NoTls};

use super::migrate::{Dialect, LEDGER, migrations, newest};
use super::{Loading, Transaction};
use crate::TrailError;
use crate::rows::{DAY_MS, TableRows, Value};
use crate::schema::{PARTITIONED, Table, Type};
use crate::time::{compact_date, parse_compact_date};

/// The advisory lock migrations hold (any constant of our own).
const MIGRATION_LOCK: i64 = 0x6564_6765_7769_7365; // "edgewise"

/// A Postgres error with its SQLSTATE and message.
fn failed(error: &postgres::Error) -> TrailError {
    let message = match error.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => match error.source() {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    };
    TrailError::Store {
        engine: "postgres",
        message,
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &PgType,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Self::Int(value) => value.to_sql(ty, out),
            Self::Text(value) => value.to_sql(ty, out),
        }
    }

    fn accepts(ty: &PgType) -> bool {
        <i64 as ToSql>::accepts(ty) || <String as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

fn refs(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

pub(super) struct Postgres {
    conn: String,
    client: Option<Client>,
    /// The staging tables exist on this connection.
    staged: bool,
    /// Days whose partitions exist.
    partitions: HashSet<i64>,
    pub(super) loading: Loading,
}

impl Postgres {
    pub(super) fn open(conn: &str) -> Result<Self, TrailError> {
        let mut pg = Self {
            conn: conn.to_owned(),
            client: None,
            staged: false,
            partitions: HashSet::new(),
            loading: Loading::Staged,
        };
        pg.client()?;
        Ok(pg)
    }

    /// The connection, made again when it was lost (migrating on the way,
    /// which costs one query when there is nothing to do).
    fn client(&mut self) -> Result<&mut Client, TrailError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.staged = false;
            let mut client = Client::connect(&self.conn, NoTls).map_err(|e| failed(&e))?;
            migrate(&mut client)?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Creates the partitions of `days` that may be missing (another
    /// replica creating one at the same time is fine).
    pub(super) fn ensure_partitions(&mut self, days: &[i64]) -> Result<(), TrailError> {
        let missing: Vec<i64> = days
            .iter()
            .copied()
            .filter(|day| !self.partitions.contains(day))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let client = self.client()?;
        for &day in &missing {
            for table in PARTITIONED {
                let sql = format!(
                    "CREATE TABLE IF NOT EXISTS {t}_{date} PARTITION OF {t} FOR VALUES FROM ({day}) TO ({end})",
                    t = table.name,
                    date = compact_date(day),
                    end = day + DAY_MS,
                );
                if let Err(error) = client.batch_execute(&sql) {
                    let raced = error
                        .code()
                        .is_some_and(|code| matches!(code.code(), "42P07" | "23505"));
                    if !raced {
                        return Err(failed(&error));
                    }
                }
            }
        }
        self.partitions.extend(missing);
        Ok(())
    }

    pub(super) fn transaction<T>(
        &mut self,
        run: &mut dyn FnMut(&mut dyn Transaction) -> Result<T, TrailError>,
    ) -> Result<T, TrailError> {
        let loading = self.loading;
        if !self.staged {
            let client = self.client()?;
            for table in crate::schema::DATA_TABLES {
                client
                    .batch_execute(&format!(
                        "CREATE TEMP TABLE IF NOT EXISTS stage_{t} (LIKE {t}) ON COMMIT DELETE ROWS",
                        t = table.name
                    ))
                    .map_err(|e| failed(&e))?;
            }
            self.staged = true;
        }
        let client = self.client()?;
        let outcome = (|| {
            let tx = client.transaction().map_err(|e| failed(&e))?;
            let mut pg = PgTransaction { tx, loading };
            let value = run(&mut pg)?;
            pg.tx.commit().map_err(|e| failed(&e))?;
            Ok(value)
        })();
        if outcome.is_err() && self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        outcome
    }

    pub(super) fn drop_partitions_before(&mut self, horizon: i64) -> Result<u64, TrailError> {
        let client = self.client()?;
        let mut dropped = 0;
        for table in PARTITIONED {
            let rows = client
                .query(
                    "SELECT c.relname::text FROM pg_inherits i \
                     JOIN pg_class c ON c.oid = i.inhrelid \
                     JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1",
                    &[&table.name],
                )
                .map_err(|e| failed(&e))?;
            for row in rows {
                let name: String = row.get(0);
                let day = name
                    .strip_prefix(table.name)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .and_then(parse_compact_date);
                if day.is_some_and(|day| day < horizon) {
                    client
                        .batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
                        .map_err(|e| failed(&e))?;
                    dropped += 1;
                }
            }
        }
        self.partitions.retain(|day| *day >= horizon);
        Ok(dropped)
    }

    pub(super) fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        columns: &[Type],
    ) -> Result<Vec<Vec<Value>>, TrailError> {
        let rows = self
            .client()?
            .query(sql, &refs(params))
            .map_err(|e| failed(&e))?;
        rows.iter()
            .map(|row| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, ty)| {
                        Ok(match ty {
                            Type::Int => Value::Int(
                                row.try_get::<_, Option<i64>>(i)
                                    .map_err(|e| failed(&e))?
                                    .unwrap_or(0),
                            ),
                            Type::Text => Value::Text(
                                row.try_get::<_, Option<String>>(i)
                                    .map_err(|e| failed(&e))?
                                    .unwrap_or_default(),
                            ),
                        })
                    })
                    .collect()
            })
            .collect()
    }

    pub(super) fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, TrailError> {
        self.client()?
            .execute(sql, &refs(params))
            .map_err(|e| failed(&e))
    }
}

fn migrate(client: &mut Client) -> Result<(), TrailError> {
    let mut tx = client.transaction().map_err(|e| failed(&e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| failed(&e))?;
    tx.batch_execute(LEDGER).map_err(|e| failed(&e))?;
    let applied: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .map_err(|e| failed(&e))?
        .get(0);
    if applied > newest() {
        return Err(TrailError::Schema {
            found: applied,
            known: newest(),
        });
    }
    for (version, statements) in migrations(Dialect::Postgres) {
        if version <= applied {
            continue;
        }
        for statement in statements {
            tx.batch_execute(&statement).map_err(|e| failed(&e))?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, (extract(epoch FROM now()) * 1000)::bigint)",
            &[&version],
        )
        .map_err(|e| failed(&e))?;
    }
    tx.commit().map_err(|e| failed(&e))
}

struct PgTransaction<'a> {
    tx: postgres::Transaction<'a>,
    loading: Loading,
}

impl Transaction for PgTransaction<'_> {
    fn insert_new(&mut self, table: &Table, row: &[Value]) -> Result<bool, TrailError> {
        let changed = self
            .tx
            .execute(&table.insert('$'), &refs(row))
            .map_err(|e| failed(&e))?;
        Ok(changed == 1)
    }

    fn upsert(&mut self, table: &Table, rows: &TableRows) -> Result<(), TrailError> {
        let staged = crate::schema::DATA_TABLES.contains(table);
        if self.loading == Loading::RowByRow || !staged {
            let statement = self
                .tx
                .prepare(&table.insert('$'))
                .map_err(|e| failed(&e))?;
            for row in rows.iter() {
                self.tx
                    .execute(&statement, &refs(row))
                    .map_err(|e| failed(&e))?;
            }
            return Ok(());
        }
        let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        let types: Vec<PgType> = table
            .columns
            .iter()
            .map(|c| match c.ty {
                Type::Int => PgType::INT8,
                Type::Text => PgType::TEXT,
            })
            .collect();
        let sink = self
            .tx
            .copy_in(&format!(
                "COPY stage_{} ({}) FROM STDIN (FORMAT binary)",
                table.name,
                names.join(", ")
            ))
            .map_err(|e| failed(&e))?;
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for row in rows.iter() {
            writer.write(&refs(row)).map_err(|e| failed(&e))?;
        }
        writer.finish().map_err(|e| failed(&e))?;
        self.tx
            .batch_execute(&format!(
                // The staging table empties at the commit (ON COMMIT
                // DELETE ROWS); a batch stages each table once.
                "INSERT INTO {t} ({cols}) SELECT {cols} FROM stage_{t} {conflict}",
                t = table.name,
                cols = names.join(", "),
                conflict = table.on_conflict()
            ))
            .map_err(|e| failed(&e))
    }
}
