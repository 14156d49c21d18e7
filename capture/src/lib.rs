//! edgewise's sensor: eBPF observers written in C (`bpf/observer.bpf.c`),
//! built by `build.rs` with clang-19 (the object is also committed, so a
//! machine without clang builds), loaded and attached with aya 0.14.
//!
//! The observers (tc/tcx ingress and egress, and an XDP variant for
//! ingress) emit, into one ring buffer (its size configurable):
//! - SYN and SYN-ACK events, with the raw TCP header and options;
//! - DNS responses (UDP from port 53, payload up to a configured size);
//! - each flow's first payload (a banner of up to 2 KB, deduplicated per
//!   flow in an LRU map), and the payloads after it while they continue a
//!   TLS handshake record it began;
//! - flow samples, at most one per flow per configured window, so that
//!   connections older than the observer still become edges.
//!
//! Per-CPU counters count events emitted, events lost to a full ring and
//! packets dropped. The per-edge drop map ([`bans`]: an edge banned until a
//! deadline has its packets dropped and counted; expired bans pass) can be
//! pinned in bpffs so another process can ban through it (unpinned when
//! bpffs is absent). Every other packet is left to the programs after the
//! observers (`TC_ACT_UNSPEC`, `XDP_PASS`).
//!
//! [`attach`] says where and how: tcx first in the chain, classic clsact
//! filters or XDP as configured fallbacks, `auto` for the default-route
//! interface, inside a named network namespace if asked; dropping the
//! [`Capture`] detaches everything, and when the loading process dies its
//! tcx and XDP links go and traffic passes.
//!
//! [`follow`] keeps sensors on every interface whose name matches a
//! pattern (`cali*`, `lxc*`, a name, `auto`) as links come and go, told by
//! netlink ([`links`]); an attach that fails on one interface is reported
//! and the rest keep running. [`packets`] is the passive sensor for hosts
//! where programs may not be attached: packet sockets with a classic BPF
//! filter, their packets turned into the same events by the replay's
//! rules.
//!
//! [`event`] decodes the ring's records without copying; [`replay`] turns a
//! pcap or pcapng file into the same events by the same rules, for
//! `edgewise replay` and for tests; [`first_bytes`] puts a flow's first
//! bytes back together when a TLS hello spans segments.
//!
//! [`secrets`] is the secret-volume observer: opens for reading of files
//! in pods' secret volumes (an LSM or fentry program on file opens,
//! filtered in the kernel by the volumes' devices), with the parsing that
//! names the volumes (the mount table) and the readers' pods (cgroups).
//!
//! The egress observer can be limited to source networks (the pod CIDRs)
//! with [`CaptureConfig::egress_sources`].

//!
//! Without the `kernel` feature (on by default) the crate is the event
//! vocabulary ([`event`], [`first_bytes`]) and the replay source ([`replay`]) alone, with no
//! aya and no system calls: what a sans-IO consumer such as
//! `edgewise-pipeline` needs.

// The edgewise crates whose types this crate's API uses, so that a user
// names them at the version this crate was built with.
#[cfg(feature = "kernel")]
pub use edgewise_edge_set as edge_set;
#[cfg(feature = "kernel")]
pub use edgewise_ip_index as ip_index;
pub use edgewise_packet as packet;
pub use edgewise_time as time;

pub mod event;
pub mod first_bytes;
pub mod replay;
pub mod secrets;

#[cfg(feature = "kernel")]
pub mod attach;
#[cfg(feature = "kernel")]
pub mod bans;
#[cfg(feature = "kernel")]
pub mod follow;
#[cfg(feature = "kernel")]
mod kernel;
#[cfg(feature = "kernel")]
pub mod links;
#[cfg(feature = "kernel")]
pub mod packets;
#[cfg(feature = "kernel")]
mod sys;

#[cfg(feature = "kernel")]
pub use attach::{AUTO, AttachMode, Attachment, PROGRAM_XDP, tcx_programs};
#[cfg(feature = "kernel")]
pub use bans::{BAN_GATE_PIN_NAME, BANS_PIN_NAME, Ban, BanTable, MAP_BAN_GATE, MAP_BANNED_EDGES};
pub use event::{Direction, Event, EventError, EventKind, decode};
#[cfg(feature = "kernel")]
pub use follow::{Change, Failure, Follower, InterfacePattern, Sensor};
#[cfg(feature = "kernel")]
pub use kernel::*;
#[cfg(feature = "kernel")]
pub use packets::PacketCapture;
pub use replay::{Replay, ReplayConfig};
