//! The follower against a hostile server: endless `data:` lines, an
//! endless line, a baseline bigger than allowed. Each ends the session
//! with the reason and bounded memory, and the follower tries again.

#![cfg(feature = "http")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgewise_identity::IdentityClient;
use edgewise_identity::http::{FollowConfig, FollowEvent, Transport, follow};

/// A server that answers every request with `head` and then writes
/// `chunk` until the client goes.
fn hostile(head: &'static str, chunk: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline && stream.write_all(chunk).is_ok() {}
            });
        }
    });
    url
}

/// Follows `url` until the first disconnection; its reason.
fn first_disconnection(url: &str) -> String {
    let stop = Arc::new(AtomicBool::new(false));
    let reason = Arc::new(Mutex::new(None::<String>));
    let thread = {
        let (stop, reason, url) = (Arc::clone(&stop), Arc::clone(&reason), url.to_owned());
        std::thread::spawn(move || {
            let mut client = IdentityClient::default();
            let config = FollowConfig::new(url);
            let transport = Transport::new(&config).unwrap();
            follow(&mut client, &config, &transport, &stop, |_, event| {
                if let FollowEvent::Disconnected(why) = event {
                    reason.lock().unwrap().get_or_insert_with(|| why.clone());
                    stop.store(true, Ordering::Relaxed);
                }
            });
        })
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while reason.lock().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = thread.join();
    let why = reason.lock().unwrap().clone();
    why.expect("the session ended")
}

const STREAM_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";

#[test]
fn endless_data_lines_end_the_session() {
    let url = hostile(
        STREAM_HEAD,
        b"data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    );
    let why = first_disconnection(&url);
    assert!(why.contains("an event larger than"), "{why}");
}

#[test]
fn a_hello_of_another_version_ends_the_session() {
    let url = hostile(
        STREAM_HEAD,
        b"event: hello\ndata: {\"schema\":\"edgewise.identity-hello/v2\",\"epoch\":1,\"seq\":0,\"resumed\":false}\n\n",
    );
    let why = first_disconnection(&url);
    assert!(
        why.contains("a bad hello") && why.contains("edgewise.identity-hello/v2"),
        "{why}"
    );
}

#[test]
fn an_endless_line_ends_the_session() {
    let url = hostile(
        STREAM_HEAD,
        b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    );
    let why = first_disconnection(&url);
    assert!(why.contains("an event line longer than"), "{why}");
}

#[test]
fn an_error_status_is_told_from_other_failures() {
    let url = hostile("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", b"");
    let why = first_disconnection(&url);
    assert!(why.ends_with(": the server answered 404"), "{why}");
}

#[test]
fn an_unreadable_token_file_is_a_file_error_with_its_cause() {
    let mut config = FollowConfig::new("http://127.0.0.1:9");
    config.token_file = Some("/nonexistent/edgewise-token".into());
    let error = Transport::new(&config).unwrap_err();
    let edgewise_identity::IdentityError::File { path, source } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(path.to_str(), Some("/nonexistent/edgewise-token"));
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert!(std::error::Error::source(&error).is_some());
}
