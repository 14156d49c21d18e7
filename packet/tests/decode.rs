//! Decoding frames of every supported link type and tunnel.

#![expect(
    clippy::cast_possible_truncation,
    reason = "test builders write fixed-width wire fields from small values"
)]

use edgewise_packet::{DecodeError, LinkType, TcpFlags, Transport, decode};

fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        proto,
        0,
        0,
    ];
    p.extend_from_slice(&[10, 1, 0, 1, 10, 1, 0, 2]);
    p.extend_from_slice(payload);
    p
}

fn ipv6_with_hop_by_hop(proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut p = vec![0x60, 0, 0, 0, (len >> 8) as u8, len as u8, 0, 64];
    p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    // Hop-by-hop header: next header, length 0 (8 bytes), PadN.
    p.extend_from_slice(&[proto, 0, 1, 4, 0, 0, 0, 0]);
    p.extend_from_slice(payload);
    p
}

fn tcp_syn() -> Vec<u8> {
    let mut t = vec![
        0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
    ];
    t.extend_from_slice(&[2, 4, 5, 0xb4]);
    t
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn ethernet(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn assert_tcp_443(link: LinkType, frame: &[u8], depth: u8) {
    let p = decode(link, frame).unwrap_or_else(|e| panic!("{link:?}: {e}"));
    assert_eq!(p.tunnel_depth, depth);
    match p.transport() {
        Transport::Tcp {
            dst_port, segment, ..
        } => {
            assert_eq!(dst_port, 443);
            assert_eq!(segment, tcp_syn().as_slice());
        }
        other => panic!("{link:?}: {other:?}"),
    }
}

#[test]
fn ethernet_vlan_qinq_ipv4() {
    let ip = ipv4(6, &tcp_syn());
    assert_tcp_443(LinkType::Ethernet, &ethernet(0x0800, &ip), 0);
    let mut vlan = vec![0x00, 0x64, 0x08, 0x00];
    vlan.extend_from_slice(&ip);
    assert_tcp_443(LinkType::Ethernet, &ethernet(0x8100, &vlan), 0);
    let mut qinq = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00];
    qinq.extend_from_slice(&ip);
    assert_tcp_443(LinkType::Ethernet, &ethernet(0x88a8, &qinq), 0);
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let ip = ipv6_with_hop_by_hop(6, &tcp_syn());
    let p = decode(LinkType::RawIp, &ip).unwrap();
    assert_eq!(p.src.to_string(), "fd00::1");
    assert_tcp_443(LinkType::Ethernet, &ethernet(0x86dd, &ip), 0);
}

#[test]
fn bsd_loopback_in_both_byte_orders_and_sll() {
    let ip = ipv4(6, &tcp_syn());
    for head in [[2, 0, 0, 0], [0, 0, 0, 2]] {
        assert_tcp_443(LinkType::Null, &[&head[..], &ip].concat(), 0);
    }
    assert_tcp_443(LinkType::Loop, &[&[0, 0, 0, 2][..], &ip].concat(), 0);
    let v6 = ipv6_with_hop_by_hop(6, &tcp_syn());
    for family in [24u32, 28, 30] {
        assert_tcp_443(
            LinkType::Null,
            &[&family.to_le_bytes()[..], &v6].concat(),
            0,
        );
    }
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    assert_tcp_443(LinkType::LinuxSll, &sll, 0);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    assert_tcp_443(LinkType::LinuxSll2, &sll2, 0);
}

#[test]
fn tunnels_are_opened() {
    let inner = ethernet(0x0800, &ipv4(6, &tcp_syn()));
    // VXLAN
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0];
    vx.extend_from_slice(&inner);
    assert_tcp_443(
        LinkType::Ethernet,
        &ethernet(0x0800, &ipv4(17, &udp(40000, 4789, &vx))),
        1,
    );
    // Geneve with 4 bytes of options
    let mut gv = vec![0x01, 0, 0x65, 0x58, 0, 0, 0x2a, 0, 0, 0, 0, 0];
    gv.extend_from_slice(&inner);
    assert_tcp_443(
        LinkType::Ethernet,
        &ethernet(0x0800, &ipv4(17, &udp(40000, 6081, &gv))),
        1,
    );
    // GRE with a key, carrying IPv4
    let mut gre = vec![0x20, 0, 0x08, 0, 0, 0, 0, 9];
    gre.extend_from_slice(&ipv4(6, &tcp_syn()));
    assert_tcp_443(LinkType::Ethernet, &ethernet(0x0800, &ipv4(47, &gre)), 1);
    // IPv4 in IPv6, then VXLAN inside: two tunnels
    let vxlan_packet = ipv4(17, &udp(40000, 4789, &vx));
    assert_tcp_443(LinkType::RawIp, &ipv6_with_hop_by_hop(4, &vxlan_packet), 2);
}

#[test]
fn a_bad_tunnel_keeps_the_outer_packet_and_depth_is_capped() {
    // VXLAN port, but the I flag is clear: stays UDP.
    let frame = ipv4(17, &udp(40000, 4789, &[0; 8]));
    let p = decode(LinkType::RawIp, &frame).unwrap();
    assert!(matches!(
        p.transport(),
        Transport::Udp { dst_port: 4789, .. }
    ));
    // Ten nested IP-in-IP headers: only MAX_TUNNEL_DEPTH are opened.
    let mut packet = ipv4(6, &tcp_syn());
    for _ in 0..10 {
        packet = ipv4(4, &packet);
    }
    let p = decode(LinkType::RawIp, &packet).unwrap();
    assert_eq!(p.tunnel_depth, edgewise_packet::MAX_TUNNEL_DEPTH);
}

#[test]
fn udp_length_disagreeing_with_ip_is_flagged_and_bounded() {
    // UDP says 8 bytes (no payload) while IP carries 5 more: like dns-zlip.
    let mut u = udp(53, 5353, b"hello");
    u[4..6].copy_from_slice(&8u16.to_be_bytes());
    let frame = ipv4(17, &u);
    let p = decode(LinkType::RawIp, &frame).unwrap();
    assert!(matches!(
        p.transport(),
        Transport::Udp {
            payload: b"",
            length_mismatch: true,
            ..
        }
    ));
}

#[test]
fn errors_are_typed() {
    assert!(matches!(
        decode(LinkType::Unknown(147), &[0; 40]),
        Err(DecodeError::UnsupportedLinkType(LinkType::Unknown(147)))
    ));
    assert!(matches!(
        decode(LinkType::Ethernet, &ethernet(0x0806, &[0; 28])),
        Err(DecodeError::NotIp { ether_type: 0x0806 })
    ));
    assert!(matches!(
        decode(LinkType::Null, &[7, 0, 0, 0, 0x45]),
        Err(DecodeError::NotIp { .. })
    ));
    assert!(matches!(
        decode(LinkType::RawIp, &[0x45, 0]),
        Err(DecodeError::Ip(_))
    ));
}

#[test]
fn every_truncation_of_every_frame_is_safe_and_flags_truncation() {
    let frames = [
        (LinkType::Ethernet, ethernet(0x0800, &ipv4(6, &tcp_syn()))),
        (LinkType::RawIp, ipv6_with_hop_by_hop(6, &tcp_syn())),
        (
            LinkType::Ethernet,
            ethernet(
                0x0800,
                &ipv4(
                    17,
                    &udp(
                        1,
                        4789,
                        &[
                            &[8, 0, 0, 0, 0, 0, 0, 0][..],
                            &ethernet(0x0800, &ipv4(6, &tcp_syn())),
                        ]
                        .concat(),
                    ),
                ),
            ),
        ),
    ];
    for (link, frame) in frames {
        for len in 0..frame.len() {
            if let Ok(p) = decode(link, &frame[..len]) {
                let _ = p.transport();
                if p.tunnel_depth == 0 && len > 34 {
                    assert!(
                        p.truncated,
                        "{link:?} cut at {len} should be flagged truncated"
                    );
                }
            }
        }
    }
}

#[test]
fn tcp_flags_sequence_numbers_and_payload_are_read() {
    let frame = ipv4(6, &tcp_syn());
    let syn = decode(LinkType::RawIp, &frame).unwrap();
    let Transport::Tcp {
        seq,
        flags,
        payload,
        ..
    } = syn.transport()
    else {
        panic!("{syn:?}")
    };
    assert!(flags.is_syn() && !flags.is_syn_ack());
    assert_eq!(
        (seq, flags.to_string(), payload),
        (1, "S".to_owned(), &[][..])
    );

    // A data segment: ACK + PSH, header of 20 bytes, then "hi".
    let mut data = vec![
        0x01, 0xbb, 0x9c, 0x40, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef, 0x50, 0x18, 0xfa, 0xf0, 0,
        0, 0, 0,
    ];
    data.extend_from_slice(b"hi");
    let frame = ipv4(6, &data);
    let packet = decode(LinkType::RawIp, &frame).unwrap();
    let Transport::Tcp {
        seq,
        ack,
        flags,
        payload,
        ..
    } = packet.transport()
    else {
        panic!("{packet:?}")
    };
    assert_eq!((seq, ack, payload), (0x1000, 0xdead_beef, &b"hi"[..]));
    assert!(flags.contains(TcpFlags::ACK | TcpFlags::PSH));
    assert_eq!(flags.to_string(), "PA");

    // A data offset below 20 bytes or past the capture gives no payload.
    for offset in [0x40, 0xf0] {
        data[12] = offset;
        let frame = ipv4(6, &data);
        let packet = decode(LinkType::RawIp, &frame).unwrap();
        let Transport::Tcp { payload, .. } = packet.transport() else {
            panic!("{packet:?}")
        };
        assert!(payload.is_empty(), "offset {offset:#x}");
    }
}
