//! Both stores, real: SQLite in a temporary file and Postgres in a
//! throwaway cluster (`scripts/test.sh` starts one; without it a cluster
//! is started for the test). Every slice counts once whatever the order,
//! the grouping into batches or the repetition; both engines end with the
//! same rows; retention drops old days; recipes answer the same on both.

mod support;

use edgewise_trail::query::Recipe;
use edgewise_trail::rows::{DAY_MS, Value};
use edgewise_trail::schema::Type;
use edgewise_trail::store::{Outcome, Store};
use edgewise_trail::{SliceUpload, StoreUrl};
use support::{DAY0_NS, dump, everything, postgres, slice, sqlite};

const DAY0_MS: i64 = (DAY0_NS / 1_000_000).cast_signed();

fn uploads() -> Vec<SliceUpload> {
    (0..6)
        .flat_map(|n| {
            ["node-a", "node-b"]
                .into_iter()
                .map(move |agent| SliceUpload::new(n, 30_000, slice(agent, n)))
        })
        .collect()
}

fn total_flows(store: &mut Store, table: &str) -> i64 {
    let rows = store
        .query(
            &format!("SELECT CAST(coalesce(sum(flow_count), 0) AS BIGINT) FROM {table}"),
            &[],
            &[Type::Int],
        )
        .unwrap();
    match rows[0][0] {
        Value::Int(n) => n,
        Value::Text(_) => unreachable!(),
    }
}

/// Writes every upload in order, one batch each.
fn calm(url: &StoreUrl) -> Store {
    let mut store = Store::open(url, 0).unwrap();
    for upload in uploads() {
        let written = store.write(std::slice::from_ref(&upload), DAY0_MS).unwrap();
        assert_eq!(written.outcomes, [Outcome::Merged]);
    }
    store
}

/// Writes them backwards, in batches of three, each batch twice, and
/// with a copy of the first inside a later batch.
fn disturbed(url: &StoreUrl) -> Store {
    let mut store = Store::open(url, 0).unwrap();
    let mut sent: Vec<SliceUpload> = uploads();
    sent.reverse();
    for batch in sent.chunks(3) {
        let written = store.write(batch, DAY0_MS).unwrap();
        assert!(written.outcomes.iter().all(|o| *o == Outcome::Merged));
        let again = store.write(batch, DAY0_MS).unwrap();
        assert!(again.outcomes.iter().all(|o| *o == Outcome::Duplicate));
    }
    let mixed = [sent[0].clone(), sent[0].clone()];
    let written = store.write(&mixed, DAY0_MS).unwrap();
    assert_eq!(written.outcomes, [Outcome::Duplicate, Outcome::Duplicate]);
    store
}

fn expected_flows() -> i64 {
    let per_window: u64 = uploads().iter().map(|u| u.slice.total_flows()).sum();
    i64::try_from(per_window).unwrap()
}

fn counts_once(calm_url: &StoreUrl, disturbed_url: &StoreUrl) {
    let mut calm = calm(calm_url);
    let mut disturbed = disturbed(disturbed_url);
    assert_eq!(total_flows(&mut calm, "edges"), expected_flows());
    assert_eq!(everything(&mut calm), everything(&mut disturbed));
    let at = edgewise_trail::schema::EDGES.index("agents");
    let agents = dump(&mut disturbed, &edgewise_trail::schema::EDGES)
        .into_iter()
        .map(|row| row[at].clone())
        .collect::<Vec<_>>();
    assert!(
        agents
            .iter()
            .all(|a| *a == Value::Text("node-a,node-b".into())),
        "{agents:?}"
    );
}

#[test]
fn sqlite_counts_every_slice_once_in_any_order() {
    counts_once(&sqlite("calm"), &sqlite("disturbed"));
}

#[test]
fn postgres_counts_every_slice_once_in_any_order() {
    let (Some((calm, _a)), Some((disturbed, _b))) = (postgres("calm"), postgres("disturbed"))
    else {
        return;
    };
    counts_once(&calm, &disturbed);
}

#[test]
fn both_engines_end_with_the_same_rows() {
    let Some((pg, _db)) = postgres("same") else {
        return;
    };
    let lite = sqlite("same");
    let (mut pg, mut lite) = (disturbed(&pg), disturbed(&lite));
    assert_eq!(everything(&mut pg), everything(&mut lite));
    let recipes = [
        Recipe::Edges {
            namespace: "shop".into(),
            since_ms: 0,
        },
        Recipe::New { since_ms: DAY0_MS },
        Recipe::Egress {
            namespace: "shop".into(),
            since_ms: 0,
        },
        Recipe::Violations { since_ms: 0 },
    ];
    for recipe in recipes {
        let (a, b) = (recipe.run(&mut pg).unwrap(), recipe.run(&mut lite).unwrap());
        assert!(!a.rows.is_empty(), "{recipe:?} found nothing");
        assert_eq!(a, b, "{recipe:?}");
    }
}

fn namespace_rows(url: &StoreUrl) {
    let mut store = calm(url);
    let rows = store
        .query(
            "SELECT src_ns, dst_ns, verdict, CAST(sum(flow_count) AS BIGINT) FROM namespace_edges GROUP BY src_ns, dst_ns, verdict",
            &[],
            &[Type::Text, Type::Text, Type::Text, Type::Int],
        )
        .unwrap();
    // web -> db crosses namespaces; web -> cache is a self-edge of shop;
    // web -> api.example.com has no namespace on its far end.
    let db_flows: i64 = (0..6).map(|n| 2 * (n + 1)).sum();
    assert_eq!(
        rows,
        [vec![
            Value::Text("shop".into()),
            Value::Text("data".into()),
            Value::Text("declared".into()),
            Value::Int(db_flows)
        ]]
    );
    let external = store
        .query(
            "SELECT dst_ip, dst_fqdn, CAST(sum(flow_count) AS BIGINT) FROM external_edges GROUP BY dst_ip, dst_fqdn",
            &[],
            &[Type::Text, Type::Text, Type::Int],
        )
        .unwrap();
    assert_eq!(
        external,
        [vec![
            Value::Text("93.184.216.34".into()),
            Value::Text("api.example.com".into()),
            Value::Int(12)
        ]]
    );
    let nodes = store
        .query(
            "SELECT fact, value, port FROM nodes ORDER BY fact",
            &[],
            &[Type::Text, Type::Text, Type::Int],
        )
        .unwrap();
    // JA4TS, JA4S, the service and its product with its version.
    let facts: Vec<(&Value, &Value, &Value)> = nodes
        .iter()
        .map(|row| (&row[0], &row[1], &row[2]))
        .collect();
    assert_eq!(
        facts,
        [
            (
                &Value::Text("ja4s".into()),
                &Value::Text("t130200_1301_234ea6891581".into()),
                &Value::Int(0)
            ),
            (
                &Value::Text("ja4ts".into()),
                &Value::Text("64240_2-4-8-1-3_1460_7".into()),
                &Value::Int(0)
            ),
            (
                &Value::Text("product".into()),
                &Value::Text("PostgreSQL DB 9.6.0 or later".into()),
                &Value::Int(5432)
            ),
            (
                &Value::Text("service".into()),
                &Value::Text("postgresql".into()),
                &Value::Int(5432)
            ),
        ],
        "{nodes:?}"
    );
}

#[test]
fn sqlite_namespace_edges_leave_out_self_edges_and_external_ends() {
    namespace_rows(&sqlite("namespaces"));
}

#[test]
fn postgres_namespace_edges_leave_out_self_edges_and_external_ends() {
    let Some((url, _db)) = postgres("namespaces") else {
        return;
    };
    namespace_rows(&url);
}

fn retention(url: &StoreUrl) {
    let mut store = Store::open(url, 1).unwrap();
    let now = DAY0_MS + 3 * DAY_MS;
    let old = SliceUpload::new(0, 30_000, slice("node-a", 0));
    assert_eq!(
        store.write(&[old], now).unwrap().outcomes,
        [Outcome::Expired]
    );
    let mut store = Store::open(url, 0).unwrap();
    store
        .write(&[SliceUpload::new(0, 30_000, slice("node-a", 0))], now)
        .unwrap();
    let mut later = slice("node-a", 0);
    for edge in &mut later.edges {
        edge.first_seen_ns += 2 * 86_400_000_000_000;
        edge.last_seen_ns += 2 * 86_400_000_000_000;
    }
    later.window.start_ns += 2 * 86_400_000_000_000;
    later.window.end_ns += 2 * 86_400_000_000_000;
    store
        .write(&[SliceUpload::new(1, 30_000, later)], now)
        .unwrap();
    assert_eq!(total_flows(&mut store, "edges"), 8);
    let mut store = Store::open(url, 1).unwrap();
    assert!(store.retain(now).unwrap() > 0);
    assert_eq!(
        total_flows(&mut store, "edges"),
        4,
        "only the later day stays"
    );
}

#[test]
fn sqlite_retention_drops_old_days() {
    retention(&sqlite("retention"));
}

#[test]
fn postgres_retention_drops_old_day_partitions() {
    let Some((url, _db)) = postgres("retention") else {
        return;
    };
    retention(&url);
}

#[test]
fn a_store_from_a_newer_edgewise_is_refused() {
    let url = sqlite("newer");
    let mut store = Store::open(&url, 0).unwrap();
    store
        .execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)",
            &[],
        )
        .unwrap();
    drop(store);
    let error = Store::open(&url, 0).unwrap_err();
    assert!(
        error.to_string().contains("newer than this edgewise"),
        "{error}"
    );
}
