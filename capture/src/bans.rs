//! The per-edge drop map (`banned_edges`, an LRU hash in the kernel): an
//! edge banned until a deadline has its packets dropped by the observers
//! (client to server, matched on addresses, server port and protocol) and
//! counted; once the deadline passes its packets pass again. Deadlines are
//! on the kernel's monotonic clock (`bpf_ktime_get_ns`).
//!
//! A [`BanTable`] comes from a running [`crate::Capture`] or, from another
//! process, from the map's pin ([`BanTable::open_pinned`]).

use core::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use aya::maps::{HashMap, Map, MapData, MapError};

use crate::CaptureError;
use crate::sys::{BanValue, EdgeKey, monotonic_ns, nanos};

/// The map's name in the object.
pub const MAP_BANNED_EDGES: &str = "banned_edges";

/// An edge to ban: client address to server address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Edge {
    /// The client.
    pub src: IpAddr,
    /// The server.
    pub dst: IpAddr,
    /// The server's port.
    pub dst_port: u16,
    /// The IP protocol number: 6 (TCP) or 17 (UDP).
    pub protocol: u8,
}

impl Edge {
    fn key(&self) -> EdgeKey {
        let (src, dst) = (self.src.to_canonical(), self.dst.to_canonical());
        let bytes = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&v4.octets());
                b
            }
            IpAddr::V6(v6) => v6.octets(),
        };
        EdgeKey {
            src: bytes(src),
            dst: bytes(dst),
            dst_port: self.dst_port,
            protocol: self.protocol,
            // A mixed-family edge matches no packet, as it should.
            family: if src.is_ipv4() { 4 } else { 6 },
            pad: 0,
        }
    }

    fn of(key: &EdgeKey) -> Self {
        let ip = |b: [u8; 16]| {
            if key.family == 4 {
                IpAddr::from([b[0], b[1], b[2], b[3]])
            } else {
                IpAddr::from(b)
            }
        };
        Self {
            src: ip(key.src),
            dst: ip(key.dst),
            dst_port: key.dst_port,
            protocol: key.protocol,
        }
    }
}

/// A ban as the kernel holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    /// The edge.
    pub edge: Edge,
    /// How long it still holds (zero once expired).
    pub remaining: Duration,
    /// Packets dropped for it.
    pub drops: u64,
}

/// The drop map (see the module docs).
pub struct BanTable {
    map: HashMap<MapData, EdgeKey, BanValue>,
}

fn map_error(source: MapError) -> CaptureError {
    CaptureError::Map {
        map: MAP_BANNED_EDGES,
        source: Box::new(source),
    }
}

impl BanTable {
    pub(crate) fn from_map(map: Map) -> Result<Self, CaptureError> {
        Ok(Self {
            map: HashMap::try_from(map).map_err(map_error)?,
        })
    }

    /// Opens the map another process pinned at `path` (see
    /// [`crate::CaptureConfig::pin_dir`]).
    ///
    /// # Errors
    /// [`CaptureError::Map`] if there is no such pin or it is not the map.
    pub fn open_pinned(path: &Path) -> Result<Self, CaptureError> {
        let data = MapData::from_pin(path).map_err(map_error)?;
        Self::from_map(Map::from_map_data(data).map_err(map_error)?)
    }

    /// Bans `edge` for `ttl` from now (replacing an earlier deadline; the
    /// drop count carries on).
    ///
    /// # Errors
    /// [`CaptureError::Map`] if the kernel refuses the update.
    pub fn ban(&mut self, edge: &Edge, ttl: Duration) -> Result<(), CaptureError> {
        let key = edge.key();
        let drops = self.map.get(&key, 0).map_or(0, |ban| ban.drops);
        let value = BanValue {
            expires_ns: monotonic_ns().saturating_add(nanos(ttl)),
            drops,
        };
        self.map.insert(key, value, 0).map_err(map_error)
    }

    /// Lifts the ban on `edge`; whether there was one.
    ///
    /// # Errors
    /// [`CaptureError::Map`] if the kernel refuses the delete.
    pub fn unban(&mut self, edge: &Edge) -> Result<bool, CaptureError> {
        match self.map.remove(&edge.key()) {
            Ok(()) => Ok(true),
            Err(MapError::KeyNotFound) => Ok(false),
            Err(MapError::SyscallError(error))
                if error.io_error.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(false)
            }
            Err(error) => Err(map_error(error)),
        }
    }

    /// Every ban held, expired ones included (with zero remaining).
    ///
    /// # Errors
    /// [`CaptureError::Map`] if the map cannot be read.
    pub fn bans(&self) -> Result<Vec<Ban>, CaptureError> {
        let now = monotonic_ns();
        self.map
            .iter()
            .map(|entry| {
                let (key, value) = entry.map_err(map_error)?;
                Ok(Ban {
                    edge: Edge::of(&key),
                    remaining: Duration::from_nanos(value.expires_ns.saturating_sub(now)),
                    drops: value.drops,
                })
            })
            .collect()
    }
}
