//! The baseline: a MaxMind DB file of identities, one `/32` or `/128` per
//! address (IPv4 in the IPv6 tree, as MaxMind's own databases store it), and
//! its version.
//!
//! Schema of a record: the JSON form of
//! [`edgewise_ip_index::ClusterObject`] as an MMDB map: `kind` (`Pod`,
//! `Service` or `Node`), `name`, `display`, and when known `namespace`,
//! `uid`, `workload` (`namespace`, `kind`, `name`), `labels` (a map),
//! `service_account`, `node_name`, `named_ports` (an array of `name`,
//! `port`, `protocol`). The application name is the `app.kubernetes.io/name`
//! or `app` label ([`edgewise_ip_index::ClusterObject::app`]).
//!
//! Metadata: `database_type` is [`DATABASE_TYPE`]; the `description` map
//! carries the record schema's tag under `edgewise.schema`
//! ([`BASELINE_SCHEMA`]; a file without it is read as this version, one
//! with another is refused) and the version under the keys
//! `edgewise.epoch` and `edgewise.seq`
//! (new top-level metadata keys break other readers), beside an `en`
//! description.
//!
//! Reading checks everything: a file that is not an MMDB, of another
//! `database_type`, without a version, with a network wider than one
//! address, or with a record that is not an identity is an
//! [`IdentityError`] naming the network, and nothing is loaded.

use core::net::IpAddr;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use edgewise_ip_index::{ClusterObject, ip_key, ip_of};
use mmdb_writer::Writer;
use mmdb_writer::ipnet::IpNet;

use crate::{IdentityError, Map};

/// The `database_type` of an edgewise identity MMDB.
pub const DATABASE_TYPE: &str = "edgewise-identity";

/// The tag of the records' schema, under `edgewise.schema` in the
/// MMDB's `description`.
pub const BASELINE_SCHEMA: &str = "edgewise.identity-baseline/v1";

/// Where a baseline or delta stands in a producer's history: deltas of one
/// epoch are numbered by `seq` without gaps, and a producer that restarts
/// without its history starts a greater epoch (its start time, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// The producer's epoch.
    pub epoch: u64,
    /// The last delta included.
    pub seq: u64,
}

/// Identities by address, at one [`Version`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    version: Version,
    entries: Map<u128, Arc<ClusterObject>>,
}

impl Baseline {
    /// A baseline of `entries` at `version` (a later entry for the same
    /// address wins).
    pub fn new(
        version: Version,
        entries: impl IntoIterator<Item = (IpAddr, Arc<ClusterObject>)>,
    ) -> Self {
        Self {
            version,
            entries: entries.into_iter().map(|(ip, o)| (ip_key(ip), o)).collect(),
        }
    }

    /// Reads an identity MMDB (see the module docs).
    ///
    /// # Errors
    /// [`IdentityError::Mmdb`], [`IdentityError::NotIdentity`] or
    /// [`IdentityError::Record`].
    pub fn from_mmdb(bytes: &[u8]) -> Result<Self, IdentityError> {
        let reader = maxminddb::Reader::from_source(bytes).map_err(|e| IdentityError::Mmdb {
            source: Arc::new(e),
        })?;
        let metadata = reader.metadata();
        if metadata.database_type != DATABASE_TYPE {
            return Err(IdentityError::NotIdentity(format!(
                "database_type is {:?}, not {DATABASE_TYPE:?}",
                metadata.database_type
            )));
        }
        if let Some(schema) = metadata.description.get("edgewise.schema")
            && schema != BASELINE_SCHEMA
        {
            return Err(IdentityError::NotIdentity(format!(
                "edgewise.schema is {schema:?}, not {BASELINE_SCHEMA:?}"
            )));
        }
        let number = |key: &str| {
            metadata
                .description
                .get(key)
                .and_then(|text| text.parse::<u64>().ok())
                .ok_or_else(|| {
                    IdentityError::NotIdentity(format!("description has no number under {key:?}"))
                })
        };
        let version = Version {
            epoch: number("edgewise.epoch")?,
            seq: number("edgewise.seq")?,
        };
        let mut entries = Map::default();
        let networks = reader
            .networks(maxminddb::WithinOptions::default())
            .map_err(|e| IdentityError::Mmdb {
                source: Arc::new(e),
            })?;
        for item in networks {
            let item = item.map_err(|e| IdentityError::Mmdb {
                source: Arc::new(e),
            })?;
            let network = item.network().map_err(|e| IdentityError::Mmdb {
                source: Arc::new(e),
            })?;
            let record = |problem: String| IdentityError::Record {
                network: network.to_string(),
                problem,
            };
            let host_bits = if network.is_ipv4() { 32 } else { 128 };
            if network.prefix() != host_bits {
                return Err(record("a network wider than one address".to_owned()));
            }
            let object: ClusterObject = item
                .decode()
                .map_err(|e| record(e.to_string()))?
                .ok_or_else(|| record("no data".to_owned()))?;
            entries.insert(ip_key(network.ip()), Arc::new(object));
        }
        Ok(Self { version, entries })
    }

    /// Writes the baseline as an identity MMDB, stamped with `built` (pass
    /// a fixed time for byte-identical builds).
    ///
    /// # Errors
    /// [`IdentityError::Write`] if the writer refuses a record.
    pub fn to_mmdb(&self, built: SystemTime) -> Result<Vec<u8>, IdentityError> {
        let epoch = self.version.epoch.to_string();
        let seq = self.version.seq.to_string();
        let mut writer = Writer::builder(DATABASE_TYPE)
            .description(&[
                (
                    "en",
                    "edgewise identities: IP -> Kubernetes pod, service or node",
                ),
                ("edgewise.schema", BASELINE_SCHEMA),
                ("edgewise.epoch", &epoch),
                ("edgewise.seq", &seq),
            ])
            .build_epoch(built)
            .build();
        // Sorted, so that equal baselines give equal bytes.
        let sorted: BTreeMap<u128, &Arc<ClusterObject>> =
            self.entries.iter().map(|(k, v)| (*k, v)).collect();
        for (key, object) in sorted {
            writer
                .insert(IpNet::from(ip_of(key)), &**object)
                .map_err(|e| IdentityError::Write {
                    source: Arc::new(e),
                })?;
        }
        writer.to_bytes().map_err(|e| IdentityError::Write {
            source: Arc::new(e),
        })
    }

    /// The version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The identity of `ip`.
    pub fn get(&self, ip: IpAddr) -> Option<&Arc<ClusterObject>> {
        self.entries.get(&ip_key(ip))
    }

    /// Every address and identity, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, &Arc<ClusterObject>)> {
        self.entries
            .iter()
            .map(|(key, object)| (ip_of(*key), object))
    }

    /// How many addresses.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn into_parts(self) -> (Version, Map<u128, Arc<ClusterObject>>) {
        (self.version, self.entries)
    }
}

/// Seconds since the Unix epoch as a [`SystemTime`] (for [`Baseline::to_mmdb`]).
pub fn unix_time(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}
