//! Projecting a [`ServiceGraph`] to the granularity teams think in:
//! workload, namespace, or namespace refined by a `service-identity` label.
//!
//! Each endpoint becomes a group:
//!
//! | endpoint                         | workload              | namespace | namespace + label        |
//! |----------------------------------|-----------------------|-----------|--------------------------|
//! | pod of a workload                | `ns/Kind/name`        | `ns`      | `ns/<label value>` or `ns` |
//! | service                          | `ns/Service/name`     | `ns`      | `ns/<label value>` or `ns` |
//! | node                             | `node/name`           | `node/name` | `node/name`            |
//! | address without identity         | its FQDN, else the IP | same      | same                     |
//!
//! Edges between the same groups, port and protocol are summed: flows,
//! bytes, first/last seen, and flows per verdict. With
//! [`AggregateOptions::drop_self_edges`], edges from a group to itself are
//! left out and their flows counted in [`Aggregated::self_edge_flows`], so
//! that the flows of the edges plus those always equal the graph's.

use std::collections::BTreeMap;

use edgewise_ip_index::{ObjectKind, Protocol};
use serde::Serialize;

use crate::graph::ServiceGraph;
use crate::policy::VerdictKind;
use crate::slice::EndpointInfo;

/// The label that splits a namespace into services by default.
pub const SERVICE_IDENTITY_LABEL: &str = "service-identity";

/// What an endpoint is grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Granularity {
    /// The workload (Deployment, StatefulSet, ...).
    Workload,
    /// The namespace.
    Namespace,
    /// The namespace, split by the value of this label where pods carry it
    /// (usually [`SERVICE_IDENTITY_LABEL`]).
    NamespaceLabel(String),
}

impl Granularity {
    /// How outputs name it: `workload`, `namespace` or `namespace+LABEL`.
    pub fn name(&self) -> String {
        match self {
            Self::Workload => "workload".to_owned(),
            Self::Namespace => "namespace".to_owned(),
            Self::NamespaceLabel(label) => format!("namespace+{label}"),
        }
    }
}

/// How to aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AggregateOptions {
    /// The grouping.
    pub granularity: Granularity,
    /// Leave out edges from a group to itself.
    pub drop_self_edges: bool,
}

impl AggregateOptions {
    /// Grouped by `granularity`, edges from a group to itself kept.
    pub fn new(granularity: Granularity) -> Self {
        Self {
            granularity,
            drop_self_edges: false,
        }
    }
}

/// Flows per verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct VerdictFlows {
    /// Flows of declared edges.
    pub declared: u64,
    /// Flows of edges no policy governs.
    pub not_governed: u64,
    /// Flows of violating edges.
    pub violation: u64,
    /// Flows of edges without a verdict (no policies given).
    pub unknown: u64,
}

impl VerdictFlows {
    fn add(&mut self, verdict: Option<VerdictKind>, flows: u64) {
        let slot = match verdict {
            Some(VerdictKind::Declared) => &mut self.declared,
            Some(VerdictKind::NotGoverned) => &mut self.not_governed,
            Some(VerdictKind::Violation) => &mut self.violation,
            None => &mut self.unknown,
        };
        *slot += flows;
    }
}

/// One aggregated edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupEdge {
    /// The client group.
    pub src: String,
    /// The server group.
    pub dst: String,
    /// The server port.
    pub port: u16,
    /// The protocol.
    #[serde(rename = "proto")]
    pub protocol: Protocol,
    /// Flows, summed.
    pub flows: u64,
    /// Bytes, summed.
    pub bytes: u64,
    /// Earliest first seen.
    pub first_seen_ns: u64,
    /// Latest last seen.
    pub last_seen_ns: u64,
    /// Flows per verdict.
    pub verdicts: VerdictFlows,
    /// The worst verdict of the edges it sums (violation, then not
    /// governed, then declared).
    pub verdict: Option<VerdictKind>,
}

/// An aggregated graph.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Aggregated {
    /// The edges, in (src, dst, port, protocol) order.
    pub edges: Vec<GroupEdge>,
    /// Flows of the self-edges left out.
    pub self_edge_flows: u64,
}

impl Aggregated {
    /// Flows of the edges kept.
    pub fn total_flows(&self) -> u64 {
        self.edges.iter().map(|edge| edge.flows).sum()
    }
}

/// The group `endpoint` falls in at `granularity`.
pub fn group_of(endpoint: &EndpointInfo, granularity: &Granularity) -> String {
    let Some(identity) = &endpoint.identity else {
        return endpoint
            .fqdn
            .clone()
            .unwrap_or_else(|| endpoint.ip.to_string());
    };
    let (ObjectKind::Pod | ObjectKind::Service, Some(namespace)) =
        (identity.kind, identity.namespace.as_deref())
    else {
        return identity.display.to_string();
    };
    match granularity {
        Granularity::Workload => match &identity.workload {
            Some(workload) => workload.to_string(),
            None => format!("{namespace}/{}/{}", identity.kind, identity.name),
        },
        Granularity::Namespace => namespace.to_owned(),
        Granularity::NamespaceLabel(label) => match identity.labels.get(label) {
            Some(value) => format!("{namespace}/{value}"),
            None => namespace.to_owned(),
        },
    }
}

/// Projects `graph` (see the module docs).
pub fn aggregate(graph: &ServiceGraph, options: &AggregateOptions) -> Aggregated {
    let mut groups: BTreeMap<(String, String, u16, Protocol), GroupEdge> = BTreeMap::new();
    let mut self_edge_flows = 0;
    for edge in graph.edges() {
        let src = group_of(edge.src, &options.granularity);
        let dst = group_of(edge.dst, &options.granularity);
        if options.drop_self_edges && src == dst {
            self_edge_flows += edge.flows;
            continue;
        }
        let verdict = edge.verdict.map(|v| v.verdict);
        let group = groups
            .entry((src.clone(), dst.clone(), edge.port, edge.protocol))
            .or_insert_with(|| GroupEdge {
                src,
                dst,
                port: edge.port,
                protocol: edge.protocol,
                flows: 0,
                bytes: 0,
                first_seen_ns: edge.first_seen_ns,
                last_seen_ns: edge.last_seen_ns,
                verdicts: VerdictFlows::default(),
                verdict: None,
            });
        group.flows += edge.flows;
        group.bytes += edge.bytes;
        group.first_seen_ns = group.first_seen_ns.min(edge.first_seen_ns);
        group.last_seen_ns = group.last_seen_ns.max(edge.last_seen_ns);
        group.verdicts.add(verdict, edge.flows);
        group.verdict = group.verdict.max(verdict);
    }
    Aggregated {
        edges: groups.into_values().collect(),
        self_edge_flows,
    }
}
