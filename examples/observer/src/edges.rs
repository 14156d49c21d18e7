//! `edgewise edges`: Kubernetes objects, policies and flows in; one verdict
//! line per flow out, and optionally the graph (JSON and DOT).
//!
//! A flow line is `{"src": "ip", "dst": "ip", "port": N, "proto":
//! "tcp"|"udp"|"sctp"}`, with an optional `"bytes": N`. The output line for
//! it is
//!
//! ```json
//! {"src": {"ip": "10.42.2.30", "identity": {...}|null},
//!  "dst": {"ip": "10.42.1.159", "identity": {...}|null},
//!  "port": 8086, "proto": "tcp",
//!  "verdict": "declared"|"violation"|"not_governed",
//!  "policy": "analytics/influxdb-ingress"|null,
//!  "ingress": "allowed"|"denied"|"not_governed",
//!  "egress": "allowed"|"denied"|"not_governed"}
//! ```
//!
//! Objects and policies are Kubernetes JSON, or YAML in a `.yaml` / `.yml`
//! file (one or more documents).
//!
//! `identity` is the JSON form of ip-index's `ClusterObject` (null for an
//! address no object owns, or one several objects claim). Any input that
//! cannot be used (an unreadable file, an object or policy that fails its
//! checks, a wrong allow-list line, a flow line that is not as above) stops
//! the command with a message naming the file and line or object.

use std::io::{self, BufRead, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use edgewise_edge_set::render::{aggregate_json, dot, graph_json};
use edgewise_edge_set::{
    AggregateOptions, DeclaredPolicies, EdgeKey, EdgeQuery, EdgeSetError, Endpoint, Granularity,
    GraphConfig, ObservedGraph, PolicySet, ServiceGraph, Side, aggregate,
};
use edgewise_ip_index::{ClusterObject, InputError, IpIndex, Lookup, Protocol};
use edgewise_time::UnixNanos;
use serde::{Deserialize, Serialize};

use crate::resolve::{ResolveError, load_index};
use crate::{FileError, JsonLines};

/// Why `edgewise edges` could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgesError {
    /// The objects could not be loaded.
    #[error(transparent)]
    Objects(#[from] ResolveError),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// A policies file holds something that cannot be used.
    #[error("{}: {error}", path.display())]
    Policy {
        /// The file.
        path: PathBuf,
        /// The first problem in it.
        error: InputError,
    },
    /// An allow-list has wrong lines (the first is shown; all are listed
    /// in `errors`).
    #[error("{}{}", errors[0], if errors.len() > 1 { format!(" (and {} more wrong lines)", errors.len() - 1) } else { String::new() })]
    AllowList {
        /// Every wrong line.
        errors: Vec<EdgeSetError>,
    },
    /// A flow line that is not `{"src", "dst", "port", "proto"}`.
    #[error("{}:{line}: {problem}", path.display())]
    Flow {
        /// The flows file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A YAML manifests file does not parse.
    #[error("{}: not YAML: {problem}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        problem: String,
    },
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
}

/// The inputs of `edgewise edges`.
#[derive(Debug, Clone, Default)]
pub struct EdgesInput {
    /// Kubernetes objects (pods, services, nodes, namespaces).
    pub objects: Vec<PathBuf>,
    /// NetworkPolicy JSON files.
    pub policies: Vec<PathBuf>,
    /// Hand-written allow-lists.
    pub allow_lists: Vec<PathBuf>,
    /// Objects a cluster watch holds, as one Kubernetes `List` (what
    /// cannot be used of it is passed over: no file is at fault).
    pub cluster: Option<Vec<u8>>,
}

/// Loads the objects into an index and the policies (with the objects'
/// namespaces) into a compiled set.
///
/// # Errors
/// [`EdgesError`] naming the first file that cannot be used.
pub fn load(input: &EdgesInput) -> Result<(IpIndex, PolicySet), EdgesError> {
    let mut index = load_index(&input.objects)?;
    let mut declared = DeclaredPolicies::default();
    for path in input.objects.iter().chain(&input.policies) {
        let text = read_manifests(path)?;
        if let Some(error) = declared.load(&text).errors.into_iter().next() {
            return Err(EdgesError::Policy {
                path: path.clone(),
                error,
            });
        }
    }
    if let Some(cluster) = &input.cluster {
        let _ = index.load(cluster);
        let _ = declared.load(cluster);
    }
    for path in &input.allow_lists {
        let text = read(path)?;
        let text = String::from_utf8_lossy(&text);
        declared
            .load_allow_list(&path.display().to_string(), &text)
            .map_err(|errors| EdgesError::AllowList { errors })?;
    }
    Ok((index, declared.compile()))
}

fn read(path: &Path) -> Result<Vec<u8>, EdgesError> {
    Ok(std::fs::read(path).map_err(FileError::at(path))?)
}

/// Reads a manifests file: JSON as it is; YAML (a `.yaml` or `.yml`
/// file, one or more documents) as one JSON `List` of its documents.
///
/// # Errors
/// [`EdgesError::File`] when it cannot be read, [`EdgesError::Yaml`] when
/// a YAML file does not parse.
pub fn read_manifests(path: &Path) -> Result<Vec<u8>, EdgesError> {
    let bytes = read(path)?;
    let yaml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    if !yaml {
        return Ok(bytes);
    }
    let fail = |problem: String| EdgesError::Yaml {
        path: path.to_owned(),
        problem,
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| fail(e.to_string()))?;
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| fail(e.to_string()))?;
    let items: Vec<serde_json::Value> = documents.into_iter().filter(|d| !d.is_null()).collect();
    Ok(
        serde_json::to_vec(
            &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}),
        )
        .unwrap_or_default(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowLine {
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    proto: Protocol,
    #[serde(default)]
    bytes: u64,
}

#[derive(Serialize)]
struct EndpointLine<'a> {
    ip: IpAddr,
    identity: Option<&'a ClusterObject>,
}

#[derive(Serialize)]
struct VerdictLine<'a> {
    src: EndpointLine<'a>,
    dst: EndpointLine<'a>,
    port: u16,
    proto: Protocol,
    verdict: &'static str,
    policy: Option<&'a str>,
    ingress: &'static str,
    egress: &'static str,
}

fn side(side: Side) -> &'static str {
    match side {
        Side::NotGoverned => "not_governed",
        Side::Allowed(_) => "allowed",
        Side::Denied(_) => "denied",
    }
}

/// Reads flow lines from `flows` (named `path` in errors), writes one
/// verdict line per flow to `out`, and returns the graph of all flows.
///
/// # Errors
/// [`EdgesError::Flow`] for the first flow line that cannot be used (the
/// lines before it are written), [`EdgesError::Output`] when writing fails.
pub fn write_edges(
    index: &IpIndex,
    policies: &PolicySet,
    path: &Path,
    flows: impl BufRead,
    out: &mut dyn Write,
) -> Result<ServiceGraph, EdgesError> {
    let snapshot = index.snapshot();
    let identity = |ip: IpAddr| match snapshot.lookup(ip) {
        Lookup::Object(object) => Some(&**object),
        _ => None,
    };
    let mut lines = JsonLines::new(out, crate::schema::VERDICT);
    let mut graph = ObservedGraph::new(
        {
            let mut graph_config = GraphConfig::default();
            graph_config.max_edges = usize::MAX;
            graph_config
        },
        UnixNanos::ZERO,
    );
    let mut read = 0;
    for (number, line) in flows.lines().enumerate() {
        read = number as u64 + 1;
        let fail = |problem: String| EdgesError::Flow {
            path: path.to_owned(),
            line: number + 1,
            problem,
        };
        let line = line.map_err(|e| fail(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let flow: FlowLine = serde_json::from_str(&line).map_err(|e| fail(e.to_string()))?;
        let (src, dst) = (identity(flow.src), identity(flow.dst));
        let verdict = policies.evaluate(&EdgeQuery {
            src: Endpoint {
                ip: flow.src,
                identity: src,
            },
            dst: Endpoint {
                ip: flow.dst,
                identity: dst,
            },
            port: flow.port,
            protocol: flow.proto,
        });
        lines.write(&VerdictLine {
            src: EndpointLine {
                ip: flow.src,
                identity: src,
            },
            dst: EndpointLine {
                ip: flow.dst,
                identity: dst,
            },
            port: flow.port,
            proto: flow.proto,
            verdict: verdict.kind().as_str(),
            policy: verdict
                .deciding()
                .map(|id| policies.policy(id).name.as_str()),
            ingress: side(verdict.ingress),
            egress: side(verdict.egress),
        });
        // Flow lines carry no time: the line number stands in for it (as
        // nanoseconds after the epoch).
        let edge = EdgeKey {
            src: flow.src,
            dst: flow.dst,
            port: flow.port,
            protocol: flow.proto,
        };
        graph.record(edge, 1, flow.bytes, UnixNanos::from_nanos(number as u64));
    }
    lines.finish().map_err(EdgesError::Output)?;
    drop(snapshot);
    let slice = graph.drain(
        "edgewise-edges",
        UnixNanos::from_nanos(read),
        &mut index.snapshot(),
        Some(policies),
    );
    Ok(ServiceGraph::from_slice(&slice))
}

/// Writes `graph.json` (per address), `graph-<granularity>.json` and
/// `graph.dot` (aggregated) into `dir`; returns the files written.
///
/// # Errors
/// [`EdgesError::File`] when a file cannot be written.
pub fn write_graph(
    graph: &ServiceGraph,
    options: &AggregateOptions,
    dir: &Path,
) -> Result<Vec<PathBuf>, EdgesError> {
    let aggregated = aggregate(graph, options);
    let name = match &options.granularity {
        Granularity::Workload => "workload".to_owned(),
        Granularity::Namespace => "namespace".to_owned(),
        Granularity::NamespaceLabel(label) => format!("namespace-{}", label.replace('/', "_")),
    };
    let files = [
        ("graph.json", pretty(&graph_json(graph))),
        (
            &*format!("graph-{name}.json"),
            pretty(&aggregate_json(&aggregated, &options.granularity)),
        ),
        ("graph.dot", dot(&aggregated)),
    ]
    .map(|(file, text)| (dir.join(file), text));
    std::fs::create_dir_all(dir).map_err(FileError::at(dir))?;
    let mut written = Vec::new();
    for (path, text) in files {
        std::fs::write(&path, text).map_err(FileError::at(&path))?;
        written.push(path);
    }
    Ok(written)
}

fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Reads `--granularity`: `workload`, `namespace` or `namespace+LABEL`.
///
/// # Errors
/// A message saying what is accepted.
pub fn parse_granularity(text: &str) -> Result<Granularity, String> {
    match text {
        "workload" => Ok(Granularity::Workload),
        "namespace" => Ok(Granularity::Namespace),
        _ => match text.strip_prefix("namespace+") {
            Some(label) if !label.is_empty() => Ok(Granularity::NamespaceLabel(label.to_owned())),
            _ => Err(format!(
                "{text:?}: expected workload, namespace or namespace+LABEL (such as namespace+service-identity)"
            )),
        },
    }
}
