//! Never-panic: one frame decoded as every supported link type.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_packet::fuzzing::decode_any(data));
