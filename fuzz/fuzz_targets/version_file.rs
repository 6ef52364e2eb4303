#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| castoff::fuzzing::version_file(data));
