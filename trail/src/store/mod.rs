//! Where the trail is kept: Postgres for a cluster (`postgres://...`),
//! SQLite on one machine (`sqlite:PATH`), one schema and one merge for
//! both ([`crate::schema`]).
//!
//! [`Store::write`] merges a batch of uploads in **one transaction**: each
//! slice's key goes into `slices` first (`ON CONFLICT DO NOTHING`), and
//! only a slice whose key was new adds rows; the rows of all new slices
//! are merged in Rust ([`crate::rows`]) and upserted, then `agents` is
//! updated, then the transaction commits. A crash or a lost connection
//! anywhere before the commit leaves nothing; the agent, unanswered,
//! sends the slice again. So every slice counts once whatever happens.
//!
//! - **Postgres** (the `postgres` crate, synchronous: the collector's
//!   handlers already run on a blocking pool): rows are copied with binary
//!   `COPY` into a temporary staging table and merged with one
//!   `INSERT ... SELECT ... ON CONFLICT DO UPDATE` per table. Tables are
//!   partitioned by day; the partitions a batch needs are created first;
//!   retention drops whole partitions. Migrations hold an advisory lock,
//!   so replicas starting together migrate once.
//! - **SQLite** (`rusqlite`, SQLite compiled in): one prepared
//!   `INSERT ... ON CONFLICT DO UPDATE` per row in the transaction (the
//!   fast way on SQLite), WAL with `synchronous=FULL` so an answered slice
//!   survives a power cut; retention deletes by day.
//!
//! Slices whose window ended before the retention horizon are answered
//! [`Outcome::Expired`] and not stored (they would be dropped at the next
//! retention pass).

mod migrate;
mod postgres;
mod sqlite;

use std::path::PathBuf;

use crate::TrailError;
use crate::rows::{DAY_MS, Rows, TableRows, Value, day_of, ms, slice_row};
use crate::schema::{AGENTS, Table, Type};
use crate::upload::SliceUpload;

/// Where a store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A Postgres connection string (`postgres://user@host/db`, or the
    /// `key=value` form; `host=/run/postgresql` for a Unix socket).
    Postgres(String),
    /// A SQLite file, created when missing.
    Sqlite(PathBuf),
}

impl std::str::FromStr for StoreUrl {
    type Err = TrailError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(TrailError::StoreUrl(url.to_owned()));
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else {
            Err(TrailError::StoreUrl(url.to_owned()))
        }
    }
}

impl std::fmt::Display for StoreUrl {
    /// The URL without a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    let user = &url[scheme + 3..at];
                    let user = user.split(':').next().unwrap_or_default();
                    write!(f, "{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
                }
                _ => f.write_str(url),
            },
            Self::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
        }
    }
}

/// What became of one upload of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Merged now.
    Merged,
    /// Merged before: nothing changed.
    Duplicate,
    /// Older than the retention horizon: not stored.
    Expired,
}

impl Outcome {
    /// The label metrics count it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merged => "merged",
            Self::Duplicate => "duplicate",
            Self::Expired => "expired",
        }
    }
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Per upload, in order.
    pub outcomes: Vec<Outcome>,
    /// Rows upserted per table name.
    pub rows: Vec<(&'static str, usize)>,
}

/// How rows go into Postgres (the row-by-row way is kept for the
/// benchmark that measures what staging buys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Loading {
    /// `COPY` into staging tables, one `INSERT ... SELECT` per table.
    #[default]
    Staged,
    /// One `INSERT ... ON CONFLICT` per row.
    RowByRow,
}

/// The primitives a transaction of a store offers.
trait Transaction {
    /// Inserts a `slices` row; false when the key was there.
    fn insert_new(&mut self, table: &Table, row: &[Value]) -> Result<bool, TrailError>;
    /// Upserts rows (unique by key) with the table's merge.
    fn upsert(&mut self, table: &Table, rows: &TableRows) -> Result<(), TrailError>;
}

enum Engine {
    Postgres(Box<postgres::Postgres>),
    Sqlite(sqlite::Sqlite),
}

/// An open store (see the module docs).
pub struct Store {
    engine: Engine,
    url: StoreUrl,
    retain_days: u32,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url.to_string())
            .field("retain_days", &self.retain_days)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `url` and brings its schema up to date;
    /// `retain_days` (0: keep everything) is the retention horizon.
    ///
    /// # Errors
    /// [`TrailError::Store`] when it cannot be reached or migrated, or
    /// [`TrailError::Schema`] when its schema is newer than this build.
    pub fn open(url: &StoreUrl, retain_days: u32) -> Result<Self, TrailError> {
        let engine = match url {
            StoreUrl::Postgres(conn) => Engine::Postgres(Box::new(postgres::Postgres::open(conn)?)),
            StoreUrl::Sqlite(path) => Engine::Sqlite(sqlite::Sqlite::open(path)?),
        };
        Ok(Self {
            engine,
            url: url.clone(),
            retain_days,
        })
    }

    /// Where it is (without a password).
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// Sets how Postgres loads rows (SQLite has one way).
    pub fn set_loading(&mut self, loading: Loading) {
        if let Engine::Postgres(pg) = &mut self.engine {
            pg.loading = loading;
        }
    }

    /// The first day kept at `now_ms` (none when everything is kept).
    pub fn horizon(&self, now_ms: i64) -> Option<i64> {
        (self.retain_days > 0).then(|| day_of(now_ms - i64::from(self.retain_days) * DAY_MS))
    }

    /// Merges `uploads` received at `now_ms` (see the module docs).
    ///
    /// # Errors
    /// [`TrailError::Store`]: nothing of the batch was written.
    pub fn write(&mut self, uploads: &[SliceUpload], now_ms: i64) -> Result<Written, TrailError> {
        let horizon = self.horizon(now_ms);
        let mut run = |tx: &mut dyn Transaction| -> Result<Written, TrailError> {
            let mut rows = Rows::new();
            let mut outcomes = Vec::with_capacity(uploads.len());
            let mut agents = TableRows::default();
            for upload in uploads {
                let row = slice_row(upload, now_ms);
                let Value::Int(day) = row[0] else {
                    unreachable!("a slice row starts with its day")
                };
                if horizon.is_some_and(|h| day < h) {
                    outcomes.push(Outcome::Expired);
                } else if tx.insert_new(&crate::schema::SLICES, &row)? {
                    rows.add(upload);
                    agents.add(&AGENTS, agent_row(upload, now_ms));
                    outcomes.push(Outcome::Merged);
                } else {
                    outcomes.push(Outcome::Duplicate);
                }
            }
            let mut counts = Vec::new();
            for (table, table_rows) in rows.tables() {
                if !table_rows.is_empty() {
                    tx.upsert(&table, table_rows)?;
                }
                counts.push((table.name, table_rows.len()));
            }
            if !agents.is_empty() {
                tx.upsert(&AGENTS, &agents)?;
            }
            Ok(Written {
                outcomes,
                rows: counts,
            })
        };
        match &mut self.engine {
            Engine::Postgres(pg) => {
                pg.ensure_partitions(&days_touched(uploads, horizon))?;
                pg.transaction(&mut run)
            }
            Engine::Sqlite(lite) => lite.transaction(&mut run),
        }
    }

    /// Drops what is older than the retention horizon at `now_ms`: whole
    /// day partitions on Postgres, rows by day on SQLite. Returns how many
    /// partitions or rows went.
    ///
    /// # Errors
    /// [`TrailError::Store`].
    pub fn retain(&mut self, now_ms: i64) -> Result<u64, TrailError> {
        let Some(horizon) = self.horizon(now_ms) else {
            return Ok(0);
        };
        match &mut self.engine {
            Engine::Postgres(pg) => pg.drop_partitions_before(horizon),
            Engine::Sqlite(lite) => lite.delete_before(horizon),
        }
    }

    /// Runs a read-only query with `$1`, `$2` ... parameters (each first
    /// used in that order), reading the result's columns as `columns`
    /// say.
    ///
    /// # Errors
    /// [`TrailError::Store`].
    pub fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        columns: &[Type],
    ) -> Result<Vec<Vec<Value>>, TrailError> {
        match &mut self.engine {
            Engine::Postgres(pg) => pg.query(sql, params, columns),
            Engine::Sqlite(lite) => lite.query(sql, params, columns),
        }
    }

    /// Runs one statement with parameters (as [`Store::query`]); returns
    /// the rows it changed.
    ///
    /// # Errors
    /// [`TrailError::Store`].
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, TrailError> {
        match &mut self.engine {
            Engine::Postgres(pg) => pg.execute(sql, params),
            Engine::Sqlite(lite) => lite.execute(sql, params),
        }
    }
}

/// The days a batch's rows may land on (rows are clamped into their
/// window), from the retention horizon on.
fn days_touched(uploads: &[SliceUpload], horizon: Option<i64>) -> Vec<i64> {
    let mut days = Vec::new();
    for upload in uploads {
        let window = upload.slice.window;
        let mut day = day_of(ms(window.start_ns));
        while day <= day_of(ms(window.end_ns)) {
            if horizon.is_none_or(|h| day >= h) {
                days.push(day);
            }
            day += DAY_MS;
        }
    }
    days.sort_unstable();
    days.dedup();
    days
}

fn agent_row(upload: &SliceUpload, now_ms: i64) -> Vec<Value> {
    vec![
        Value::Text(upload.slice.agent.clone()),
        Value::Int(now_ms),
        Value::Int(now_ms),
        Value::Int(ms(upload.slice.window.end_ns)),
        Value::Int(i64::try_from(upload.interval_ms).unwrap_or(i64::MAX)),
        Value::Int(1),
    ]
}
