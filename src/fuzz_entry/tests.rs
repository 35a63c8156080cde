//! Every fuzz entry on its seed corpus (fuzz/corpus/TARGET/): no seed
//! breaks a property, and enough of them get past the parser that the
//! fuzzer starts from the code behind it, not from the first refusal.

use std::path::PathBuf;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// Runs `entry` on every seed of `target`; the names of those it accepted.
fn accepted(target: &str, entry: fn(&[u8]) -> bool) -> Vec<String> {
    let all = seeds(target);
    assert!(all.len() >= 5, "{target}: only {} seeds", all.len());
    all.into_iter()
        .filter(|(_, data)| entry(data))
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn template_seeds() {
    let ok = accepted("template", super::template);
    assert!(ok.len() >= 10, "{ok:?}");
}

#[test]
fn canonical_json_seeds() {
    let ok = accepted("canonical_json", super::canonical_json);
    assert!(ok.len() >= 6, "{ok:?}");
    // Without `cfg(fuzzing)` the planted crash is not there.
    assert!(!super::canonical_json(super::PLANT_PREFIX));
}

#[test]
fn import_seeds_reach_every_form() {
    let ok = accepted("import", super::import);
    for form in [
        "hmac-raw",
        "hmac-oct-jwk",
        "hmac-whsec",
        "rsa2048-pkcs8.pem",
        "rsa2048-pkcs8.der",
        "rsa2048-spki.pem",
        "rsa2048-pkcs1.pem",
        "rsa2048.jwk",
        "rsa3072-spki.der",
        "rsa4096-spki.der",
        "p256-pkcs8.der",
        "p384.jwk",
        "ed25519-pkcs8.pem",
        "ed25519.jwk",
    ] {
        assert!(
            ok.iter().any(|n| n.ends_with(form)),
            "no accepted {form} seed in {ok:?}"
        );
    }
    // The refused forms are refused.
    for refused in [
        "sec1.der",
        "private-rsa2048-pkcs1.pem",
        "encrypted",
        "whsec-bad",
    ] {
        assert!(
            !ok.iter().any(|n| n.contains(refused)),
            "{refused} accepted: {ok:?}"
        );
    }
}

#[test]
fn config_seeds_parse() {
    let ok = accepted("config", super::config);
    for name in [
        "seed-demo.toml",
        "seed-signet.toml",
        "seed-signet-pkcs11.toml",
        "seed-profiles.toml",
    ] {
        assert!(
            ok.iter().any(|n| n == name),
            "{name} does not parse: {ok:?}"
        );
    }
}

/// The webhook seeds carry signatures that verify: the fixture, the
/// seeds' generator (scripts/fuzz-seeds.py) and the pipeline agree.
#[test]
fn webhook_seeds_verify() {
    let ok = accepted("webhook_headers", super::webhook_headers);
    for name in [
        "boxo",
        "stripe",
        "standard-webhooks",
        "github",
        "slack",
        "shopify",
        "custom-hex",
        "custom-json",
    ] {
        assert!(
            ok.iter().any(|n| *n == format!("seed-{name}")),
            "seed-{name} does not verify: {ok:?}"
        );
    }
    for name in ["seed-malformed", "seed-duplicate"] {
        assert!(!ok.iter().any(|n| n == name), "{name} verified");
    }
}
