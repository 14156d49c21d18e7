//! Never-panic: graph documents through `edgewise advise`'s analysis,
//! policies and renderings.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_advise::fuzzing::advise_graph(data));
