//! Never-panic: TCP header view, option walk, JA4T / JA4TS and the tracker.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_ja4::fuzzing::tcp_header(data));
