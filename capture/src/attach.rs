//! Where and how the observers attach.
//!
//! Each interface gets one attachment per direction. [`crate::CaptureConfig::modes`]
//! lists the ways to try, in order, and the first that works wins:
//! - [`AttachMode::Tcx`]: first in the interface's tcx chain (Linux 6.6 and
//!   later). A tcx link belongs to the loading process: when it dies, the
//!   link goes and traffic passes.
//! - [`AttachMode::Clsact`]: a classic direct-action filter on a clsact
//!   qdisc (added if missing, and left in place). Filters of ours left by a
//!   process that died are removed first, since such filters outlive their
//!   process and would keep enforcing its bans; one edgewise per interface.
//!   Dropping the capture removes its filters.
//! - [`AttachMode::Xdp`]: ingress only (XDP sees what arrives: a SYN-ACK
//!   coming back, a DNS answer), so it never serves an egress list. Through
//!   an XDP link where the kernel has them, so it also goes with its
//!   process.
//!
//! An interface named [`AUTO`] is the one the default route leaves through
//! (IPv4 first, then IPv6), looked up in the network namespace attached to.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use aya::Ebpf;
use aya::programs::tc::{NlOptions, SchedClassifierLinkId, TcAttachOptions, TcAttachType};
use aya::programs::xdp::{XdpLinkId, XdpMode};
use aya::programs::{LinkOrder, ProgramError, SchedClassifier, Xdp};

use crate::{CaptureError, Direction, sys};

/// The interface name that stands for the default-route interface.
pub const AUTO: &str = "auto";

/// The XDP observer's name in the object.
pub const PROGRAM_XDP: &str = "observe_xdp";

/// How an observer attaches to an interface (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachMode {
    /// A tcx link, first in the chain.
    Tcx,
    /// A classic clsact filter.
    Clsact,
    /// An XDP program (ingress only).
    Xdp,
    /// A packet socket ([`crate::PacketCapture`]): observe only, for
    /// hosts where programs may not be attached. The eBPF [`crate::Capture`]
    /// skips it.
    AfPacket,
}

impl AttachMode {
    /// `tcx`, `clsact` or `xdp`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tcx => "tcx",
            Self::Clsact => "clsact",
            Self::Xdp => "xdp",
            Self::AfPacket => "af_packet",
        }
    }
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an attach mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown attach mode {0:?} (expected tcx, clsact, xdp or af_packet)")]
pub struct UnknownMode(pub String);

impl FromStr for AttachMode {
    type Err = UnknownMode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "tcx" => Ok(Self::Tcx),
            "clsact" => Ok(Self::Clsact),
            "xdp" => Ok(Self::Xdp),
            "af_packet" => Ok(Self::AfPacket),
            _ => Err(UnknownMode(text.to_owned())),
        }
    }
}

/// One observer attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The interface (the default-route interface's own name for [`AUTO`]).
    pub interface: String,
    /// The interface's index in its network namespace when attached.
    pub index: u32,
    /// Ingress or egress.
    pub direction: Direction,
    /// How.
    pub mode: AttachMode,
    /// The program.
    pub program: &'static str,
}

/// The kernel's handle of one attachment, to detach it.
#[derive(Debug)]
pub(crate) enum LinkHandle {
    /// A tcx link or a classic filter.
    Tc(SchedClassifierLinkId),
    /// An XDP link.
    Xdp(XdpLinkId),
}

/// Loads what `modes` can attach (the tc programs, XDP if asked) so that
/// a verifier refusal fails the start, not one interface's attach.
pub(crate) fn load_programs(
    ebpf: &mut Ebpf,
    modes: &[AttachMode],
    programs: [(&'static str, &'static str); 2],
) -> Result<(), CaptureError> {
    let mut names = Vec::new();
    if modes
        .iter()
        .any(|&m| matches!(m, AttachMode::Tcx | AttachMode::Clsact))
    {
        names.extend(programs.iter().flat_map(|pair| [pair.0, pair.1]));
    }
    if modes.contains(&AttachMode::Xdp) {
        names.push(PROGRAM_XDP);
    }
    names.sort_unstable();
    names.dedup();
    for name in names {
        let failed = |source| CaptureError::Program {
            program: name,
            source: Box::new(source),
        };
        let program = ebpf
            .program_mut(name)
            .ok_or(failed(ProgramError::NotLoaded))?;
        if program.fd().is_err() {
            match program {
                aya::programs::Program::SchedClassifier(p) => p.load(),
                aya::programs::Program::Xdp(p) => p.load(),
                _ => Err(ProgramError::UnexpectedProgramType),
            }
            .map_err(failed)?;
        }
    }
    Ok(())
}

/// The calling thread's network namespace's name for `name`: the
/// default-route interface for [`AUTO`], else `name`.
pub(crate) fn resolve(name: &str) -> Result<String, CaptureError> {
    if name == AUTO {
        default_route_interface()
    } else {
        Ok(name.to_owned())
    }
}

/// Tries the configured modes in order on one interface, in the calling
/// thread's network namespace.
pub(crate) fn attach_one(
    ebpf: &mut Ebpf,
    modes: &[AttachMode],
    program: &'static str,
    interface: &str,
    direction: Direction,
) -> Result<(Attachment, LinkHandle), CaptureError> {
    let index = sys::if_index(interface).map_err(|source| CaptureError::NoInterface {
        interface: interface.to_owned(),
        source,
    })?;
    let mut last = None;
    for &mode in modes {
        let (name, result) = match mode {
            AttachMode::Xdp if direction == Direction::Egress => continue,
            AttachMode::AfPacket => continue,
            AttachMode::Xdp => (
                PROGRAM_XDP,
                attach_xdp(ebpf, interface).map(LinkHandle::Xdp),
            ),
            AttachMode::Tcx | AttachMode::Clsact => (
                program,
                attach_tc(ebpf, program, interface, direction, mode).map(LinkHandle::Tc),
            ),
        };
        match result {
            Ok(handle) => {
                let attachment = Attachment {
                    interface: interface.to_owned(),
                    index,
                    direction,
                    mode,
                    program: name,
                };
                return Ok((attachment, handle));
            }
            Err(source) => {
                last = Some(CaptureError::Attach {
                    program: name,
                    interface: interface.to_owned(),
                    direction: direction_name(direction),
                    mode,
                    source: Box::new(source),
                });
            }
        }
    }
    Err(last.unwrap_or_else(|| CaptureError::NoMode {
        interface: interface.to_owned(),
        direction: direction_name(direction),
    }))
}

/// Detaches one attachment, in the calling thread's network namespace.
/// An interface that is gone took its links with it: not an error.
pub(crate) fn detach_one(ebpf: &mut Ebpf, attachment: &Attachment, handle: LinkHandle) {
    let Some(program) = ebpf.program_mut(attachment.program) else {
        return;
    };
    let _gone = match (program, handle) {
        (aya::programs::Program::SchedClassifier(p), LinkHandle::Tc(id)) => p.detach(id),
        (aya::programs::Program::Xdp(p), LinkHandle::Xdp(id)) => p.detach(id),
        _ => Ok(()),
    };
}

fn attach_tc(
    ebpf: &mut Ebpf,
    name: &str,
    interface: &str,
    direction: Direction,
    mode: AttachMode,
) -> Result<SchedClassifierLinkId, ProgramError> {
    let program: &mut SchedClassifier = ebpf
        .program_mut(name)
        .ok_or(ProgramError::NotLoaded)?
        .try_into()?;
    let attach_type = if direction == Direction::Egress {
        TcAttachType::Egress
    } else {
        TcAttachType::Ingress
    };
    let options = if mode == AttachMode::Clsact {
        // Present already on most interfaces a CNI manages: not an error.
        let _ = aya::programs::tc::qdisc_add_clsact(interface);
        // Ours from a process that died (they outlive it); none is fine.
        let _ = aya::programs::tc::qdisc_detach_program(interface, attach_type, name);
        TcAttachOptions::Netlink(NlOptions::default())
    } else {
        TcAttachOptions::TcxOrder(LinkOrder::first())
    };
    program.attach_with_options(interface, attach_type, options)
}

fn attach_xdp(ebpf: &mut Ebpf, interface: &str) -> Result<XdpLinkId, ProgramError> {
    let program: &mut Xdp = ebpf
        .program_mut(PROGRAM_XDP)
        .ok_or(ProgramError::NotLoaded)?
        .try_into()?;
    program.attach(interface, XdpMode::Default)
}

/// How many tcx programs are attached to `interface` (ingress, egress),
/// looked up inside `netns` when given: a health check, and how tests prove
/// that a dropped [`crate::Capture`] left nothing behind.
///
/// # Errors
/// [`CaptureError::Netns`] or [`CaptureError::Attach`] (the query failed).
pub fn tcx_programs(interface: &str, netns: Option<&Path>) -> Result<(usize, usize), CaptureError> {
    let query = || {
        let count = |attach_type, direction| {
            SchedClassifier::query_tcx(interface, attach_type)
                .map(|(_, programs)| programs.len())
                .map_err(|source| CaptureError::Attach {
                    program: "tcx query",
                    interface: interface.to_owned(),
                    direction,
                    mode: AttachMode::Tcx,
                    source: Box::new(source),
                })
        };
        Ok((
            count(TcAttachType::Ingress, "ingress")?,
            count(TcAttachType::Egress, "egress")?,
        ))
    };
    match netns {
        Some(netns) => sys::in_netns(netns, query).map_err(CaptureError::Netns)?,
        None => query(),
    }
}

pub(crate) const fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Egress => "egress",
        _ => "ingress",
    }
}

/// The interface the default route leaves through, in the calling
/// thread's network namespace: the IPv4 default route with the lowest
/// metric, else the IPv6 one.
fn default_route_interface() -> Result<String, CaptureError> {
    let read = |path: &str| std::fs::read_to_string(Path::new(path)).unwrap_or_default();
    default_v4(&read("/proc/thread-self/net/route"))
        .or_else(|| default_v6(&read("/proc/thread-self/net/ipv6_route")))
        .ok_or(CaptureError::NoDefaultRoute)
}

/// From `/proc/net/route`: columns `Iface`, `Destination`, `Gateway`, `Flags`,
/// `RefCnt`, `Use`, `Metric`, `Mask` (hexadecimal); the default route has
/// destination and mask 0 and the up flag (1).
fn default_v4(table: &str) -> Option<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (interface, destination, flags, metric, mask) = (
                fields.first()?,
                fields.get(1)?,
                fields.get(3)?,
                fields.get(6)?,
                fields.get(7)?,
            );
            let up = u32::from_str_radix(flags, 16).ok()? & 1 == 1;
            (*destination == "00000000" && *mask == "00000000" && up).then(|| {
                (
                    metric.parse::<u32>().unwrap_or(u32::MAX),
                    (*interface).to_owned(),
                )
            })
        })
        .min()
        .map(|(_, interface)| interface)
}

/// From `/proc/net/ipv6_route`: destination, prefix length, source,
/// source prefix length, next hop, metric, refcount, use, flags, device;
/// the default route is `::/0` and not through `lo`.
fn default_v6(table: &str) -> Option<String> {
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (destination, prefix, metric, interface) = (
                fields.first()?,
                fields.get(1)?,
                fields.get(5)?,
                fields.get(9)?,
            );
            (destination.bytes().all(|b| b == b'0') && *prefix == "00" && *interface != "lo").then(
                || {
                    let metric = u32::from_str_radix(metric, 16).unwrap_or(u32::MAX);
                    (metric, (*interface).to_owned())
                },
            )
        })
        .min()
        .map(|(_, interface)| interface)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_route_with_the_lowest_metric_wins() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t00000000\t0101A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0
eth0\t00000000\t010011AC\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
";
        assert_eq!(default_v4(table).as_deref(), Some("eth0"));
        assert_eq!(default_v4("Iface\tDestination\n"), None);
        // A default route that is down does not count.
        let down = "h\neth0\t00000000\t010011AC\t0002\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(default_v4(down), None);
    }

    #[test]
    fn the_ipv6_default_route_is_not_loopback() {
        let table = "\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     ens3
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     ens3
";
        assert_eq!(default_v6(table).as_deref(), Some("ens3"));
    }

    #[test]
    fn modes_parse_and_print() {
        for mode in [
            AttachMode::Tcx,
            AttachMode::Clsact,
            AttachMode::Xdp,
            AttachMode::AfPacket,
        ] {
            assert_eq!(mode.as_str().parse::<AttachMode>(), Ok(mode));
        }
        assert!("tc".parse::<AttachMode>().is_err());
    }
}
