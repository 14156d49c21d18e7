//! Arbitrary input never panics the decoder or the capture reader.

use proptest::prelude::*;

proptest! {
    #[test]
    fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        edgewise_packet::fuzzing::decode_any(&data);
    }

    #[test]
    fn capture_reader_never_panics_or_loops(
        head in prop_oneof![
            Just(vec![0xd4, 0xc3, 0xb2, 0xa1]),
            Just(vec![0x0a, 0x0d, 0x0d, 0x0a]),
            Just(vec![]),
        ],
        data in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let input = [head, data].concat();
        edgewise_packet::fuzzing::read_capture(&input);
    }
}
