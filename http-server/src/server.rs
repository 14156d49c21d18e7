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
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::io::WriteDeadline;
use crate::{Head, Limits, Reply, Request, Service, StatusCode};

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
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    accept_errors: AtomicU64,
    oversized_or_slow: AtomicU64,
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
    /// `limits` until dropped.
    ///
    /// # Errors
    /// The bind's error, or the thread's when it cannot be started.
    pub fn start(
        address: SocketAddr,
        limits: Limits,
        service: Arc<dyn Service>,
    ) -> io::Result<Self> {
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
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_io()
                        .enable_time()
                        .max_blocking_threads(8)
                        .build()
                    {
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
                        runtime.block_on(serve(listener, limits, service, stopped, counters));
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
        let c = &self.counters;
        ServerStats {
            connections: c.connections.load(Ordering::Relaxed),
            accepted: c.accepted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            accept_errors: c.accept_errors.load(Ordering::Relaxed),
            oversized_or_slow: c.oversized_or_slow.load(Ordering::Relaxed),
        }
    }

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

/// The most connections one peer address may hold at once: a share of
/// the cap, so that one client cannot take every slot from the probes.
fn per_peer_cap(limits: &Limits) -> usize {
    (limits.max_connections / 8).max(4)
}

/// What the accept loop hands each connection.
struct Acceptor {
    limits: Limits,
    service: Arc<dyn Service>,
    counters: Arc<Counters>,
    slots: Arc<Semaphore>,
    per_peer: Arc<Mutex<HashMap<IpAddr, usize, foldhash::fast::RandomState>>>,
    builder: http1::Builder,
    graceful: GracefulShutdown,
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
        let io = TokioIo::new(WriteDeadline::new(stream, self.limits.write_timeout));
        let handler = handler(
            peer,
            Arc::clone(&self.service),
            self.limits,
            Arc::clone(counters),
        );
        let connection = self
            .graceful
            .watch(self.builder.serve_connection(io, handler));
        let (counters, per_peer) = (Arc::clone(counters), Arc::clone(&self.per_peer));
        counters.connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _ = connection.await;
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

/// hyper's HTTP/1 settings for `limits`.
fn http1_builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_header_size(limits.max_header_bytes);
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
            let builder = http1_builder(&limits);
            let connection = builder.serve_connection(TokioIo::new(server), handler);
            let serving = tokio::spawn(connection);
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
    service: Arc<dyn Service>,
    mut stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
) -> bool {
    let builder = http1_builder(&limits);
    let acceptor = Acceptor {
        limits,
        service,
        counters,
        slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        per_peer: Arc::default(),
        builder,
        graceful: GracefulShutdown::new(),
    };
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
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

type ResponseBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A response that also closes the connection (its body, if any, was
/// never read).
fn refuse(status: StatusCode, text: &str) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(Full::new(Bytes::from(format!("{text}\n"))).boxed());
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
        } => {
            let mut response = http::Response::new(Full::new(body).boxed());
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        Reply::Stream {
            content_type,
            chunks,
        } => {
            let mut response = http::Response::new(ChannelBody(chunks).boxed());
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            );
            response
        }
    }
}

/// A body whose pieces come from a channel, ending when it closes.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}
