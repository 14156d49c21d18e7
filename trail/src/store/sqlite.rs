//! The SQLite engine (see the module docs of [`super`]).

use std::path::Path;

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql, params_from_iter};

use super::Transaction;
use super::migrate::{Dialect, LEDGER, migrations, newest};
use crate::TrailError;
use crate::rows::{TableRows, Value, agents_union};
use crate::schema::{PARTITIONED, Table, Type};

fn failed(error: &rusqlite::Error) -> TrailError {
    TrailError::Store {
        engine: "sqlite",
        message: error.to_string(),
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Int(value) => ToSqlOutput::from(*value),
            Self::Text(value) => ToSqlOutput::from(value.as_str()),
        })
    }
}

pub(super) struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    pub(super) fn open(path: &Path) -> Result<Self, TrailError> {
        let conn = Connection::open(path).map_err(|e| TrailError::Store {
            engine: "sqlite",
            message: format!("{}: {e}", path.display()),
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| failed(&e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| failed(&e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| failed(&e))?;
        conn.create_scalar_function(
            "agents_union",
            2,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                let a: String = ctx.get(0)?;
                let b: String = ctx.get(1)?;
                Ok(agents_union(&a, &b))
            },
        )
        .map_err(|e| failed(&e))?;
        let mut lite = Self { conn };
        lite.migrate()?;
        Ok(lite)
    }

    fn migrate(&mut self) -> Result<(), TrailError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| failed(&e))?;
        tx.execute_batch(LEDGER).map_err(|e| failed(&e))?;
        let applied: i64 = tx
            .query_row(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                [],
                |row| row.get(0),
            )
            .map_err(|e| failed(&e))?;
        if applied > newest() {
            return Err(TrailError::Schema {
                found: applied,
                known: newest(),
            });
        }
        for (version, statements) in migrations(Dialect::Sqlite) {
            if version <= applied {
                continue;
            }
            for statement in statements {
                tx.execute_batch(&statement).map_err(|e| failed(&e))?;
            }
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, CAST(unixepoch('subsec') * 1000 AS INTEGER))",
                [version],
            )
            .map_err(|e| failed(&e))?;
        }
        tx.commit().map_err(|e| failed(&e))
    }

    pub(super) fn transaction<T>(
        &mut self,
        run: &mut dyn FnMut(&mut dyn Transaction) -> Result<T, TrailError>,
    ) -> Result<T, TrailError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| failed(&e))?;
        let value = run(&mut LiteTransaction { tx: &tx })?;
        tx.commit().map_err(|e| failed(&e))?;
        Ok(value)
    }

    pub(super) fn delete_before(&mut self, horizon: i64) -> Result<u64, TrailError> {
        let mut deleted = 0;
        for table in PARTITIONED {
            deleted += self
                .conn
                .execute(
                    &format!(
                        "DELETE FROM {} WHERE {} < ?1",
                        table.name,
                        table.day_column()
                    ),
                    [horizon],
                )
                .map_err(|e| failed(&e))?;
        }
        Ok(deleted as u64)
    }

    pub(super) fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        columns: &[Type],
    ) -> Result<Vec<Vec<Value>>, TrailError> {
        let mut statement = self.conn.prepare(sql).map_err(|e| failed(&e))?;
        let mut rows = statement
            .query(params_from_iter(params))
            .map_err(|e| failed(&e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| failed(&e))? {
            let mut values = Vec::with_capacity(columns.len());
            for (i, ty) in columns.iter().enumerate() {
                let value = row.get_ref(i).map_err(|e| failed(&e))?;
                values.push(match (ty, value) {
                    (Type::Int, ValueRef::Integer(n)) => Value::Int(n),
                    #[expect(
                        clippy::cast_possible_truncation,
                        reason = "an average or a sum SQLite computed in floating point"
                    )]
                    (Type::Int, ValueRef::Real(x)) => Value::Int(x as i64),
                    (Type::Int, _) => Value::Int(0),
                    (Type::Text, ValueRef::Text(text)) => {
                        Value::Text(String::from_utf8_lossy(text).into_owned())
                    }
                    (Type::Text, ValueRef::Integer(n)) => Value::Text(n.to_string()),
                    (Type::Text, _) => Value::Text(String::new()),
                });
            }
            out.push(values);
        }
        Ok(out)
    }

    pub(super) fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, TrailError> {
        self.conn
            .execute(sql, params_from_iter(params))
            .map(|n| n as u64)
            .map_err(|e| failed(&e))
    }
}

struct LiteTransaction<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

impl Transaction for LiteTransaction<'_> {
    fn insert_new(&mut self, table: &Table, row: &[Value]) -> Result<bool, TrailError> {
        let changed = self
            .tx
            .prepare_cached(&table.insert('?'))
            .and_then(|mut statement| statement.execute(params_from_iter(row)))
            .map_err(|e| failed(&e))?;
        Ok(changed == 1)
    }

    fn upsert(&mut self, table: &Table, rows: &TableRows) -> Result<(), TrailError> {
        let mut statement = self
            .tx
            .prepare_cached(&table.insert('?'))
            .map_err(|e| failed(&e))?;
        for row in rows.iter() {
            statement
                .execute(params_from_iter(row))
                .map_err(|e| failed(&e))?;
        }
        Ok(())
    }
}
