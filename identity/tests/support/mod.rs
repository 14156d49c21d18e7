//! A pod identity for the identity tests.

#![allow(dead_code, unreachable_pub)]

use edgewise_ip_index::{ClusterObject, ObjectKind};

/// A pod named `name` in namespace `ns`.
pub fn pod(name: &str) -> ClusterObject {
    ClusterObject::new(ObjectKind::Pod, Some("ns"), name)
}
