//! The trail at cluster scale, measured whole-process:
//! `trail-scale [AGENTS] [EDGES] [WINDOWS] [ROW_BY_ROW_AGENTS]`
//! (defaults 1000 2000 3 50).
//!
//! A throwaway Postgres cluster (Debian's server binaries, a temporary
//! folder, `fsync` left on as a real database has it) receives WINDOWS
//! windows of AGENTS agents' slices of EDGES edges each, merged as the
//! collector's writers merge them: batches of up to `MAX_BATCH_EDGES`
//! edges, one transaction each (`Store::write`, which includes building
//! and merging the rows in Rust), `POSTGRES_WRITERS` at a time on as many
//! connections. The first window inserts; the later ones find every row
//! there (the steady state: the same edges in the same hour). Printed: slice edges merged per second
//! for the first window and the later ones; then, for
//! `ROW_BY_ROW_AGENTS` agents in fresh databases, staging against one
//! `INSERT ... ON CONFLICT` per row (what staging with `COPY` is measured
//! against, at the same size); the Rust part of a merge alone; and the
//! agent's side: the CPU time to encode one slice (gzipped JSON) and its
//! bytes per edge on the wire.

#![expect(
    clippy::cast_precision_loss,
    reason = "rates and averages printed with a few digits"
)]

use std::time::{Duration, Instant};

use edgewise_edge_set::{EdgeVerdict, EndpointInfo, GraphSlice, SliceEdge, VerdictKind, Window};
use edgewise_ip_index::{ClusterObject, Protocol};
use edgewise_test_support::postgres::PgCluster;
use edgewise_trail::collector::{MAX_BATCH_EDGES, POSTGRES_WRITERS};
use edgewise_trail::store::Loading;
use edgewise_trail::{SliceUpload, Store, StoreUrl};

/// 2026-11-30T10:00:00Z, Unix nanoseconds: every window falls in one hour.
const T0: u64 = 1_795_946_400 * 1_000_000_000;
const WINDOW_NS: u64 = 30_000_000_000;

fn pod(ns: &str, name: &str, ip: &str) -> EndpointInfo {
    let object: ClusterObject = serde_json::from_value(serde_json::json!({
        "kind": "Pod",
        "namespace": ns,
        "name": format!("{name}-0"),
        "workload": {"namespace": ns, "kind": "Deployment", "name": name},
        "labels": {"service-identity": name},
        "display": format!("{ns}/{name}-0"),
    }))
    .expect("a pod");
    EndpointInfo {
        ip: ip.parse().expect("an address"),
        identity: Some(std::sync::Arc::new(object)),
        fqdn: None,
    }
}

/// Agent `a`'s slice of window `w`, from a cluster of 50 namespaces of
/// 10 workloads each: the node's 20 pods each talk to 100 servers (pods
/// of 5 workloads in 3 namespaces, their own and the next two) and, one
/// edge in ten, to an address outside the cluster.
fn slice(a: u32, w: u64, edges: u32) -> GraphSlice {
    let start = T0 + w * WINDOW_NS;
    let at = start + WINDOW_NS / 2;
    let [_, _, hi, lo] = a.to_be_bytes();
    let list = (0..edges)
        .map(|e| {
            let client = e % 20;
            let pod_index = a * 20 + client;
            let namespace = pod_index % 50;
            let src = pod(
                &format!("ns-{namespace}"),
                &format!("app-{}", pod_index / 50 % 10),
                &format!("10.{hi}.{lo}.{client}"),
            );
            let server = e / 20;
            let dst = if e % 10 == 9 {
                EndpointInfo {
                    ip: format!("203.0.{}.{}", server % 256, client)
                        .parse()
                        .unwrap(),
                    identity: None,
                    fqdn: Some(format!("api-{server}.example.com")),
                }
            } else {
                let [_, _, s_hi, s_lo] = (a * 7 + server).to_be_bytes();
                pod(
                    &format!("ns-{}", (namespace + server % 3) % 50),
                    &format!("svc-{}", server % 5),
                    &format!("10.{}.{s_lo}.100", 128 + s_hi % 64),
                )
            };
            SliceEdge {
                src,
                dst,
                port: 8000 + u16::try_from(server % 100).unwrap(),
                protocol: Protocol::Tcp,
                flows: 3,
                bytes: 4096,
                first_seen_ns: at,
                last_seen_ns: at,
                verdict: Some(EdgeVerdict {
                    verdict: VerdictKind::Declared,
                    policy: Some("ns/allow".into()),
                }),
            }
        })
        .collect();
    let mut slice = GraphSlice {
        agent: format!("node-{a}"),
        window: Window {
            start_ns: start,
            end_ns: start + WINDOW_NS,
        },
        edges: list,
        nodes: Vec::new(),
    };
    slice.sort();
    slice
}

/// Merges window `w` of `agents` agents in collector-sized batches, the
/// batches dealt to the stores in turn and each store on a thread of its
/// own (as the collector's writers take them); returns the time taken.
fn window(stores: &mut [Store], agents: u32, edges: u32, w: u64) -> Duration {
    let per_batch = (MAX_BATCH_EDGES / edges as usize).max(1);
    let uploads: Vec<SliceUpload> = (0..agents)
        .map(|a| SliceUpload::new(w, 30_000, slice(a, w, edges)))
        .collect();
    let batches: Vec<&[SliceUpload]> = uploads.chunks(per_batch).collect();
    let writers = stores.len();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (index, store) in stores.iter_mut().enumerate() {
            let batches = &batches;
            scope.spawn(move || {
                for batch in batches.iter().skip(index).step_by(writers) {
                    store.write(batch, 0).expect("the batch is stored");
                }
            });
        }
    });
    started.elapsed()
}

fn rate(edges: u64, took: Duration) -> String {
    format!("{:.0} edges/s", edges as f64 / took.as_secs_f64())
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let arg = |i: usize, default: u64| args.get(i).copied().unwrap_or(default);
    let agents = u32::try_from(arg(0, 1000)).unwrap();
    let edges = u32::try_from(arg(1, 2000)).unwrap();
    let windows = arg(2, 3);
    let row_agents = u32::try_from(arg(3, 50)).unwrap();
    let cluster = PgCluster::start_durable().expect("Postgres is installed");
    let per_window = u64::from(agents) * u64::from(edges);

    let url = StoreUrl::Postgres(cluster.create_database("staged"));
    let mut store: Vec<Store> = (0..POSTGRES_WRITERS)
        .map(|_| Store::open(&url, 0).unwrap())
        .collect();
    let first = window(&mut store, agents, edges, 0);
    println!(
        "staged COPY, window 1 (inserts): {} ({per_window} edges in {first:.2?})",
        rate(per_window, first)
    );
    let mut later = Duration::ZERO;
    for w in 1..windows {
        later += window(&mut store, agents, edges, w);
    }
    let later_edges = per_window * (windows - 1);
    println!(
        "staged COPY, windows 2..{windows} (updates): {} ({later_edges} edges in {later:.2?})",
        rate(later_edges, later)
    );

    let per_row_window = u64::from(row_agents) * u64::from(edges);
    for (name, loading) in [
        ("staged COPY", Loading::Staged),
        ("row by row", Loading::RowByRow),
    ] {
        let db = cluster.create_database(if loading == Loading::Staged {
            "small"
        } else {
            "rows"
        });
        let mut store = [Store::open(&StoreUrl::Postgres(db), 0).unwrap()];
        store[0].set_loading(loading);
        let first = window(&mut store, row_agents, edges, 0);
        let second = window(&mut store, row_agents, edges, 1);
        println!(
            "{name}, {row_agents} agents: window 1 (inserts) {}, window 2 (updates) {}",
            rate(per_row_window, first),
            rate(per_row_window, second)
        );
    }

    let uploads: Vec<SliceUpload> = (0..agents.min(50))
        .map(|a| SliceUpload::new(0, 30_000, slice(a, 0, edges)))
        .collect();
    let started = Instant::now();
    let mut built = edgewise_trail::rows::Rows::new();
    for upload in &uploads {
        built.add(upload);
    }
    let took = started.elapsed();
    println!(
        "rows built in Rust (part of the merge above): {} ({} rows)",
        rate(u64::from(agents.min(50)) * u64::from(edges), took),
        built.len()
    );

    let sample = slice(1, 0, edges);
    let rounds = 50;
    let started = Instant::now();
    let mut bytes = 0;
    for seq in 0..rounds {
        bytes = SliceUpload::new(seq, 30_000, sample.clone())
            .encode()
            .unwrap()
            .len();
    }
    let each = started.elapsed() / u32::try_from(rounds).unwrap();
    println!(
        "agent: one slice of {edges} edges encoded in {each:.2?} of CPU; {bytes} bytes gzipped, {:.1} bytes per edge",
        bytes as f64 / f64::from(edges)
    );
}
