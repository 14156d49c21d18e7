//! Never-panic + round-trip + invariant: delta lines decoded, re-encoded equal, applied to a client whose readers always see a version.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_identity::fuzzing::deltas(data));
