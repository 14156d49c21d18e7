//! The trail read back as a graph: the edges and the addresses' facts of
//! the hours since a time, as one [`GraphSlice`] (of the agent `trail`),
//! for the collector's web view and anything else that draws or merges
//! graphs. Two SQL statements that run unchanged on Postgres and SQLite.
//!
//! What the trail keeps of an identity is what comes back: kind,
//! namespace, name, workload and `service-identity` label (and a server's
//! stable labels, schema 2 on); uids, service accounts and named ports are
//! not kept. A `display` is rebuilt as ip-index writes it
//! (`namespace/name`, `node/name`). An edge's hourly rows are summed; its
//! verdict and policy are those of its latest row. A service's product
//! comes back with its version in one text (the trail keeps them so).

use std::collections::BTreeMap;
use std::sync::Arc;

use edgewise_edge_set::{
    EdgeVerdict, EndpointInfo, GraphSlice, ServiceSeen, SliceEdge, SliceNode, VerdictKind, Window,
};
use edgewise_ip_index::{ClusterObject, Protocol};

use crate::TrailError;
use crate::rows::{DAY_MS, HOUR_MS, Value};
use crate::schema::Type;
use crate::store::Store;

/// $1 the first hour bucket.
pub const GRAPH_EDGES_SQL: &str = "\
SELECT src_ip, src_ns, src_name, src_kind, src_workload_kind, src_workload, src_identity,
       dst_ip, dst_ns, dst_name, dst_kind, dst_workload_kind, dst_workload, dst_identity,
       dst_labels, dst_fqdn, port, proto, verdict, policy,
       first_seen, last_seen, flow_count, byte_count
FROM edges
WHERE bucket >= $1
ORDER BY last_seen";

/// $1 the first day.
pub const GRAPH_NODES_SQL: &str = "\
SELECT ip, ns, name, kind, fact, value, port, proto, last_seen
FROM nodes
WHERE day >= $1
ORDER BY last_seen";

/// One end as a row holds it.
struct End<'a> {
    ip: &'a str,
    ns: &'a str,
    name: &'a str,
    kind: &'a str,
    workload_kind: &'a str,
    workload: &'a str,
    labels: serde_json::Value,
}

impl End<'_> {
    fn endpoint(&self, fqdn: &str) -> Option<EndpointInfo> {
        let identity = if self.kind.is_empty() {
            None
        } else {
            let display = if self.ns.is_empty() {
                format!("{}/{}", self.kind.to_ascii_lowercase(), self.name)
            } else {
                format!("{}/{}", self.ns, self.name)
            };
            let mut object = serde_json::json!({
                "kind": self.kind, "name": self.name, "display": display,
                "labels": self.labels,
            });
            if !self.ns.is_empty() {
                object["namespace"] = self.ns.into();
            }
            if !self.workload.is_empty() {
                object["workload"] = serde_json::json!({
                    "namespace": self.ns, "kind": self.workload_kind, "name": self.workload,
                });
            }
            Some(Arc::new(
                serde_json::from_value::<ClusterObject>(object).ok()?,
            ))
        };
        Some(EndpointInfo {
            ip: self.ip.parse().ok()?,
            identity,
            fqdn: (!fqdn.is_empty()).then(|| fqdn.to_owned()),
        })
    }
}

fn labels(identity: &str, stable: &str) -> serde_json::Value {
    let mut labels: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(stable).unwrap_or_default();
    if !identity.is_empty() {
        labels.insert(
            edgewise_edge_set::SERVICE_IDENTITY_LABEL.to_owned(),
            identity.into(),
        );
    }
    serde_json::Value::Object(labels)
}

/// The edges and facts since `since_ms` (Unix milliseconds; edges from its
/// hour on, facts from its day on), as one slice of the agent `trail`.
///
/// # Errors
/// [`TrailError::Store`].
pub fn graph_since(store: &mut Store, since_ms: i64) -> Result<GraphSlice, TrailError> {
    use Type::{Int, Text};
    let edge_types = [
        Text, Text, Text, Text, Text, Text, Text, Text, Text, Text, Text, Text, Text, Text, Text,
        Text, Int, Text, Text, Text, Int, Int, Int, Int,
    ];
    let hour = since_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let rows = store.query(GRAPH_EDGES_SQL, &[Value::Int(hour)], &edge_types)?;
    let mut edges: BTreeMap<(String, String, String, String, u16, Protocol), SliceEdge> =
        BTreeMap::new();
    for row in &rows {
        let Some(edge) = edge_of(row) else {
            continue;
        };
        let key = (
            edge.src.ip.to_string(),
            row_text(row, 2).to_owned(),
            edge.dst.ip.to_string(),
            row_text(row, 9).to_owned(),
            edge.port,
            edge.protocol,
        );
        match edges.get_mut(&key) {
            Some(held) => {
                held.flows += edge.flows;
                held.bytes += edge.bytes;
                held.first_seen_ns = held.first_seen_ns.min(edge.first_seen_ns);
                held.last_seen_ns = held.last_seen_ns.max(edge.last_seen_ns);
                // Rows come oldest first: the latest verdict stays.
                held.verdict = edge.verdict;
                if edge.dst.fqdn.is_some() {
                    held.dst.fqdn = edge.dst.fqdn;
                }
            }
            None => {
                edges.insert(key, edge);
            }
        }
    }
    let day = since_ms.div_euclid(DAY_MS) * DAY_MS;
    let node_types = [Text, Text, Text, Text, Text, Text, Int, Text, Int];
    let rows = store.query(GRAPH_NODES_SQL, &[Value::Int(day)], &node_types)?;
    let nodes = nodes_of(&rows);
    let edges: Vec<SliceEdge> = edges.into_values().collect();
    let start_ns = edges.iter().map(|e| e.first_seen_ns).min().unwrap_or(0);
    let end_ns = edges
        .iter()
        .map(|e| e.last_seen_ns)
        .max()
        .unwrap_or(start_ns);
    let mut slice = GraphSlice {
        agent: "trail".to_owned(),
        window: Window { start_ns, end_ns },
        edges,
        nodes,
    };
    slice.sort();
    Ok(slice)
}

fn row_text(row: &[Value], index: usize) -> &str {
    match row.get(index) {
        Some(Value::Text(text)) => text,
        _ => "",
    }
}

fn row_int(row: &[Value], index: usize) -> i64 {
    match row.get(index) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    }
}

fn nanos(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

fn edge_of(row: &[Value]) -> Option<SliceEdge> {
    let end = |at: usize, stable: &str| End {
        ip: row_text(row, at),
        ns: row_text(row, at + 1),
        name: row_text(row, at + 2),
        kind: row_text(row, at + 3),
        workload_kind: row_text(row, at + 4),
        workload: row_text(row, at + 5),
        labels: labels(row_text(row, at + 6), stable),
    };
    let src = end(0, "").endpoint("")?;
    let dst = end(7, row_text(row, 14)).endpoint(row_text(row, 15))?;
    let verdict = match row_text(row, 18) {
        "declared" => Some(VerdictKind::Declared),
        "violation" => Some(VerdictKind::Violation),
        "not_governed" => Some(VerdictKind::NotGoverned),
        _ => None,
    };
    let policy = row_text(row, 19);
    Some(SliceEdge {
        src,
        dst,
        port: u16::try_from(row_int(row, 16)).ok()?,
        protocol: row_text(row, 17).parse().ok()?,
        flows: u64::try_from(row_int(row, 22)).unwrap_or(0),
        bytes: u64::try_from(row_int(row, 23)).unwrap_or(0),
        first_seen_ns: nanos(row_int(row, 20)),
        last_seen_ns: nanos(row_int(row, 21)),
        verdict: verdict.map(|verdict| EdgeVerdict {
            verdict,
            policy: (!policy.is_empty()).then(|| policy.to_owned()),
        }),
    })
}

/// The facts rows as one node per (address, object).
fn nodes_of(rows: &[Vec<Value>]) -> Vec<SliceNode> {
    let mut nodes: BTreeMap<(String, String, String), SliceNode> = BTreeMap::new();
    let mut products = Vec::new();
    for row in rows {
        let (ip, namespace, name, kind) = (
            row_text(row, 0),
            row_text(row, 1),
            row_text(row, 2),
            row_text(row, 3),
        );
        let end = End {
            ip,
            ns: namespace,
            name,
            kind,
            workload_kind: "",
            workload: "",
            labels: serde_json::json!({}),
        };
        let Some(endpoint) = end.endpoint("") else {
            continue;
        };
        let key = (ip.to_owned(), namespace.to_owned(), name.to_owned());
        let node = nodes.entry(key.clone()).or_insert_with(|| SliceNode {
            endpoint,
            client_fingerprints: Vec::new(),
            server_fingerprints: Vec::new(),
            tls_client_fingerprints: Vec::new(),
            tls_server_fingerprints: Vec::new(),
            services: Vec::new(),
            last_seen_ns: 0,
        });
        node.last_seen_ns = node.last_seen_ns.max(nanos(row_int(row, 8)));
        let value = row_text(row, 5).to_owned();
        let port = u16::try_from(row_int(row, 6)).unwrap_or(0);
        let protocol = row_text(row, 7).parse().unwrap_or(Protocol::Tcp);
        match row_text(row, 4) {
            "ja4t" => node.client_fingerprints.push(value),
            "ja4ts" => node.server_fingerprints.push(value),
            "ja4" => node.tls_client_fingerprints.push(value),
            "ja4s" => node.tls_server_fingerprints.push(value),
            "service" => node
                .services
                .push(ServiceSeen::named(port, protocol, &value)),
            "product" => products.push((key, port, protocol, value)),
            _ => {}
        }
    }
    // A product is kept as `product version` in one value, and a product
    // may hold spaces: the whole text is the product.
    for (key, port, protocol, product) in products {
        let services = nodes.get_mut(&key).map(|node| &mut node.services);
        for service in services
            .into_iter()
            .flatten()
            .filter(|s| s.port == port && s.protocol == protocol)
        {
            service.product = Some(product.clone());
        }
    }
    nodes.into_values().collect()
}
