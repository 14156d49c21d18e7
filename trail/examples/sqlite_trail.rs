//! An agent's slice merged into a SQLite trail, then asked for the
//! violations and the edges of a namespace, as a platform team asks the
//! collector's store. Flows are given as `SRC_IP DST_IP PORT` triples,
//! named with the cluster's objects and judged with its NetworkPolicies.
//!
//! ```sh
//! cargo run -p edgewise-trail --example sqlite_trail -- /tmp/trail.db \
//!     objects.json policies.json 10.42.1.10 10.42.1.12 5432
//! ```

use std::process::ExitCode;
use std::time::SystemTime;

use edgewise_trail::edge_set::ip_index::{IpIndex, Protocol};
use edgewise_trail::edge_set::time::UnixNanos;
use edgewise_trail::edge_set::{DeclaredPolicies, EdgeKey, GraphConfig, ObservedGraph};
use edgewise_trail::query::Recipe;
use edgewise_trail::{SliceUpload, Store};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 || !(args.len() - 3).is_multiple_of(3) {
        eprintln!("usage: sqlite_trail DB OBJECTS.json POLICIES.json (SRC_IP DST_IP PORT)...");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let read = |path: &str| std::fs::read(path).map_err(|e| format!("{path}: {e}"));
    let (objects, policies) = (read(&args[1])?, read(&args[2])?);
    let mut index = IpIndex::default();
    index.load(&objects);
    let mut declared = DeclaredPolicies::default();
    declared.load(&objects);
    declared.load(&policies);
    let policies = declared.compile();

    // The agent side: flows recorded, then one slice drained (identities
    // and verdicts attached) into its wire form.
    let now = UnixNanos::from_system_time(SystemTime::now());
    let mut graph = ObservedGraph::new(GraphConfig::default(), now);
    for flow in args[3..].chunks(3) {
        let parse = || -> Option<EdgeKey> {
            Some(EdgeKey {
                src: flow[0].parse().ok()?,
                dst: flow[1].parse().ok()?,
                port: flow[2].parse().ok()?,
                protocol: Protocol::Tcp,
            })
        };
        let edge = parse().ok_or_else(|| format!("not a flow: {}", flow.join(" ")))?;
        graph.record(edge, 1, 0, now);
    }
    let slice = graph.drain("node-a", now, &mut index.snapshot(), Some(&policies));
    let upload = SliceUpload::new(1, 30_000, slice);

    // The collector side: merged once into the store (a second write of
    // the same slice is recognised and skipped).
    let url = format!("sqlite:{}", args[0])
        .parse()
        .map_err(|e| format!("{e}"))?;
    let mut store = Store::open(&url, 30).map_err(|e| e.to_string())?;
    let millis = i64::try_from(now.as_nanos() / 1_000_000).map_err(|e| e.to_string())?;
    for attempt in ["first", "again"] {
        let written = store.write(std::slice::from_ref(&upload), millis);
        println!("{attempt}: {:?}", written.map_err(|e| e.to_string())?);
    }

    // What the team asks.
    let since_ms = millis - 3_600_000;
    let violations = Recipe::Violations { since_ms };
    print!(
        "{}",
        violations
            .run(&mut store)
            .map_err(|e| e.to_string())?
            .table()
    );
    Ok(())
}
