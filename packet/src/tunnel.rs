//! Tunnel headers opened on the way to the innermost packet.
//!
//! - GRE (RFC 2784, key and sequence extensions of RFC 2890), version 0,
//!   carrying IPv4, IPv6, transparent Ethernet (0x6558) or ERSPAN;
//! - ERSPAN type I (no header; GRE without sequence number), type II
//!   (0x88BE, 8-byte header) and type III (0x22EB, 12-byte header plus the
//!   optional 8-byte platform subheader);
//! - VXLAN (RFC 7348, UDP 4789, and 8472, the port Linux's `vxlan` devices
//!   and Flannel use by default), VXLAN-GPE (UDP 4790), Geneve (RFC 8926,
//!   UDP 6081).
//!
//! Each function checks every length before reading and returns `None` for
//! anything it does not understand, so the caller keeps the outer packet.

use crate::link::ether_type;

/// What a tunnel header says comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inner<'a> {
    /// An Ethernet frame.
    Ethernet(&'a [u8]),
    /// An IP packet.
    Ip(&'a [u8]),
}

/// UDP ports of the tunnels this crate opens.
pub(crate) mod port {
    pub(crate) const VXLAN: u16 = 4789;
    pub(crate) const VXLAN_LINUX: u16 = 8472;
    pub(crate) const VXLAN_GPE: u16 = 4790;
    pub(crate) const GENEVE: u16 = 6081;
}

const GRE_CHECKSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQUENCE: u16 = 0x1000;
const GRE_VERSION_MASK: u16 = 0x0007;

/// Opens a GRE packet (the IP payload of protocol 47).
pub(crate) fn gre(data: &[u8]) -> Option<Inner<'_>> {
    let flags = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
    let protocol = u16::from_be_bytes([*data.get(2)?, *data.get(3)?]);
    // Version 1 is PPTP's enhanced GRE (PPP inside); source routing
    // (RFC 1701) is deprecated: leave both alone.
    if flags & GRE_VERSION_MASK != 0 || flags & GRE_ROUTING != 0 {
        return None;
    }
    let mut len = 4;
    for (bit, extra) in [(GRE_CHECKSUM, 4), (GRE_KEY, 4), (GRE_SEQUENCE, 4)] {
        if flags & bit != 0 {
            len += extra;
        }
    }
    let payload = data.get(len..)?;
    match protocol {
        ether_type::IPV4 | ether_type::IPV6 => Some(Inner::Ip(payload)),
        ether_type::TRANSPARENT_ETHERNET => Some(Inner::Ethernet(payload)),
        ether_type::ERSPAN_II if flags & GRE_SEQUENCE == 0 => Some(Inner::Ethernet(payload)),
        ether_type::ERSPAN_II => erspan_ii(payload),
        ether_type::ERSPAN_III => erspan_iii(payload),
        _ => None,
    }
}

fn erspan_ii(data: &[u8]) -> Option<Inner<'_>> {
    let version = data.first()? >> 4;
    (version == 1).then_some(Inner::Ethernet(data.get(8..)?))
}

fn erspan_iii(data: &[u8]) -> Option<Inner<'_>> {
    let version = data.first()? >> 4;
    if version != 2 {
        return None;
    }
    let word2 = data.get(8..12)?;
    let frame_type = (word2[2] >> 1) & 0x1f;
    let has_subheader = word2[3] & 0x01 != 0;
    let payload = data.get(if has_subheader { 20 } else { 12 }..)?;
    match frame_type {
        0 => Some(Inner::Ethernet(payload)),
        2 => Some(Inner::Ip(payload)),
        _ => None,
    }
}

/// Opens a UDP tunnel by port: the destination port first, then the source.
pub(crate) fn udp_tunnel(src_port: u16, dst_port: u16, payload: &[u8]) -> Option<Inner<'_>> {
    [dst_port, src_port].into_iter().find_map(|p| match p {
        port::VXLAN | port::VXLAN_LINUX => vxlan(payload),
        port::VXLAN_GPE => vxlan_gpe(payload),
        port::GENEVE => geneve(payload),
        _ => None,
    })
}

const VXLAN_I_FLAG: u8 = 0x08;
const VXLAN_GPE_P_FLAG: u8 = 0x04;

fn vxlan(data: &[u8]) -> Option<Inner<'_>> {
    let flags = *data.first()?;
    (flags & VXLAN_I_FLAG != 0).then_some(Inner::Ethernet(data.get(8..)?))
}

fn vxlan_gpe(data: &[u8]) -> Option<Inner<'_>> {
    let flags = *data.first()?;
    let next = *data.get(3)?;
    let payload = data.get(8..)?;
    if flags & VXLAN_GPE_P_FLAG == 0 {
        return Some(Inner::Ethernet(payload));
    }
    match next {
        1 | 2 => Some(Inner::Ip(payload)),
        3 => Some(Inner::Ethernet(payload)),
        _ => None,
    }
}

fn geneve(data: &[u8]) -> Option<Inner<'_>> {
    let first = *data.first()?;
    if first >> 6 != 0 {
        return None; // only version 0 exists
    }
    let options_len = usize::from(first & 0x3f) * 4;
    let protocol = u16::from_be_bytes([*data.get(2)?, *data.get(3)?]);
    let payload = data.get(8 + options_len..)?;
    match protocol {
        ether_type::TRANSPARENT_ETHERNET => Some(Inner::Ethernet(payload)),
        ether_type::IPV4 | ether_type::IPV6 => Some(Inner::Ip(payload)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gre_with_every_optional_field() {
        let mut p = vec![0xb0, 0x00, 0x08, 0x00];
        p.extend_from_slice(&[0; 12]);
        p.extend_from_slice(b"IP");
        assert_eq!(gre(&p), Some(Inner::Ip(b"IP")));
    }

    #[test]
    fn gre_rejects_version_1_and_short_input() {
        assert_eq!(gre(&[0x30, 0x01, 0x88, 0x0b, 0, 0, 0, 0]), None);
        for n in 0..4 {
            assert_eq!(gre(&[0x10, 0x00, 0x88, 0xbe][..n]), None);
        }
        // Sequence flag set but the field is missing.
        assert_eq!(gre(&[0x10, 0x00, 0x88, 0xbe, 0, 0]), None);
    }

    #[test]
    fn erspan_iii_with_subheader_and_ip_frame_type() {
        let mut h = vec![0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x01];
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(b"IP");
        assert_eq!(erspan_iii(&h), Some(Inner::Ip(b"IP")));
    }

    #[test]
    fn geneve_skips_options_and_checks_them() {
        let mut g = vec![0x02, 0x00, 0x65, 0x58, 0, 0, 1, 0];
        g.extend_from_slice(&[0; 8]);
        g.extend_from_slice(b"ETH");
        assert_eq!(geneve(&g), Some(Inner::Ethernet(b"ETH")));
        assert_eq!(geneve(&g[..12]), None);
        assert_eq!(geneve(&[0x40, 0, 0x65, 0x58, 0, 0, 0, 0]), None);
    }

    #[test]
    fn vxlan_needs_the_i_flag() {
        assert_eq!(vxlan(&[0, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(
            udp_tunnel(1234, port::VXLAN, &[8, 0, 0, 0, 0, 0, 1, 0, 7]),
            Some(Inner::Ethernet(&[7]))
        );
        assert_eq!(
            udp_tunnel(1234, port::VXLAN_LINUX, &[8, 0, 0, 0, 0, 0, 1, 0, 7]),
            Some(Inner::Ethernet(&[7])),
            "Linux's and Flannel's port"
        );
        assert_eq!(udp_tunnel(1234, 53, &[8, 0, 0, 0, 0, 0, 1, 0, 7]), None);
    }
}
