//! Unit tests of the configuration.

use std::time::Duration;

use super::*;

#[test]
fn example_config_parses() {
    let text = include_str!("../../examples/signet.toml");
    let c = Config::parse(text).unwrap();
    assert_eq!(c.keys.default_grace_period, Duration::from_secs(7 * 86400));
    assert_eq!(c.resolved_profiles().unwrap()[0].name, "acquirer");
    assert!(c.check_listener().is_ok());
    let c = Config::parse(include_str!("../../examples/signet-pkcs11.toml")).unwrap();
    assert!(matches!(c.backend, BackendConfig::Pkcs11(_)));
    assert!(c.check_listener().is_ok());
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
    ];
    for (preset, doc) in pages {
        let mut uses_preset = preset.is_empty();
        for block in doc.split("```toml\n").skip(1) {
            let text = block.split("```").next().unwrap();
            let c = Config::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let profiles = c.resolved_profiles().unwrap();
            uses_preset |= profiles
                .iter()
                .any(|p| p.preset.is_some_and(|x| x.name() == preset));
        }
        assert!(uses_preset, "docs/presets/{preset}.md has no configuration");
    }
}

#[test]
fn empty_config_is_defaults() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.server.listen, ServerConfig::default().listen);
    assert!(matches!(
        c.backend,
        BackendConfig::Memory { demo_keys: false }
    ));
}

#[test]
fn unknown_fields_are_refused() {
    let e = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n").unwrap_err();
    assert!(e.contains("lisen"), "{e}");
    let e = Config::parse("[backend]\ntype = \"floppy\"\n").unwrap_err();
    assert!(e.contains("floppy"), "{e}");
}

#[test]
fn bad_values_name_the_field() {
    let e = Config::parse("[keys]\ndefault_grace_period = \"0s\"\n").unwrap_err();
    assert!(e.contains("keys.default_grace_period"), "{e}");
    let e = Config::parse("[keys]\ndestroy_delay = \"soon\"\n").unwrap_err();
    assert!(e.contains("soon"), "{e}");
    let e = Config::parse("[server]\nmax_message_bytes = 0\n").unwrap_err();
    assert!(e.contains("server.max_message_bytes"), "{e}");
}

#[test]
fn limits_and_listener_rules() {
    let long = "x".repeat(2000);
    let e = Config::parse(&format!(
        "[[profiles]]\nname = \"p\"\nkey = \"k\"\nclient_id = \"c\"\npayload_template = \"{{payload}}{long}\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("max_template_bytes"), "{e}");
    let e = Config::parse("[limits]\nmax_in_flight = 0\n").unwrap_err();
    assert!(e.contains("limits.max_in_flight"), "{e}");
    // Plaintext: only when said, only on loopback; no auth: loopback only.
    let c = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\n").unwrap();
    assert!(c.check_listener().unwrap_err().contains("server.tls"));
    let c = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nplaintext = true\n").unwrap();
    assert!(c.check_listener().is_ok());
    let c = Config::parse("[server]\nlisten = \"0.0.0.0:1\"\nplaintext = true\n").unwrap();
    assert!(c.check_listener().unwrap_err().contains("not a loopback"));
    let c = Config::parse(
        "[server]\nlisten = \"[::]:1\"\n[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n",
    )
    .unwrap();
    assert!(c.check_listener().unwrap_err().contains("auth.identities"));
    let c = Config::parse(
        "[server]\nlisten = \"[::]:1\"\n[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n\
         [[auth.identities]]\nname = \"a\"\n",
    )
    .unwrap();
    assert!(c.check_listener().is_ok());
    let mut demo = Config::demo();
    assert!(demo.check_listener().is_ok());
    demo.server.listen = "0.0.0.0:50051".parse().unwrap();
    assert!(
        demo.check_listener().is_err(),
        "--listen 0.0.0.0 in demo mode"
    );
}

#[test]
fn redis_replay_store_settings() {
    let e = Config::parse("[http]\nreplay_store = \"redis\"\n").unwrap_err();
    assert!(e.contains("redis_url"), "{e}");
    let e = Config::parse("[http]\nredis_url = \"redis://h\"\n").unwrap_err();
    assert!(e.contains("redis_url"), "{e}");
    let both = "[http]\nreplay_store = \"redis\"\nredis_url = \"redis://h\"\n\
                redis_url_env = \"X\"\n";
    assert!(Config::parse(both).unwrap_err().contains("exactly one"));
    let c = Config::parse(
        "[http]\nreplay_store = \"redis\"\nredis_url = \"redis://:pw-9f3a@h:6379\"\n",
    )
    .unwrap();
    assert_eq!(
        c.http.resolve_redis_url().unwrap().as_deref(),
        Some("redis://:pw-9f3a@h:6379")
    );
    // The config's Debug output (which a log line could carry) hides the
    // password.
    let shown = format!("{c:?}");
    assert!(!shown.contains("pw-9f3a"), "{shown}");
    let c = Config::parse(
        "[http]\nreplay_store = \"redis\"\nredis_url_env = \"SIGNET_TEST_UNSET_9F3A\"\n",
    )
    .unwrap();
    let e = c.http.resolve_redis_url().unwrap_err();
    assert!(e.contains("SIGNET_TEST_UNSET_9F3A"), "{e}");
    assert_eq!(
        Config::parse("").unwrap().http.resolve_redis_url(),
        Ok(None)
    );
}

/// `text` is refused by [`Config::check`] (the check `serve`,
/// `check-config` and the reload share) with a message containing `want`.
fn refused(text: &str, want: &str) -> String {
    let e = Config::parse(text).and_then(|c| c.check()).expect_err(text);
    assert!(e.contains(want), "want {want:?} in: {e}\n{text}");
    e
}

const PLAIN: &str = "[server]\nlisten = \"127.0.0.1:1\"\nplaintext = true\n";

#[test]
fn every_duration_has_a_range_named_in_its_error() {
    let tls = "[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n";
    for (section, field, bad, range) in [
        (
            "keys",
            "default_grace_period",
            "106751991167300d",
            "between 1s and 3650d",
        ),
        (
            "keys",
            "default_grace_period",
            "300000y",
            "between 1s and 3650d",
        ),
        ("keys", "default_grace_period", "0s", "between 1s and 3650d"),
        ("keys", "destroy_delay", "3651d", "between 0s and 3650d"),
        ("keys", "tick_interval", "1ms", "between 10ms and 1m"),
        (
            "server",
            "drain_delay",
            "106751991167300d",
            "between 0s and 5m",
        ),
        ("server", "shutdown_timeout", "16m", "between 0s and 15m"),
        (
            "server.tls",
            "reload_interval",
            "0s",
            "between 100ms and 1h",
        ),
        ("server.tls", "handshake_timeout", "1h", "between 1s and 5m"),
    ] {
        let text = if section == "server.tls" {
            format!("[server]\n{tls}{field} = \"{bad}\"\n")
        } else {
            format!("[{section}]\n{field} = \"{bad}\"\n")
        };
        let e = Config::parse(&text).unwrap_err();
        assert!(
            e.contains(&format!("{section}.{field} must be {range}")),
            "{e}"
        );
    }
    let pkcs11 = "[backend]\ntype = \"pkcs11\"\nmodule = \"m\"\ntoken_label = \"t\"\n\
                  pin_env = \"P\"\nsession_wait = \"1d\"\n";
    let e = Config::parse(pkcs11).unwrap_err();
    assert!(
        e.contains("backend.session_wait must be between 1ms and 5m"),
        "{e}"
    );
    // The largest values of each range are accepted.
    Config::parse(
        "[keys]\ndefault_grace_period = \"3650d\"\ndestroy_delay = \"3650d\"\n\
         [server]\ndrain_delay = \"5m\"\nshutdown_timeout = \"15m\"\n",
    )
    .unwrap();
}

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
        Config::parse(&text)
            .and_then(|c| c.check())
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
    let e = Config::parse("[http]\nreplay_store = \"redis\"\nredis_url = \"nope://:pw-77@h\"\n")
        .unwrap_err();
    assert!(!e.contains("pw-77"), "{e}");
}
