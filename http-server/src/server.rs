//! [`Server`]: the listener, its runtime thread, the accept loop and one
//! task per connection (see the crate docs for the limits).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, watch};

use crate::io::WriteDeadline;
use crate::tls::{PeerLog, Reloading, TlsError, TlsFiles};
use crate::{Chunks, Head, Limits, Reply, Request, Service, StatusCode};

/// Counters of a [`Server`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections open now.
    pub connections: usize,
    /// Connections accepted since the start.
    pub accepted: u64,
    /// Connections closed at accept because the cap was reached.
    pub refused: u64,
    /// Accept errors (such as running out of file descriptors).
    pub accept_errors: u64,
    /// Requests refused for their size (413, 431) or their slowness (408).
    pub oversized_or_slow: u64,
    /// TLS handshakes that failed (a client that does not trust the
    /// certificate, a missing or wrong client certificate, not TLS at all).
    pub tls_handshake_failures: u64,
    /// TLS configurations read again after their files changed.
    pub tls_reloads: u64,
    /// Rewrites of the TLS files that could not be used (the previous
    /// configuration stayed).
    pub tls_reload_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    accept_errors: AtomicU64,
    oversized_or_slow: AtomicU64,
    tls_handshake_failures: AtomicU64,
    tls_reloads: AtomicU64,
    tls_reload_errors: AtomicU64,
}

/// Why a [`Server`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The address could not be bound (or the thread started).
    #[error(transparent)]
    Bind(#[from] io::Error),
    /// The TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A listener serving a [`Service`] on a thread of its own (see the crate
/// docs). Dropping it shuts it down in bounded time.
pub struct Server {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    failed: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `address` (port 0 picks one) and serves `service` within
    /// `limits` until dropped, over TLS when `tls` names the files (see
    /// [`crate::tls`]), else in the clear; HTTP/1.1 and HTTP/2 either way.
    ///
    /// # Errors
    /// [`StartError`]: the bind's error, the thread's when it cannot be
    /// started, or the TLS files' naming the file.
    pub fn start(
        address: SocketAddr,
        limits: Limits,
        tls: Option<TlsFiles>,
        service: Arc<dyn Service>,
    ) -> Result<Self, StartError> {
        let tls = tls.map(Reloading::new).transpose()?;
        let (stop, stopped) = watch::channel(false);
        let failed = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (bound_tx, bound_rx) = std::sync::mpsc::channel::<io::Result<SocketAddr>>();
        let thread = {
            let failed = Arc::clone(&failed);
            let counters = Arc::clone(&counters);
            std::thread::Builder::new()
                .name("edgewise-http".to_owned())
                .spawn(move || {
                    let runtime = match runtime(&limits) {
                        Ok(runtime) => runtime,
                        Err(error) => {
                            let _ = bound_tx.send(Err(error));
                            return;
                        }
                    };
                    let listener = match runtime.block_on(async { listen(address) }) {
                        Ok(listener) => listener,
                        Err(error) => {
                            let _ = bound_tx.send(Err(error));
                            return;
                        }
                    };
                    let _ = bound_tx.send(listener.local_addr());
                    let asked =
                        runtime.block_on(serve(listener, limits, tls, service, stopped, counters));
                    // Connections past the grace are dropped here.
                    runtime.shutdown_timeout(Duration::from_millis(200));
                    if !asked {
                        failed.store(true, Ordering::SeqCst);
                    }
                })?
        };
        let address = bound_rx
            .recv()
            .map_err(|_| io::Error::other("the server thread ended before listening"))??;
        Ok(Self {
            address,
            stop,
            thread: Some(thread),
            failed,
            counters,
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Whether the serving thread ended without being asked to (the
    /// listener is gone): a caller must report it or stop.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
            || self.thread.as_ref().is_some_and(JoinHandle::is_finished)
    }

    /// Its counters.
    pub fn stats(&self) -> ServerStats {
        self.stats_source().get()
    }

    /// A handle that reads its counters, for a service that reports them.
    pub fn stats_source(&self) -> StatsSource {
        StatsSource(Arc::clone(&self.counters))
    }
}

/// Reads a [`Server`]'s counters from anywhere (see
/// [`Server::stats_source`]).
#[derive(Debug, Clone)]
pub struct StatsSource(Arc<Counters>);

impl StatsSource {
    /// The counters now.
    pub fn get(&self) -> ServerStats {
        let c = &self.0;
        ServerStats {
            connections: c.connections.load(Ordering::Relaxed),
            accepted: c.accepted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            accept_errors: c.accept_errors.load(Ordering::Relaxed),
            oversized_or_slow: c.oversized_or_slow.load(Ordering::Relaxed),
            tls_handshake_failures: c.tls_handshake_failures.load(Ordering::Relaxed),
            tls_reloads: c.tls_reloads.load(Ordering::Relaxed),
            tls_reload_errors: c.tls_reload_errors.load(Ordering::Relaxed),
        }
    }
}

impl Server {
    /// Stops accepting, lets requests in flight finish within the grace,
    /// and ends every connection.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The serving runtime: one thread, or `limits.workers` of them.
fn runtime(limits: &Limits) -> io::Result<tokio::runtime::Runtime> {
    let mut builder = if limits.workers > 1 {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(limits.workers);
        builder
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_io()
        .enable_time()
        .thread_name("edgewise-http")
        .max_blocking_threads(8)
        .build()
}

/// The most connections one peer address may hold at once: by default a
/// share of the cap, so that one client cannot take every slot from the
/// probes.
fn per_peer_cap(limits: &Limits) -> usize {
    match limits.max_connections_per_peer {
        0 => (limits.max_connections / 8).max(4),
        cap => cap,
    }
}

/// How often a peer's failed TLS handshakes are logged at most.
const HANDSHAKE_LOG_EVERY: Duration = Duration::from_secs(60);

/// What the accept loop hands each connection.
struct Acceptor {
    limits: Limits,
    service: Arc<dyn Service>,
    counters: Arc<Counters>,
    slots: Arc<Semaphore>,
    per_peer: Arc<Mutex<HashMap<IpAddr, usize, foldhash::fast::RandomState>>>,
    builder: auto::Builder<TokioExecutor>,
    graceful: GracefulShutdown,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handshake_log: Arc<PeerLog>,
}

impl Acceptor {
    /// Serves one accepted connection on a task of its own, or closes it
    /// at once when the cap (or the peer's share of it) is reached.
    fn connection(&self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let counters = &self.counters;
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        {
            let mut held = lock(&self.per_peer);
            let count = held.entry(peer.ip()).or_default();
            if *count >= per_peer_cap(&self.limits) {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *count += 1;
        }
        let _ = stream.set_nodelay(true);
        let io = WriteDeadline::new(stream, self.limits.write_timeout);
        let handler = handler(
            peer,
            Arc::clone(&self.service),
            self.limits,
            Arc::clone(counters),
        );
        let (counters, per_peer) = (Arc::clone(counters), Arc::clone(&self.per_peer));
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let builder = self.builder.clone();
        let watcher = self.graceful.watcher();
        let tls = self.tls.clone();
        let (handshake_timeout, log) =
            (self.limits.header_timeout, Arc::clone(&self.handshake_log));
        tokio::spawn(async move {
            match tls {
                None => serve_io(&builder, watcher, io, handler).await,
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(io)).await {
                        Ok(Ok(io)) => serve_io(&builder, watcher, io, handler).await,
                        failed => {
                            counters
                                .tls_handshake_failures
                                .fetch_add(1, Ordering::Relaxed);
                            if log.should_log(peer.ip(), std::time::Instant::now()) {
                                let error = match failed {
                                    Ok(Err(error)) => error.to_string(),
                                    _ => "timed out".to_owned(),
                                };
                                tracing::warn!(%peer, %error, "a TLS handshake failed (logged once a minute per peer)");
                            }
                        }
                    }
                }
            }
            counters.connections.fetch_sub(1, Ordering::Relaxed);
            let mut held = lock(&per_peer);
            if let Some(count) = held.get_mut(&peer.ip()) {
                *count -= 1;
                if *count == 0 {
                    held.remove(&peer.ip());
                }
            }
            drop(slot);
        });
    }
}

impl Acceptor {
    /// Swaps in the TLS files read again when they changed; a rewrite
    /// that does not load keeps the configuration in use.
    fn reload_tls(&mut self, tls: &mut Reloading) {
        match tls.check() {
            None => {}
            Some(Ok(())) => {
                self.counters.tls_reloads.fetch_add(1, Ordering::Relaxed);
                self.tls = Some(tokio_rustls::TlsAcceptor::from(tls.current()));
                tracing::info!("the TLS certificate was read again");
            }
            Some(Err(error)) => {
                self.counters
                    .tls_reload_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "the rewritten TLS files cannot be used; keeping the certificate in use");
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What answers each request of a connection from `peer`.
fn handler(
    peer: SocketAddr,
    service: Arc<dyn Service>,
    limits: Limits,
    counters: Arc<Counters>,
) -> impl hyper::service::Service<
    http::Request<Incoming>,
    Response = http::Response<ResponseBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<ResponseBody>, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |request| {
        respond(
            request,
            peer,
            Arc::clone(&service),
            limits,
            Arc::clone(&counters),
        )
    })
}

/// Serves one connection's requests, HTTP/1.1 or HTTP/2 as the client
/// speaks, until it ends or the shutdown's grace is over.
async fn serve_io<I, S>(builder: &auto::Builder<TokioExecutor>, watcher: Watcher, io: I, handler: S)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            http::Request<Incoming>,
            Response = http::Response<ResponseBody>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let connection = builder.serve_connection(TokioIo::new(io), handler);
    let _ = watcher.watch(connection).await;
}

/// Streams an HTTP/2 client may open at once on one connection.
const MAX_STREAMS: u32 = 32;

/// hyper's settings for `limits`: HTTP/1.1 with the header limits and
/// read timeout, HTTP/2 with the header list size, a stream cap and
/// keepalive pings (a peer that stops answering them is dropped).
fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.write_timeout);
    builder
}

/// Serves one request stream, `input`, as a connection would be (for the
/// fuzz target): the bytes answered.
pub(crate) fn answer(input: &[u8], service: Arc<dyn Service>) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    thread_local! {
        static RUNTIME: Option<tokio::runtime::Runtime> = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok();
    }
    let limits = Limits {
        header_timeout: Duration::from_millis(50),
        body_timeout: Duration::from_millis(50),
        write_timeout: Duration::from_millis(50),
        ..Limits::default()
    };
    RUNTIME.with(|runtime| {
        let Some(runtime) = runtime else {
            return Vec::new();
        };
        runtime.block_on(async {
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            let peer: SocketAddr = ([127, 0, 0, 1], 1).into();
            let handler = handler(peer, service, limits, Arc::default());
            let builder = builder(&limits);
            let serving = tokio::spawn(async move {
                let _ = builder
                    .serve_connection(TokioIo::new(server), handler)
                    .await;
            });
            let _ = client.write_all(input).await;
            let _ = client.shutdown().await;
            let mut answer = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(1), client.read_to_end(&mut answer)).await;
            serving.abort();
            answer
        })
    })
}

/// How many connections the kernel may queue before they are accepted
/// (bursts wait there rather than being dropped).
const BACKLOG: u32 = 1024;

/// Binds `address` with a deep backlog (inside the runtime).
fn listen(address: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// The accept loop; whether it ended because it was asked to.
async fn serve(
    listener: tokio::net::TcpListener,
    limits: Limits,
    mut tls: Option<Reloading>,
    service: Arc<dyn Service>,
    mut stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
) -> bool {
    let mut acceptor = Acceptor {
        limits,
        service,
        counters,
        slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        per_peer: Arc::default(),
        builder: builder(&limits),
        graceful: GracefulShutdown::new(),
        tls: tls
            .as_ref()
            .map(|tls| tokio_rustls::TlsAcceptor::from(tls.current())),
        handshake_log: Arc::new(PeerLog::new(HANDSHAKE_LOG_EVERY, 4096)),
    };
    let mut reload = tokio::time::interval(crate::tls::RELOAD_CHECK);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            _ = reload.tick(), if tls.is_some() => {
                if let Some(tls) = &mut tls {
                    acceptor.reload_tls(tls);
                }
            }
            accepted = listener.accept() => {
                if let Ok((stream, peer)) = accepted {
                    acceptor.connection(stream, peer);
                } else {
                    // Out of descriptors or the like: wait for some to be
                    // freed, never give up the listener.
                    acceptor.counters.accept_errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = acceptor.graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {}
    }
    true
}

type ResponseBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// A response that also closes the connection (its body, if any, was
/// never read).
fn refuse(status: StatusCode, text: &str) -> http::Response<ResponseBody> {
    let mut response =
        http::Response::new(Full::new(Bytes::from(format!("{text}\n"))).boxed_unsync());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

async fn respond(
    request: http::Request<Incoming>,
    peer: SocketAddr,
    service: Arc<dyn Service>,
    limits: Limits,
    counters: Arc<Counters>,
) -> Result<http::Response<ResponseBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let head = Head {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers,
        peer,
    };
    if let Some(reply) = service.admit(&head) {
        return Ok(close_if_body(reply_to_response(reply), &head));
    }
    let limit = service.body_limit(&head.method, &head.path);
    let announced = head
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = head.headers.contains_key(http::header::TRANSFER_ENCODING);
    if announced.is_some_and(|n| n > limit) || (limit == 0 && chunked) {
        counters.oversized_or_slow.fetch_add(1, Ordering::Relaxed);
        return Ok(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is too large",
        ));
    }
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    let body = match tokio::time::timeout(limits.body_timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => {
            counters.oversized_or_slow.fetch_add(1, Ordering::Relaxed);
            return Ok(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is too large",
            ));
        }
        Err(_) => {
            counters.oversized_or_slow.fetch_add(1, Ordering::Relaxed);
            return Ok(refuse(StatusCode::REQUEST_TIMEOUT, "the body was too slow"));
        }
    };
    let request = Request { head, body };
    let reply = tokio::task::spawn_blocking(move || service.handle(request)).await;
    Ok(match reply {
        Ok(reply) => reply_to_response(reply),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "the handler failed"),
    })
}

/// A refusal before the body was read closes the connection when a body
/// was announced (it is never drained).
fn close_if_body(
    mut response: http::Response<ResponseBody>,
    head: &Head,
) -> http::Response<ResponseBody> {
    let announced = head
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
        || head.headers.contains_key(http::header::TRANSFER_ENCODING);
    if announced {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn reply_to_response(reply: Reply) -> http::Response<ResponseBody> {
    match reply {
        Reply::Full {
            status,
            content_type,
            body,
            headers: extra,
        } => {
            let mut response = http::Response::new(Full::new(body).boxed_unsync());
            *response.status_mut() = status;
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            for (name, value) in extra {
                headers.insert(
                    http::header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
            if status == StatusCode::UNAUTHORIZED {
                headers.insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer"),
                );
            }
            response
        }
        Reply::Stream {
            content_type,
            content_encoding,
            chunks,
        } => {
            let mut response = http::Response::new(StreamBody(chunks).boxed_unsync());
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Some(encoding) = content_encoding {
                headers.insert(
                    http::header::CONTENT_ENCODING,
                    HeaderValue::from_static(encoding),
                );
            }
            headers.insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            );
            response
        }
    }
}

/// A body whose pieces come from a stream, ending when it does (polled
/// only when the connection can take more: a stream never runs ahead of
/// its client).
struct StreamBody(Chunks);

impl Body for StreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}
