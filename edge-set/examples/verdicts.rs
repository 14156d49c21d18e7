//! A verdict for each flow: the cluster's objects and NetworkPolicies in,
//! flows (`SRC_IP DST_IP PORT`, one per argument triple) recorded into the
//! observed graph, then drained with identities and verdicts.
//!
//! ```sh
//! kubectl get pods,services,namespaces -A -o json > objects.json
//! kubectl get networkpolicies -A -o json > policies.json
//! cargo run -p edgewise-edge-set --example verdicts -- objects.json policies.json \
//!     10.42.1.17 10.42.1.159 8086
//! ```

use std::process::ExitCode;
use std::time::SystemTime;

use edgewise_edge_set::ip_index::{IpIndex, Protocol};
use edgewise_edge_set::time::UnixNanos;
use edgewise_edge_set::{DeclaredPolicies, EdgeKey, EndpointInfo, GraphConfig, ObservedGraph};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 || !(args.len() - 2).is_multiple_of(3) {
        eprintln!("usage: verdicts OBJECTS.json POLICIES.json (SRC_IP DST_IP PORT)...");
        return ExitCode::from(2);
    }
    let read = |path: &str| std::fs::read(path).map_err(|e| format!("{path}: {e}"));
    let (objects, policies) = match (read(&args[0]), read(&args[1])) {
        (Ok(objects), Ok(policies)) => (objects, policies),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut index = IpIndex::default();
    for error in index.load(&objects).errors {
        eprintln!("{}: {error}", args[0]);
    }
    // NetworkPolicies (and the Namespaces their selectors need) compiled once.
    let mut declared = DeclaredPolicies::default();
    declared.load(&objects);
    for error in declared.load(&policies).errors {
        eprintln!("{}: {error}", args[1]);
    }
    let policies = declared.compile();

    // The hot path records raw addresses; identities come at the drain.
    // Time is passed in; the graph reads no clock.
    let now = UnixNanos::from_system_time(SystemTime::now());
    let mut graph = ObservedGraph::new(GraphConfig::default(), now);
    for flow in args[2..].chunks(3) {
        let (Ok(src), Ok(dst), Ok(port)) = (flow[0].parse(), flow[1].parse(), flow[2].parse())
        else {
            eprintln!("not a flow: {}", flow.join(" "));
            return ExitCode::FAILURE;
        };
        let edge = EdgeKey {
            src,
            dst,
            port,
            protocol: Protocol::Tcp,
        };
        graph.record(edge, 1, 0, now);
    }
    let slice = graph.drain("example", now, &mut index.snapshot(), Some(&policies));
    let name = |end: &EndpointInfo| {
        end.identity
            .as_ref()
            .map_or_else(|| end.ip.to_string(), ToString::to_string)
    };
    for edge in &slice.edges {
        let (verdict, policy) = edge.verdict.as_ref().map_or(("none", None), |v| {
            (v.verdict.as_str(), v.policy.as_deref())
        });
        println!(
            "{} -> {}:{} {verdict}{}",
            name(&edge.src),
            name(&edge.dst),
            edge.port,
            policy.map(|p| format!(" ({p})")).unwrap_or_default()
        );
    }
    ExitCode::SUCCESS
}
