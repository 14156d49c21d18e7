//! Never-panic: DNS parse, mapping rule, store (a rejected message changes nothing).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_fqdn_store::fuzzing::parse_and_record(data));
