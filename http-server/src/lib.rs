//! edgewise's one HTTP server stack, for every listener of the workspace
//! (the daemon's `/healthz`, `/metrics`, `/graph` and `/audit`, and
//! `edgewise identity serve`): hyper's HTTP/1.1 and HTTP/2, in the clear
//! or over TLS (rustls; [`tls`]: certificates read again when their files
//! change, optional client certificates), on a small runtime of its own
//! thread, behind limits a hostile client cannot talk its way past.
//! [`BearerTokens`] is the token check a service's [`Service::admit`]
//! calls.
//!
//! The contract, for a [`Service`] served by a [`Server`]:
//! - **Headers**: at most [`Limits::max_header_bytes`] (a request line and
//!   headers past it get 431 and the connection closes) and
//!   [`Limits::max_headers`] of them, read within
//!   [`Limits::header_timeout`] (also the idle time allowed between two
//!   requests of a kept-alive connection).
//! - **Bodies**: [`Service::body_limit`] says, per method and path, how
//!   many body bytes a request may carry, and [`Service::admit`] may refuse
//!   it from its head alone (a token, a rate limit). Both run **before any
//!   body byte is read**: a `Content-Length` above the limit gets 413 and
//!   the connection is closed, never drained; a chunked body is cut at the
//!   limit the same way; the body must arrive within
//!   [`Limits::body_timeout`]. An announced length is never used to size a
//!   buffer.
//! - **Writes**: a response write that makes no progress for
//!   [`Limits::write_timeout`] (a client that does not read) ends the
//!   connection.
//! - **Connections**: at most [`Limits::max_connections`] at once, and
//!   [`Limits::max_connections_per_peer`] (by default an eighth of them, at
//!   least 4) from one peer address, so that one client cannot take every
//!   slot from the probes; one more is closed at accept. Accept errors (out
//!   of file descriptors) are counted and retried after a pause: the
//!   listener never dies of them.
//! - **Work**: [`Service::handle`] runs on the runtime's blocking pool,
//!   so a slow handler does not stop the others from being answered. A
//!   [`Reply::Stream`] is polled on the runtime only when its connection
//!   can take more, so a stream never buffers ahead of its client.
//! - **TLS**: a handshake must end within [`Limits::header_timeout`]; a
//!   failed one is counted and logged at most once a minute per peer.
//! - **HTTP/2**: at most 32 streams per connection, the header list at
//!   [`Limits::max_header_bytes`], and keepalive pings every
//!   [`Limits::header_timeout`] that must be answered within
//!   [`Limits::write_timeout`].
//! - **Refusals**: a 401 carries `WWW-Authenticate: Bearer` and nothing
//!   the service did not put in its text.
//! - **Shutdown**: dropping the [`Server`] (or [`Server::stop`]) stops
//!   accepting, lets requests in flight finish for
//!   [`Limits::shutdown_grace`], then ends every connection: it returns in
//!   bounded time whatever clients do.
//! - **Failure is seen**: [`Server::failed`] says the serving thread ended
//!   without being asked to, so the process never runs on blind.
//!
//! [`RateLimiter`] is a per-peer token bucket with a bounded memory that
//! forgets the least recently seen peer, never all of them.

#![forbid(unsafe_code)]

mod io;
mod rate;
mod server;
pub mod tls;
mod tokens;

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
pub use http::{HeaderMap, Method, StatusCode};
pub use rate::RateLimiter;
pub use server::{Server, ServerStats, StartError, StatsSource};
pub use tls::{TlsError, TlsFiles};
pub use tokens::{BearerTokens, TokenError, bearer};

/// The pieces of a streamed response body.
pub type Chunks = Pin<Box<dyn futures::Stream<Item = Bytes> + Send>>;

/// The limits of a [`Server`] (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Connections served at once (default 256).
    pub max_connections: usize,
    /// Connections one peer address may hold at once (0, the default: an
    /// eighth of `max_connections`, at least 4).
    pub max_connections_per_peer: usize,
    /// Threads serving connections (default 1).
    pub workers: usize,
    /// Bytes of a request line and headers (default 16 KiB).
    pub max_header_bytes: usize,
    /// Headers of a request (default 64).
    pub max_headers: usize,
    /// Time to read a request's headers, and to wait for the next request
    /// on a kept-alive connection (default 10 s).
    pub header_timeout: Duration,
    /// Time to read a request's body (default 10 s).
    pub body_timeout: Duration,
    /// Time a response write may make no progress (default 10 s).
    pub write_timeout: Duration,
    /// How long requests in flight may finish at shutdown (default 2 s).
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_connections_per_peer: 0,
            workers: 1,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

/// A request's head: what [`Service::admit`] and [`Service::body_limit`]
/// decide on before the body is read.
#[derive(Debug, Clone)]
pub struct Head {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query (after `?`), or empty.
    pub query: String,
    /// The headers.
    pub headers: HeaderMap,
    /// Who sent it.
    pub peer: SocketAddr,
}

/// A whole request: its head and its body, read within the limits.
#[derive(Debug, Clone)]
pub struct Request {
    /// The head.
    pub head: Head,
    /// The body (at most the route's limit).
    pub body: Bytes,
}

/// What a [`Service`] answers.
pub enum Reply {
    /// A whole response.
    Full {
        /// The status.
        status: StatusCode,
        /// The `Content-Type`.
        content_type: &'static str,
        /// The body.
        body: Bytes,
        /// More headers (lower-case names and their values), such as a web
        /// page's `content-security-policy`.
        headers: &'static [(&'static str, &'static str)],
    },
    /// A response whose body comes in pieces (a server-sent events
    /// stream); it ends when the stream does, and the stream is dropped
    /// once the client is gone.
    Stream {
        /// The `Content-Type`.
        content_type: &'static str,
        /// The `Content-Encoding` of the pieces, if any (such as `gzip`,
        /// each piece a whole gzip member).
        content_encoding: Option<&'static str>,
        /// The pieces.
        chunks: Chunks,
    },
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full {
                status,
                content_type,
                body,
                ..
            } => f
                .debug_struct("Full")
                .field("status", status)
                .field("content_type", content_type)
                .field("bytes", &body.len())
                .finish(),
            Self::Stream { content_type, .. } => f
                .debug_struct("Stream")
                .field("content_type", content_type)
                .finish_non_exhaustive(),
        }
    }
}

impl Reply {
    /// A plain-text response.
    pub fn text(status: StatusCode, text: impl Into<String>) -> Self {
        Self::Full {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from(text.into()),
            headers: &[],
        }
    }

    /// A stream of the pieces sent on `chunks`; it ends when the sender is
    /// dropped, and the sender sees an error once the client is gone.
    pub fn channel(
        content_type: &'static str,
        mut chunks: tokio::sync::mpsc::Receiver<Bytes>,
    ) -> Self {
        Self::Stream {
            content_type,
            content_encoding: None,
            chunks: Box::pin(futures::stream::poll_fn(move |cx| chunks.poll_recv(cx))),
        }
    }

    /// A response of `content_type` with `body`, status 200.
    pub fn ok(content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self::Full {
            status: StatusCode::OK,
            content_type,
            body: body.into(),
            headers: &[],
        }
    }

    /// This response with `extra` headers (lower-case names); a stream
    /// keeps its own.
    ///
    /// # Panics
    /// When the reply is sent, if a name is not a lower-case header name
    /// or a value not a valid header value (both are fixed in the code: the
    /// first request to the route shows it).
    #[must_use]
    pub fn with_headers(self, extra: &'static [(&'static str, &'static str)]) -> Self {
        match self {
            Self::Full {
                status,
                content_type,
                body,
                ..
            } => Self::Full {
                status,
                content_type,
                body,
                headers: extra,
            },
            stream @ Self::Stream { .. } => stream,
        }
    }
}

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::Arc;

    use super::{Head, Method, Reply, Request, Service, StatusCode};

    /// A service with a body-taking route and a refusing one, as the
    /// daemon's listener has.
    struct Routes;

    impl Service for Routes {
        fn body_limit(&self, method: &Method, path: &str) -> u64 {
            if method == Method::POST && path == "/audit" {
                4096
            } else {
                0
            }
        }

        fn admit(&self, head: &Head) -> Option<Reply> {
            match head.path.as_str() {
                "/healthz" => Some(Reply::text(StatusCode::OK, "ok\n")),
                "/audit" => None,
                _ => Some(Reply::text(StatusCode::NOT_FOUND, "not found\n")),
            }
        }

        fn handle(&self, request: Request) -> Reply {
            assert!(request.body.len() <= 4096, "a body past its limit");
            Reply::ok("application/octet-stream", request.body)
        }
    }

    /// Serves `data` as the bytes of one connection: never a panic, and
    /// whatever is answered is HTTP/1 (an HTTP/1.0 request gets 1.0) or,
    /// for a client that opened with the HTTP/2 preface, HTTP/2 frames.
    pub fn request(data: &[u8]) {
        let answer = crate::server::answer(data, Arc::new(Routes));
        assert!(
            answer.is_empty()
                || answer.starts_with(b"HTTP/1.")
                || data.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            "an answer that is not HTTP"
        );
    }
}

/// What a [`Server`] serves.
pub trait Service: Send + Sync + 'static {
    /// The most body bytes a request for `path` with `method` may carry
    /// (0: none). A request announcing more gets 413, unread.
    fn body_limit(&self, method: &Method, path: &str) -> u64;

    /// Refuses a request from its head alone (a missing token, a peer over
    /// its rate), before its body is read; `None` lets it through.
    fn admit(&self, head: &Head) -> Option<Reply> {
        let _ = head;
        None
    }

    /// Answers a request (on the blocking pool).
    fn handle(&self, request: Request) -> Reply;
}
