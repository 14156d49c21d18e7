//! Never-panic + invariant: NetworkPolicy JSON and the allow-list line format; a failed allow-list changes nothing.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_edge_set::fuzzing::policies(data));
