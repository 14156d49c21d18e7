//! Watches a cluster as the daemon does (list, then watch: pods, services,
//! EndpointSlices, nodes, namespaces, NetworkPolicies) and, once every kind
//! is listed, prints who owns each address.
//!
//! ```sh
//! # the cluster kubectl uses (KUBECONFIG, ~/.kube/config, or in-cluster)
//! cargo run -p edgewise-k8s --example watch_cluster
//! cargo run -p edgewise-k8s --example watch_cluster -- --kubeconfig ~/.kube/other
//! # no cluster: the objects of a kubectl JSON dump, served on loopback by
//! # this crate's fake API server (feature `testing`), watched the same way
//! cargo run -p edgewise-k8s --example watch_cluster -- --fake demo/cluster/objects.json
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use edgewise_ip_index::IpIndex;
use edgewise_k8s::testing::FakeApiServer;
use edgewise_k8s::{ClusterWatch, Synced};

/// The kinds the watchers follow (and the fake serves).
const WATCHED: [&str; 6] = [
    "Pod",
    "Service",
    "EndpointSlice",
    "Node",
    "Namespace",
    "NetworkPolicy",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut kubeconfig, mut fake) = (None, None);
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {}
        ["--kubeconfig", path] => kubeconfig = Some(PathBuf::from(path)),
        ["--fake", objects] => fake = Some(PathBuf::from(objects)),
        _ => {
            eprintln!("usage: watch_cluster [--kubeconfig FILE | --fake OBJECTS.json]");
            return ExitCode::from(2);
        }
    }
    // Kept alive while the watch runs.
    let mut fake_server = None;
    if let Some(objects) = fake {
        let server = match serve(&objects) {
            Ok(server) => server,
            Err(why) => {
                eprintln!("{}: {why}", objects.display());
                return ExitCode::FAILURE;
            }
        };
        let path = std::env::temp_dir().join(format!("watch-cluster-{}", std::process::id()));
        server.write_kubeconfig(&path);
        kubeconfig = Some(path);
        fake_server = Some(server);
    }

    let started = ClusterWatch::start(kubeconfig.as_deref());
    if fake_server.is_some()
        && let Some(path) = &kubeconfig
    {
        // The watch has read it.
        let _ = std::fs::remove_file(path);
    }
    let watch = match started {
        Ok(watch) => watch,
        Err(e) => {
            eprintln!("no cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    match watch.wait_synced(Duration::from_secs(30), 5) {
        Synced::Listed => {}
        Synced::TimedOut => {
            eprintln!("not every kind was listed within 30 s");
            return ExitCode::FAILURE;
        }
        Synced::Failing(errors) => {
            eprintln!("the API server failed {errors} times (see RUST_LOG=debug)");
            return ExitCode::FAILURE;
        }
    }
    // What the watchers hold, as one Kubernetes JSON list: the form
    // ip-index (and edge-set, for the policies) read.
    let (objects, _version) = watch.everything();
    let mut index = IpIndex::default();
    let report = index.load(&objects);
    for error in &report.errors {
        eprintln!("{error}");
    }
    let snapshot = index.snapshot();
    let mut owners: Vec<_> = snapshot
        .objects()
        .map(|(ip, object)| (ip, object.display.clone()))
        .collect();
    owners.sort();
    for (ip, display) in &owners {
        println!("{ip} {display}");
    }
    eprintln!(
        "{} addresses; relisted {} times",
        owners.len(),
        watch.relists()
    );
    ExitCode::SUCCESS
}

/// A fake API server holding the watched objects of a JSON file (a list,
/// or one object).
fn serve(path: &std::path::Path) -> Result<FakeApiServer, String> {
    let text = std::fs::read(path).map_err(|e| e.to_string())?;
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    let items = match value.get("items").and_then(|items| items.as_array()) {
        Some(items) => items.clone(),
        None => vec![value],
    };
    let server = FakeApiServer::start();
    for item in items {
        if WATCHED.contains(&item["kind"].as_str().unwrap_or("")) {
            server.apply(item);
        }
    }
    Ok(server)
}
