#![no_main]
// Every target in one binary, the one named by MRISCREEN_FUZZ_TARGET (see
// src/fuzzing.rs): the single file `scripts/fuzz --export` writes, to run
// the targets on a machine with more cores and no toolchain.
use std::sync::OnceLock;

static TARGET: OnceLock<fn(&[u8])> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let run = TARGET.get_or_init(|| {
        let name = std::env::var("MRISCREEN_FUZZ_TARGET").unwrap_or_default();
        match mriscreen::fuzzing::TARGETS.iter().find(|(n, _)| *n == name) {
            Some((_, run)) => *run,
            None => {
                let names: Vec<&str> = mriscreen::fuzzing::TARGETS.iter().map(|(n, _)| *n).collect();
                eprintln!("set MRISCREEN_FUZZ_TARGET to one of: {}", names.join(", "));
                std::process::exit(2);
            }
        }
    });
    run(data)
});
