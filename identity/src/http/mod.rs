//! The HTTP transport (feature `http`): [`IdentityServer`] serves a
//! producer's baseline and delta stream, [`follow`] keeps an
//! [`crate::IdentityClient`] in step with one. Plain HTTP (put TLS in front
//! for anything but a node-local or mesh-protected link).

mod follow;
mod server;
pub(crate) mod sse;

pub use follow::{FollowConfig, FollowEvent, follow};
pub use server::{IdentityServer, ServerConfig};
