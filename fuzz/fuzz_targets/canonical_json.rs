//! `cargo fuzz run canonical_json`: see `signet::fuzz_entry::canonical_json` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    signet::fuzz_entry::canonical_json(data);
});
