//! `edgewise ui --graph FILE...`: the web view over graph files
//! (`edgewise.graph/v1`, as `--graph-out` writes them), with nothing else
//! running. The files are merged into one graph (each file a slice of its
//! own) and read again when they change; a file that cannot be read at
//! start stops the command, one that breaks later keeps the last good
//! graph. Serves `/ui`, `/graph`, `/graph/view` and `/healthz` (see
//! [`crate::web`]; there are no records) until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use edgewise_edge_set::ServiceGraph;
use edgewise_edge_set::render::read_graph_json;
use edgewise_http_server::{BearerTokens, Limits, Server, Service};

use crate::FileError;
use crate::daemon::InputFiles;
use crate::serve::ListenerArgs;
use crate::web::{ViewOnly, WebView};

/// `edgewise ui`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct UiArgs {
    /// Graph files (`edgewise.graph/v1`); repeat for several.
    #[arg(long = "graph", required = true)]
    pub graphs: Vec<PathBuf>,
    /// Where to listen (port 0 picks one; the address is printed on
    /// standard error).
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// TLS and the bearer tokens the graph asks for.
    #[command(flatten)]
    pub listener: ListenerArgs,
}

/// Why `edgewise ui` stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UiError {
    /// A graph file could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// A graph file is not a graph document.
    #[error("{}: {problem}", path.display())]
    Graph {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The token file cannot be used.
    #[error("--token-file: {0}")]
    Tokens(#[from] edgewise_http_server::TokenError),
    /// The listener could not start, or stopped.
    #[error("listening on {address}: {problem}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        problem: String,
    },
}

/// The graph of `files` merged, each file a slice of its own.
///
/// # Errors
/// [`UiError`] naming the first file that cannot be read or is not a graph
/// document.
pub fn read_graphs(files: &[PathBuf]) -> Result<ServiceGraph, UiError> {
    let mut graph = ServiceGraph::new();
    for path in files {
        let bytes = std::fs::read(path).map_err(FileError::at(path))?;
        let slice = read_graph_json(&path.display().to_string(), &bytes).map_err(|problem| {
            UiError::Graph {
                path: path.clone(),
                problem,
            }
        })?;
        graph.merge_slice(&slice);
    }
    Ok(graph)
}

/// Serves the view of `args.graphs` until SIGINT or SIGTERM.
///
/// # Errors
/// [`UiError`] for a graph file that cannot be used at start, a token file
/// that cannot be read, or a listener that cannot start or stops.
pub fn serve(args: &UiArgs) -> Result<(), UiError> {
    let graph = read_graphs(&args.graphs)?;
    let tokens = args
        .listener
        .token_file
        .as_deref()
        .map(BearerTokens::load)
        .transpose()?;
    let service = Arc::new(ViewOnly(WebView::new(tokens, None)));
    service.0.publish(graph);
    let listen_error = |problem: String| UiError::Listen {
        address: args.listen,
        problem,
    };
    let server = Server::start(
        args.listen,
        Limits::default(),
        args.listener.tls(),
        Arc::clone(&service) as Arc<dyn Service>,
    )
    .map_err(|e| listen_error(e.to_string()))?;
    let scheme = if args.listener.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    eprintln!(
        "edgewise ui: serving {scheme}://{}/ui ({} graph files)",
        server.local_addr(),
        args.graphs.len()
    );
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| listen_error(e.to_string()))?;
    }
    let mut files = InputFiles::of(args.graphs.clone());
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        if server.failed() {
            return Err(listen_error("the listener stopped".to_owned()));
        }
        if files.changed() {
            reload(&service.0, &args.graphs);
        }
    }
    Ok(())
}

/// Reads the files again; a failure keeps the graph served.
fn reload(web: &WebView, files: &[PathBuf]) {
    match read_graphs(files) {
        Ok(graph) => {
            tracing::info!("graph files read again");
            web.publish(graph);
        }
        Err(error) => tracing::warn!(%error, "keeping the graph served"),
    }
}
