//! Inputs shared by the criterion benches and the whole-process measurement:
//! a synthetic but realistic capture (handshakes of several TCP stacks,
//! SYN-ACK retransmissions, data packets, DNS over UDP) generated in memory.

#![expect(
    clippy::cast_possible_truncation,
    reason = "synthetic addresses and ports are taken from a counter's low bits on purpose"
)]

/// A Windows-like SYN: MSS 1460, NOP, WS 8, NOP, NOP, SACK-permitted.
pub const WINDOWS_SYN: [u8; 32] = [
    0xd4, 0x31, 0x1f, 0x96, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x80, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, 0x02,
    0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x08, 0x01, 0x01, 0x04, 0x02,
];

/// A Linux-like SYN: MSS 1460, SACK-permitted, timestamps, NOP, WS 7.
pub const LINUX_SYN: [u8; 40] = [
    0xb3, 0x10, 0x1f, 0x96, 0, 0, 0x20, 0, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, 0x02,
    0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 0, 0x01, 0x03, 0x03, 0x07,
];

fn ethernet_ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("small packet");
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, protocol, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(payload);
    f
}

fn tcp(template: &[u8], sport: u16, dport: u16, flags: u8, seq: u32) -> Vec<u8> {
    let mut t = template.to_vec();
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[13] = flags;
    t
}

/// The synthetic capture's DNS server.
const DNS_SERVER: [u8; 4] = [10, 43, 255, 53];

/// A UDP datagram from port 53: the answer to `svcN.shop.svc.cluster.local`
/// (N = the server's last byte) with the server's address, TTL 300.
fn dns_answer(conn: u32, server: [u8; 4]) -> Vec<u8> {
    let mut message = Vec::with_capacity(80);
    message.extend_from_slice(&(conn as u16).to_be_bytes());
    message.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    let first = format!("svc{}", server[3]);
    for label in [first.as_str(), "shop", "svc", "cluster", "local"] {
        message.push(label.len() as u8);
        message.extend_from_slice(label.as_bytes());
    }
    message.extend_from_slice(&[0, 0, 1, 0, 1]);
    message.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
    message.extend_from_slice(&server);
    let mut udp = Vec::with_capacity(8 + message.len());
    udp.extend_from_slice(&53u16.to_be_bytes());
    udp.extend_from_slice(&(40_000 + (conn % 1000) as u16).to_be_bytes());
    udp.extend_from_slice(&(8 + message.len() as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&message);
    udp
}

/// A classic pcap (Ethernet, microsecond timestamps) of about `frames`
/// frames: per connection a SYN, a SYN-ACK (every eighth retransmitted once),
/// and six data/ACK segments; every tenth connection is preceded by a DNS
/// response over UDP naming its server.
///
/// # Panics
/// Never for the frame sizes generated here (all far below 64 KiB).
pub fn synthetic_capture(frames: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(frames * 100);
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&[
        2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ]);
    let mut written = 0usize;
    let mut micros = 0u64;
    let push = |out: &mut Vec<u8>, frame: &[u8], micros: u64| {
        let len = u32::try_from(frame.len()).expect("small frame");
        out.extend_from_slice(&u32::try_from(micros / 1_000_000).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&u32::try_from(micros % 1_000_000).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(frame);
    };
    let mut conn = 0u32;
    while written < frames {
        let client = [10, 42, (conn >> 8) as u8, conn as u8];
        let server = [10, 43, 0, (conn % 50) as u8];
        let sport = 30_000 + (conn % 30_000) as u16;
        let syn = if conn.is_multiple_of(2) {
            &WINDOWS_SYN[..]
        } else {
            &LINUX_SYN[..]
        };
        if conn.is_multiple_of(10) {
            let dns = dns_answer(conn, server);
            push(
                &mut out,
                &ethernet_ipv4(DNS_SERVER, client, 17, &dns),
                micros,
            );
            written += 1;
        }
        push(
            &mut out,
            &ethernet_ipv4(client, server, 6, &tcp(syn, sport, 8086, 0x02, conn)),
            micros,
        );
        micros += 100;
        let syn_ack = tcp(&LINUX_SYN, 8086, sport, 0x12, !conn);
        push(
            &mut out,
            &ethernet_ipv4(server, client, 6, &syn_ack),
            micros,
        );
        written += 2;
        if conn.is_multiple_of(8) {
            micros += 1_000_000;
            push(
                &mut out,
                &ethernet_ipv4(server, client, 6, &syn_ack),
                micros,
            );
            written += 1;
        }
        for i in 0..6u32 {
            micros += 50;
            let mut data = tcp(&WINDOWS_SYN[..20], sport, 8086, 0x18, conn + i);
            data[12] = 0x50;
            data.extend_from_slice(&[0x55; 100]);
            push(&mut out, &ethernet_ipv4(client, server, 6, &data), micros);
        }
        written += 6;
        conn = conn.wrapping_add(1);
    }
    out
}

/// Every DNS response message (QR=1) in `demo/dns.pcap`: real dnsmasq
/// answers over UDP and TCP plus the demo's hostile ones, in file order.
/// TCP messages are taken out of their length framing.
///
/// # Panics
/// If the bundled capture is missing or broken.
pub fn dns_responses() -> Vec<Vec<u8>> {
    use edgewise_fqdn_store::{Message, StreamsConfig, TcpDnsStreams};
    use edgewise_packet::{CaptureReader, Transport, decode};
    use edgewise_time::UnixNanos;

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo/dns.pcap");
    let file = std::fs::File::open(path).expect("demo/dns.pcap");
    let mut reader = CaptureReader::new(std::io::BufReader::new(file)).expect("a capture");
    let mut streams = TcpDnsStreams::new(StreamsConfig::default());
    let mut messages = Vec::new();
    while let Some(frame) = reader.next_frame() {
        let frame = frame.expect("a readable frame");
        let Ok(packet) = decode(frame.link, frame.data) else {
            continue;
        };
        match packet.transport() {
            Transport::Udp { payload, .. } => messages.push(payload.to_vec()),
            Transport::Tcp {
                src_port,
                dst_port,
                segment,
                ..
            } => {
                let Some(tcp) = edgewise_observer::dns::tcp_segment(segment) else {
                    continue;
                };
                let key = (packet.src, src_port, packet.dst, dst_port);
                let _ = streams.push(&key, tcp, UnixNanos::ZERO, |message| {
                    messages.push(message.to_vec());
                });
            }
            _ => {}
        }
    }
    messages
        .retain(|message| Message::read_header(message).is_ok_and(|header| header.is_response()));
    messages
}
