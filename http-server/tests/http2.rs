//! HTTP/2 on the same listener as HTTP/1.1: a client that opens with the
//! HTTP/2 preface (prior knowledge, as over TLS after ALPN picks `h2`)
//! gets its requests answered over HTTP/2, several streams on one
//! connection, with the same routes and limits.

use std::sync::Arc;

use bytes::Bytes;
use edgewise_http_server::{Head, Limits, Method, Reply, Request, Server, Service, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};

struct Routes;

impl Service for Routes {
    fn body_limit(&self, _method: &Method, _path: &str) -> u64 {
        0
    }

    fn admit(&self, head: &Head) -> Option<Reply> {
        (head.path == "/healthz").then(|| Reply::text(StatusCode::OK, "ok\n"))
    }

    fn handle(&self, request: Request) -> Reply {
        Reply::text(StatusCode::OK, request.head.path)
    }
}

#[test]
fn http2_requests_are_answered_on_the_same_listener() {
    let server = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        Limits::default(),
        None,
        Arc::new(Routes),
    )
    .unwrap();
    let address = server.local_addr();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        for path in ["/healthz", "/a", "/b"] {
            let request = http::Request::get(format!("http://localhost{path}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.version(), http::Version::HTTP_2);
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let want = if path == "/healthz" { "ok\n" } else { path };
            assert_eq!(body, want.as_bytes());
        }
    });
}
