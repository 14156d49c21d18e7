//! The JA4TS tracker: retransmission gaps, RST suffixes, bounds.

use std::net::IpAddr;

use edgewise_ja4::time::UnixNanos;
use edgewise_ja4::{Ja4Tracker, Observation, TcpHeader, TrackerConfig};

const SEC: u64 = 1_000_000_000;

fn segment(flags: u8, window: u16, seq: u32, src_port: u16, dst_port: u16) -> Vec<u8> {
    let mut h = vec![0u8; 28];
    h[0..2].copy_from_slice(&src_port.to_be_bytes());
    h[2..4].copy_from_slice(&dst_port.to_be_bytes());
    h[4..8].copy_from_slice(&seq.to_be_bytes());
    h[12] = 0x70; // 28 bytes
    h[13] = flags;
    h[14..16].copy_from_slice(&window.to_be_bytes());
    h[20..28].copy_from_slice(&[2, 4, 0x05, 0xb4, 1, 3, 3, 7]);
    h
}

const SERVER: [u8; 4] = [10, 0, 0, 2];
const CLIENT: [u8; 4] = [10, 0, 0, 1];

struct Conn {
    tracker: Ja4Tracker,
}

impl Conn {
    fn new(config: TrackerConfig) -> Self {
        Conn {
            tracker: Ja4Tracker::new(config),
        }
    }

    fn server_says(&mut self, flags: u8, window: u16, seq: u32, at: u64) -> Option<String> {
        self.send(SERVER, CLIENT, 443, 50000, flags, window, seq, at)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "a test helper spelling out a segment"
    )]
    fn send(
        &mut self,
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        flags: u8,
        window: u16,
        seq: u32,
        at: u64,
    ) -> Option<String> {
        let bytes = segment(flags, window, seq, sport, dport);
        let header = TcpHeader::new_checked(&bytes[..]).unwrap();
        self.tracker
            .observe(
                IpAddr::from(src),
                IpAddr::from(dst),
                &header,
                UnixNanos::from_nanos(at),
            )
            .map(|o| match o {
                Observation::Ja4t(f) => format!("t:{f}"),
                Observation::Ja4ts(f) => format!("ts:{f}"),
            })
    }
}

#[test]
fn syn_ack_retransmissions_build_the_delay_suffix_and_rst_appends_r() {
    let mut c = Conn::new(TrackerConfig::default());
    assert_eq!(
        c.send(CLIENT, SERVER, 50000, 443, 0x02, 64240, 1, 0)
            .unwrap(),
        "t:64240_2-1-3_1460_7"
    );
    assert_eq!(
        c.server_says(0x12, 65160, 7, 0).unwrap(),
        "ts:65160_2-1-3_1460_7"
    );
    assert_eq!(
        c.server_says(0x12, 65160, 7, SEC + SEC / 2).unwrap(),
        "ts:65160_2-1-3_1460_7_2"
    );
    assert_eq!(
        c.server_says(0x12, 65160, 7, 4 * SEC).unwrap(),
        "ts:65160_2-1-3_1460_7_2-3"
    );
    // A bare RST from either side, 6.4 s after the last SYN-ACK.
    assert_eq!(
        c.server_says(0x04, 0, 0, 10 * SEC + 4 * SEC / 10).unwrap(),
        "ts:65160_2-1-3_1460_7_2-3-R6"
    );
    assert_eq!(
        c.send(CLIENT, SERVER, 50000, 443, 0x04, 0, 0, 11 * SEC)
            .unwrap(),
        "ts:65160_2-1-3_1460_7_2-3-R7"
    );
    // RST-ACK is not bare; plain ACKs and data are not fingerprinted.
    assert_eq!(c.server_says(0x14, 0, 0, 12 * SEC), None);
    assert_eq!(c.server_says(0x10, 0, 0, 12 * SEC), None);
}

#[test]
fn rst_after_one_syn_ack_repeats_it_and_rst_with_none_is_zero() {
    let mut c = Conn::new(TrackerConfig::default());
    assert_eq!(c.server_says(0x04, 0, 0, 0).unwrap(), "ts:0_00_00_00");
    c.server_says(0x12, 1000, 7, 0);
    assert_eq!(
        c.server_says(0x04, 0, 0, 3 * SEC).unwrap(),
        "ts:1000_2-1-3_1460_7"
    );
}

#[test]
fn only_ten_syn_acks_are_timed() {
    let mut c = Conn::new(TrackerConfig::default());
    let mut last = String::new();
    for i in 0..14 {
        last = c.server_says(0x12, 1000, 7, i * SEC).unwrap();
    }
    assert_eq!(last, "ts:1000_2-1-3_1460_7_1-1-1-1-1-1-1-1-1");
}

#[test]
fn a_new_isn_on_the_same_ports_is_a_new_connection() {
    let mut c = Conn::new(TrackerConfig::default());
    c.server_says(0x12, 1000, 7, 0);
    assert_eq!(
        c.server_says(0x12, 2000, 99, SEC).unwrap(),
        "ts:2000_2-1-3_1460_7"
    );
    assert_eq!(c.tracker.stats().restarted, 1);
}

#[test]
fn idle_handshakes_are_forgotten() {
    let mut c = Conn::new({
        let mut tracker_config = TrackerConfig::default();
        tracker_config.capacity = 8;
        tracker_config.idle_timeout_ns = 5 * SEC;
        tracker_config
    });
    c.server_says(0x12, 1000, 7, 0);
    c.server_says(0x12, 1000, 7, SEC);
    assert_eq!(
        c.server_says(0x04, 0, 0, 100 * SEC).unwrap(),
        "ts:0_00_00_00"
    );
    assert_eq!(
        c.server_says(0x12, 1000, 7, 101 * SEC).unwrap(),
        "ts:1000_2-1-3_1460_7"
    );
}

#[test]
fn the_table_is_bounded_and_evicts_the_oldest() {
    let mut tracker = Ja4Tracker::new({
        let mut tracker_config = TrackerConfig::default();
        tracker_config.capacity = 4;
        tracker_config.idle_timeout_ns = 1000 * SEC;
        tracker_config
    });
    for port in 0..10u16 {
        let bytes = segment(0x12, 1000, 7, 443, 40000 + port);
        let header = TcpHeader::new_checked(&bytes[..]).unwrap();
        tracker.observe(
            IpAddr::from(SERVER),
            IpAddr::from(CLIENT),
            &header,
            UnixNanos::from_nanos(u64::from(port)),
        );
        assert!(tracker.stats().tracked <= 4);
    }
    let stats = tracker.stats();
    assert_eq!((stats.tracked, stats.evicted), (4, 6));
    // The newest handshake is still known: its retransmission is timed.
    let bytes = segment(0x12, 1000, 7, 443, 40009);
    let header = TcpHeader::new_checked(&bytes[..]).unwrap();
    let got = tracker.observe(
        IpAddr::from(SERVER),
        IpAddr::from(CLIENT),
        &header,
        UnixNanos::from_nanos(2 * SEC),
    );
    assert!(matches!(got, Some(Observation::Ja4ts(f)) if f.delays() == [2]));
}
