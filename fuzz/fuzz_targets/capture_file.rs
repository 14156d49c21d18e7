//! Never-panic, never-loop: arbitrary bytes read as a pcap / pcapng file.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgewise_packet::fuzzing::read_capture(data));
