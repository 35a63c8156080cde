//! A token SoftHSM2 does not list at the moment `signet serve` starts
//! (another process is rewriting its file: SoftHSM2 does that on every
//! login) is looked for again, not given up on.

use std::time::Duration;

use super::outage::{serve_on, Store};
use crate::support::process::WaitFor;

/// The token's file is away when the process starts, so its first look
/// finds nothing; it is put back once the process says it looks again, and
/// the process comes up on it. Without the second look the process exits.
#[test]
fn a_token_not_listed_for_a_moment_at_start_is_found_again() {
    let store = Store::new();
    let token_dir = store.token_dir();
    let object = token_dir.join("token.object");
    let aside = store.dir.join("token.object.aside");
    std::fs::rename(&object, &aside).unwrap();

    let proc = serve_on(&store, None, WaitFor::Nothing);
    proc.wait_log_within(
        0,
        "PKCS#11 token not listed; reading the token store again",
        Duration::from_secs(60),
    );
    std::fs::rename(&aside, &object).unwrap();
    proc.wait_log_within(0, "PKCS#11 backend ready", Duration::from_secs(60));
    proc.wait_log_within(0, "signet listening", Duration::from_secs(60));
    assert!(!proc.log_text().contains("ERROR"), "{}", proc.log_text());
}

/// A token that stays missing is still reported, with the same words, once
/// the second looks are over.
#[test]
fn a_token_that_stays_missing_is_reported() {
    let store = Store::new();
    let token_dir = store.token_dir();
    std::fs::remove_file(token_dir.join("token.object")).unwrap();
    let mut proc = serve_on(&store, None, WaitFor::Nothing);
    let status = proc.wait().unwrap();
    let log = proc.log_text();
    assert!(!status.success(), "{log}");
    assert_eq!(
        log.matches("reading the token store again").count(),
        3,
        "{log}"
    );
    assert!(log.contains("no PKCS#11 token with label"), "{log}");
}
