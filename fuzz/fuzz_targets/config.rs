//! `cargo fuzz run config`: see `signet::fuzz_entry::config` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    signet::fuzz_entry::config(data);
});
