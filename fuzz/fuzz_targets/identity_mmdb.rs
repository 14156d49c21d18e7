//! Never-panic + round-trip: an identity MMDB that loads writes and reads back equal.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_identity::fuzzing::mmdb(data));
