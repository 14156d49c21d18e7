//! A throwaway Postgres for tests: Debian's server binaries (`initdb`,
//! `pg_ctl`), a cluster in a temporary directory listening on a free
//! loopback port with `trust` authentication, run as the `postgres` user
//! when the test is root (initdb refuses root), stopped and removed when
//! dropped.
//!
//! [`TestDatabase::create`] gives a test a fresh database on the cluster
//! `scripts/test.sh` started (`EDGEWISE_TEST_POSTGRES`, the URL of its
//! `postgres` database), or on a cluster of its own when that is not set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A running throwaway cluster.
pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    owner: Option<&'static str>,
    fsync: bool,
}

/// The directory of the server binaries (the newest installed version),
/// if any.
pub fn server_binaries() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

impl PgCluster {
    /// Starts a cluster.
    ///
    /// # Errors
    /// The reason there is none: the server binaries are not installed.
    ///
    /// # Panics
    /// When they are installed but the cluster does not start (with its
    /// log).
    pub fn start() -> Result<Self, String> {
        Self::start_with(false)
    }

    /// Starts a cluster that syncs its writes to disk, as a real database
    /// does (for measurements; tests run faster without).
    ///
    /// # Errors
    /// As [`PgCluster::start`].
    pub fn start_durable() -> Result<Self, String> {
        Self::start_with(true)
    }

    fn start_with(fsync: bool) -> Result<Self, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let bin =
            server_binaries().ok_or("Postgres is not installed (apt-get install postgresql)")?;
        let dir = std::env::temp_dir().join(format!(
            "edgewise-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the cluster's directory");
        let owner = crate::is_root().then_some("postgres");
        if let Some(owner) = owner {
            crate::run(&[
                "chown",
                &format!("{owner}:{owner}"),
                &dir.display().to_string(),
            ]);
        }
        let cluster = Self {
            bin,
            dir,
            port: free_port(),
            owner,
            fsync,
        };
        let data = cluster.data().display().to_string();
        cluster.pg(&[
            "initdb",
            "-D",
            &data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        cluster.start_server();
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server binary `name`, run as the cluster's owner.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name).display().to_string();
        match self.owner {
            Some(owner) => {
                let mut command = Command::new("runuser");
                command.args(["-u", owner, "--", &program]);
                command
            }
            None => Command::new(&program),
        }
    }

    fn pg(&self, args: &[&str]) -> Output {
        let output = self
            .command(args[0])
            .args(&args[1..])
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
        assert!(
            output.status.success(),
            "{} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync={}",
            self.port,
            self.dir.display(),
            if self.fsync { "on" } else { "off" }
        );
        let data = self.data().display().to_string();
        let log = self.dir.join("log").display().to_string();
        self.pg(&[
            "pg_ctl", "-D", &data, "-l", &log, "-o", &options, "-w", "start",
        ]);
    }

    /// Stops the server (fast: connections are cut) and starts it again.
    pub fn restart(&self) {
        self.stop_server();
        self.start_server();
    }

    /// Stops the server, fast.
    pub fn stop_server(&self) {
        let data = self.data().display().to_string();
        self.pg(&["pg_ctl", "-D", &data, "-m", "fast", "-w", "stop"]);
    }

    /// Starts it after [`PgCluster::stop_server`].
    pub fn start_again(&self) {
        self.start_server();
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `db` and returns its URL.
    pub fn create_database(&self, db: &str) -> String {
        create_database(&self.url("postgres"), db)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A database for one test: on the cluster `scripts/test.sh` started, or
/// on a cluster of its own (stopped when this is dropped).
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    _cluster: Option<PgCluster>,
}

impl TestDatabase {
    /// A fresh database (see the module docs).
    ///
    /// # Errors
    /// The reason there is none (Postgres is not installed).
    pub fn create(name: &str) -> Result<Self, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let db = format!(
            "{name}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        if let Ok(base) = std::env::var("EDGEWISE_TEST_POSTGRES") {
            return Ok(Self {
                url: create_database(&base, &db),
                _cluster: None,
            });
        }
        let cluster = PgCluster::start()?;
        Ok(Self {
            url: cluster.create_database(&db),
            _cluster: Some(cluster),
        })
    }
}

/// `CREATE DATABASE db` through `psql` on the server at `base` (a URL of
/// an existing database); returns the new database's URL.
fn create_database(base: &str, db: &str) -> String {
    let output = Command::new("psql")
        .args([
            base,
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            &format!("CREATE DATABASE {db}"),
        ])
        .output()
        .expect("psql");
    assert!(
        output.status.success(),
        "CREATE DATABASE {db}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (server, _) = base.rsplit_once('/').expect("a URL with a database");
    format!("{server}/{db}")
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
