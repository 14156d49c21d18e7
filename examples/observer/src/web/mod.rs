//! What a browser and `edgewise observe` read from a listener: the web view
//! (`/ui`), the graph (`/graph`, `/graph/view`) and the records
//! (`/records`). The daemon's listener serves all of it; `edgewise ui`
//! serves the view and the graph of graph files, and `edgewise collect`
//! the trail's ([`ViewOnly`]).
//!
//! - `GET /ui`: the page ([`assets`]); its files need no token (they hold
//!   no data), and the page asks for one when the data answers 401.
//!   `GET /ui/listener.json` tells it what the listener serves:
//!   `{"records": true}` for a daemon.
//! - `GET /graph`: the published graph as `edgewise.graph/v1`.
//! - `GET /graph/view?granularity=G&window_s=S`: the published graph as
//!   the view draws it (`edgewise.view/v1`, see
//!   [`edgewise_edge_set::view()`]); `granularity` is `workload` (the
//!   default), `namespace` or `namespace+LABEL`; `window_s` limits it to
//!   the edges seen within that many seconds of the newest.
//! - `GET /records`: the daemon's records as server-sent events
//!   ([`records`], filters in [`filter`]); 404 where there are none.
//!
//! With a token file, `/graph`, `/graph/view` and `/records` need
//! `Authorization: Bearer TOKEN` (401 otherwise).

pub mod assets;
pub mod filter;
pub mod records;

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use edgewise_edge_set::render::graph_json;
use edgewise_edge_set::{ServiceGraph, ViewOptions, view_json};
use edgewise_http_server::{BearerTokens, Head, Method, Reply, Request, Service, StatusCode};

use self::filter::RecordQuery;
use self::records::RecordRing;
use crate::edges::parse_granularity;

/// What a request to the web routes needs.
pub enum Route {
    /// Not one of them.
    Elsewhere,
    /// Answered from the head.
    Answer(Reply),
    /// To be answered by [`WebView::handle`] (on the blocking pool: it
    /// computes).
    Handle,
}

/// The graph as published; its `/graph` JSON made at the first request
/// (publishing stays cheap however large the graph).
#[derive(Default)]
struct Published {
    graph: Arc<ServiceGraph>,
    json: Arc<OnceLock<Bytes>>,
}

/// The graph as last published, the records, and the token that guards
/// them.
pub struct WebView {
    published: Mutex<Published>,
    records: Option<Arc<RecordRing>>,
    tokens: Option<BearerTokens>,
}

impl WebView {
    /// A view guarded by `tokens` (none: open), serving `records` when
    /// given.
    pub fn new(tokens: Option<BearerTokens>, records: Option<Arc<RecordRing>>) -> Self {
        Self {
            published: Mutex::default(),
            records,
            tokens,
        }
    }

    /// Serves `graph` from now on.
    pub fn publish(&self, graph: ServiceGraph) {
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *published = Published {
            graph: Arc::new(graph),
            json: Arc::default(),
        };
    }

    /// The graph published, and its `/graph` JSON once made.
    fn published(&self) -> (Arc<ServiceGraph>, Arc<OnceLock<Bytes>>) {
        let published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (Arc::clone(&published.graph), Arc::clone(&published.json))
    }

    fn authorized(&self, head: &Head) -> bool {
        self.tokens
            .as_ref()
            .is_none_or(|tokens| tokens.admits(&head.headers))
    }

    /// Routes `head` (see the module docs).
    pub fn admit(&self, head: &Head) -> Route {
        if head.method != Method::GET && head.method != Method::HEAD {
            return Route::Elsewhere;
        }
        if let Some(reply) = assets::asset(&head.path) {
            return Route::Answer(reply);
        }
        if head.path == "/ui/listener.json" {
            let body = format!("{{\"records\": {}}}", self.records.is_some());
            return Route::Answer(
                Reply::ok("application/json", body).with_headers(assets::HEADERS),
            );
        }
        let path = head.path.as_str();
        if !matches!(path, "/graph" | "/graph/view" | "/records") {
            return Route::Elsewhere;
        }
        if path == "/records" && self.records.is_none() {
            return Route::Answer(Reply::text(
                StatusCode::NOT_FOUND,
                "no records here (graph files only)\n",
            ));
        }
        if !self.authorized(head) {
            return Route::Answer(Reply::text(StatusCode::UNAUTHORIZED, "unauthorized\n"));
        }
        Route::Handle
    }

    /// Answers a request [`WebView::admit`] passed on.
    pub fn handle(&self, head: &Head) -> Reply {
        match head.path.as_str() {
            "/graph" => {
                let (graph, json) = self.published();
                let json = json.get_or_init(|| Bytes::from(graph_json(&graph).to_string()));
                Reply::ok("application/json", json.clone())
            }
            "/graph/view" => match view_options(&head.query) {
                Ok(options) => Reply::ok(
                    "application/json",
                    view_json(&self.published().0, &options).to_string(),
                ),
                Err(problem) => Reply::text(StatusCode::BAD_REQUEST, format!("{problem}\n")),
            },
            "/records" => {
                let Some(records) = &self.records else {
                    return Reply::text(StatusCode::NOT_FOUND, "not found\n");
                };
                match RecordQuery::parse(&head.query) {
                    Ok(query) => {
                        let last_id = head
                            .headers
                            .get("last-event-id")
                            .and_then(|v| v.to_str().ok());
                        records.subscribe(query, last_id)
                    }
                    Err(problem) => Reply::text(StatusCode::BAD_REQUEST, format!("{problem}\n")),
                }
            }
            _ => Reply::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

/// A listener that serves only the view (`edgewise ui`, and the
/// collector's requests it does not answer itself), with `/healthz`.
pub struct ViewOnly(pub WebView);

impl Service for ViewOnly {
    fn body_limit(&self, _method: &Method, _path: &str) -> u64 {
        0
    }

    fn admit(&self, head: &Head) -> Option<Reply> {
        match self.0.admit(head) {
            Route::Answer(reply) => Some(reply),
            Route::Handle => None,
            Route::Elsewhere if head.path == "/healthz" => {
                Some(Reply::text(StatusCode::OK, "ok\n"))
            }
            Route::Elsewhere => Some(Reply::text(StatusCode::NOT_FOUND, "not found\n")),
        }
    }

    fn handle(&self, request: Request) -> Reply {
        self.0.handle(&request.head)
    }
}

/// `granularity` and `window_s` of a `/graph/view` query.
fn view_options(query: &str) -> Result<ViewOptions, String> {
    let mut options = ViewOptions::new(edgewise_edge_set::Granularity::Workload);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "granularity" => options.granularity = parse_granularity(&value)?,
            "window_s" => {
                let seconds: u64 = value
                    .parse()
                    .map_err(|_| format!("window_s={value:?}: not a number of seconds"))?;
                options.window_ns = Some(seconds.saturating_mul(1_000_000_000));
            }
            _ => return Err(format!("{key}: not a parameter of /graph/view")),
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_options_read_the_granularity_and_window_and_refuse_the_rest() {
        let options = view_options("granularity=namespace%2Bservice-identity&window_s=60").unwrap();
        assert_eq!(
            options.granularity,
            edgewise_edge_set::Granularity::NamespaceLabel("service-identity".into())
        );
        assert_eq!(options.window_ns, Some(60_000_000_000));
        assert!(view_options("window_s=soon").is_err());
        assert!(view_options("granularity=pod").is_err());
        assert!(view_options("colour=red").is_err());
    }
}
