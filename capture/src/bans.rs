//! The per-edge drop map (`banned_edges`, an LRU hash in the kernel): an
//! edge banned until a deadline has its packets dropped by the observers
//! (client to server, matched on addresses, server port and protocol) and
//! counted, and reported as an [`crate::EventKind::Drop`] event at most once
//! a second per edge; once the deadline passes its packets pass again. Deadlines are
//! on the kernel's monotonic clock (`bpf_ktime_get_ns`).
//!
//! Beside it, `ban_gate` holds a time no ban outlasts, so that while no ban
//! holds a packet costs the observers one array read instead of a hash
//! lookup. [`BanTable::ban`] raises it; only [`BanTable::sweep`] lowers it,
//! after removing the expired bans, and then re-reads the map and raises it
//! again for any ban another process set meanwhile (such a ban may go
//! unenforced for the microseconds in between).
//!
//! A [`BanTable`] comes from a running [`crate::Capture`] or, from another
//! process, from the maps' pins ([`BanTable::open_pinned`]).

use core::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use aya::maps::{Array, HashMap, Map, MapData, MapError};

use crate::CaptureError;
use edgewise_edge_set::EdgeKey;
use edgewise_ip_index::Protocol;

use crate::sys::{BanValue, EdgeKey as KernelEdgeKey, monotonic_ns, nanos};

/// The drop map's name in the object.
pub const MAP_BANNED_EDGES: &str = "banned_edges";
/// The gate's name in the object.
pub const MAP_BAN_GATE: &str = "ban_gate";
/// The file name of the drop map's pin: versioned, because reusing a pin
/// does not check the map's layout.
pub const BANS_PIN_NAME: &str = "edgewise_banned_edges_v3";
/// The file name of the gate's pin, beside the drop map's.
pub const BAN_GATE_PIN_NAME: &str = "edgewise_ban_gate_v3";

/// The drop map's key for `edge`.
fn key_of(edge: &EdgeKey) -> KernelEdgeKey {
    let (src, dst) = (edge.src.to_canonical(), edge.dst.to_canonical());
    let bytes = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            b
        }
        IpAddr::V6(v6) => v6.octets(),
    };
    KernelEdgeKey {
        src: bytes(src),
        dst: bytes(dst),
        dst_port: edge.port,
        protocol: edge.protocol.number(),
        // A mixed-family edge matches no packet, as it should.
        family: if src.is_ipv4() { 4 } else { 6 },
        pad: 0,
    }
}

/// The edge of a drop-map key; `None` for a protocol no ban of ours has
/// (another writer's entry).
fn edge_of(key: &KernelEdgeKey) -> Option<EdgeKey> {
    let ip = |b: [u8; 16]| {
        if key.family == 4 {
            IpAddr::from([b[0], b[1], b[2], b[3]])
        } else {
            IpAddr::from(b)
        }
    };
    Some(EdgeKey {
        src: ip(key.src),
        dst: ip(key.dst),
        port: key.dst_port,
        protocol: Protocol::try_from(key.protocol).ok()?,
    })
}

/// A ban as the kernel holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    /// The edge.
    pub edge: EdgeKey,
    /// How long it still holds (zero once expired).
    pub remaining: Duration,
    /// Packets dropped for it.
    pub drops: u64,
}

/// The drop map (see the module docs).
pub struct BanTable {
    map: HashMap<MapData, KernelEdgeKey, BanValue>,
    gate: Array<MapData, u64>,
}

fn map_error(source: MapError) -> CaptureError {
    CaptureError::Map {
        map: MAP_BANNED_EDGES,
        source: Box::new(source),
    }
}

fn gate_error(source: MapError) -> CaptureError {
    CaptureError::Map {
        map: MAP_BAN_GATE,
        source: Box::new(source),
    }
}

impl BanTable {
    pub(crate) fn from_maps(map: Map, gate: Map) -> Result<Self, CaptureError> {
        Ok(Self {
            map: HashMap::try_from(map).map_err(map_error)?,
            gate: Array::try_from(gate).map_err(gate_error)?,
        })
    }

    /// Opens the maps another process pinned in `dir` (see
    /// [`crate::CaptureConfig::pin_dir`]).
    ///
    /// # Errors
    /// [`CaptureError::Map`] if there is no such pin or it is not the map.
    pub fn open_pinned(dir: &Path) -> Result<Self, CaptureError> {
        let map = MapData::from_pin(dir.join(BANS_PIN_NAME)).map_err(map_error)?;
        let gate = MapData::from_pin(dir.join(BAN_GATE_PIN_NAME)).map_err(gate_error)?;
        Self::from_maps(
            Map::from_map_data(map).map_err(map_error)?,
            Map::from_map_data(gate).map_err(gate_error)?,
        )
    }

    fn gate(&self) -> Result<u64, CaptureError> {
        self.gate.get(&0, 0).map_err(gate_error)
    }

    /// Raises the gate to at least `until`, writing again if another
    /// process lowered it between the write and the read back.
    fn raise_gate(&mut self, until: u64) -> Result<(), CaptureError> {
        while self.gate()? < until {
            self.gate.set(0, until, 0).map_err(gate_error)?;
        }
        Ok(())
    }

    /// The latest deadline of the bans held, and the expired ones.
    fn scan(&self, now: u64) -> Result<(u64, Vec<KernelEdgeKey>), CaptureError> {
        let (mut latest, mut expired) = (0, Vec::new());
        for entry in &self.map {
            let (key, value) = entry.map_err(map_error)?;
            if value.expires_ns <= now {
                expired.push(key);
            } else {
                latest = latest.max(value.expires_ns);
            }
        }
        Ok((latest, expired))
    }

    /// Removes the expired bans and lowers the gate to the latest deadline
    /// still held (to nothing when none is), so that packets stop paying
    /// for the drop map; returns how many bans it removed. Call it now and
    /// then, such as with each statistics tick.
    ///
    /// # Errors
    /// [`CaptureError::Map`] if the maps cannot be read or written.
    pub fn sweep(&mut self) -> Result<usize, CaptureError> {
        let (latest, expired) = self.scan(monotonic_ns())?;
        let mut removed = 0;
        for key in &expired {
            match self.map.remove(key) {
                Ok(()) => removed += 1,
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(map_error(error)),
            }
        }
        if self.gate()? > latest {
            self.gate.set(0, latest, 0).map_err(gate_error)?;
            // A ban another process set since the scan must not stay
            // behind a lowered gate.
            let (latest_now, _) = self.scan(monotonic_ns())?;
            self.raise_gate(latest_now)?;
        }
        Ok(removed)
    }

    /// Bans `edge` for `ttl` from now (replacing an earlier deadline; the
    /// drop count carries on).
    ///
    /// # Errors
    /// [`CaptureError::Map`] if the kernel refuses the update.
    pub fn ban(&mut self, edge: &EdgeKey, ttl: Duration) -> Result<(), CaptureError> {
        let key = key_of(edge);
        // A refresh keeps the counts and the report clock.
        let held = self.map.get(&key, 0).ok();
        let value = BanValue {
            expires_ns: monotonic_ns().saturating_add(nanos(ttl)),
            drops: held.map_or(0, |ban| ban.drops),
            reported_ns: held.map_or(0, |ban| ban.reported_ns),
            reported_drops: held.map_or(0, |ban| ban.reported_drops),
        };
        self.map.insert(key, value, 0).map_err(map_error)?;
        self.raise_gate(value.expires_ns)
    }

    /// Lifts the ban on `edge`; whether there was one.
    ///
    /// # Errors
    /// [`CaptureError::Map`] if the kernel refuses the delete.
    pub fn unban(&mut self, edge: &EdgeKey) -> Result<bool, CaptureError> {
        match self.map.remove(&key_of(edge)) {
            Ok(()) => Ok(true),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => Err(map_error(error)),
        }
    }

    /// Every ban held, expired ones included (with zero remaining); an
    /// entry of a protocol edgewise does not know is left out.
    ///
    /// # Errors
    /// [`CaptureError::Map`] if the map cannot be read.
    pub fn bans(&self) -> Result<Vec<Ban>, CaptureError> {
        let now = monotonic_ns();
        let mut bans = Vec::new();
        for entry in &self.map {
            let (key, value) = entry.map_err(map_error)?;
            if let Some(edge) = edge_of(&key) {
                bans.push(Ban {
                    edge,
                    remaining: Duration::from_nanos(value.expires_ns.saturating_sub(now)),
                    drops: value.drops,
                });
            }
        }
        Ok(bans)
    }
}

/// Whether a map operation failed only because the key was not there.
fn is_not_found(error: &MapError) -> bool {
    match error {
        MapError::KeyNotFound => true,
        MapError::SyscallError(error) => error.io_error.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}
