//! Never-panic + invariant: Kubernetes JSON (lists, objects, watch events) into an index.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_ip_index::fuzzing::objects(data));
