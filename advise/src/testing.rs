//! (feature `testing`) A week of a cluster's egress, shaped like a real
//! one, for tests and the README's walk-through: one `edgewise.graph/v1`
//! file per day, the Kubernetes objects behind them, every flow as a flow
//! line for `edgewise edges`, and a prefixes file with the CDN's range.
//! `edgewise-benches`' `make-week DIR` writes it.
//!
//! The cluster (8 days from 2026-11-02, UTC):
//! - `kube-system/coredns` (pods `k8s-app=kube-dns`): every source's DNS;
//! - `pilot`: DNS and one outside API;
//! - `team-01` .. `team-24` ([`week_of`] takes another number): DNS, a
//!   shared database or cache, one or two outside APIs;
//! - `data`, `cache`: DNS, each other or a metrics gateway, storage;
//! - `analytics`, `ingest`, `search`: a dozen outside addresses behind
//!   four names each;
//! - `media`: two names under `cdn.example.net` whose addresses change
//!   every day;
//! - `torrent`: 140 outside addresses without names, five more each day;
//! - `billing`: an API and the database, and a weekly CronJob whose pod
//!   first runs on day 6 and reaches `sftp.bank.example`.

#![expect(
    clippy::cast_possible_truncation,
    reason = "synthetic addresses and ports are small counters' low bits on purpose"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use edgewise_edge_set::render::graph_json;
use edgewise_edge_set::time::UnixNanos;
use edgewise_edge_set::{Attach, EdgeKey, GraphConfig, ObservedGraph, ServiceGraph};
use edgewise_ip_index::{ClusterObject, IpIndex, Lookup, Protocol};

/// The first day, 2026-11-02 00:00 UTC, in Unix nanoseconds.
pub const FIRST_DAY_NS: u64 = 1_793_577_600 * 1_000_000_000;
/// Days generated.
pub const DAYS: u64 = 8;
const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// One workload's pod.
struct Pod {
    namespace: String,
    workload: String,
    kind: &'static str,
    labels: Vec<(String, String)>,
    ip: IpAddr,
    /// The first day (0-based) it runs.
    from_day: u64,
}

/// One daily flow: from a pod to an address, with the name the client
/// resolved.
struct Flow {
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    protocol: Protocol,
    fqdn: Option<String>,
}

struct Cluster {
    pods: Vec<Pod>,
}

impl Cluster {
    fn pod(
        &mut self,
        namespace: &str,
        workload: &str,
        kind: &'static str,
        labels: &[(&str, &str)],
        from_day: u64,
    ) -> IpAddr {
        let n = self.pods.len();
        let ip = IpAddr::from([10, 42, (n / 200) as u8, (n % 200 + 10) as u8]);
        self.pods.push(Pod {
            namespace: namespace.to_owned(),
            workload: workload.to_owned(),
            kind,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ip,
            from_day,
        });
        ip
    }

    fn deployment(&mut self, namespace: &str, name: &str) -> IpAddr {
        self.pod(namespace, name, "Deployment", &[("app", name)], 0)
    }

    /// The objects as one Kubernetes `List` (pods and namespaces).
    fn objects(&self) -> String {
        let mut items = Vec::new();
        let namespaces: BTreeSet<&str> = self.pods.iter().map(|p| p.namespace.as_str()).collect();
        for namespace in namespaces {
            items.push(serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {"kubernetes.io/metadata.name": namespace}}}));
        }
        for (n, pod) in self.pods.iter().enumerate() {
            let mut labels: BTreeMap<String, String> = pod.labels.iter().cloned().collect();
            let (name, owner) = match pod.kind {
                "Deployment" => {
                    labels.insert("pod-template-hash".to_owned(), "5d8f7c9b4".to_owned());
                    (
                        format!("{}-5d8f7c9b4-{n:05}", pod.workload),
                        serde_json::json!({"kind": "ReplicaSet", "name": format!("{}-5d8f7c9b4", pod.workload), "controller": true}),
                    )
                }
                _ => (
                    format!("{}-29372160-{n:05}", pod.workload),
                    serde_json::json!({"kind": "Job", "name": format!("{}-29372160", pod.workload), "controller": true}),
                ),
            };
            items.push(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": pod.namespace, "uid": format!("uid-{n}"),
                             "labels": labels, "ownerReferences": [owner]},
                "status": {"phase": "Running", "podIP": pod.ip.to_string()}}));
        }
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        let mut text = serde_json::to_string_pretty(&list).unwrap_or_default();
        text.push('\n');
        text
    }
}

struct Names<'a> {
    index: edgewise_ip_index::Snapshot<'a>,
    names: &'a BTreeMap<IpAddr, String>,
}

impl Attach for Names<'_> {
    fn identity(&mut self, ip: IpAddr) -> Option<Arc<ClusterObject>> {
        match self.index.lookup(ip) {
            Lookup::Object(object) => Some(Arc::clone(object)),
            _ => None,
        }
    }

    fn fqdn(&mut self, ip: IpAddr) -> Option<String> {
        self.names.get(&ip).cloned()
    }
}

fn tcp(src: IpAddr, dst: IpAddr, port: u16, fqdn: Option<&str>) -> Flow {
    Flow {
        src,
        dst,
        port,
        protocol: Protocol::Tcp,
        fqdn: fqdn.map(str::to_owned),
    }
}

/// The flows of day `day` (0-based).
#[expect(clippy::too_many_lines, reason = "the whole cluster, written out once")]
fn flows(cluster: &Cluster, day: u64, teams: u32) -> Vec<Flow> {
    let mut out = Vec::new();
    let dns = [cluster.pods[0].ip, cluster.pods[1].ip];
    let find = |cluster: &Cluster, namespace: &str, workload: &str| {
        cluster
            .pods
            .iter()
            .find(|p| p.namespace == namespace && p.workload == workload)
            .map(|p| p.ip)
            .expect("a pod of the cluster")
    };
    let postgres = find(cluster, "data", "postgres");
    let redis = find(cluster, "cache", "redis");
    let pushgateway = find(cluster, "metrics", "pushgateway");
    let external = |name: &str, last: u8| (name.to_owned(), IpAddr::from([198, 51, 100, last]));
    // Every pod that runs today looks names up.
    for (n, pod) in cluster.pods.iter().enumerate() {
        if pod.from_day > day || pod.namespace == "kube-system" || pod.namespace == "metrics" {
            continue;
        }
        out.push(Flow {
            src: pod.ip,
            dst: dns[n % 2],
            port: 53,
            protocol: Protocol::Udp,
            fqdn: None,
        });
    }
    let pilot = find(cluster, "pilot", "notifier");
    let (name, addr) = external("api.push.example", 10);
    out.push(tcp(pilot, addr, 443, Some(&name)));
    for team in 1..=teams {
        let src = find(cluster, &format!("team-{team:02}"), "app");
        if team <= teams / 2 {
            out.push(tcp(src, postgres, 5432, None));
        } else {
            out.push(tcp(src, redis, 6379, None));
        }
        let (name, addr) = external("api.stripe.example", 20);
        out.push(tcp(src, addr, 443, Some(&name)));
        if team % 3 == 0 {
            let (name, addr) = external("hooks.slack.example", 21);
            out.push(tcp(src, addr, 443, Some(&name)));
        }
    }
    let data = find(cluster, "data", "postgres");
    out.push(tcp(data, pushgateway, 9091, None));
    let (name, addr) = external("s3.storage.example", 30);
    out.push(tcp(data, addr, 443, Some(&name)));
    let cache = find(cluster, "cache", "redis");
    out.push(tcp(cache, pushgateway, 9091, None));
    out.push(tcp(cache, postgres, 5432, None));
    for (n, namespace) in ["analytics", "ingest", "search"].into_iter().enumerate() {
        let src = find(cluster, namespace, "worker");
        for (k, vendor) in ["events", "geo", "auth", "index"].into_iter().enumerate() {
            let name = format!("{vendor}.{namespace}-vendor.example");
            for a in 0..3u8 {
                let addr = IpAddr::from([192, 0, 2, (n * 40 + k * 8) as u8 + a * 2]);
                out.push(tcp(src, addr, 443, Some(&name)));
            }
        }
    }
    let media = find(cluster, "media", "thumbnailer");
    let d = day as u8;
    out.push(tcp(
        media,
        IpAddr::from([203, 0, 113, 10 + d * 3]),
        443,
        Some("assets.cdn.example.net"),
    ));
    out.push(tcp(
        media,
        IpAddr::from([203, 0, 113, 100 + d * 5]),
        443,
        Some("img.cdn.example.net"),
    ));
    let torrent = find(cluster, "torrent", "peer");
    for peer in 0..(140 + 5 * day) {
        // Scattered over the benchmarking range and the documentation
        // prefix: no two neighbours, so no CIDR groups them.
        let addr = if peer % 4 == 0 {
            IpAddr::from([
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                peer as u16,
                0x0100 + (peer * 7) as u16,
            ])
        } else {
            IpAddr::from([
                198,
                18 + (peer % 2) as u8,
                (peer * 13 % 256) as u8,
                (peer * 37 % 251) as u8 + 1,
            ])
        };
        out.push(Flow {
            src: torrent,
            dst: addr,
            port: 6881 + (peer % 5) as u16,
            protocol: if peer % 3 == 0 {
                Protocol::Udp
            } else {
                Protocol::Tcp
            },
            fqdn: None,
        });
    }
    let billing = find(cluster, "billing", "api");
    out.push(tcp(billing, postgres, 5432, None));
    let (name, addr) = external("api.stripe.example", 20);
    out.push(tcp(billing, addr, 443, Some(&name)));
    if day >= 5 {
        let export = find(cluster, "billing", "invoice-export");
        let (name, addr) = external("sftp.bank.example", 40);
        out.push(tcp(export, addr, 22, Some(&name)));
    }
    out
}

fn cluster(teams: u32) -> Cluster {
    let mut c = Cluster { pods: Vec::new() };
    c.pod(
        "kube-system",
        "coredns",
        "Deployment",
        &[("k8s-app", "kube-dns")],
        0,
    );
    c.pod(
        "kube-system",
        "coredns",
        "Deployment",
        &[("k8s-app", "kube-dns")],
        0,
    );
    c.deployment("metrics", "pushgateway");
    c.deployment("pilot", "notifier");
    for team in 1..=teams {
        c.deployment(&format!("team-{team:02}"), "app");
    }
    c.deployment("data", "postgres");
    c.deployment("cache", "redis");
    for namespace in ["analytics", "ingest", "search"] {
        c.deployment(namespace, "worker");
    }
    c.deployment("media", "thumbnailer");
    c.deployment("torrent", "peer");
    c.deployment("billing", "api");
    c.pod(
        "billing",
        "invoice-export",
        "CronJob",
        &[("app", "invoice-export")],
        5,
    );
    c
}

/// The files of the week: name and content.
pub fn week() -> Vec<(String, Vec<u8>)> {
    week_of(24)
}

/// The week with `teams` small namespaces instead of 24 (for
/// measurements at scale).
///
/// # Panics
/// Never on the generated objects (they are known to load).
pub fn week_of(teams: u32) -> Vec<(String, Vec<u8>)> {
    let cluster = cluster(teams);
    let objects = cluster.objects();
    let mut index = IpIndex::default();
    let loaded = index.load(objects.as_bytes());
    assert_eq!(loaded.errors, [], "the generated objects load");
    let mut files = vec![("objects.json".to_owned(), objects.into_bytes())];
    let mut all_flows = BTreeSet::new();
    for day in 0..DAYS {
        let start = FIRST_DAY_NS + day * DAY_NS;
        let mut graph = ObservedGraph::new(
            {
                let mut graph_config = GraphConfig::default();
                graph_config.max_edges = usize::MAX;
                graph_config.idle_ttl_ns = u64::MAX / 4;
                graph_config
            },
            UnixNanos::from_nanos(start),
        );
        let mut names = BTreeMap::new();
        let flows = flows(&cluster, day, teams);
        for (n, flow) in flows.iter().enumerate() {
            let edge = EdgeKey {
                src: flow.src,
                dst: flow.dst,
                port: flow.port,
                protocol: flow.protocol,
            };
            // Seen in the morning and again in the afternoon.
            let at = start + 8 * 3_600 * 1_000_000_000 + n as u64 * 1_000_000_000;
            graph.record(edge, 3, 1_200, UnixNanos::from_nanos(at));
            graph.record(
                edge,
                2,
                800,
                UnixNanos::from_nanos(at + 6 * 3_600 * 1_000_000_000),
            );
            if let Some(fqdn) = &flow.fqdn {
                names.insert(flow.dst, fqdn.clone());
            }
            all_flows.insert((flow.src, flow.dst, flow.port, flow.protocol.as_str()));
        }
        let mut attach = Names {
            index: index.snapshot(),
            names: &names,
        };
        let slice = graph.drain(
            "node-a",
            UnixNanos::from_nanos(start + DAY_NS - 1),
            &mut attach,
            None,
        );
        let json = graph_json(&ServiceGraph::from_slice(&slice));
        let mut text = serde_json::to_string(&json).unwrap_or_default();
        text.push('\n');
        files.push((format!("day-{}.json", day + 1), text.into_bytes()));
    }
    let mut lines = String::new();
    for (src, dst, port, proto) in all_flows {
        let _ = writeln!(
            lines,
            r#"{{"src": "{src}", "dst": "{dst}", "port": {port}, "proto": "{proto}"}}"#
        );
    }
    files.push(("flows.jsonl".to_owned(), lines.into_bytes()));
    files.push((
        "prefixes.json".to_owned(),
        b"[{\"prefix\": \"203.0.113.0/24\", \"name\": \"example-cdn\"}]\n".to_vec(),
    ));
    files
}
