//! Proof that fingerprinting allocates nothing: a counting global allocator
//! around the per-packet path (header check, option walk, tracker, display).

use std::fmt::Write;
use std::net::IpAddr;

use edgewise_ja4::time::UnixNanos;
use edgewise_ja4::{Ja4Tracker, Ja4t, TcpHeader, TrackerConfig};
use edgewise_test_support::{CountingAllocator, measure};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// A fixed-size text buffer so formatting itself does not allocate.
struct Stack {
    buf: [u8; 128],
    len: usize,
}

impl Write for Stack {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

const SYN: [u8; 32] = [
    0xd4, 0x31, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x80, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, 0x02, 0x04,
    0x05, 0xb4, 0x01, 0x03, 0x03, 0x08, 0x01, 0x01, 0x04, 0x02,
];

#[test]
fn the_per_packet_path_does_not_allocate() {
    let mut syn_ack = SYN;
    syn_ack[13] = 0x12;
    let mut tracker = Ja4Tracker::new({
        let mut tracker_config = TrackerConfig::default();
        tracker_config.capacity = 1024;
        tracker_config
    });
    let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
    let mut text = Stack {
        buf: [0; 128],
        len: 0,
    };

    let ((), measured) = measure(|| {
        for i in 0..1000u64 {
            text.len = 0;
            let ja4t = Ja4t::from_syn(&SYN).unwrap();
            write!(text, "{ja4t}").unwrap();
            let mut segment = syn_ack;
            segment[0..2].copy_from_slice(&((i % 2000) as u16).to_be_bytes());
            let header = TcpHeader::new_checked(&segment[..]).unwrap();
            let observed = tracker
                .observe(b, a, &header, UnixNanos::from_nanos(i * 1_000_000_000))
                .unwrap();
            write!(text, "{observed:?}").unwrap_or(());
        }
    });
    assert_eq!(
        measured.allocations, 0,
        "allocations on the fingerprint path"
    );
}

/// A ClientHello split over two records (so the scratch buffer is used),
/// read from the fuzz seed the repository keeps.
const CLIENT_HELLO: &[u8] = include_bytes!("../../fuzz/corpus/tls_hello/seed-client-three-records");

#[test]
fn the_tls_hello_path_does_not_allocate() {
    use edgewise_ja4::tls::{self, Hello, Ja4, Transport};
    let mut scratch = vec![0u8; tls::MAX_HELLO];
    let mut text = Stack {
        buf: [0; 128],
        len: 0,
    };
    let ((), measured) = measure(|| {
        for _ in 0..100 {
            text.len = 0;
            let Ok(Hello::Client(hello)) = tls::parse_first(CLIENT_HELLO, &mut scratch) else {
                panic!("a ClientHello");
            };
            let ja4 = Ja4::of(&hello, Transport::Tcp).unwrap();
            write!(text, "{ja4}").unwrap();
        }
    });
    assert_eq!(
        &text.buf[..text.len],
        b"t13d1516h2_8daaf6152771_e5627efa2ab1"
    );
    assert_eq!(measured.allocations, 0, "allocations on the TLS hello path");
}
