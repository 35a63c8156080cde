//! `cargo fuzz run import`: see `signet::fuzz_entry::import` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    signet::fuzz_entry::import(data);
});
