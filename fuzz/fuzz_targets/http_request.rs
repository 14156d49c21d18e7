//! Never-panic: one connection's bytes through the HTTP server stack (limits, body caps, answers).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_http_server::fuzzing::request(data));
