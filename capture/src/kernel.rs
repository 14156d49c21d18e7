//! The kernel side: loading the observer object with aya, attaching it
//! ([`crate::attach`]), reading its ring buffer and counters, and its drop
//! map ([`crate::bans`]). Behind the `kernel` feature (on by default).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aya::maps::{MapData, MapError, PerCpuArray, RingBuf};
use aya::programs::ProgramError;
use aya::{Ebpf, EbpfError, EbpfLoader};
use edgewise_time::{MonotonicNanos, MonotonicOffset, UnixNanos};
use thiserror::Error;

use crate::attach::{self, AttachMode, Attachment, LinkHandle};
use crate::bans::{BAN_GATE_PIN_NAME, BANS_PIN_NAME, BanTable, MAP_BAN_GATE, MAP_BANNED_EDGES};
use crate::event::{self, Direction, Event, EventError, decode};
use crate::sys;

/// The observer object (built by `build.rs`).
pub static OBSERVER_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/observer.bpf.o"));

/// The ingress program's name in the object.
pub const PROGRAM_INGRESS: &str = "observe_ingress";
/// The egress program's name in the object.
pub const PROGRAM_EGRESS: &str = "observe_egress";
/// The ingress program for L3 devices (no Ethernet header: ipip, sit,
/// `WireGuard`, tun), chosen at attach by the link type.
pub const PROGRAM_INGRESS_L3: &str = "observe_ingress_l3";
/// The egress program for L3 devices.
pub const PROGRAM_EGRESS_L3: &str = "observe_egress_l3";
/// The empty program's name in the object (see [`Programs::PassThrough`]).
pub const PROGRAM_PASS_THROUGH: &str = "pass_through";

/// Which programs [`Capture::attach`] attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Programs {
    /// The observers.
    #[default]
    Observers,
    /// An empty program that returns `TC_ACT_UNSPEC`, attached the same
    /// way: the baseline a kernel-cost measurement compares with.
    PassThrough,
}
/// The ring buffer's name.
pub const MAP_EVENTS: &str = "events";
/// The egress source filter's name (an LPM trie).
pub const MAP_EGRESS_SOURCES: &str = "egress_sources";
/// The per-CPU counters' name.
pub const MAP_COUNTERS: &str = "counters";

/// Why the capture could not start or read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The object could not be loaded (map creation, relocation, BTF).
    #[error("loading the observer object: {0}")]
    Load(#[source] Box<EbpfError>),
    /// A program could not be loaded; the verifier log is in the source.
    #[error("program {program}: {source}")]
    Program {
        /// The program.
        program: &'static str,
        /// aya's error (with the verifier log when the verifier refused).
        #[source]
        source: Box<ProgramError>,
    },
    /// A program could not be attached to an interface (the error of the
    /// last mode tried).
    #[error("attaching {program} to {interface} ({mode} {direction}): {source}")]
    Attach {
        /// The program.
        program: &'static str,
        /// The interface.
        interface: String,
        /// `ingress` or `egress`.
        direction: &'static str,
        /// How.
        mode: AttachMode,
        /// aya's error.
        #[source]
        source: Box<ProgramError>,
    },
    /// The interface does not exist (in the network namespace attached
    /// to).
    #[error("interface {interface}: {source}")]
    NoInterface {
        /// The interface.
        interface: String,
        /// The lookup's error.
        #[source]
        source: std::io::Error,
    },
    /// No configured mode can attach in that direction (XDP alone for an
    /// egress interface, or no mode at all).
    #[error(
        "no configured attach mode observes {direction} on {interface} (XDP sees ingress only)"
    )]
    NoMode {
        /// The interface.
        interface: String,
        /// `ingress` or `egress`.
        direction: &'static str,
    },
    /// `auto` was asked but the namespace has no default route.
    #[error("interface `auto`: no default route to take the interface from")]
    NoDefaultRoute,
    /// A map is missing or of the wrong type.
    #[error("map {map}: {source}")]
    Map {
        /// The map.
        map: &'static str,
        /// aya's error.
        #[source]
        source: Box<MapError>,
    },
    /// A packet socket could not be opened on an interface.
    #[error("packet socket on {interface}: {source}")]
    Socket {
        /// The interface.
        interface: String,
        /// The failing call's error.
        #[source]
        source: std::io::Error,
    },
    /// Netlink (the interfaces' list and changes) failed.
    #[error("netlink {call}: {source}")]
    Netlink {
        /// What failed.
        call: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The network namespace could not be entered.
    #[error("network namespace: {0}")]
    Netns(#[source] std::io::Error),
    /// Waiting for events failed.
    #[error("poll on the ring buffer: {0}")]
    Poll(#[source] std::io::Error),
}

/// What to attach where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaptureConfig {
    /// Interfaces to observe on ingress.
    pub ingress: Vec<String>,
    /// Interfaces to observe on egress.
    pub egress: Vec<String>,
    /// Attach inside this network namespace (such as `/run/netns/NAME`);
    /// the loader stays in its own mount namespace, so pins and /sys stay
    /// the host's.
    pub netns: Option<PathBuf>,
    /// The most bytes of a UDP DNS response an event carries,
    /// 1..=[`event::DNS_MAX`] (default 4,096); a longer one is cut and
    /// counted ([`Counters::cut`]).
    pub dns_max_payload: u32,
    /// Pin the drop map and its gate as [`BANS_PIN_NAME`] and
    /// [`BAN_GATE_PIN_NAME`] in this bpffs folder (such as
    /// `/sys/fs/bpf/edgewise`), so that another process can ban edges
    /// through them ([`BanTable::open_pinned`]) and bans outlive a restart.
    /// When bpffs is absent or not writable, the capture runs unpinned
    /// ([`Capture::pin_dir`] says which).
    pub pin_dir: Option<PathBuf>,
    /// The ring buffer's size in bytes, a power of two and a multiple of
    /// the page size (default 4 MiB).
    pub ring_bytes: u32,
    /// A flow is sampled at most once per this window (default 10 s).
    pub flow_sample_window: Duration,
    /// When not empty, the egress observer emits events only for packets
    /// whose source is in one of these networks (the pod CIDRs, on an
    /// interface that also carries other traffic); bans still apply to
    /// every packet. At most 1,024.
    pub egress_sources: Vec<ipnet::IpNet>,
    /// The observers, or the empty baseline program.
    pub programs: Programs,
    /// The ways to attach, tried in order on each interface (default:
    /// tcx only); see [`attach`].
    pub modes: Vec<AttachMode>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            ingress: Vec::new(),
            egress: Vec::new(),
            netns: None,
            dns_max_payload: u32::from(event::DNS_MAX),
            pin_dir: None,
            ring_bytes: 1 << 22,
            flow_sample_window: Duration::from_secs(10),
            egress_sources: Vec::new(),
            programs: Programs::Observers,
            modes: vec![AttachMode::Tcx],
        }
    }
}

/// Counters summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Counters {
    /// Events written to the ring.
    pub events: u64,
    /// Events lost because the ring was full.
    pub lost: u64,
    /// Packets dropped for banned edges.
    pub dropped: u64,
    /// Events whose data was cut: a UDP DNS response longer than
    /// [`CaptureConfig::dns_max_payload`], a TCP segment from port 53
    /// longer than [`event::DNS_SEGMENT_PARTS`] events hold.
    pub cut: u64,
    /// Events lost because the copy from the packet failed.
    pub copy_failed: u64,
    /// Packets not observed because their headers go past what the parser
    /// follows (a fourth VLAN tag, a tunnel in a tunnel, IPv6 extension
    /// headers first).
    pub parse_limit: u64,
    /// UDP DNS answers larger than their packet: the first IP fragment of
    /// an answer over the path's MTU, delivered with what it holds (the
    /// other fragments are not followed).
    pub fragmented: u64,
}

impl Counters {
    /// What was lost, by cause: `ring_full`, `copy_failed`, `parse_limit`,
    /// and, delivered but shortened, `cut` and `fragmented`.
    pub fn lost_by_cause(&self) -> [(&'static str, u64); 5] {
        [
            ("ring_full", self.lost),
            ("copy_failed", self.copy_failed),
            ("parse_limit", self.parse_limit),
            ("cut", self.cut),
            ("fragmented", self.fragmented),
        ]
    }

    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &Self) {
        self.events += other.events;
        self.lost += other.lost;
        self.dropped += other.dropped;
        self.cut += other.cut;
        self.copy_failed += other.copy_failed;
        self.parse_limit += other.parse_limit;
        self.fragmented += other.fragmented;
    }
}

/// Loaded observers, where they are attached, and their ring buffer.
/// Dropping it detaches them.
pub struct Capture {
    events: RingBuf<MapData>,
    counters: PerCpuArray<MapData, u64>,
    bans: BanTable,
    pin_dir: Option<PathBuf>,
    attachments: Vec<Attachment>,
    /// The kernel's handles of `attachments`, in the same order.
    handles: Vec<LinkHandle>,
    /// The programs attached: (ingress, egress) on Ethernet devices, and
    /// on L3 devices.
    programs: [(&'static str, &'static str); 2],
    modes: Vec<AttachMode>,
    /// Owns the programs and their links (`None` only while dropping).
    ebpf: Option<Ebpf>,
    /// Where the links are made: interface names resolve there, and
    /// classic filters are removed through netlink by interface index, so
    /// they must be removed from there.
    netns: Option<PathBuf>,
    /// Turns the kernel's event times into Unix time; measured at load.
    clock: MonotonicOffset,
}

impl Capture {
    /// Loads the observers and attaches them to every interface `config`
    /// lists (first in each tcx chain): any interface that cannot be
    /// attached is an error. [`Capture::load`] and
    /// [`Capture::attach_interface`] attach one at a time instead, and
    /// [`crate::follow`] follows interfaces as they come and go.
    ///
    /// # Errors
    /// [`CaptureError`] naming the program, map or interface at fault.
    pub fn attach(config: &CaptureConfig) -> Result<Self, CaptureError> {
        let mut capture = Self::load(config)?;
        for (interfaces, direction) in [
            (&config.ingress, Direction::Ingress),
            (&config.egress, Direction::Egress),
        ] {
            for name in interfaces {
                // On error the capture is dropped: what was attached goes.
                capture.attach_interface(name, direction)?;
            }
        }
        Ok(capture)
    }

    /// Loads the observers (verified, their maps made and the drop map
    /// pinned as `config` says) without attaching them anywhere;
    /// `config.ingress` and `config.egress` are not read.
    ///
    /// # Errors
    /// [`CaptureError`] naming the program or map at fault.
    pub fn load(config: &CaptureConfig) -> Result<Self, CaptureError> {
        let (mut ebpf, pin_dir) = load(config)?;
        fill_egress_sources(&mut ebpf, &config.egress_sources)?;
        let programs = match config.programs {
            Programs::Observers => [
                (PROGRAM_INGRESS, PROGRAM_EGRESS),
                (PROGRAM_INGRESS_L3, PROGRAM_EGRESS_L3),
            ],
            Programs::PassThrough => [(PROGRAM_PASS_THROUGH, PROGRAM_PASS_THROUGH); 2],
        };
        attach::load_programs(&mut ebpf, &config.modes, programs)?;
        let map_error = |map: &'static str, source: MapError| CaptureError::Map {
            map,
            source: Box::new(source),
        };
        let mut map = |name: &'static str| {
            ebpf.take_map(name).ok_or_else(|| {
                map_error(
                    name,
                    MapError::InvalidName {
                        name: name.to_owned(),
                    },
                )
            })
        };
        let events = RingBuf::try_from(map(MAP_EVENTS)?).map_err(|e| map_error(MAP_EVENTS, e))?;
        let counters =
            PerCpuArray::try_from(map(MAP_COUNTERS)?).map_err(|e| map_error(MAP_COUNTERS, e))?;
        let bans = BanTable::from_maps(map(MAP_BANNED_EDGES)?, map(MAP_BAN_GATE)?)?;
        Ok(Self {
            events,
            counters,
            bans,
            pin_dir,
            attachments: Vec::new(),
            handles: Vec::new(),
            programs,
            modes: config.modes.clone(),
            ebpf: Some(ebpf),
            netns: config.netns.clone(),
            clock: clock_offset(),
        })
    }

    /// Attaches the observer of `direction` to `interface` ([`AUTO`]: the
    /// default-route interface), trying the configured modes in order;
    /// attached already, it is left as it is.
    ///
    /// # Errors
    /// [`CaptureError::NoInterface`] when there is no such interface,
    /// [`CaptureError::Attach`] (the last mode's error) or
    /// [`CaptureError::NoMode`] when no mode takes it,
    /// [`CaptureError::Netns`] when the namespace cannot be entered.
    ///
    /// [`AUTO`]: crate::AUTO
    pub fn attach_interface(
        &mut self,
        interface: &str,
        direction: Direction,
    ) -> Result<&Attachment, CaptureError> {
        let Some(ebpf) = self.ebpf.as_mut() else {
            return Err(CaptureError::NoMode {
                interface: interface.to_owned(),
                direction: attach::direction_name(direction),
            });
        };
        let programs = self.programs;
        let (attachments, modes) = (&self.attachments, &self.modes);
        let outcome = in_netns(self.netns.as_deref(), || {
            let interface = attach::resolve(interface)?;
            // An L3 device's packets begin with the IP header.
            let ethernet = sys::link_type(&interface).map_or(true, |t| {
                t == sys::ARPHRD_ETHER || t == sys::ARPHRD_LOOPBACK
            });
            let pair = programs[usize::from(!ethernet)];
            let program = if direction == Direction::Egress {
                pair.1
            } else {
                pair.0
            };
            let modes: Vec<AttachMode> = modes
                .iter()
                .copied()
                .filter(|&mode| ethernet || mode != AttachMode::Xdp)
                .collect();
            let index = sys::if_index(&interface).ok();
            if let Some(at) = attachments
                .iter()
                .position(|a| Some(a.index) == index && a.direction == direction)
            {
                return Ok(Err(at));
            }
            attach::attach_one(ebpf, &modes, program, &interface, direction).map(Ok)
        })?;
        let at = match outcome {
            Err(existing) => existing,
            Ok((attachment, handle)) => {
                self.attachments.push(attachment);
                self.handles.push(handle);
                self.attachments.len() - 1
            }
        };
        Ok(&self.attachments[at])
    }

    /// Detaches whatever is attached to the interface of index `index`
    /// (gone already, or going); what was detached.
    pub fn detach_interface(&mut self, index: u32) -> Vec<Attachment> {
        let mut detached = Vec::new();
        let Some(ebpf) = self.ebpf.as_mut() else {
            return detached;
        };
        let mut at = 0;
        let mut gone = Vec::new();
        while at < self.attachments.len() {
            if self.attachments[at].index == index {
                gone.push((self.attachments.remove(at), self.handles.remove(at)));
            } else {
                at += 1;
            }
        }
        let _ = in_netns(self.netns.as_deref(), || {
            for (attachment, handle) in gone {
                attach::detach_one(ebpf, &attachment, handle);
                detached.push(attachment);
            }
            Ok(())
        });
        detached
    }

    /// How many times the attached programs ran and for how long in all,
    /// as the kernel counts it (only while statistics are enabled:
    /// `kernel.bpf_stats_enabled`, or `aya::sys::enable_stats`).
    ///
    /// # Errors
    /// [`CaptureError::Program`] if a program's information cannot be read.
    pub fn kernel_time(&self) -> Result<(u64, Duration), CaptureError> {
        let mut names: Vec<&str> = self.attachments.iter().map(|a| a.program).collect();
        names.sort_unstable();
        names.dedup();
        let (mut runs, mut time) = (0, Duration::ZERO);
        for name in names {
            let Some(program) = self
                .ebpf
                .as_ref()
                .and_then(|ebpf| ebpf.program(name))
                .filter(|p| p.fd().is_ok())
            else {
                continue;
            };
            let info = program.info().map_err(|source| CaptureError::Program {
                program: name,
                source: Box::new(source),
            })?;
            runs += info.run_count();
            time += info.run_time();
        }
        Ok((runs, time))
    }

    /// The drop map.
    pub fn bans(&mut self) -> &mut BanTable {
        &mut self.bans
    }

    /// The folder the drop map and its gate are pinned in, if they are.
    pub fn pin_dir(&self) -> Option<&Path> {
        self.pin_dir.as_deref()
    }

    /// What is attached where, and how.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// Waits up to `timeout` for events and hands each to `on_event` (a
    /// record that does not decode comes as its error); returns how many
    /// records were read.
    ///
    /// # Errors
    /// [`CaptureError::Poll`] if waiting fails.
    pub fn poll(
        &mut self,
        timeout: Duration,
        mut on_event: impl FnMut(Result<Event<'_>, EventError>),
    ) -> Result<usize, CaptureError> {
        let mut read = self.drain(&mut on_event);
        if read == 0 {
            use std::os::fd::AsFd;
            sys::wait_readable(self.events.as_fd(), timeout).map_err(CaptureError::Poll)?;
            read = self.drain(&mut on_event);
        }
        Ok(read)
    }

    fn drain(&mut self, on_event: &mut impl FnMut(Result<Event<'_>, EventError>)) -> usize {
        let mut read = 0;
        while let Some(record) = self.events.next() {
            on_event(decode(&record, self.clock));
            read += 1;
        }
        read
    }

    /// The counters, summed over CPUs.
    ///
    /// # Errors
    /// [`CaptureError::Map`] if the counters cannot be read.
    pub fn counters(&self) -> Result<Counters, CaptureError> {
        let read = |index: u32| {
            self.counters
                .get(&index, 0)
                .map(|values| values.iter().sum())
                .map_err(|source| CaptureError::Map {
                    map: MAP_COUNTERS,
                    source: Box::new(source),
                })
        };
        Ok(Counters {
            events: read(0)?,
            lost: read(1)?,
            dropped: read(2)?,
            cut: read(3)?,
            copy_failed: read(4)?,
            parse_limit: read(5)?,
            fragmented: read(6)?,
        })
    }
}

/// The kernel's monotonic clock now: the clock of its event stamps and of
/// ban deadlines (`bpf_ktime_get_ns`).
pub fn monotonic_now() -> MonotonicNanos {
    MonotonicNanos::from_nanos(sys::monotonic_ns())
}

/// The offset between the kernel's monotonic clock and the wall clock, read
/// now: what turns a kernel time into Unix time.
pub fn clock_offset() -> MonotonicOffset {
    let monotonic = monotonic_now();
    MonotonicOffset::new(UnixNanos::from_system_time(SystemTime::now()), monotonic)
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(ebpf) = self.ebpf.take() {
            release(self.netns.as_deref(), ebpf);
        }
    }
}

/// Runs `f` inside `netns` when given, else here.
fn in_netns<T>(
    netns: Option<&Path>,
    f: impl FnOnce() -> Result<T, CaptureError>,
) -> Result<T, CaptureError> {
    match netns {
        Some(netns) => sys::in_netns(netns, f).map_err(CaptureError::Netns)?,
        None => f(),
    }
}

/// Drops the programs, detaching their links, inside `netns` when given
/// (a classic filter's removal names its interface by index, which only
/// means that interface there). If the namespace is gone, so are its
/// interfaces and their filters.
fn release(netns: Option<&Path>, ebpf: Ebpf) {
    match netns {
        Some(netns) => {
            let mut ebpf = Some(ebpf);
            let _gone = sys::in_netns(netns, || drop(ebpf.take()));
        }
        None => drop(ebpf),
    }
}

/// Loads the object, pinning the drop map when asked and possible.
fn load(config: &CaptureConfig) -> Result<(Ebpf, Option<PathBuf>), CaptureError> {
    let dns_max_payload = config.dns_max_payload.clamp(1, u32::from(event::DNS_MAX));
    let flow_sample_ns = sys::nanos(config.flow_sample_window);
    let egress_filter = u8::from(!config.egress_sources.is_empty());
    let try_load = |pin: Option<&Path>| {
        let mut loader = EbpfLoader::new();
        loader
            .override_global("dns_max_payload", &dns_max_payload, true)
            .override_global("flow_sample_ns", &flow_sample_ns, true)
            .override_global("egress_filter", &egress_filter, true)
            .map_max_entries(MAP_EVENTS, config.ring_bytes);
        if let Some(dir) = pin {
            loader
                .map_pin_path(MAP_BANNED_EDGES, dir.join(BANS_PIN_NAME))
                .map_pin_path(MAP_BAN_GATE, dir.join(BAN_GATE_PIN_NAME));
        }
        loader
            .load(OBSERVER_OBJECT)
            .map_err(|e| CaptureError::Load(Box::new(e)))
    };
    if let Some(dir) = &config.pin_dir
        && std::fs::create_dir_all(dir).is_ok()
        && let Ok(ebpf) = try_load(Some(dir))
    {
        return Ok((ebpf, Some(dir.clone())));
    }
    // No pinning asked, or no bpffs there or not writable: run unpinned
    // rather than fail.
    Ok((try_load(None)?, None))
}

/// Writes the egress source networks into their trie (IPv4 as IPv4-mapped
/// IPv6, as the programs look them up).
fn fill_egress_sources(ebpf: &mut Ebpf, networks: &[ipnet::IpNet]) -> Result<(), CaptureError> {
    use aya::maps::lpm_trie::{Key, LpmTrie};
    let map_error = |source| CaptureError::Map {
        map: MAP_EGRESS_SOURCES,
        source: Box::new(source),
    };
    if networks.is_empty() {
        return Ok(());
    }
    let map = ebpf.map_mut(MAP_EGRESS_SOURCES).ok_or_else(|| {
        map_error(MapError::InvalidName {
            name: MAP_EGRESS_SOURCES.to_owned(),
        })
    })?;
    let mut trie: LpmTrie<&mut MapData, [u8; 16], u8> =
        LpmTrie::try_from(map).map_err(map_error)?;
    for network in networks {
        let (address, prefix_len) = match network.trunc() {
            ipnet::IpNet::V4(v4) => (
                v4.addr().to_ipv6_mapped().octets(),
                u32::from(v4.prefix_len()) + 96,
            ),
            ipnet::IpNet::V6(v6) => (v6.addr().octets(), u32::from(v6.prefix_len())),
        };
        trie.insert(&Key::new(prefix_len, address), 1, 0)
            .map_err(map_error)?;
    }
    Ok(())
}
