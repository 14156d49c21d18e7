//! `edgewise collect` and `edgewise trail query | digest`: the command
//! lines of `edgewise-trail`'s collector, recipes and digest.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgewise_edge_set::ServiceGraph;
use edgewise_trail::collector::{AlsoServe, Collector, CollectorConfig, CollectorError};
use edgewise_trail::digest::{Digest, post, record_run};
use edgewise_trail::query::Recipe;
use edgewise_trail::time::parse_duration;
use edgewise_trail::{Store, StoreUrl, TrailError};

use crate::web::{ViewOnly, WebView};

/// Why a trail command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrailCommandError {
    /// The store, a duration or the webhook.
    #[error(transparent)]
    Trail(#[from] TrailError),
    /// The collector did not start.
    #[error(transparent)]
    Collector(#[from] CollectorError),
    /// The collector stopped serving.
    #[error("the collector on {0} stopped")]
    Stopped(SocketAddr),
    /// The signal handlers could not be set.
    #[error("signals: {0}")]
    Signals(std::io::Error),
    /// Writing the answer failed.
    #[error("writing: {0}")]
    Output(std::io::Error),
}

/// `edgewise collect`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct CollectArgs {
    /// The address to listen on (port 0 picks one; the address is printed
    /// on stderr).
    #[arg(long, default_value = "127.0.0.1:9480")]
    pub listen: SocketAddr,
    /// The store: `postgres://USER@HOST/DB` or `sqlite:PATH`.
    #[arg(long)]
    pub store: StoreUrl,
    /// Days of the trail kept (0: everything).
    #[arg(long, default_value_t = 90)]
    pub retain_days: u32,
    /// Agents silent for more than this many of their export intervals
    /// are reported silent.
    #[arg(long, default_value_t = 3)]
    pub silent_after_windows: u32,
    /// TLS and bearer tokens.
    #[command(flatten)]
    pub listener: crate::serve::ListenerArgs,
    /// The most bytes of one upload, gzipped.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_body_bytes: u64,
    /// Threads serving connections.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Bearer tokens (one per line) that the web view's data (/graph,
    /// /graph/view) asks for; without it, they are open.
    #[arg(long)]
    pub graph_token_file: Option<PathBuf>,
    /// How far back the web view (/ui) reads the trail, in hours.
    #[arg(long, default_value_t = 24)]
    pub view_hours: u32,
}

/// How often the collector's web view reads the trail again.
const VIEW_EVERY: Duration = Duration::from_secs(10);

/// The web view of the trail: read from the store every [`VIEW_EVERY`]
/// (each replica on its own connection), so that every replica serves the
/// same graph.
fn trail_view(
    args: &CollectArgs,
    stop: &Arc<AtomicBool>,
) -> Result<Arc<ViewOnly>, TrailCommandError> {
    let tokens = args
        .graph_token_file
        .as_deref()
        .map(edgewise_http_server::BearerTokens::load)
        .transpose()
        .map_err(|e| TrailCommandError::Collector(CollectorError::Tokens(e)))?;
    let view = Arc::new(ViewOnly(WebView::new(tokens, None)));
    let mut store = Store::open(&args.store, args.retain_days)?;
    let hours = i64::from(args.view_hours.max(1));
    let (published, stop) = (Arc::clone(&view), Arc::clone(stop));
    std::thread::Builder::new()
        .name("edgewise-trail-view".to_owned())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match edgewise_trail::graph::graph_since(&mut store, now_ms() - hours * 3_600_000) {
                    Ok(slice) => published.0.publish(ServiceGraph::from_slice(&slice)),
                    Err(error) => tracing::warn!(%error, "the web view keeps the graph it has"),
                }
                let mut waited = Duration::ZERO;
                while waited < VIEW_EVERY && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    waited += Duration::from_millis(200);
                }
            }
        })
        .map_err(TrailCommandError::Signals)?;
    Ok(view)
}

/// Runs the collector until SIGINT, SIGTERM or SIGHUP.
///
/// # Errors
/// [`TrailCommandError`] when it cannot start or stops serving.
pub fn collect(args: &CollectArgs) -> Result<(), TrailCommandError> {
    let mut config = CollectorConfig::new(args.store.clone());
    config.retain_days = args.retain_days;
    config.silent_after_windows = args.silent_after_windows;
    config.max_body_bytes = args.max_body_bytes;
    config.tokens.clone_from(&args.listener.token_file);
    config.tls = args.listener.tls();
    config.limits.workers = args.workers.max(1);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(TrailCommandError::Signals)?;
    }
    config.also = Some(AlsoServe(trail_view(args, &stop)?));
    let collector = Collector::start(args.listen, &config)?;
    let address = collector.local_addr();
    eprintln!("edgewise: collecting on {address} into {}", args.store);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        if collector.failed() {
            return Err(TrailCommandError::Stopped(address));
        }
    }
    collector.stop();
    Ok(())
}

/// The recipes, as `edgewise trail query` reads them.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RecipeArgs {
    /// Edges from or to a namespace active since a time.
    Edges {
        /// The namespace.
        #[arg(long)]
        namespace: String,
        /// How far back (such as 24h or 7d).
        #[arg(long, default_value = "7d")]
        since: String,
    },
    /// Edges first seen since a time and never before.
    New {
        /// How far back.
        #[arg(long, default_value = "24h")]
        since: String,
    },
    /// Where a namespace's workloads went outside it, with FQDNs.
    Egress {
        /// The namespace.
        #[arg(long)]
        namespace: String,
        /// How far back (default: everything kept).
        #[arg(long)]
        since: Option<String>,
    },
    /// Edges with a violation verdict active since a time.
    Violations {
        /// How far back.
        #[arg(long, default_value = "24h")]
        since: String,
    },
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn since(text: &str) -> Result<i64, TrailError> {
    Ok(now_ms().saturating_sub(parse_duration(text)?))
}

impl RecipeArgs {
    fn recipe(&self) -> Result<Recipe, TrailError> {
        Ok(match self {
            Self::Edges {
                namespace,
                since: s,
            } => Recipe::Edges {
                namespace: namespace.clone(),
                since_ms: since(s)?,
            },
            Self::New { since: s } => Recipe::New {
                since_ms: since(s)?,
            },
            Self::Egress {
                namespace,
                since: s,
            } => Recipe::Egress {
                namespace: namespace.clone(),
                since_ms: s.as_deref().map(since).transpose()?.unwrap_or(0),
            },
            Self::Violations { since: s } => Recipe::Violations {
                since_ms: since(s)?,
            },
        })
    }
}

/// Runs a recipe: a table on a terminal, JSON lines otherwise (or with
/// `json`).
///
/// # Errors
/// [`TrailCommandError`] for the store, a duration or the output.
pub fn query(store: &StoreUrl, recipe: &RecipeArgs, json: bool) -> Result<(), TrailCommandError> {
    let recipe = recipe.recipe()?;
    let mut store = Store::open(store, 0)?;
    let answer = recipe.run(&mut store)?;
    let text = if json || !std::io::stdout().is_terminal() {
        answer.json_lines()
    } else {
        answer.table()
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(TrailCommandError::Output)
}

/// `edgewise trail digest`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct DigestArgs {
    /// How far back.
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// JSON instead of markdown.
    #[arg(long)]
    pub json: bool,
    /// Post it to this webhook (Slack-compatible JSON: {"text": ...}).
    #[arg(long)]
    pub post: Option<String>,
    /// CA certificates (PEM) the webhook's certificate must chain to
    /// (default: the public CAs).
    #[arg(long)]
    pub post_ca: Option<PathBuf>,
    /// Agents silent for more than this many of their export intervals
    /// are reported silent.
    #[arg(long, default_value_t = 3)]
    pub silent_after_windows: u32,
}

/// Prints (and posts) the digest, and records the run in the store.
///
/// # Errors
/// [`TrailCommandError`] for the store, the duration, the webhook or the
/// output; a failed run is recorded as failed when the store can still
/// be written.
pub fn digest(store_url: &StoreUrl, args: &DigestArgs) -> Result<(), TrailCommandError> {
    let since_ms = since(&args.since)?;
    let mut store = Store::open(store_url, 0)?;
    let now = now_ms();
    let made = (|| -> Result<(), TrailCommandError> {
        let digest = Digest::read(&mut store, since_ms, now, args.silent_after_windows)?;
        let text = if args.json {
            format!("{}\n", digest.json())
        } else {
            digest.markdown()
        };
        std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(TrailCommandError::Output)?;
        if let Some(url) = &args.post {
            post(url, &digest.slack(), args.post_ca.as_deref())?;
        }
        Ok(())
    })();
    let detail = made
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    if let Err(error) = record_run(&mut store, now, made.is_ok(), &detail) {
        eprintln!("edgewise: the digest run could not be recorded: {error}");
    }
    made
}
