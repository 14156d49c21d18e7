//! `edgewise`: the reference observer's command-line entry point.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use edgewise_edge_set::AggregateOptions;
use edgewise_observer::CommandError;
use edgewise_observer::cluster::{ClusterArgs, ClusterFile};
use edgewise_observer::daemon::config::{Settings, init_logs};
use edgewise_observer::dns::write_dns;
use edgewise_observer::edges::{EdgesInput, load, parse_granularity, write_edges, write_graph};
use edgewise_observer::fingerprints::write_fingerprints;
use edgewise_observer::resolve::{load_index, resolve_peers};

/// Identity-aware east-west and egress network observer.
#[derive(Parser)]
#[command(name = "edgewise", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Observe live (needs root): the kernel observers on the configured
    /// interfaces, identities, DNS names, fingerprints, policy verdicts and
    /// rules; JSON lines out (edge, rule, dns, secret reads, stats), the
    /// graph on exit, bans into the kernel. Runs until SIGINT or SIGTERM.
    Run(Settings),
    /// Replay a pcap or pcapng file through the same pipeline (no root,
    /// nothing enforced); with no file, the bundled demo (a capture of real
    /// traffic with its Kubernetes objects, policies and rules). Ends with a
    /// summary table on standard error.
    Replay {
        /// The capture file (`-` for standard input); none: the demo.
        file: Option<PathBuf>,
        #[command(flatten)]
        settings: Settings,
    },
    /// Print JA4T / JA4TS fingerprints of a pcap or pcapng file, and JA4 /
    /// JA4S of the TLS hellos that begin its flows, one JSON object per
    /// line: {"frame", "kind", "fingerprint", "src", "dst"}, plus "sni" and
    /// "alpn" for a hello that has them.
    Fingerprints {
        /// The capture file (`-` for standard input).
        file: PathBuf,
    },
    /// Say what each server of a pcap or pcapng file is, with nmap's
    /// service database, from the first payloads of its TCP
    /// conversations (or, with --probe, by probing the servers given):
    /// one JSON object per server address and port,
    /// {"server", "proto", "conversations", "service", "product",
    /// "version", "info", "hostname", "os", "device", "cpes", "soft",
    /// "probe", "line", "from"}.
    Services {
        /// The capture file (`-` for standard input); none with --probe.
        #[arg(required_unless_present = "probe", conflicts_with = "probe")]
        file: Option<PathBuf>,
        /// nmap's service database (`nmap-service-probes`; Debian's
        /// `nmap` package installs it at the default path).
        #[arg(long, default_value = edgewise_observer::services::DEBIAN_SERVICE_PROBES)]
        service_probes: PathBuf,
        /// Probe these TCP servers now (`ADDR:PORT`, repeatable), as the
        /// daemon's prober does, instead of reading a capture: one line
        /// each, `"from": "probe"`.
        #[arg(long, value_name = "ADDR:PORT")]
        probe: Vec<std::net::SocketAddr>,
        /// nmap's version intensity for --probe, 0 to 9.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u8).range(0..=9))]
        intensity: u8,
    },
    /// Print every DNS response of a pcap or pcapng file (UDP and TCP, port
    /// 53), one JSON object per message: {"frame", "transport", "id",
    /// "rcode", "truncated", "question", "answers", "resolved"}, or
    /// {"frame", "transport", "error"} for a malformed message.
    Dns {
        /// The capture file (`-` for standard input).
        file: PathBuf,
    },
    /// Resolve peers such as `10.42.1.159:8086` or `[fd00::5]:443` to the
    /// pod, service or node that owns the address, from Kubernetes objects:
    /// `analytics/influxdb-0:8086 (10.42.1.159)`. Prints one line per peer,
    /// in order; unknown addresses and anything that is not `ip:port` stay
    /// as given.
    Resolve {
        /// Kubernetes JSON (`kubectl get pods,services,nodes -A -o json`,
        /// single objects or watch events); repeat for several files.
        #[arg(long = "objects", required_unless_present_any = ["kubeconfig", "kube"])]
        objects: Vec<PathBuf>,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Treat every peer as an internet peer (left as given).
        #[arg(long)]
        internet: bool,
        /// The peers.
        #[arg(required = true)]
        peers: Vec<String>,
    },
    #[expect(
        clippy::doc_markdown,
        reason = "clap prints this as --help text, where backticks would show"
    )]
    /// Give each flow a policy verdict: reads flow lines
    /// {"src": "ip", "dst": "ip", "port": N, "proto": "tcp"|"udp"} and
    /// prints one JSON line per flow with both identities and "verdict":
    /// "declared", "violation" or "not_governed" (and the deciding policy).
    Edges {
        /// Kubernetes JSON with the pods, services, nodes and namespaces;
        /// repeat for several files.
        #[arg(long = "objects", required_unless_present_any = ["kubeconfig", "kube"])]
        objects: Vec<PathBuf>,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// NetworkPolicy JSON (`kubectl get networkpolicies -A -o json`);
        /// repeat for several files.
        #[arg(long = "policies")]
        policies: Vec<PathBuf>,
        /// A hand-written allow-list (`<src> -> <dst> [port ...]` per line;
        /// see the README); repeat for several files.
        #[arg(long = "allow-list")]
        allow_lists: Vec<PathBuf>,
        /// The flows, one JSON object per line (`-` for standard input).
        #[arg(long)]
        flows: PathBuf,
        /// Also write graph.json, graph-GRANULARITY.json and graph.dot
        /// into this directory.
        #[arg(long = "graph-out")]
        graph_out: Option<PathBuf>,
        /// How the aggregated graph groups endpoints: workload, namespace,
        /// or namespace+LABEL (such as namespace+service-identity).
        #[arg(long, default_value = "workload", value_parser = parse_granularity)]
        granularity: edgewise_edge_set::Granularity,
        /// Keep edges from a group to itself in the aggregated graph.
        #[arg(long)]
        keep_self_edges: bool,
    },
    /// The identity baseline (MMDB) and lookups through the node agent's
    /// identity client.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// The trail's collector: agents (`run` or `replay` with --export)
    /// POST their slices to /slices; each is merged once into the store
    /// (Postgres, or SQLite on one machine). Also /metrics, /healthz and
    /// the web view of the trail (/ui, /graph, /graph/view).
    /// Runs until SIGINT or SIGTERM.
    Collect(edgewise_observer::trail::CollectArgs),
    /// Advise per-namespace egress allow-lists from the trail or graph
    /// files: a report (fan-out, baseline, rollout tier, confidence,
    /// CIDRs) and, for the tiers asked for, NetworkPolicy,
    /// CiliumNetworkPolicy, Calico and edgewise rules. `advise check`
    /// replays the history against candidate policies.
    #[command(args_conflicts_with_subcommands = true)]
    Advise {
        #[command(subcommand)]
        command: Option<AdviseCommand>,
        #[command(flatten)]
        args: Box<edgewise_observer::advise::AdviseArgs>,
    },
    /// Follow a running daemon's records (its /records stream) with
    /// filters, as `hubble observe` does: a compact line per record on a
    /// terminal, JSON lines otherwise. Without --follow, the last 20
    /// matching records it holds.
    Observe(Box<edgewise_observer::observe::ObserveArgs>),
    /// Serve the web view of graph files (`edgewise.graph/v1`, as
    /// --graph-out writes them) at /ui, with nothing else running; the
    /// files are read again when they change. Runs until SIGINT or
    /// SIGTERM.
    Ui(edgewise_observer::ui::UiArgs),
    /// Ask the trail: recipes and the daily digest.
    Trail {
        /// The store: `postgres://USER@HOST/DB` or `sqlite:PATH`.
        #[arg(long, global = true)]
        store: Option<edgewise_trail::StoreUrl>,
        #[command(subcommand)]
        command: TrailCommand,
    },
}

#[derive(Subcommand)]
enum AdviseCommand {
    /// What candidate NetworkPolicies would have denied of the history,
    /// per day; exits 3 when anything would have been.
    Check(edgewise_observer::advise::CheckArgs),
}

#[derive(Subcommand)]
enum TrailCommand {
    /// Run a recipe: an aligned table on a terminal, JSON lines otherwise.
    Query {
        /// JSON lines even on a terminal.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        recipe: edgewise_observer::trail::RecipeArgs,
    },
    /// What is new since a time (edges, violations, external
    /// destinations) and which agents went silent; markdown or JSON,
    /// optionally posted to a webhook.
    Digest(edgewise_observer::trail::DigestArgs),
    /// Load graph files (`edgewise.graph/v1`, one per day, say) into the
    /// trail as slices of one agent; loading them again merges nothing
    /// twice.
    Import {
        /// The agent the slices are told apart by.
        #[arg(long, default_value = "import")]
        agent: String,
        /// The graph files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum IdentityCommand {
    /// Build the identity MMDB of Kubernetes objects (one record per pod,
    /// service and node address; readable by any MaxMind DB reader).
    Build {
        /// Kubernetes JSON; repeat for several files.
        #[arg(long = "objects", required_unless_present_any = ["kubeconfig", "kube"])]
        objects: Vec<PathBuf>,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The MMDB to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
        /// The producer epoch stamped in the file (default: now, in Unix
        /// seconds).
        #[arg(long)]
        epoch: Option<u64>,
        /// The build time stamped in the file, in Unix seconds (default:
        /// now); fix it for byte-identical builds.
        #[arg(long)]
        build_time: Option<u64>,
    },
    /// Serve identities and declared edges to node agents: GET
    /// /identities/baseline (the MMDB), /identities/deltas, /policies/baseline
    /// and /policies/deltas (server-sent events streams), /healthz and
    /// /metrics. Follows the cluster (--kubeconfig or --kube) and any files
    /// given, publishing what changed every interval.
    Serve {
        /// Kubernetes JSON; repeat for several files.
        #[arg(long = "objects", required_unless_present_any = ["kubeconfig", "kube"])]
        objects: Vec<PathBuf>,
        /// NetworkPolicy JSON; repeat for several files.
        #[arg(long = "policies")]
        policies: Vec<PathBuf>,
        /// A hand-written allow-list; repeat for several files.
        #[arg(long = "allow-list")]
        allow_lists: Vec<PathBuf>,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The address to listen on (port 0 picks one; the address is
        /// printed on stderr).
        #[arg(long, default_value = "127.0.0.1:9470")]
        listen: String,
        /// The producer epoch (default: now, in Unix milliseconds, so that
        /// a restart always takes a greater one).
        #[arg(long)]
        epoch: Option<u64>,
        /// How often changes are looked for and published, in
        /// milliseconds.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        #[command(flatten)]
        server: edgewise_observer::serve::ServerArgs,
    },
    /// Follow a server's identity stream as a node agent does, printing
    /// each event (connected, baseline, delta, resync, disconnected) as a
    /// JSON line.
    Follow {
        /// The server's base URL (scheme, address and port).
        #[arg(long)]
        url: String,
        #[command(flatten)]
        client: edgewise_observer::serve::ClientArgs,
    },
    /// Look addresses up in an identity MMDB, after applying a file of
    /// delta lines if given; prints one JSON line per address:
    /// {"schema", "ip", "identity"}, the identity null when it has none.
    Lookup {
        /// The identity MMDB.
        #[arg(long)]
        mmdb: PathBuf,
        /// Delta lines to apply on top (JSON lines; `-` for standard input).
        #[arg(long)]
        deltas: Option<PathBuf>,
        /// The addresses.
        #[arg(required = true)]
        ips: Vec<std::net::IpAddr>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Fingerprints { file } => {
            print_lines(&file, |input, out| write_fingerprints(input, out).map(drop))
        }
        Command::Services {
            file,
            service_probes,
            probe,
            intensity,
        } => match file {
            Some(file) => run_services(&file, &service_probes),
            None => run_probes(&probe, &service_probes, intensity),
        },
        Command::Dns { file } => run_dns(&file),
        Command::Resolve {
            objects,
            cluster,
            internet,
            peers,
        } => {
            let (objects, _cluster) = match with_cluster(objects, &cluster) {
                Ok(found) => found,
                Err(code) => return code,
            };
            match load_index(&objects) {
                Ok(index) => print_all(&resolve_peers(&index, &peers, internet)),
                Err(e) => {
                    eprintln!("edgewise: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Edges {
            objects,
            cluster,
            policies,
            allow_lists,
            flows,
            graph_out,
            granularity,
            keep_self_edges,
        } => {
            let (objects, _cluster) = match with_cluster(objects, &cluster) {
                Ok(found) => found,
                Err(code) => return code,
            };
            let input = EdgesInput {
                objects,
                policies,
                allow_lists,
                cluster: None,
            };
            let mut options = AggregateOptions::new(granularity);
            options.drop_self_edges = !keep_self_edges;
            match run_edges(&input, &flows, graph_out.as_deref(), &options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(edgewise_observer::edges::EdgesError::Output(e))
                    if e.kind() == io::ErrorKind::BrokenPipe =>
                {
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("edgewise: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Identity { command } => run_identity(command),
        Command::Collect(args) => {
            init_logs(edgewise_observer::daemon::config::LogFormat::Text);
            finish(edgewise_observer::trail::collect(&args))
        }
        Command::Trail { store, command } => run_trail(store, command),
        Command::Observe(args) => run_observe(&args),
        Command::Ui(args) => {
            init_logs(edgewise_observer::daemon::config::LogFormat::Text);
            failure_if(edgewise_observer::ui::serve(&args))
        }
        Command::Advise { command, args } => run_advise(command, &args),
        Command::Run(flags) => daemon(|| {
            let settings = Settings::resolve(&flags)?;
            init_logs(settings.log_format.unwrap_or_default());
            settings.check_live()?;
            edgewise_observer::daemon::live::run(&settings)
        }),
        Command::Replay { file, settings } => daemon(|| run_replay(file, &settings)),
    }
}

/// `edgewise replay [FILE]`: the bundled demo without a file.
fn run_replay(
    file: Option<PathBuf>,
    flags: &Settings,
) -> Result<(), edgewise_observer::daemon::DaemonError> {
    use edgewise_observer::daemon::replay::{demo_settings, replay};
    let (file, flags) = match file {
        Some(file) => (file, flags.clone()),
        None => demo_settings(flags),
    };
    let settings = Settings::resolve(&flags)?;
    init_logs(settings.log_format.unwrap_or_default());
    settings.check_replay()?;
    let summary = replay(&file, &settings)?;
    eprint!("{}", summary.table());
    Ok(())
}

/// `edgewise observe`: a closed pipe ends it quietly.
fn run_observe(args: &edgewise_observer::observe::ObserveArgs) -> ExitCode {
    match edgewise_observer::observe::observe(args) {
        Err(edgewise_observer::observe::ObserveError::Output(e))
            if e.kind() == io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        result => failure_if(result),
    }
}

/// Exit 0, or 1 with the error on standard error.
fn failure_if(result: Result<(), impl std::fmt::Display>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("edgewise: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `edgewise trail query | digest`.
fn run_trail(store: Option<edgewise_trail::StoreUrl>, command: TrailCommand) -> ExitCode {
    let Some(store) = store else {
        eprintln!("edgewise: --store postgres://USER@HOST/DB or sqlite:PATH is needed");
        return ExitCode::from(2);
    };
    finish(match command {
        TrailCommand::Query { json, recipe } => {
            edgewise_observer::trail::query(&store, &recipe, json)
        }
        TrailCommand::Digest(args) => edgewise_observer::trail::digest(&store, &args),
        TrailCommand::Import { agent, files } => {
            return match edgewise_observer::advise::import(&store, &agent, &files) {
                Ok((merged, again)) => {
                    eprintln!("edgewise: {merged} slices merged, {again} already in the trail");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("edgewise: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    })
}

/// `edgewise advise [check]`: exit 1 on an error; `check` exits 3 when
/// the policies would have denied something.
fn run_advise(
    command: Option<AdviseCommand>,
    args: &edgewise_observer::advise::AdviseArgs,
) -> ExitCode {
    use edgewise_observer::advise::{AdviseCommandError, advise, check_policies};
    let result = match command {
        None => advise(args).map(|()| ExitCode::SUCCESS),
        Some(AdviseCommand::Check(check)) => check_policies(&check).map(|denied| {
            if denied {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }),
    };
    match result {
        Ok(code) => code,
        Err(AdviseCommandError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edgewise: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Exit 0, or print the error and exit 1.
fn finish(result: Result<(), edgewise_observer::trail::TrailCommandError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(edgewise_observer::trail::TrailCommandError::Output(e))
            if e.kind() == io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("edgewise: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `objects` and, when `cluster` asks for one, the file of the cluster's
/// objects (kept while the returned handle lives); an error is printed and
/// its exit code returned.
fn with_cluster(
    mut objects: Vec<PathBuf>,
    cluster: &ClusterArgs,
) -> Result<(Vec<PathBuf>, Option<ClusterFile>), ExitCode> {
    match ClusterFile::start(cluster) {
        Ok(file) => {
            if let Some(file) = &file {
                objects.push(file.path().to_owned());
            }
            Ok((objects, file))
        }
        Err(error) => {
            eprintln!("edgewise: {error}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// `edgewise identity serve` until SIGINT, SIGTERM or SIGHUP.
fn run_identity_serve(
    mut options: edgewise_observer::serve::ServeOptions,
    cluster: &ClusterArgs,
    epoch: Option<u64>,
) -> ExitCode {
    // A service: its state changes are logged as the daemon's are
    // (`RUST_LOG` sets the levels).
    init_logs(edgewise_observer::daemon::config::LogFormat::Text);
    let cluster = match edgewise_observer::cluster::watch(cluster) {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("edgewise: {error}");
            return ExitCode::FAILURE;
        }
    };
    options.epoch =
        epoch.unwrap_or_else(|| u64::try_from(unix_now().as_millis()).unwrap_or(u64::MAX));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // SIGINT, SIGTERM or SIGHUP: stop at the next interval, exit 0.
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let _ = signal_hook::flag::register(signal, std::sync::Arc::clone(&stop));
    }
    let mut last_error = None::<String>;
    let scheme = if options.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let served = edgewise_observer::serve::serve(
        &options,
        cluster.as_ref(),
        &stop,
        |server| {
            let version = server.version();
            // The address stands as a word of its own: scripts read it.
            tracing::info!(
                epoch = version.epoch,
                seq = version.seq,
                "serving identities on {scheme}://{}",
                server.local_addr()
            );
        },
        |error| {
            // Said once until it changes: the same failure comes back at
            // every change of the cluster until the file is fixed.
            let error = error.to_string();
            if last_error.as_ref() != Some(&error) {
                tracing::warn!(%error, "keeping the last state");
                last_error = Some(error);
            }
        },
    );
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgewise: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The time since the Unix epoch (zero if the clock is before it).
fn unix_now() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

fn run_identity(command: IdentityCommand) -> ExitCode {
    use edgewise_observer::identity::{build, lookup};
    let now = || unix_now().as_secs();
    match command {
        IdentityCommand::Build {
            objects,
            cluster,
            out,
            epoch,
            build_time,
        } => {
            let (objects, _cluster) = match with_cluster(objects, &cluster) {
                Ok(found) => found,
                Err(code) => return code,
            };
            match build(
                &objects,
                &out,
                epoch.unwrap_or_else(now),
                build_time.unwrap_or_else(now),
            ) {
                Ok(count) => {
                    eprintln!("edgewise: wrote {} ({count} addresses)", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("edgewise: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        IdentityCommand::Serve {
            objects,
            policies,
            allow_lists,
            cluster,
            listen,
            epoch,
            interval_ms,
            server,
        } => {
            let options = edgewise_observer::serve::ServeOptions {
                objects,
                policies,
                allow_lists,
                listen,
                epoch: 0,
                interval: std::time::Duration::from_millis(interval_ms.max(1)),
                server: server.config(),
            };
            run_identity_serve(options, &cluster, epoch)
        }
        IdentityCommand::Follow { url, client } => {
            let stop = std::sync::atomic::AtomicBool::new(false);
            let config = client.config(url.trim_end_matches('/'));
            let mut unwritten = None;
            let followed = edgewise_observer::identity::follow_stream(&config, &stop, |line| {
                let mut out = io::stdout().lock();
                if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                    // Nobody reads any more (`| head`, a closed pipe): the
                    // follow ends at the next event or heartbeat.
                    unwritten.get_or_insert(e);
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            });
            match (followed, unwritten) {
                (Err(e), _) => {
                    eprintln!("edgewise: {e}");
                    ExitCode::FAILURE
                }
                (Ok(()), Some(e)) if e.kind() != io::ErrorKind::BrokenPipe => {
                    eprintln!("edgewise: standard output: {e}");
                    ExitCode::FAILURE
                }
                (Ok(()), _) => ExitCode::SUCCESS,
            }
        }
        IdentityCommand::Lookup { mmdb, deltas, ips } => {
            match lookup(&mmdb, deltas.as_deref(), &ips) {
                Ok(looked) => {
                    if let Some(why) = looked.needs_resync {
                        eprintln!(
                            "edgewise: the deltas need a newer baseline ({why}); answers are the last good state"
                        );
                    }
                    print_all(&looked.lines)
                }
                Err(e) => {
                    eprintln!("edgewise: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Runs a daemon command; its error ends the process with a message that
/// follows the error's causes down to the system's (such as "Operation not
/// permitted" when `edgewise run` is not root).
fn daemon(run: impl FnOnce() -> Result<(), edgewise_observer::daemon::DaemonError>) -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !message.contains(&cause_text) {
                    message.push_str(": ");
                    message.push_str(&cause_text);
                }
                source = cause.source();
            }
            eprintln!("edgewise: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_edges(
    input: &EdgesInput,
    flows: &std::path::Path,
    graph_out: Option<&std::path::Path>,
    options: &AggregateOptions,
) -> Result<(), edgewise_observer::edges::EdgesError> {
    use edgewise_observer::edges::EdgesError;
    let (index, policies) = load(input)?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let graph = if flows.as_os_str() == "-" {
        write_edges(&index, &policies, flows, io::stdin().lock(), &mut out)?
    } else {
        let file = File::open(flows).map_err(edgewise_observer::FileError::at(flows))?;
        write_edges(&index, &policies, flows, BufReader::new(file), &mut out)?
    };
    out.flush().map_err(EdgesError::Output)?;
    if let Some(dir) = graph_out {
        for path in write_graph(&graph, options, dir)? {
            eprintln!("edgewise: wrote {}", path.display());
        }
    }
    Ok(())
}

/// Prints `lines`, one per line; a closed output pipe ends quietly.
fn print_all(lines: &[String]) -> ExitCode {
    let mut out = String::new();
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    match io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            eprintln!("edgewise: writing output: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

/// Runs a command that reads a capture (a file, or standard input for `-`)
/// and prints lines; a closed output pipe ends it quietly.
/// `edgewise dns`.
fn run_dns(file: &PathBuf) -> ExitCode {
    let mut rejected = BTreeMap::new();
    let code = print_lines(file, |input, out| {
        rejected = write_dns(input, out)?.rejected;
        Ok(())
    });
    for (reason, count) in rejected {
        eprintln!("edgewise: {count} malformed DNS messages ({reason})");
    }
    code
}

/// `edgewise services`.
fn run_services(file: &PathBuf, service_probes: &std::path::Path) -> ExitCode {
    let db = match load_service_probes(service_probes) {
        Ok(db) => db,
        Err(code) => return code,
    };
    print_lines(file, |input, out| {
        edgewise_observer::services::write_services(input, &db, out).map(drop)
    })
}

/// `edgewise services --probe`: a probe session with each server.
fn run_probes(
    servers: &[std::net::SocketAddr],
    service_probes: &std::path::Path,
    intensity: u8,
) -> ExitCode {
    let db = match load_service_probes(service_probes) {
        Ok(db) => db,
        Err(code) => return code,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match edgewise_observer::services::write_probes(servers, &db, intensity, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgewise: {e}");
            ExitCode::FAILURE
        }
    }
}

/// nmap's service database, its skipped lines said on standard error.
fn load_service_probes(
    path: &std::path::Path,
) -> Result<edgewise_service_probes::Database, ExitCode> {
    let db = edgewise_observer::services::load_database(path).map_err(|e| {
        eprintln!("edgewise: {e}");
        ExitCode::FAILURE
    })?;
    for error in db.line_errors() {
        eprintln!("edgewise: {}: {error} (skipped)", path.display());
    }
    Ok(db)
}

fn print_lines(
    file: &PathBuf,
    run: impl FnOnce(Box<dyn io::Read + Send>, &mut dyn Write) -> Result<(), CommandError>,
) -> ExitCode {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = if file.as_os_str() == "-" {
        run(Box::new(BufReader::new(io::stdin())), &mut out)
    } else {
        match File::open(file) {
            Ok(f) => run(Box::new(BufReader::new(f)), &mut out),
            Err(e) => {
                eprintln!("edgewise: cannot open {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
    };
    let flushed = out.flush();
    match (result, flushed) {
        (Err(CommandError::Output(e)), _) | (Ok(()), Err(e))
            if e.kind() == io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
        (Ok(()), Err(e)) => {
            eprintln!("edgewise: writing output: {e}");
            ExitCode::FAILURE
        }
        (Err(e), _) => {
            eprintln!("edgewise: {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}
