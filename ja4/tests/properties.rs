//! Property tests: arbitrary bytes never panic; generated well-formed option
//! lists give the fingerprint an independent formatter predicts.

#![expect(
    clippy::cast_possible_truncation,
    reason = "test builders write fixed-width wire fields from small values"
)]

use edgewise_ja4::{Ja4t, OptionSummary};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Opt {
    Nop,
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    Timestamps(u32, u32),
    Other(u8, Vec<u8>),
}

impl Opt {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Opt::Nop => out.push(1),
            Opt::Mss(v) => out.extend_from_slice(&[2, 4, (v >> 8) as u8, *v as u8]),
            Opt::WindowScale(s) => out.extend_from_slice(&[3, 3, *s]),
            Opt::SackPermitted => out.extend_from_slice(&[4, 2]),
            Opt::Timestamps(a, b) => {
                out.extend_from_slice(&[8, 10]);
                out.extend_from_slice(&a.to_be_bytes());
                out.extend_from_slice(&b.to_be_bytes());
            }
            Opt::Other(kind, data) => {
                out.extend_from_slice(&[*kind, 2 + data.len() as u8]);
                out.extend_from_slice(data);
            }
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Opt::Nop => 1,
            Opt::Mss(_) => 2,
            Opt::WindowScale(_) => 3,
            Opt::SackPermitted => 4,
            Opt::Timestamps(..) => 8,
            Opt::Other(kind, _) => *kind,
        }
    }
}

fn opt() -> impl Strategy<Value = Opt> {
    prop_oneof![
        Just(Opt::Nop),
        any::<u16>().prop_map(Opt::Mss),
        any::<u8>().prop_map(Opt::WindowScale),
        Just(Opt::SackPermitted),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Opt::Timestamps(a, b)),
        (5u8..=255, proptest::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(k, d)| Opt::Other(k, d)),
    ]
}

/// The expected fingerprint, computed from the option list, not from bytes.
fn predicted(window: u16, opts: &[Opt], eol_padding: usize) -> String {
    let mut kinds: Vec<String> = opts.iter().map(|o| o.kind().to_string()).collect();
    kinds.extend(std::iter::repeat_n("0".to_string(), eol_padding));
    let mss = opts.iter().rev().find_map(|o| match o {
        Opt::Mss(v) => Some(*v),
        _ => None,
    });
    let scale = opts.iter().rev().find_map(|o| match o {
        Opt::WindowScale(s) => Some(*s),
        _ => None,
    });
    let kinds = if kinds.is_empty() {
        "00".to_string()
    } else {
        kinds.join("-")
    };
    let mss = format!("{:02}", mss.unwrap_or(0));
    let scale = match scale.unwrap_or(0) {
        0 => "00".to_string(),
        s => s.to_string(),
    };
    format!("{window}_{kinds}_{mss}_{scale}")
}

fn syn_with(window: u16, options: &[u8]) -> Vec<u8> {
    let padded = options.len().div_ceil(4) * 4;
    let mut h = vec![0u8; 20 + padded];
    h[12] = (((20 + padded) / 4) as u8) << 4;
    h[13] = 0x02;
    h[14..16].copy_from_slice(&window.to_be_bytes());
    h[20..20 + options.len()].copy_from_slice(options);
    h
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        edgewise_ja4::fuzzing::tcp_header(&data);
    }

    #[test]
    fn arbitrary_option_areas_list_at_most_one_kind_per_byte(
        area in proptest::collection::vec(any::<u8>(), 0..48)
    ) {
        let s = OptionSummary::walk(&area);
        prop_assert!(s.kinds().len() <= area.len().min(40));
    }

    #[test]
    fn well_formed_option_lists_round_trip(
        window in any::<u16>(),
        opts in proptest::collection::vec(opt(), 0..10),
        eol in any::<bool>(),
    ) {
        let mut bytes = Vec::new();
        let mut kept = Vec::new();
        for o in opts {
            let mut one = Vec::new();
            o.encode(&mut one);
            if bytes.len() + one.len() + usize::from(eol) > 40 {
                break;
            }
            bytes.extend_from_slice(&one);
            kept.push(o);
        }
        // EOL, then zero padding to the 4-byte boundary, all listed as `0`.
        let header = if eol {
            bytes.push(0);
            let h = syn_with(window, &bytes);
            let padding = h.len() - 20 - (bytes.len() - 1);
            prop_assert_eq!(Ja4t::from_syn(&h).unwrap().to_string(), predicted(window, &kept, padding));
            h
        } else {
            // Without EOL the area is padded with NOPs so no zero byte is read.
            let nops = bytes.len().div_ceil(4) * 4 - bytes.len();
            for _ in 0..nops {
                bytes.push(1);
                kept.push(Opt::Nop);
            }
            let h = syn_with(window, &bytes);
            prop_assert_eq!(Ja4t::from_syn(&h).unwrap().to_string(), predicted(window, &kept, 0));
            h
        };
        prop_assert!(OptionSummary::walk(&header[20..]).stop.is_none_or(|s| !s.is_malformed()));
    }
}
