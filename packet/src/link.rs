//! Link-layer types (the `LINKTYPE_*` values of pcap and pcapng) and the
//! link headers this crate strips itself: BSD loopback (NULL / LOOP) and
//! Linux cooked captures (SLL, SLL2). Ethernet and VLAN tags go through
//! `etherparse`.

use crate::DecodeError;

/// A capture's link-layer type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_NULL` (0): BSD loopback, 4-byte host-order address family.
    Null,
    /// `LINKTYPE_ETHERNET` (1).
    Ethernet,
    /// `LINKTYPE_RAW` (101), `LINKTYPE_IPV4` (228), `LINKTYPE_IPV6` (229):
    /// the frame starts with an IP header.
    RawIp,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, network-order address family.
    Loop,
    /// `LINKTYPE_LINUX_SLL` (113): Linux cooked capture v1.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux cooked capture v2.
    LinuxSll2,
    /// Any other link type, by number.
    Unknown(u32),
}

impl LinkType {
    /// The link type for a pcap / pcapng `LINKTYPE_*` number.
    pub fn from_linktype(value: u32) -> Self {
        match value {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            101 | 228 | 229 | 12 | 14 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            other => LinkType::Unknown(other),
        }
    }
}

/// Ether types this crate acts on.
pub(crate) mod ether_type {
    pub(crate) const IPV4: u16 = 0x0800;
    pub(crate) const IPV6: u16 = 0x86dd;
    pub(crate) const TRANSPARENT_ETHERNET: u16 = 0x6558;
    pub(crate) const ERSPAN_II: u16 = 0x88be;
    pub(crate) const ERSPAN_III: u16 = 0x22eb;
}

/// BSD address families seen in NULL / LOOP headers: `AF_INET` is 2
/// everywhere; `AF_INET6` is 24 (NetBSD, OpenBSD), 28 (FreeBSD) or
/// 30 (macOS, iOS).
fn bsd_family_is_ip(family: u32) -> bool {
    matches!(family, 2 | 24 | 28 | 30)
}

/// Strips a 4-byte NULL (host order, either endianness) or LOOP (network
/// order) header.
pub(crate) fn strip_bsd_loopback(data: &[u8], network_order: bool) -> Result<&[u8], DecodeError> {
    let Some((head, rest)) = data.split_first_chunk::<4>() else {
        return Err(DecodeError::LinkTruncated {
            available: data.len(),
        });
    };
    let be = u32::from_be_bytes(*head);
    let le = u32::from_le_bytes(*head);
    // NULL is in the capturing host's byte order, which the file does not
    // record: accept either order.
    let is_ip = if network_order {
        bsd_family_is_ip(be)
    } else {
        bsd_family_is_ip(le) || bsd_family_is_ip(be)
    };
    if is_ip {
        Ok(rest)
    } else {
        Err(DecodeError::NotIp {
            ether_type: u16::try_from(if network_order { be } else { le }).unwrap_or(u16::MAX),
        })
    }
}

/// Strips a Linux cooked header: SLL (16 bytes, protocol at 14) or SLL2
/// (20 bytes, protocol at 0).
/// Returns the ether type and the payload.
pub(crate) fn strip_sll(data: &[u8], v2: bool) -> Result<(u16, &[u8]), DecodeError> {
    let (len, proto_at) = if v2 { (20, 0) } else { (16, 14) };
    if data.len() < len {
        return Err(DecodeError::LinkTruncated {
            available: data.len(),
        });
    }
    let proto = u16::from_be_bytes([data[proto_at], data[proto_at + 1]]);
    Ok((proto, &data[len..]))
}
