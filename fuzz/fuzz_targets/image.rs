#![no_main]
// See src/fuzzing.rs for what this target feeds.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mriscreen::fuzzing::image(data));
