//! Unit tests of the configuration.

use super::*;

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
fn backend_type_defaults_to_memory() {
    let c = Config::parse("[backend]\ndemo_keys = true\n").unwrap();
    assert_eq!(c.backend, BackendConfig::Memory { demo_keys: true });
    // Fields of another type, or none at all, are still refused by name.
    let e = Config::parse("[backend]\nmodule = \"/x.so\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("module"), "{e}");
    let e = Config::parse("[backend]\ndemo_key = true\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("demo_key"), "{e}");
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn unknown_fields_are_refused() {
    let e = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("lisen"), "{e}");
    let e = Config::parse("[backend]\ntype = \"floppy\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("floppy"), "{e}");
}

#[test]
fn bad_values_name_the_field() {
    let e = Config::parse("[keys]\ndefault_grace_period = \"0s\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("keys.default_grace_period"), "{e}");
    let e = Config::parse("[keys]\ndestroy_delay = \"soon\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("soon"), "{e}");
    let e = Config::parse("[server]\nmax_message_bytes = 0\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("server.max_message_bytes"), "{e}");
}

/// Found by `cargo fuzz run config`: whitespace before a non-ASCII
/// character made tracing-subscriber's filter parser panic on a byte
/// offset inside the character, so `check-config` (and a reload) crashed.
#[test]
fn a_non_ascii_log_level_is_refused_not_a_panic() {
    for level in [" nylevel\u{6e8}[[[", "info, \u{e9}=debug", "\u{e9}"] {
        let level = toml::Value::String(level.into());
        let e = Config::parse(&format!("[log]\nlevel = {level}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.level") && e.contains("ASCII"), "{e}");
    }
    // ASCII filters still parse.
    Config::parse("[log]\nlevel = \"signet=debug,info\"\n").unwrap();
}

#[test]
fn redis_replay_store_settings() {
    let e = Config::parse("[http]\nreplay_store = \"redis\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("redis_url"), "{e}");
    let e = Config::parse("[http]\nredis_url = \"redis://h\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("redis_url"), "{e}");
    let both = "[http]\nreplay_store = \"redis\"\nredis_url = \"redis://h\"\n\
                redis_url_env = \"X\"\n";
    assert!(Config::parse(both)
        .unwrap_err()
        .to_string()
        .contains("exactly one"));
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
    let e = c.http.resolve_redis_url().unwrap_err().to_string();
    assert!(e.contains("SIGNET_TEST_UNSET_9F3A"), "{e}");
    assert_eq!(
        Config::parse("").unwrap().http.resolve_redis_url(),
        Ok(None)
    );
}

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
        let e = Config::parse(&text).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{section}.{field} must be {range}")),
            "{e}"
        );
    }
    let pkcs11 = "[backend]\ntype = \"pkcs11\"\nmodule = \"m\"\ntoken_label = \"t\"\n\
                  pin_env = \"P\"\nsession_wait = \"1d\"\n";
    let e = Config::parse(pkcs11).unwrap_err().to_string();
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
