//! The trail under faults, end to end: an exporter with its spool sends
//! slices to a collector that runs in a process of its own (this test
//! binary again, `collector_process`), and every fault a cluster sees
//! happens on the way: the collector killed with SIGKILL right after a
//! large slice was handed over (mid-batch), the store's server restarted
//! while slices are sent (Postgres), the collector down while the agent
//! restarts with a spool full of slices, and resends. In every case the
//! tables end with exactly the rows of an undisturbed run: nothing lost,
//! nothing counted twice.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edgewise_edge_set::GraphSlice;
use edgewise_test_support::postgres::PgCluster;
use edgewise_trail::collector::{Collector, CollectorConfig};
use edgewise_trail::export::{ExportConfig, Exporter};
use edgewise_trail::rows::Value;
use edgewise_trail::{SliceUpload, Store, StoreUrl};
use support::{endpoint, everything, slice, sqlite};

/// When this binary is started with `EDGEWISE_TEST_COLLECTOR=ADDR STORE`,
/// this test serves as the collector until it is killed.
#[test]
fn collector_process() {
    let Ok(spec) = std::env::var("EDGEWISE_TEST_COLLECTOR") else {
        return;
    };
    let (address, store) = spec.split_once(' ').expect("ADDR STORE");
    let mut config = CollectorConfig::new(store.parse().expect("a store"));
    config.retain_days = 0;
    let collector = Collector::start(address.parse().expect("an address"), &config)
        .expect("the collector starts");
    while !collector.failed() {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The collector in a process of its own.
struct CollectorProcess {
    child: Child,
}

impl CollectorProcess {
    fn start(address: SocketAddr, store: &StoreUrl) -> Self {
        let url = match store {
            StoreUrl::Postgres(url) => url.clone(),
            StoreUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
        };
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "collector_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("EDGEWISE_TEST_COLLECTOR", format!("{address} {url}"))
            .stdout(Stdio::null())
            .spawn()
            .expect("the collector process");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(address).is_err() {
            assert!(Instant::now() < deadline, "the collector did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child }
    }

    /// SIGKILL: no shutdown, a batch may be half done.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for CollectorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Slice `n` of the agent, every tenth one large (20,000 extra edges),
/// so that a kill right after it is handed over lands in its batch.
fn slice_n(n: u64) -> GraphSlice {
    let mut slice = slice("node-a", n);
    if n % 10 == 5 {
        let client = endpoint("shop/web", "10.0.0.1", None);
        for i in 0..20_000u32 {
            let [_, _, hi, lo] = i.to_be_bytes();
            let server = endpoint(&format!("10.9.{hi}.{lo}"), &format!("10.9.{hi}.{lo}"), None);
            slice.edges.push(support::edge(
                client.clone(),
                server,
                443,
                1,
                n * 30 + 5,
                false,
            ));
        }
        slice.sort();
    }
    slice
}

const SLICES: u64 = 24;

/// What an undisturbed run stores: every slice written once, in order.
fn undisturbed(name: &str) -> Vec<Vec<Vec<Value>>> {
    let url = sqlite(&format!("undisturbed-{name}"));
    let mut store = Store::open(&url, 0).unwrap();
    for n in 0..SLICES {
        store
            .write(&[SliceUpload::new(n, 30_000, slice_n(n))], 0)
            .unwrap();
    }
    everything(&mut store)
}

fn exporter(address: SocketAddr, spool: &std::path::Path) -> Exporter {
    Exporter::start(&{
        let mut export_config = ExportConfig::new(format!("http://{address}"), spool);
        export_config.spool_bytes = 1 << 30;
        export_config
    })
    .unwrap()
}

/// Waits until the exporter has nothing left to send.
fn drained(exporter: &Exporter) {
    let deadline = Instant::now() + Duration::from_secs(2 * 60);
    loop {
        let stats = exporter.stats();
        if stats.spooled == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "never delivered: {stats:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The faults (see the module docs), in one run against `store`; the
/// Postgres server is restarted midway when `postgres` is given.
fn run_with_faults(name: &str, store: &StoreUrl, postgres: Option<&PgCluster>) {
    let address = free_address();
    let spool = edgewise_test_support::ScratchDir::new(&format!("faults-spool-{name}"));
    let mut collector = Some(CollectorProcess::start(address, store));
    let mut agent = exporter(address, &spool);
    for n in 0..SLICES {
        agent.export(slice_n(n));
        match n {
            // Killed while the large slice is in flight.
            5 => {
                std::thread::sleep(Duration::from_millis(20));
                collector.take().unwrap().kill();
                collector = Some(CollectorProcess::start(address, store));
            }
            // The store's server goes away and comes back while slices
            // are being sent.
            9 => {
                if let Some(cluster) = postgres {
                    cluster.restart();
                }
            }
            // The collector is down; the agent spools, stops, and starts
            // again with a full spool.
            12 => {
                drained(&agent);
                collector.take().unwrap().kill();
            }
            16 => {
                let stats = agent.finish(Duration::ZERO);
                assert!(stats.spooled >= 4, "{stats:?}");
                agent = exporter(address, &spool);
                collector = Some(CollectorProcess::start(address, store));
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    drained(&agent);
    let stats = agent.finish(Duration::from_secs(5));
    assert_eq!(
        (stats.refused, stats.dropped, stats.unspooled),
        (0, 0, 0),
        "{stats:?}"
    );
    collector.take().unwrap().kill();
    // Resends of slices already merged change nothing.
    let mut direct = Store::open(store, 0).unwrap();
    let again = SliceUpload::new(0, 30_000, slice_n(0));
    assert_eq!(
        direct.write(&[again], 0).unwrap().outcomes,
        [edgewise_trail::Outcome::Duplicate]
    );
    assert!(
        everything(&mut direct) == undisturbed(name),
        "the tables differ from an undisturbed run"
    );
}

#[test]
fn sqlite_ends_as_an_undisturbed_run_whatever_fails() {
    run_with_faults("sqlite", &sqlite("faults"), None);
}

#[test]
fn postgres_ends_as_an_undisturbed_run_whatever_fails() {
    let cluster = match PgCluster::start() {
        Ok(cluster) => cluster,
        Err(why) => return edgewise_test_support::skip(&why),
    };
    let url = StoreUrl::Postgres(cluster.create_database("faults"));
    run_with_faults("postgres", &url, Some(&cluster));
}
