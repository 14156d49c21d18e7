//! A pod identity for the identity tests.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use edgewise_ip_index::{ClusterObject, ObjectKind};

/// A pod named `name` in namespace `ns`.
pub fn pod(name: &str) -> ClusterObject {
    ClusterObject {
        kind: ObjectKind::Pod,
        namespace: Some("ns".into()),
        name: name.into(),
        uid: None,
        workload: None,
        labels: BTreeMap::new(),
        service_account: None,
        node_name: None,
        named_ports: Vec::new(),
        display: format!("ns/{name}").into(),
    }
}
