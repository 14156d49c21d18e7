//! Builders and readers shared by the ip-index tests.

#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;
use std::path::PathBuf;

use edgewise_ip_index::{
    Change, IpIndex, Lookup, Object, ObjectMeta, OwnerRef, Pod, PodPhase, Service, Timestamp,
};

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A Running, Ready pod owned by a ReplicaSet, started at `started`.
pub fn pod(uid: &str, namespace: &str, name: &str, ips: &[&str], started: i64) -> Pod {
    let mut pod = Pod::default();
    pod.meta = ObjectMeta {
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
        uid: Some(uid.to_owned()),
        owner: name.rsplit_once('-').map(|(rs, _)| OwnerRef {
            kind: "ReplicaSet".to_owned(),
            name: rs.to_owned(),
        }),
        ..ObjectMeta::default()
    };
    pod.ips = ips.iter().map(|text| ip(text)).collect();
    pod.phase = PodPhase::Running;
    pod.ready = true;
    pod.started = Some(Timestamp(started));
    pod.service_account = Some("default".to_owned());
    pod
}

pub fn service(uid: &str, namespace: &str, name: &str, ips: &[&str]) -> Service {
    Service {
        meta: ObjectMeta {
            namespace: Some(namespace.to_owned()),
            name: name.to_owned(),
            uid: Some(uid.to_owned()),
            ..ObjectMeta::default()
        },
        cluster_ips: ips.iter().map(|text| ip(text)).collect(),
    }
}

pub fn upsert(index: &mut IpIndex, object: impl Into<Wrapped>) {
    index.apply(Change::Upsert(object.into().0));
    index.publish();
}

pub fn delete(index: &mut IpIndex, object: impl Into<Wrapped>) {
    index.apply(Change::Delete(object.into().0));
    index.publish();
}

pub struct Wrapped(pub Object);

impl From<Pod> for Wrapped {
    fn from(pod: Pod) -> Self {
        Self(Object::Pod(pod))
    }
}

impl From<Service> for Wrapped {
    fn from(service: Service) -> Self {
        Self(Object::Service(service))
    }
}

/// What an address resolves to, as short text: `ns/name`,
/// `ambiguous(a, b)`, `range(label)` or `unknown`.
pub fn owner(index: &IpIndex, address: &str) -> String {
    describe(index.snapshot().lookup(ip(address)))
}

pub fn describe(lookup: Lookup<'_>) -> String {
    match lookup {
        Lookup::Object(object) => object.to_string(),
        Lookup::Ambiguous(objects) => format!(
            "ambiguous({})",
            objects
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Lookup::Range(label) => format!("range({label})"),
        Lookup::Unknown => "unknown".to_owned(),
    }
}
