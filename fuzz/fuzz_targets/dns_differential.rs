//! Differential: whenever hickory-proto parses a message, our parser agrees.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_fqdn_store::fuzzing::differential(data));
