//! From slices to the rows of the trail's tables: sans-IO and pure, so
//! that what a batch writes can be checked without a database.
//!
//! [`Rows::add`] turns one slice into rows of [`crate::schema::EDGES`],
//! `NAMESPACE_EDGES`, `EXTERNAL_EDGES` and `NODES` and merges each into
//! the rows already held by the same rules the stores' `ON CONFLICT`
//! clauses apply ([`crate::schema::Merge`]), so a batch of many slices
//! writes each key once. Rows come out sorted by key: concurrent writers
//! take row locks in one order and cannot deadlock each other.
//!
//! What goes where:
//! - every edge is a row of `edges`, in the hour bucket of its last seen
//!   time (clamped into the slice's window);
//! - an edge between two different namespaces is also a row of
//!   `namespace_edges` for its day (a self-edge, or an end without a
//!   namespace, is not);
//! - an edge from a namespace to an address no cluster object has is a
//!   row of `external_edges`;
//! - every fingerprint (`ja4t`, `ja4ts`, `ja4`, `ja4s`), service and
//!   product (with its version) of a slice's nodes is a row of `nodes`.

use std::collections::BTreeMap;

use edgewise_edge_set::{EndpointInfo, GraphSlice, SERVICE_IDENTITY_LABEL, SliceEdge};

use crate::schema::{
    EDGES, EXTERNAL_EDGES, LAST_SEEN, Merge, NAMESPACE_EDGES, NODES, SLICES, Table,
};
use crate::upload::SliceUpload;

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// An integer column.
    Int(i64),
    /// A text column.
    Text(String),
}

impl Value {
    fn text(&self) -> &str {
        match self {
            Self::Text(text) => text,
            Self::Int(_) => "",
        }
    }
}

/// An hour and a day, in Unix milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// A day.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Nanoseconds to milliseconds, saturating.
pub fn ms(ns: u64) -> i64 {
    i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX)
}

/// The start of the day of `ms`.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// The rows of one table, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableRows {
    rows: BTreeMap<Vec<Value>, Vec<Value>>,
}

impl TableRows {
    /// The rows, sorted by key: each a whole row in column order.
    pub fn iter(&self) -> impl Iterator<Item = &Vec<Value>> {
        self.rows.values()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// None.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds a row, merged into the row of the same key if there is one.
    pub(crate) fn add(&mut self, table: &Table, row: Vec<Value>) {
        let key: Vec<Value> = table
            .columns
            .iter()
            .zip(&row)
            .filter(|(c, _)| c.merge == Merge::Key)
            .map(|(_, v)| v.clone())
            .collect();
        match self.rows.get_mut(&key) {
            Some(held) => merge(table, held, row),
            None => {
                self.rows.insert(key, row);
            }
        }
    }
}

/// Merges `theirs` into `mine` as the store's `ON CONFLICT` clause does.
fn merge(table: &Table, mine: &mut [Value], theirs: Vec<Value>) {
    let last = table.index(LAST_SEEN);
    let latest: Vec<usize> = std::iter::once(last)
        .chain((0..table.columns.len()).filter(|&i| table.columns[i].merge == Merge::Latest))
        .collect();
    let newer = latest
        .iter()
        .map(|&i| &theirs[i])
        .cmp(latest.iter().map(|&i| &mine[i]))
        == std::cmp::Ordering::Greater;
    let (their_last, my_last) = (theirs[last].clone(), mine[last].clone());
    for (i, (column, value)) in table.columns.iter().zip(theirs).enumerate() {
        let held = &mut mine[i];
        match (column.merge, &mut *held, value) {
            (Merge::Sum, Value::Int(a), Value::Int(b)) => *a = a.saturating_add(b),
            (Merge::Min, Value::Int(a), Value::Int(b)) => *a = (*a).min(b),
            (Merge::Max, Value::Int(a), Value::Int(b)) => *a = (*a).max(b),
            (Merge::Latest, _, value) if newer => *held = value,
            (Merge::LatestNonEmpty, _, value) => {
                let wins = !value.text().is_empty()
                    && (held.text().is_empty() || (&their_last, &value) > (&my_last, &*held));
                if wins {
                    *held = value;
                }
            }
            (Merge::Agents, Value::Text(a), Value::Text(b)) => *a = agents_union(a, &b),
            _ => {}
        }
    }
}

/// The union of two comma-separated sets of agent names, sorted (what
/// the stores' `agents_union` SQL function computes).
pub fn agents_union(a: &str, b: &str) -> String {
    let mut all: Vec<&str> = a
        .split(',')
        .chain(b.split(','))
        .filter(|s| !s.is_empty())
        .collect();
    all.sort_unstable();
    all.dedup();
    all.join(",")
}

/// The rows of a batch of slices, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    /// `edges`.
    pub edges: TableRows,
    /// `namespace_edges`.
    pub namespace_edges: TableRows,
    /// `external_edges`.
    pub external_edges: TableRows,
    /// `nodes`.
    pub nodes: TableRows,
}

/// One end of an edge as the tables write it.
struct End {
    ip: String,
    ns: String,
    name: String,
    kind: String,
    workload_kind: String,
    workload: String,
    identity: String,
    label: String,
    labels: String,
    known: bool,
}

impl End {
    fn of(info: &EndpointInfo) -> Self {
        let ip = info.ip.to_string();
        let Some(object) = info.identity.as_deref() else {
            return Self {
                label: ip.clone(),
                ip,
                ns: String::new(),
                name: String::new(),
                kind: String::new(),
                workload_kind: String::new(),
                workload: String::new(),
                identity: String::new(),
                labels: String::new(),
                known: false,
            };
        };
        let (workload_kind, workload, label) = match &object.workload {
            Some(w) => (
                w.kind.as_str().to_owned(),
                w.name.clone(),
                format!("{}/{}/{}", w.namespace, w.kind.as_str(), w.name),
            ),
            None => (String::new(), String::new(), object.display.to_string()),
        };
        Self {
            ip,
            ns: object.namespace.clone().unwrap_or_default(),
            name: object.name.clone(),
            kind: object.kind.as_str().to_owned(),
            workload_kind,
            workload,
            identity: object
                .labels
                .get(SERVICE_IDENTITY_LABEL)
                .cloned()
                .unwrap_or_default(),
            label,
            labels: if object.labels.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&object.labels).unwrap_or_default()
            },
            known: true,
        }
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

impl Rows {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the rows of `upload`'s slice.
    pub fn add(&mut self, upload: &SliceUpload) {
        let slice = &upload.slice;
        for edge in &slice.edges {
            self.add_edge(slice, edge);
        }
        self.add_nodes(slice);
    }

    /// Rows in all tables.
    pub fn len(&self) -> usize {
        self.edges.len() + self.namespace_edges.len() + self.external_edges.len() + self.nodes.len()
    }

    /// None at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tables with their rows, in the order a batch writes them.
    pub fn tables(&self) -> [(Table, &TableRows); 4] {
        [
            (EDGES, &self.edges),
            (NAMESPACE_EDGES, &self.namespace_edges),
            (EXTERNAL_EDGES, &self.external_edges),
            (NODES, &self.nodes),
        ]
    }

    fn add_edge(&mut self, slice: &GraphSlice, edge: &SliceEdge) {
        let (src, dst) = (End::of(&edge.src), End::of(&edge.dst));
        let at = ms(edge
            .last_seen_ns
            .clamp(slice.window.start_ns, slice.window.end_ns));
        let (first, last) = (ms(edge.first_seen_ns), ms(edge.last_seen_ns));
        let flows = i64::try_from(edge.flows).unwrap_or(i64::MAX);
        let bytes = i64::try_from(edge.bytes).unwrap_or(i64::MAX);
        let (verdict, policy) = edge
            .verdict
            .as_ref()
            .map_or((String::new(), String::new()), |v| {
                (
                    v.verdict.as_str().to_owned(),
                    v.policy.clone().unwrap_or_default(),
                )
            });
        let proto = edge.protocol.as_str();
        let port = i64::from(edge.port);
        let fqdn = edge.dst.fqdn.clone().unwrap_or_default();
        let agent = text(&slice.agent);
        self.edges.add(
            &EDGES,
            named(
                &EDGES,
                [
                    ("bucket", Value::Int(at.div_euclid(HOUR_MS) * HOUR_MS)),
                    ("port", Value::Int(port)),
                    ("src_ip", text(&src.ip)),
                    ("dst_ip", text(&dst.ip)),
                    ("src_ns", text(&src.ns)),
                    ("src_name", text(&src.name)),
                    ("dst_ns", text(&dst.ns)),
                    ("dst_name", text(&dst.name)),
                    ("proto", text(proto)),
                    ("src_kind", text(&src.kind)),
                    ("src_workload_kind", text(&src.workload_kind)),
                    ("src_workload", text(&src.workload)),
                    ("src_identity", text(&src.identity)),
                    ("src_label", text(&src.label)),
                    ("dst_kind", text(&dst.kind)),
                    ("dst_workload_kind", text(&dst.workload_kind)),
                    ("dst_workload", text(&dst.workload)),
                    ("dst_identity", text(&dst.identity)),
                    ("dst_label", text(&dst.label)),
                    ("dst_fqdn", text(&fqdn)),
                    ("verdict", text(&verdict)),
                    ("policy", text(&policy)),
                    ("first_seen", Value::Int(first)),
                    ("last_seen", Value::Int(last)),
                    ("flow_count", Value::Int(flows)),
                    ("byte_count", Value::Int(bytes)),
                    ("agents", agent),
                    ("dst_labels", text(&dst.labels)),
                ],
            ),
        );
        let day = Value::Int(day_of(at));
        if !src.ns.is_empty() && !dst.ns.is_empty() && src.ns != dst.ns {
            self.namespace_edges.add(
                &NAMESPACE_EDGES,
                named(
                    &NAMESPACE_EDGES,
                    [
                        ("day", day.clone()),
                        ("src_ns", text(&src.ns)),
                        ("src_identity", text(&src.identity)),
                        ("dst_ns", text(&dst.ns)),
                        ("dst_identity", text(&dst.identity)),
                        ("verdict", text(&verdict)),
                        ("first_seen", Value::Int(first)),
                        ("last_seen", Value::Int(last)),
                        ("flow_count", Value::Int(flows)),
                    ],
                ),
            );
        }
        if !src.ns.is_empty() && !dst.known {
            self.external_edges.add(
                &EXTERNAL_EDGES,
                named(
                    &EXTERNAL_EDGES,
                    [
                        ("day", day),
                        ("port", Value::Int(port)),
                        ("dst_ip", text(&dst.ip)),
                        ("src_ns", text(&src.ns)),
                        ("src_identity", text(&src.identity)),
                        ("proto", text(proto)),
                        ("dst_fqdn", text(&fqdn)),
                        ("verdict", text(&verdict)),
                        ("policy", text(&policy)),
                        ("first_seen", Value::Int(first)),
                        ("last_seen", Value::Int(last)),
                        ("flow_count", Value::Int(flows)),
                    ],
                ),
            );
        }
    }

    fn add_nodes(&mut self, slice: &GraphSlice) {
        for node in &slice.nodes {
            let end = End::of(&node.endpoint);
            let last = ms(node.last_seen_ns);
            let at = ms(node
                .last_seen_ns
                .clamp(slice.window.start_ns, slice.window.end_ns));
            let facts = node
                .client_fingerprints
                .iter()
                .map(|f| ("ja4t", f.as_str(), 0, ""))
                .chain(
                    node.server_fingerprints
                        .iter()
                        .map(|f| ("ja4ts", f.as_str(), 0, "")),
                )
                .chain(
                    node.tls_client_fingerprints
                        .iter()
                        .map(|f| ("ja4", f.as_str(), 0, "")),
                )
                .chain(
                    node.tls_server_fingerprints
                        .iter()
                        .map(|f| ("ja4s", f.as_str(), 0, "")),
                )
                .chain(node.services.iter().map(|s| {
                    (
                        "service",
                        s.name.as_str(),
                        i64::from(s.port),
                        s.protocol.as_str(),
                    )
                }));
            // A product is a fact of its own, with its version.
            let products: Vec<(String, i64, &str)> = node
                .services
                .iter()
                .filter_map(|s| {
                    let product = s.product.as_deref()?;
                    let text = match s.version.as_deref() {
                        Some(version) => format!("{product} {version}"),
                        None => product.to_owned(),
                    };
                    Some((text, i64::from(s.port), s.protocol.as_str()))
                })
                .collect();
            let facts = facts.chain(
                products
                    .iter()
                    .map(|(text, port, proto)| ("product", text.as_str(), *port, *proto)),
            );
            for (fact, value, port, proto) in facts {
                self.nodes.add(
                    &NODES,
                    named(
                        &NODES,
                        [
                            ("day", Value::Int(day_of(at))),
                            ("port", Value::Int(port)),
                            ("ip", text(&end.ip)),
                            ("ns", text(&end.ns)),
                            ("name", text(&end.name)),
                            ("fact", text(fact)),
                            ("value", text(value)),
                            ("proto", text(proto)),
                            ("kind", text(&end.kind)),
                            ("label", text(&end.label)),
                            ("first_seen", Value::Int(last)),
                            ("last_seen", Value::Int(last)),
                        ],
                    ),
                );
            }
        }
    }
}

/// A row of `table` from its values named in column order (the names are
/// checked in debug builds, where every test runs).
fn named<const N: usize>(table: &Table, values: [(&'static str, Value); N]) -> Vec<Value> {
    debug_assert_eq!(N, table.columns.len(), "{}", table.name);
    values
        .into_iter()
        .enumerate()
        .map(|(i, (name, value))| {
            debug_assert_eq!(name, table.columns[i].name, "{}", table.name);
            value
        })
        .collect()
}

/// The `slices` row of an upload, received at `now_ms`.
pub fn slice_row(upload: &SliceUpload, now_ms: i64) -> Vec<Value> {
    let window = upload.slice.window;
    let row = vec![
        Value::Int(day_of(ms(window.end_ns))),
        text(&upload.slice.agent),
        Value::Int(i64::try_from(window.start_ns).unwrap_or(i64::MAX)),
        Value::Int(i64::try_from(window.end_ns).unwrap_or(i64::MAX)),
        Value::Int(i64::try_from(upload.seq).unwrap_or(i64::MAX)),
        Value::Int(now_ms),
        Value::Int(i64::try_from(upload.slice.edges.len()).unwrap_or(i64::MAX)),
        Value::Int(i64::try_from(upload.slice.total_flows()).unwrap_or(i64::MAX)),
    ];
    debug_assert_eq!(row.len(), SLICES.columns.len());
    row
}
