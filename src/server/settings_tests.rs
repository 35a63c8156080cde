//! Unit tests of the composition root's checks: what `serve`,
//! `check-config` and the reload refuse.

use std::time::Duration;

use super::*;
use crate::config::BackendConfig;

/// `text` parsed and turned into settings, or the refusal's text.
fn check(text: &str) -> Result<Settings, String> {
    let c = Config::parse(text).map_err(|e| e.to_string())?;
    Settings::from_config(&c).map_err(|e| e.to_string())
}

#[test]
fn example_config_parses() {
    let text = include_str!("../../examples/signet.toml");
    let c = Config::parse(text).unwrap();
    assert_eq!(c.keys.default_grace_period, Duration::from_secs(7 * 86400));
    assert_eq!(
        Settings::from_config(&c).unwrap().profiles[0].name,
        "acquirer"
    );
    assert!(check_listener(&c).is_ok());
    let c = Config::parse(include_str!("../../examples/signet-pkcs11.toml")).unwrap();
    assert!(matches!(c.backend, BackendConfig::Pkcs11(_)));
    assert!(check_listener(&c).is_ok());
}

#[test]
fn every_preset_page_config_parses() {
    // Every ```toml block of the HTTP docs is a valid config, and each
    // preset page has one that uses its preset.
    let pages = [
        ("", include_str!("../../docs/http-profiles.md")),
        ("boxo", include_str!("../../docs/presets/boxo.md")),
        ("stripe", include_str!("../../docs/presets/stripe.md")),
        (
            "standard-webhooks",
            include_str!("../../docs/presets/standard-webhooks.md"),
        ),
        ("github", include_str!("../../docs/presets/github.md")),
        ("slack", include_str!("../../docs/presets/slack.md")),
        ("shopify", include_str!("../../docs/presets/shopify.md")),
        ("rfc9421", include_str!("../../docs/presets/rfc9421.md")),
    ];
    for (preset, doc) in pages {
        let mut uses_preset = preset.is_empty();
        for block in doc.split("```toml\n").skip(1) {
            let text = block.split("```").next().unwrap();
            let c = Config::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let profiles = resolve_profiles(&c).unwrap();
            uses_preset |= profiles.iter().any(|p| {
                p.preset.is_some_and(|x| x.name() == preset)
                    || matches!(p.scheme, crate::httpsig::profile::Scheme::Rfc9421(_))
                        && preset == "rfc9421"
            });
        }
        assert!(uses_preset, "docs/presets/{preset}.md has no configuration");
    }
}

#[test]
fn limits_and_listener_rules() {
    let long = "x".repeat(2000);
    let e = check(&format!(
        "[[profiles]]\nname = \"p\"\nkey = \"k\"\nclient_id = \"c\"\npayload_template = \"{{payload}}{long}\"\n"
    ))
    .err()
    .unwrap();
    assert!(e.contains("max_template_bytes"), "{e}");
    let e = Config::parse("[limits]\nmax_in_flight = 0\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("limits.max_in_flight"), "{e}");
    // Plaintext: only when said, only on loopback; no auth: loopback only.
    let c = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\n").unwrap();
    assert!(check_listener(&c)
        .unwrap_err()
        .to_string()
        .contains("server.tls"));
    let c = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nplaintext = true\n").unwrap();
    assert!(check_listener(&c).is_ok());
    let c = Config::parse("[server]\nlisten = \"0.0.0.0:1\"\nplaintext = true\n").unwrap();
    assert!(check_listener(&c)
        .unwrap_err()
        .to_string()
        .contains("not a loopback"));
    let c = Config::parse(
        "[server]\nlisten = \"[::]:1\"\n[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n",
    )
    .unwrap();
    assert!(check_listener(&c)
        .unwrap_err()
        .to_string()
        .contains("auth.identities"));
    let c = Config::parse(
        "[server]\nlisten = \"[::]:1\"\n[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n\
         [[auth.identities]]\nname = \"a\"\n",
    )
    .unwrap();
    assert!(check_listener(&c).is_ok());
    let mut demo = Config::demo();
    assert!(check_listener(&demo).is_ok());
    demo.server.listen = "0.0.0.0:50051".parse().unwrap();
    assert!(
        check_listener(&demo).is_err(),
        "--listen 0.0.0.0 in demo mode"
    );
}

/// `text` is refused by [`Settings::from_config`] (the check `serve`,
/// `check-config` and the reload share) with a message containing `want`.
fn refused(text: &str, want: &str) -> String {
    let Err(e) = check(text) else {
        panic!("accepted: {text}")
    };
    assert!(e.contains(want), "want {want:?} in: {e}\n{text}");
    e
}

const PLAIN: &str = "[server]\nlisten = \"127.0.0.1:1\"\nplaintext = true\n";

#[test]
fn a_token_under_two_identities_is_refused_without_its_hash() {
    let hash = crate::auth::policy::token_hash("sgt_shared");
    let text = format!(
        "{PLAIN}[[auth.identities]]\nname = \"reader\"\n[[auth.identities.grants]]\n\
         operations = [\"verify\"]\nkeys = [\"*\"]\n\
         [[auth.identities]]\nname = \"root\"\n[[auth.identities.grants]]\n\
         operations = [\"*\"]\nkeys = [\"*\"]\n\
         [[auth.tokens]]\nidentity = \"reader\"\nsha256 = \"{hash}\"\n\
         [[auth.tokens]]\nidentity = \"root\"\nsha256 = \"{}\"\n",
        hash.to_uppercase()
    );
    let e = refused(&text, "\"reader\"");
    assert!(e.contains("\"root\""), "{e}");
    assert!(
        e.contains("auth.tokens[1]") && e.contains("auth.tokens[0]"),
        "{e}"
    );
    assert!(
        !e.to_lowercase().contains(&hash[..16]),
        "the hash is in {e}"
    );
    // Twice for the same identity: refused too (the last entry's expiry
    // would silently win).
    let twice = text.replace("identity = \"root\"", "identity = \"reader\"");
    refused(&twice, "listed twice for identity \"reader\"");
}

#[test]
fn grants_that_grant_nothing_are_refused() {
    let grant = |ops: &str, rest: &str| {
        format!(
            "{PLAIN}[[auth.identities]]\nname = \"a\"\n[[auth.identities.grants]]\n\
             operations = {ops}\n{rest}"
        )
    };
    refused(
        &grant("[\"sign\"]", "profiles = [\"p\"]\n"),
        "names no keys",
    );
    refused(
        &grant("[\"admin.*\"]", "profiles = [\"*\"]\n"),
        "names no keys",
    );
    refused(
        &grant("[\"http_sign\"]", "keys = [\"k\"]\n"),
        "names no profiles",
    );
    refused(
        &grant("[\"sign\", \"http_sign\"]", "keys = [\"k\"]\n"),
        "names no profiles",
    );
    refused(
        &grant("[\"sign\"]", "keys = [\"k\"]\nprofiles = [\"p\"]\n"),
        "grants[0].profiles: none of the grant's operations",
    );
    refused(&grant("[\"sign\"]", ""), "name the keys or profiles");
    // Key patterns that no valid name matches.
    for p in [
        "Pay Ments",
        "PAY-*",
        "-pay*",
        "*/x",
        "pay ments",
        &"a".repeat(65),
    ] {
        refused(
            &grant("[\"sign\"]", &format!("keys = [\"{p}\"]\n")),
            "matches no valid name",
        );
    }
    refused(
        &grant("[\"http_verify\"]", "profiles = [\"Stripe\"]\n"),
        "grants[0].profiles: pattern \"Stripe\" matches no valid name",
    );
    // What is meaningful still passes.
    for (ops, rest) in [
        ("[\"*\"]", "keys = [\"*\"]\n"),
        ("[\"*\"]", "profiles = [\"*\"]\n"),
        (
            "[\"sign\", \"http_sign\"]",
            "keys = [\"pay-*\"]\nprofiles = [\"stripe\"]\n",
        ),
        (
            "[\"admin.*\"]",
            "keys = [\"*-eu\", \"*.x\", \"a*\", \"0\"]\n",
        ),
    ] {
        let text = grant(ops, rest);
        check(&text)
            .map(drop)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

#[test]
fn what_serve_refuses_check_refuses() {
    refused("[audit]\noutput = \"syslog\"\n", "audit.output must be");
    refused("[audit]\noutput = \"file\"\n", "audit.path is required");
    refused(
        "[[limits.keys]]\nkey = \"Bad Name\"\nrate_per_second = 1\n",
        "limits.keys[0].key \"Bad Name\": invalid key name",
    );
    refused(
        "[http]\nreplay_store = \"redis\"\nredis_url = \"http://:pw-77@h\"\n",
        "http.redis_url",
    );
    let e = check("[http]\nreplay_store = \"redis\"\nredis_url = \"nope://:pw-77@h\"\n")
        .err()
        .unwrap();
    assert!(!e.contains("pw-77"), "{e}");
}
