//! The header view and the option walk on real packet bytes.

use edgewise_ja4::{Ja4Error, Ja4t, Ja4ts, OptionSummary, OptionsStop, TcpHeader};

/// A SYN with the option layout macOS sends: MSS 1386, NOP, WS 6, NOP, NOP,
/// timestamps, SACK-permitted, EOL, EOL padding (hand-built).
const MACOS_SYN: [u8; 44] = [
    0xd8, 0x16, 0x01, 0xbb, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0xb0, 0x02, 0xff, 0xff,
    0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0x6a, 0x01, 0x03, 0x03, 0x06, 0x01, 0x01, 0x08, 0x0a,
    0x0a, 0x0b, 0x0c, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x04, 0x02, 0x00, 0x00,
];

/// A Linux 6.18 SYN-ACK from `demo/handshakes.pcap` frame 2 (our own
/// capture): MSS 1460, SACK-permitted, timestamps, NOP, WS 10.
const LINUX_SYN_ACK: [u8; 40] = [
    0x1f, 0x96, 0x87, 0x50, 0xc2, 0xcf, 0xe7, 0x6d, 0xdb, 0x9a, 0xdf, 0x91, 0xa0, 0x12, 0xfe, 0x88,
    0x17, 0x32, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xa3, 0xc6, 0x40, 0x99,
    0xc5, 0x52, 0x1d, 0xea, 0x01, 0x03, 0x03, 0x0a,
];

#[test]
fn real_syn_and_syn_ack() {
    assert_eq!(
        Ja4t::from_syn(&MACOS_SYN).unwrap().to_string(),
        "65535_2-1-3-1-1-8-4-0-0_1386_6"
    );
    assert_eq!(
        Ja4ts::from_syn_ack(&LINUX_SYN_ACK).unwrap().to_string(),
        "65160_2-4-8-1-3_1460_10"
    );
}

#[test]
fn header_fields() {
    let h = TcpHeader::new_checked(&LINUX_SYN_ACK[..]).unwrap();
    assert_eq!((h.src_port(), h.dst_port()), (8086, 34640));
    assert_eq!(h.seq(), 0xc2cf_e76d);
    assert_eq!(h.ack(), 0xdb9a_df91);
    assert_eq!(h.header_len(), 40);
    assert!(h.flags().is_syn_ack());
    assert_eq!(h.window(), 65160);
    assert_eq!(h.options().len(), 20);
    assert!(h.payload().is_empty());
}

#[test]
fn every_truncation_length_is_a_typed_error() {
    for len in 0..MACOS_SYN.len() {
        let err = Ja4t::from_syn(&MACOS_SYN[..len]).unwrap_err();
        let want = if len < 20 {
            Ja4Error::Truncated { available: len }
        } else {
            Ja4Error::OptionsTruncated {
                header_len: 44,
                available: len,
            }
        };
        assert_eq!(err, want, "length {len}");
    }
}

#[test]
fn data_offset_below_five_is_rejected() {
    for offset in 0..5u8 {
        let mut h = MACOS_SYN;
        h[12] = offset << 4;
        assert_eq!(
            TcpHeader::new_checked(&h[..]).unwrap_err(),
            Ja4Error::DataOffsetTooSmall {
                data_offset: offset
            }
        );
    }
}

#[test]
fn wrong_flags_are_refused_by_the_one_shot_constructors() {
    assert_eq!(
        Ja4t::from_syn(&LINUX_SYN_ACK).unwrap_err(),
        Ja4Error::WrongFlags {
            flags: 0x12,
            expected: "SYN"
        }
    );
    assert!(matches!(
        Ja4ts::from_syn_ack(&MACOS_SYN),
        Err(Ja4Error::WrongFlags { flags: 0x02, .. })
    ));
}

#[test]
fn ecn_setup_syn_is_fingerprinted() {
    let mut syn = MACOS_SYN;
    syn[13] = 0xc2; // SYN|ECE|CWR, as Linux with tcp_ecn=1 sends it
    assert_eq!(
        Ja4t::from_syn(&syn).unwrap().to_string(),
        "65535_2-1-3-1-1-8-4-0-0_1386_6"
    );
}

#[test]
fn no_options_prints_zeroes() {
    let mut h = [0u8; 20];
    h[12] = 0x50;
    h[13] = 0x02;
    h[14..16].copy_from_slice(&8192u16.to_be_bytes());
    assert_eq!(Ja4t::from_syn(&h).unwrap().to_string(), "8192_00_00_00");
}

fn walk(options: &[u8]) -> (String, u16, u8, Option<OptionsStop>) {
    let s = OptionSummary::walk(options);
    let kinds: Vec<String> = s.kinds().iter().map(u8::to_string).collect();
    (kinds.join("-"), s.mss, s.window_scale, s.stop)
}

#[test]
fn eol_lists_following_zero_bytes_and_stops_at_the_first_non_zero() {
    let (kinds, _, _, stop) = walk(&[1, 0, 0, 0, 2, 4, 5, 0xb4]);
    assert_eq!(kinds, "1-0-0-0");
    assert_eq!(
        stop,
        Some(OptionsStop::EndOfList {
            trailing_at: Some(4)
        })
    );
    let (_, mss, _, _) = walk(&[1, 0, 0, 0, 2, 4, 5, 0xb4]);
    assert_eq!(mss, 0, "an MSS after EOL is not read");
}

#[test]
fn malformed_options_stop_the_walk_unlisted() {
    // Kind 2 as the last byte: no length byte.
    assert_eq!(walk(&[1, 2]).3, Some(OptionsStop::MissingLength { at: 1 }));
    assert_eq!(walk(&[1, 2]).0, "1");
    // Length 0 and 1.
    for len in [0, 1] {
        let (kinds, ..) = walk(&[3, 3, 7, 8, len, 1]);
        assert_eq!(kinds, "3");
        assert_eq!(
            walk(&[3, 3, 7, 8, len, 1]).3,
            Some(OptionsStop::LengthTooSmall { at: 3, len })
        );
    }
    // Length past the area.
    assert_eq!(
        walk(&[2, 4, 5]).3,
        Some(OptionsStop::PastEnd { at: 0, len: 4 })
    );
    assert_eq!(walk(&[2, 4, 5]).0, "");
}

#[test]
fn last_well_formed_mss_and_scale_win_and_odd_lengths_are_listed_but_ignored() {
    let (kinds, mss, ws, stop) =
        walk(&[2, 4, 0, 1, 2, 4, 0, 9, 3, 3, 2, 3, 4, 1, 1, 2, 5, 0, 0, 0]);
    assert_eq!(kinds, "2-2-3-3-2");
    assert_eq!(mss, 9, "the last MSS of length 4");
    assert_eq!(ws, 2, "the kind-3 option of length 4 is not a scale");
    assert_eq!(stop, None);
}

#[test]
fn unknown_and_duplicate_kinds_are_listed_by_number() {
    let (kinds, ..) = walk(&[254, 4, 0xf9, 0x89, 1, 1, 30, 2, 30, 2]);
    assert_eq!(kinds, "254-1-1-30-30");
}
