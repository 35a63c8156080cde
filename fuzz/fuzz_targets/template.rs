//! `cargo fuzz run template`: see `signet::fuzz_entry::template` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    signet::fuzz_entry::template(data);
});
