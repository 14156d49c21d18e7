//! Invariant: the identity stream's event reader never holds an event past its limit.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_identity::fuzzing::sse(data));
