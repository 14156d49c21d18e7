//! Never-panic + bounds: Kubernetes audit webhook bodies.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_ip_index::fuzzing::audit(data));
