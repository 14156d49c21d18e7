//! Never-panic: bytes as a flow's first bytes through the record layer,
//! both hellos, JA4, JA4S and their raw forms.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_ja4::fuzzing::tls_hello(data));
