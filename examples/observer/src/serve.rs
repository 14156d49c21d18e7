//! `edgewise identity serve`: one producer for every agent. It reads the
//! cluster (the watch, `--kubeconfig` / `--kube`) and any objects,
//! policies and allow-list files, and serves identities and declared edges
//! as baselines plus delta streams (`edgewise-identity`'s
//! [`IdentityServer`]).
//!
//! Every tick (`interval`):
//! - the cluster's changes since the last tick are applied to the
//!   producer's index one by one (the watch's journal); a relist, or a
//!   tick further behind than the journal, rebuilds the index from
//!   everything; files are read again only when they change;
//! - the identities are diffed into one delta, and the policy documents
//!   (NetworkPolicies, Namespaces, allow-lists) into another, each
//!   published when anything changed.
//!
//! Input that cannot be used (a file that does not parse, an allow-list
//! with a wrong line) is reported and the last good state is kept: nothing
//! is published from it. The epoch is given at start (the start time by
//! default), so a restarted server makes every follower resync.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use edgewise_identity::http::{FollowConfig, IdentityServer, ServerConfig, TlsFiles};
use edgewise_identity::{PolicyDocument, PolicyProducer, Producer};
use edgewise_ip_index::IpIndex;
use edgewise_k8s::{Changes, ClusterWatch, Kind};
use serde_json::json;

use crate::daemon::InputFiles;
use crate::declared::{compile, document_of, documents_of_files};
use crate::edges::EdgesError;
use crate::identity::IdentityCommandError;
use crate::resolve::load_index;

/// TLS and bearer tokens of a listener (`identity serve`, `collect`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ListenerArgs {
    /// Serve TLS with this certificate chain (PEM; read again when it
    /// changes). Needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Ask every client for a certificate signed by one of these CAs
    /// (PEM): mutual TLS. Needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Accept only requests with one of these bearer tokens (one per
    /// line; read again when the file changes). /healthz and /metrics stay
    /// open.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

impl ListenerArgs {
    /// The TLS files, when a certificate and key are given.
    pub fn tls(&self) -> Option<TlsFiles> {
        self.tls_cert
            .clone()
            .zip(self.tls_key.clone())
            .map(|(cert, key)| TlsFiles {
                cert,
                key,
                client_ca: self.client_ca.clone(),
            })
    }
}

/// The listener settings of `edgewise identity serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// TLS and bearer tokens.
    #[command(flatten)]
    pub listener: ListenerArgs,
    /// Streams open at once; one more gets 503.
    #[arg(long, default_value_t = 4096)]
    pub max_followers: usize,
    /// A follower further behind than this many deltas is cut and resyncs
    /// from a baseline.
    #[arg(long, default_value_t = 256)]
    pub max_lag: usize,
    /// Threads serving connections.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

impl ServerArgs {
    /// The server's settings.
    pub fn config(&self) -> ServerConfig {
        let mut server_config = ServerConfig::default();
        server_config.tls = self.listener.tls();
        server_config.tokens.clone_from(&self.listener.token_file);
        server_config.max_followers = self.max_followers.max(1);
        server_config.max_lag = self.max_lag.max(1);
        server_config.workers = self.workers.max(1);
        server_config
    }
}

/// How a follower reaches a server (`edgewise identity follow`; the
/// daemon's `identity_stream_*` settings are the same).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientArgs {
    /// CA certificates (PEM) the server's certificate must chain to
    /// (needed for https://).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// A client certificate chain (PEM), for mutual TLS. Needs --key.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// A file holding the bearer token (read again at each reconnect).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

impl ClientArgs {
    /// The follower's settings for the server at `url`.
    pub fn config(&self, url: &str) -> FollowConfig {
        let mut follow_config = FollowConfig::new(url);
        follow_config.ca.clone_from(&self.ca);
        follow_config.client_cert = self.cert.clone().zip(self.key.clone());
        follow_config.token_file.clone_from(&self.token_file);
        follow_config
    }
}

/// What `edgewise identity serve` serves, and how.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Kubernetes JSON files (pods, services, nodes, namespaces).
    pub objects: Vec<PathBuf>,
    /// NetworkPolicy JSON files.
    pub policies: Vec<PathBuf>,
    /// Allow-list files.
    pub allow_lists: Vec<PathBuf>,
    /// The address to listen on.
    pub listen: String,
    /// The producer epoch.
    pub epoch: u64,
    /// How often changes are looked for and published.
    pub interval: Duration,
    /// The server's settings (TLS, tokens, caps).
    pub server: ServerConfig,
}

/// The producer's inputs and the state it keeps between ticks.
struct Sources<'a> {
    options: &'a ServeOptions,
    cluster: Option<&'a ClusterWatch>,
    files: InputFiles,
    seen: Option<u64>,
    index: IpIndex,
    first: bool,
    /// The last rebuild failed (a file that cannot be used).
    failed: bool,
}

/// What a tick found.
struct Tick {
    /// The policy documents may have changed.
    policies: bool,
}

impl Sources<'_> {
    /// Brings the index up to date (see the module docs).
    fn tick(&mut self) -> Result<Tick, EdgesError> {
        let files_changed = std::mem::take(&mut self.first) || self.files.changed();
        let changes = self
            .cluster
            .map_or(Changes::Nothing, |cluster| cluster.changes(&mut self.seen));
        // After a file failed, the cluster's changes were not applied: the
        // index is rebuilt from everything at the next change of either
        // (not at every tick, which would only repeat the failure).
        let retry = self.failed && changes != Changes::Nothing;
        if files_changed || retry || changes == Changes::Everything {
            self.failed = true;
            let mut index = load_index(&self.options.objects)?;
            if let Some(cluster) = self.cluster {
                let (everything, version) = cluster.everything();
                let _ = index.load(&everything);
                self.seen = Some(version);
            }
            self.index = index;
            self.failed = false;
            return Ok(Tick { policies: true });
        }
        let Changes::Since(changes) = changes else {
            return Ok(Tick { policies: false });
        };
        let mut events = Vec::new();
        let mut policies = false;
        for change in &changes {
            policies |= matches!(change.kind, Kind::NetworkPolicy | Kind::Namespace);
            let kind = if change.deleted {
                "DELETED"
            } else {
                "MODIFIED"
            };
            let event = json!({"type": kind, "object": &*change.object});
            let _ = serde_json::to_writer(&mut events, &event);
            events.push(b'\n');
        }
        let _ = self.index.load(&events);
        Ok(Tick { policies })
    }

    /// Every policy document now.
    fn documents(&self) -> Result<Vec<PolicyDocument>, EdgesError> {
        let options = self.options;
        let kube_files: Vec<PathBuf> = options
            .objects
            .iter()
            .chain(&options.policies)
            .cloned()
            .collect();
        let mut documents = documents_of_files(&kube_files, &options.allow_lists)?;
        if let Some(cluster) = self.cluster {
            for kind in [Kind::Namespace, Kind::NetworkPolicy] {
                documents.extend(
                    cluster
                        .objects(kind)
                        .iter()
                        .filter_map(|object| document_of(object)),
                );
            }
        }
        // What the agents would compile must compile here first.
        compile(documents.clone())?;
        Ok(documents)
    }
}

/// Serves until `stop` is set (see the module docs). `on_listen` is told
/// the server once bound; input that cannot be used goes to `on_error`.
///
/// # Errors
/// [`IdentityCommandError`] when the first load fails, the address cannot
/// be bound, the token or TLS files cannot be used, or the listener dies.
pub fn serve(
    options: &ServeOptions,
    cluster: Option<&ClusterWatch>,
    stop: &AtomicBool,
    on_listen: impl FnOnce(&IdentityServer),
    mut on_error: impl FnMut(&EdgesError),
) -> Result<(), IdentityCommandError> {
    let mut sources = Sources {
        options,
        cluster,
        files: InputFiles::of(
            options
                .objects
                .iter()
                .chain(&options.policies)
                .chain(&options.allow_lists)
                .cloned()
                .collect(),
        ),
        seen: None,
        index: IpIndex::default(),
        first: true,
        failed: false,
    };
    let mut producer = Producer::new(options.epoch);
    let mut policy_producer = PolicyProducer::new(options.epoch);
    sources.tick().map_err(IdentityCommandError::Inputs)?;
    producer.update_from_index(&sources.index.snapshot());
    policy_producer.update(sources.documents().map_err(IdentityCommandError::Inputs)?);
    let server = IdentityServer::bind(
        &options.listen,
        &producer.baseline(),
        policy_producer.baseline(),
        options.server.clone(),
    )
    .map_err(IdentityCommandError::Serve)?;
    on_listen(&server);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(options.interval);
        if server.failed() {
            return Err(IdentityCommandError::Listener(server.local_addr()));
        }
        let tick = match sources.tick() {
            Ok(tick) => tick,
            Err(error) => {
                on_error(&error);
                continue;
            }
        };
        if let Some(delta) = producer.update_from_index(&sources.index.snapshot()) {
            server.publish(&delta);
        }
        if tick.policies {
            match sources.documents() {
                Ok(documents) => {
                    if let Some(delta) = policy_producer.update(documents) {
                        server.publish_policies(&delta, policy_producer.baseline());
                    }
                }
                Err(error) => on_error(&error),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn pod(ip: &str) -> String {
        format!(
            r#"{{"kind": "Pod", "metadata": {{"name": "a", "namespace": "shop", "uid": "1"}},
                "status": {{"phase": "Running", "podIP": "{ip}"}}}}"#
        )
    }

    /// The identity channel's seq, from `/metrics`.
    fn seq(address: std::net::SocketAddr) -> u64 {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut page = String::new();
        let _ = stream.read_to_string(&mut page);
        page.lines()
            .find(|l| l.starts_with("edgewise_stream_seq{channel=\"identities\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap()
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "waited for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_file_that_breaks_keeps_the_last_state_is_said_once_and_a_fix_is_published() {
        let dir = std::env::temp_dir().join(format!("edgewise-serve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let objects = dir.join("objects.json");
        std::fs::write(&objects, pod("10.0.0.1")).unwrap();
        let options = ServeOptions {
            objects: vec![objects.clone()],
            policies: Vec::new(),
            allow_lists: Vec::new(),
            listen: "127.0.0.1:0".to_owned(),
            epoch: 3,
            interval: Duration::from_millis(20),
            server: ServerConfig::default(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(AtomicUsize::new(0));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let serving = {
            let (stop, errors) = (Arc::clone(&stop), Arc::clone(&errors));
            std::thread::spawn(move || {
                serve(
                    &options,
                    None,
                    &stop,
                    |server| address_tx.send(server.local_addr()).unwrap(),
                    |_| {
                        errors.fetch_add(1, Ordering::Relaxed);
                    },
                )
            })
        };
        let address = address_rx.recv().unwrap();
        assert_eq!(seq(address), 1, "the first state");

        std::fs::write(&objects, "{\"kind\": \"Pod\", \"metadata\": 7}").unwrap();
        wait_until("the error", || errors.load(Ordering::Relaxed) == 1);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            errors.load(Ordering::Relaxed),
            1,
            "said once, not every tick"
        );
        assert_eq!(seq(address), 1, "nothing published from a broken file");

        std::fs::write(&objects, pod("10.0.0.2")).unwrap();
        wait_until("the fix", || seq(address) == 2);
        stop.store(true, Ordering::Relaxed);
        serving.join().unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
