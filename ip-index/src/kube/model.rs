//! The fields of Pod, Service and Node JSON that the index reads, as serde
//! structs. Every field is optional and `null` is accepted wherever the API
//! server may write it; unknown fields are ignored. A field of the wrong JSON
//! type is an error (named by [`super`] with the object it belongs to).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawObject {
    pub(crate) kind: Option<String>,
    pub(crate) metadata: Option<RawMeta>,
    pub(crate) spec: Option<RawSpec>,
    pub(crate) status: Option<RawStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RawMeta {
    pub(crate) name: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) uid: Option<String>,
    pub(crate) resource_version: Option<String>,
    pub(crate) labels: Option<BTreeMap<String, String>>,
    pub(crate) owner_references: Option<Vec<RawOwner>>,
    pub(crate) creation_timestamp: Option<String>,
    pub(crate) deletion_timestamp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawOwner {
    pub(crate) kind: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) controller: Option<bool>,
}

/// Pod and Service specs share this struct: each reads only its own fields.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RawSpec {
    pub(crate) host_network: Option<bool>,
    pub(crate) service_account_name: Option<String>,
    /// Deprecated alias of `serviceAccountName`, still written by old clients.
    pub(crate) service_account: Option<String>,
    pub(crate) node_name: Option<String>,
    #[serde(rename = "clusterIP")]
    pub(crate) cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs")]
    pub(crate) cluster_ips: Option<Vec<String>>,
    pub(crate) containers: Option<Vec<RawContainer>>,
    pub(crate) volumes: Option<Vec<crate::volumes::RawVolume>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawContainer {
    pub(crate) ports: Option<Vec<RawContainerPort>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RawContainerPort {
    pub(crate) name: Option<String>,
    pub(crate) container_port: Option<i64>,
    pub(crate) protocol: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RawStatus {
    pub(crate) phase: Option<String>,
    #[serde(rename = "podIP")]
    pub(crate) pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pub(crate) pod_ips: Option<Vec<RawPodIp>>,
    pub(crate) start_time: Option<String>,
    pub(crate) conditions: Option<Vec<RawCondition>>,
    pub(crate) addresses: Option<Vec<RawAddress>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawPodIp {
    pub(crate) ip: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawCondition {
    #[serde(rename = "type")]
    pub(crate) condition_type: Option<String>,
    pub(crate) status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAddress {
    #[serde(rename = "type")]
    pub(crate) address_type: Option<String>,
    pub(crate) address: Option<String>,
}
