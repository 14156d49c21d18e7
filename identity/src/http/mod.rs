//! The HTTP transport (feature `http`): [`IdentityServer`] serves a
//! producer's identity and policy channels (baselines and delta streams)
//! over HTTP/1.1 or HTTP/2, in the clear or over TLS, with bearer tokens
//! and a follower cap; [`follow`] keeps an [`crate::IdentityClient`] or a
//! [`crate::PolicyClient`] in step with one.

mod channel;
mod follow;
mod metrics;
mod server;
pub mod sse;

pub use edgewise_http_server::TlsFiles;
pub use follow::{FollowConfig, FollowEvent, LineOutcome, StreamClient, Transport, follow};
pub use server::{HELLO_SCHEMA, IdentityServer, ServerConfig};
