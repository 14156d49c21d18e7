//! Slices for the trail's tests, and the stores to write them to.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a part; pub is for the test binaries"
)]

use std::sync::Arc;

use edgewise_edge_set::{
    EdgeVerdict, EndpointInfo, GraphSlice, ServiceSeen, SliceEdge, SliceNode, VerdictKind, Window,
};
use edgewise_ip_index::{ClusterObject, Protocol};
use edgewise_test_support::postgres::TestDatabase;
use edgewise_trail::rows::Value;
use edgewise_trail::schema::{DATA_TABLES, Table, Type};
use edgewise_trail::{Store, StoreUrl};

/// 2025-11-30T00:00:00Z in nanoseconds.
pub const DAY0_NS: u64 = 1_764_460_800 * 1_000_000_000;

/// A pod `ns/name` of Deployment `name` at `ip`, or a bare address when
/// `who` has no `/`.
pub fn endpoint(who: &str, ip: &str, fqdn: Option<&str>) -> EndpointInfo {
    let identity = who.split_once('/').map(|(ns, name)| {
        let object: ClusterObject = serde_json::from_value(serde_json::json!({
            "kind": "Pod",
            "namespace": ns,
            "name": format!("{name}-0"),
            "workload": {"namespace": ns, "kind": "Deployment", "name": name},
            "labels": {"service-identity": name},
            "display": format!("{ns}/{name}-0"),
        }))
        .expect("a pod");
        Arc::new(object)
    });
    EndpointInfo {
        ip: ip.parse().expect("an address"),
        identity,
        fqdn: fqdn.map(str::to_owned),
    }
}

/// An edge seen `flows` times between `at_s` seconds after `DAY0_NS`.
pub fn edge(
    src: EndpointInfo,
    dst: EndpointInfo,
    port: u16,
    flows: u64,
    at_s: u64,
    violation: bool,
) -> SliceEdge {
    let at = DAY0_NS + at_s * 1_000_000_000;
    SliceEdge {
        src,
        dst,
        port,
        protocol: Protocol::Tcp,
        flows,
        bytes: flows * 100,
        first_seen_ns: at,
        last_seen_ns: at,
        verdict: Some(EdgeVerdict {
            verdict: if violation {
                VerdictKind::Violation
            } else {
                VerdictKind::Declared
            },
            policy: Some(
                if violation {
                    "shop/isolate"
                } else {
                    "shop/allow"
                }
                .to_owned(),
            ),
        }),
    }
}

/// The slice of `agent` for window `n` (30 s each from `DAY0_NS`): the
/// same three edges every window, flows growing with `n`, and one node
/// with a fingerprint and a service.
pub fn slice(agent: &str, n: u64) -> GraphSlice {
    let start = DAY0_NS + n * 30_000_000_000;
    let at = n * 30 + 10;
    let web = endpoint("shop/web", "10.0.0.1", None);
    let db = endpoint("data/db", "10.0.1.1", None);
    let cache = endpoint("shop/cache", "10.0.0.2", None);
    let api = endpoint("example.com", "93.184.216.34", Some("api.example.com"));
    GraphSlice {
        agent: agent.to_owned(),
        window: Window {
            start_ns: start,
            end_ns: start + 30_000_000_000,
        },
        edges: vec![
            edge(web.clone(), db.clone(), 5432, n + 1, at, false),
            edge(web.clone(), cache, 6379, 2, at, false),
            edge(web.clone(), api, 443, 1, at, n % 2 == 1),
        ],
        nodes: vec![SliceNode {
            endpoint: db,
            client_fingerprints: Vec::new(),
            server_fingerprints: vec!["64240_2-4-8-1-3_1460_7".to_owned()],
            tls_client_fingerprints: Vec::new(),
            tls_server_fingerprints: vec!["t130200_1301_234ea6891581".to_owned()],
            services: vec![ServiceSeen {
                product: Some("PostgreSQL DB".to_owned()),
                version: Some("9.6.0 or later".to_owned()),
                ..ServiceSeen::named(5432, Protocol::Tcp, "postgresql")
            }],
            last_seen_ns: DAY0_NS + at * 1_000_000_000,
        }],
    }
}

/// Every row of `table`, sorted.
pub fn dump(store: &mut Store, table: &Table) -> Vec<Vec<Value>> {
    let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    let types: Vec<Type> = table.columns.iter().map(|c| c.ty).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        names.join(", "),
        table.name,
        names.join(", ")
    );
    store.query(&sql, &[], &types).unwrap()
}

/// Every row of every table of merged data, sorted.
pub fn everything(store: &mut Store) -> Vec<Vec<Vec<Value>>> {
    DATA_TABLES.iter().map(|table| dump(store, table)).collect()
}

/// A SQLite store's URL, its file in a fresh temporary folder removed
/// with it.
pub struct SqliteFile {
    url: StoreUrl,
    _dir: edgewise_test_support::ScratchDir,
}

impl std::ops::Deref for SqliteFile {
    type Target = StoreUrl;

    fn deref(&self) -> &StoreUrl {
        &self.url
    }
}

/// A SQLite store in a fresh temporary file.
pub fn sqlite(name: &str) -> SqliteFile {
    let dir = edgewise_test_support::ScratchDir::new(&format!("trail-{name}"));
    SqliteFile {
        url: StoreUrl::Sqlite(dir.join("trail.db")),
        _dir: dir,
    }
}

/// A Postgres database for the test, or `None` after saying why it skips.
pub fn postgres(name: &str) -> Option<(StoreUrl, TestDatabase)> {
    match TestDatabase::create(name) {
        Ok(db) => Some((StoreUrl::Postgres(db.url.clone()), db)),
        Err(why) => {
            edgewise_test_support::skip(&why);
            None
        }
    }
}
