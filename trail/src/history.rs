//! The trail's egress per day and source, for `edgewise advise`: one row
//! per (day, source namespace and `service-identity`, destination address,
//! its identity and name, port, protocol), from pod sources only, read by
//! one SQL statement that runs unchanged on Postgres and SQLite.

use crate::TrailError;
use crate::rows::{DAY_MS, Value};
use crate::schema::Type;
use crate::store::Store;

/// One row of the egress history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRow {
    /// The UTC day (Unix milliseconds at its start).
    pub day: i64,
    /// The source pods' namespace.
    pub src_ns: String,
    /// Their `service-identity` label (`''` when unset).
    pub src_identity: String,
    /// The destination's address.
    pub dst_ip: String,
    /// Its namespace (`''` outside the cluster).
    pub dst_ns: String,
    /// `Pod`, `Service`, `Node` or `''`.
    pub dst_kind: String,
    /// Its object's name.
    pub dst_name: String,
    /// Its workload's kind (pods).
    pub dst_workload_kind: String,
    /// Its workload's name (pods).
    pub dst_workload: String,
    /// Its stable labels as a JSON object (`''` when none or before
    /// schema version 2).
    pub dst_labels: String,
    /// The name the client resolved (`''` when none).
    pub dst_fqdn: String,
    /// The port.
    pub port: i64,
    /// `tcp`, `udp`, `sctp`.
    pub proto: String,
    /// First seen (Unix milliseconds).
    pub first_seen: i64,
    /// Last seen.
    pub last_seen: i64,
    /// Flows.
    pub flows: i64,
}

/// $1 the first hour bucket. Integer division cuts hours into days on
/// both engines.
pub const EGRESS_HISTORY_SQL: &str = "\
SELECT (bucket / 86400000) * 86400000 AS day, src_ns, src_identity, dst_ip, dst_ns,
       dst_kind, dst_name, dst_workload_kind, dst_workload, max(dst_labels), dst_fqdn,
       port, proto, min(first_seen), max(last_seen), CAST(sum(flow_count) AS BIGINT)
FROM edges
WHERE bucket >= $1 AND src_kind = 'Pod' AND src_ns <> ''
GROUP BY (bucket / 86400000) * 86400000, src_ns, src_identity, dst_ip, dst_ns, dst_kind,
         dst_name, dst_workload_kind, dst_workload, dst_fqdn, port, proto
ORDER BY 1, 2, 3, 4, 12, 13";

/// The egress history from the day of `since_ms` on.
///
/// # Errors
/// [`TrailError::Store`].
pub fn egress_history(store: &mut Store, since_ms: i64) -> Result<Vec<EgressRow>, TrailError> {
    use Type::{Int, Text};
    let since = since_ms.div_euclid(DAY_MS) * DAY_MS;
    let types = [
        Int, Text, Text, Text, Text, Text, Text, Text, Text, Text, Text, Int, Text, Int, Int, Int,
    ];
    let rows = store.query(EGRESS_HISTORY_SQL, &[Value::Int(since)], &types)?;
    Ok(rows.iter().map(|r| row(r)).collect())
}

fn row(values: &[Value]) -> EgressRow {
    let text = |i: usize| match values.get(i) {
        Some(Value::Text(t)) => t.clone(),
        _ => String::new(),
    };
    let number = |i: usize| match values.get(i) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    };
    EgressRow {
        day: number(0),
        src_ns: text(1),
        src_identity: text(2),
        dst_ip: text(3),
        dst_ns: text(4),
        dst_kind: text(5),
        dst_name: text(6),
        dst_workload_kind: text(7),
        dst_workload: text(8),
        dst_labels: text(9),
        dst_fqdn: text(10),
        port: number(11),
        proto: text(12),
        first_seen: number(13),
        last_seen: number(14),
        flows: number(15),
    }
}
