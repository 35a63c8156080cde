//! `cargo fuzz run webhook_headers`: see `signet::fuzz_entry::webhook_headers` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    signet::fuzz_entry::webhook_headers(data);
});
