//! `signet check-config`, `signet serve` and the SIGHUP reload agree on
//! what a configuration may hold (they call one check), durations are
//! bounded in the file and in the API, and a reload names every
//! restart-only setting it could not apply.

use std::process::{Command, Stdio};
use std::time::Duration;

use signet::api::pb;
use signet::auth::policy::token_hash;

use crate::support::process::serve;
use crate::support::TestServer;

const PLAIN: &str =
    "[server]\nlisten = \"127.0.0.1:0\"\nplaintext = true\n[audit]\noutput = \"off\"\n";

/// Runs the binary; returns (success, the `signet: ` error line).
fn signet(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = crate::support::process::wait_exit(
        &mut child,
        Duration::from_secs(30),
        &format!("signet {args:?} did not exit: it accepted the configuration"),
    );
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let line = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("signet: "))
        .unwrap_or_default()
        .to_string();
    (status.success(), line)
}

/// Configurations `serve` refuses: `check-config` must refuse each, with
/// the same message. (Classes from the attack report: unbounded
/// durations, one token under two identities, useless grants and
/// patterns, sections `serve` alone used to check.)
fn bad_configs() -> Vec<(String, &'static str)> {
    let hash = token_hash("sgt_copy_pasted");
    let ids = "[[auth.identities]]\nname = \"verifier\"\n[[auth.identities.grants]]\n\
               operations = [\"verify\"]\nkeys = [\"*\"]\n\
               [[auth.identities]]\nname = \"root\"\n[[auth.identities.grants]]\n\
               operations = [\"*\"]\nkeys = [\"*\"]\n";
    let grant = |g: &str| {
        format!("{PLAIN}[[auth.identities]]\nname = \"a\"\n[[auth.identities.grants]]\n{g}")
    };
    vec![
        (
            format!("{PLAIN}[keys]\ndefault_grace_period = \"106751991167300d\"\n"),
            "keys.default_grace_period must be between 1s and 3650d",
        ),
        (
            format!("{PLAIN}[keys]\ndefault_grace_period = \"300000y\"\n"),
            "keys.default_grace_period must be between",
        ),
        (
            format!("{PLAIN}[keys]\ndestroy_delay = \"3651d\"\n"),
            "keys.destroy_delay must be between 0s and 3650d",
        ),
        (
            format!("{PLAIN}[keys]\ntick_interval = \"0s\"\n"),
            "keys.tick_interval must be between",
        ),
        (
            PLAIN.replace(
                "plaintext = true\n",
                "plaintext = true\ndrain_delay = \"106751991167300d\"\n",
            ),
            "server.drain_delay must be between 0s and 5m",
        ),
        (
            PLAIN.replace(
                "plaintext = true\n",
                "plaintext = true\nshutdown_timeout = \"1d\"\n",
            ),
            "server.shutdown_timeout must be between 0s and 15m",
        ),
        (
            "[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\ncert_file = \"c\"\n\
             key_file = \"k\"\nreload_interval = \"0s\"\n"
                .into(),
            "server.tls.reload_interval must be between 100ms and 1h",
        ),
        (
            "[backend]\ntype = \"pkcs11\"\nmodule = \"/nonexistent.so\"\ntoken_label = \"t\"\n\
             pin_env = \"SIGNET_TEST_NO_PIN\"\nsession_wait = \"300000y\"\n"
                .into(),
            "backend.session_wait must be between 1ms and 5m",
        ),
        (
            PLAIN.replace("output = \"off\"", "output = \"syslog\""),
            "audit.output must be \"stdout\", \"file\" or \"off\", not \"syslog\"",
        ),
        (
            PLAIN.replace("output = \"off\"", "output = \"file\""),
            "audit.path is required with output = \"file\"",
        ),
        (
            grant("operations = [\"sign\"]\nprofiles = [\"stripe\"]\n"),
            "operation sign acts on keys, but the grant names no keys",
        ),
        (
            grant("operations = [\"sign\"]\nkeys = [\"Pay Ments\"]\n"),
            "pattern \"Pay Ments\" matches no valid name",
        ),
        (
            format!("{PLAIN}[[limits.keys]]\nkey = \"Bad Name\"\nrate_per_second = 5\n"),
            "limits.keys[0].key \"Bad Name\": invalid key name",
        ),
        (
            format!(
                "{PLAIN}{ids}[[auth.tokens]]\nidentity = \"verifier\"\nsha256 = \"{hash}\"\n\
                 [[auth.tokens]]\nidentity = \"root\"\nsha256 = \"{hash}\"\n"
            ),
            "listed for identity \"verifier\" (auth.tokens[0]) and for identity \"root\"",
        ),
        (
            "[server]\nlisten = \"0.0.0.0:0\"\nplaintext = true\n".into(),
            "is not a loopback address",
        ),
        (
            format!(
                "{PLAIN}[http]\nreplay_store = \"redis\"\nredis_url = \"nope://:pw-31337@h\"\n"
            ),
            "http.redis_url",
        ),
        // One per remaining section-local rule and closed set of values.
        (
            PLAIN.replace("output = \"off\"", "output = \"stdout\"\npath = \"/tmp/a\""),
            "audit.path is only for output = \"file\"",
        ),
        (
            format!("{TLS}min_version = \"1.1\"\n"),
            "server.tls.min_version must be \"1.2\" or \"1.3\", not \"1.1\"",
        ),
        (
            format!("{TLS}handshake_timeout = \"1h\"\n"),
            "server.tls.handshake_timeout must be between 1s and 5m",
        ),
        (
            format!("{PLAIN}[http]\nreplay_store = \"disk\"\n"),
            "http.replay_store must be \"memory\", \"redis\" or \"postgres\", not \"disk\"",
        ),
        (
            format!("{PLAIN}[log]\nformat = \"xml\"\n"),
            "log.format must be \"text\" or \"json\", not \"xml\"",
        ),
        (
            format!("{PLAIN}[log]\nlevel = \"info,[\"\n"),
            "log.level: invalid filter",
        ),
        (
            PLAIN.replace(
                "plaintext = true\n",
                "plaintext = true\nmax_message_bytes = 0\n",
            ),
            "server.max_message_bytes must be between 1 and 67108864",
        ),
        (
            PLAIN.replace(
                "plaintext = true\n",
                "plaintext = true\nmax_concurrent_streams = 0\n",
            ),
            "server.max_concurrent_streams must be at least 1",
        ),
        (
            format!("{PLAIN}[limits]\nmax_in_flight = 0\n"),
            "limits.max_in_flight must be at least 1",
        ),
        (
            format!("{PLAIN}[limits]\nmax_http_body_bytes = 67108865\n"),
            "limits.max_http_body_bytes must be at most 67108864",
        ),
        (
            format!("{PLAIN}[http]\nreplay_capacity = 0\n"),
            "http.replay_capacity must be at least 1",
        ),
        (
            format!("{PLAIN}[http]\nreplay_store = \"redis\"\n"),
            "http.redis_url or redis_url_env is required with replay_store = \"redis\"",
        ),
        (
            format!(
                "{PLAIN}[http]\nreplay_store = \"redis\"\nredis_url = \"redis://h\"\n\
                 redis_url_env = \"SIGNET_TEST_REDIS\"\n"
            ),
            "http: set exactly one of redis_url and redis_url_env",
        ),
        (
            format!("{PLAIN}{PKCS11}token_serial = \"1\"\npin_env = \"P\"\n"),
            "backend: set exactly one of token_label and token_serial",
        ),
        (
            format!("{PLAIN}{PKCS11}"),
            "backend: set exactly one of pin_file and pin_env",
        ),
        (
            format!("{PLAIN}{PKCS11}pin_env = \"P\"\nmax_sessions = 0\n"),
            "backend.max_sessions must be between 1 and 1024",
        ),
        (
            format!("{PLAIN}{PKCS11}pin_env = \"P\"\nthreads = 2000\n"),
            "backend.threads must be at most 1024",
        ),
        (
            format!("{PLAIN}[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n"),
            "server: set either server.tls or server.plaintext, not both",
        ),
        (
            "[server]\nlisten = \"127.0.0.1:0\"\n".into(),
            "configure [server.tls], or set server.plaintext = true",
        ),
        (
            TLS.replace("127.0.0.1:0", "0.0.0.0:0"),
            "is not a loopback address: configure [[auth.identities]]",
        ),
        (
            format!(
                "{PLAIN}[limits]\nmax_template_bytes = 5\n[[profiles]]\nname = \"p\"\n\
                 key = \"k\"\nclient_id = \"c\"\n"
            ),
            "profile p: payload_template is",
        ),
        (
            format!("{PLAIN}{PROFILE}{PROFILE}"),
            "profile \"p\": name: defined twice",
        ),
        (
            format!("{PLAIN}[[profiles]]\nname = \"payouts\"\npreset = \"boxo\"\nkey = \"k\"\n"),
            "profile \"payouts\": ",
        ),
        (
            PLAIN.replace("plaintext = true\n", "plaintext = true\nbogus = 1\n"),
            "unknown field `bogus`",
        ),
        // The registry and replay store in PostgreSQL.
        (
            format!("{PLAIN}[registry]\nstore = \"etcd\"\n"),
            "registry.store must be \"token\" or \"postgres\", not \"etcd\"",
        ),
        (
            format!("{PLAIN}[registry]\nmax_staleness = \"0s\"\n"),
            "registry.max_staleness must be between 1s and 1d, not 0s",
        ),
        (
            format!("{PLAIN}[registry]\nmax_staleness = \"2d\"\n"),
            "registry.max_staleness must be between 1s and 1d, not 2d",
        ),
        (
            format!("{PLAIN}[postgres]\nurl_file = \"/run/pg.url\"\nurl_env = \"PG_URL\"\n"),
            "postgres: set exactly one of url_file and url_env",
        ),
        (
            format!("{PLAIN}[postgres]\nschema = \"signet\"\n"),
            "postgres: set exactly one of url_file and url_env",
        ),
        (
            format!("{PLAIN}[postgres]\nurl_env = \"PG_URL\"\nschema = \"Signet-Keys\"\n"),
            "postgres.schema must be 1 to 63 of a-z, 0-9 and _",
        ),
        (
            format!("{PLAIN}[postgres]\nurl_env = \"PG_URL\"\nschema = \"pg_keys\"\n"),
            "postgres.schema must be",
        ),
        (
            format!("{PLAIN}[postgres]\nurl_env = \"PG_URL\"\npool_size = 0\n"),
            "postgres.pool_size must be between 1 and 256",
        ),
        (
            format!("{PLAIN}[postgres]\nurl_env = \"PG_URL\"\nstatement_timeout = \"10m\"\n"),
            "postgres.statement_timeout must be between 100ms and 5m, not 10m",
        ),
        (
            format!("{PLAIN}[postgres]\nurl_env = \"PG_URL\"\nheartbeat = \"10ms\"\n"),
            "postgres.heartbeat must be between 100ms and 1m, not 10ms",
        ),
        (
            format!(
                "{PLAIN}[postgres]\nurl_env = \"PG_URL\"\nurl = \"postgres://u:pw-31337@h/d\"\n"
            ),
            "unknown field `url`",
        ),
        (
            format!("{PLAIN}[postgres]\nurl_env = \"PG_URL\"\nca_file = \"\"\n"),
            "postgres.ca_file is empty",
        ),
        (
            format!(
                "{PLAIN}[postgres]\nurl_env = \"PG_URL\"\nca_file = \"ca.pem\"\n\
                 client_cert_file = \"c.pem\"\n"
            ),
            "set both postgres.client_cert_file and postgres.client_key_file, or neither",
        ),
        (
            format!(
                "{PLAIN}[postgres]\nurl_env = \"PG_URL\"\nclient_cert_file = \"c.pem\"\n\
                 client_key_file = \"k.pem\"\n"
            ),
            "postgres.client_cert_file needs postgres.ca_file",
        ),
        (
            format!("{PLAIN}{PKCS11}pin_env = \"P\"\n[registry]\nstore = \"postgres\"\n"),
            "a [postgres] section is required with registry.store = \"postgres\"",
        ),
        (
            format!("{PLAIN}[registry]\nstore = \"postgres\"\n[postgres]\nurl_env = \"PG_URL\"\n"),
            "registry.store = \"postgres\" needs backend.type = \"pkcs11\"",
        ),
        (
            format!("{PLAIN}[http]\nreplay_store = \"postgres\"\n"),
            "a [postgres] section is required with registry.store = \"postgres\" or \
             http.replay_store = \"postgres\"",
        ),
    ]
}

/// `[server.tls]` with files that are never read: every case using it is
/// refused before.
const TLS: &str =
    "[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n";
/// A PKCS#11 backend missing its token or PIN settings.
const PKCS11: &str =
    "[backend]\ntype = \"pkcs11\"\nmodule = \"/nonexistent.so\"\ntoken_label = \"t\"\n";
/// A valid profile.
const PROFILE: &str = "[[profiles]]\nname = \"p\"\nkey = \"k\"\nclient_id = \"c\"\n";

#[test]
fn check_config_refuses_what_serve_refuses_with_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let file = path.to_str().unwrap();
    let cases = bad_configs();
    assert!(cases.len() >= 30, "one broken file per rule");
    for (text, want) in cases {
        std::fs::write(&path, &text).unwrap();
        let (ok, checked) = signet(&["check-config", file]);
        assert!(!ok, "check-config accepted:\n{text}");
        let (ok, served) = signet(&["serve", "--config", file]);
        assert!(!ok, "serve accepted:\n{text}");
        assert_eq!(
            checked, served,
            "check-config and serve disagree on\n{text}"
        );
        assert!(
            checked.contains(want),
            "want {want:?} in {checked:?}\n{text}"
        );
        // Nothing secret in the message: no token hash, no password.
        assert!(
            !checked.contains(&token_hash("sgt_copy_pasted")),
            "{checked}"
        );
        assert!(!checked.contains("pw-31337"), "{checked}");
    }
    // And a good file passes both ways (serve is not started here).
    std::fs::write(&path, PLAIN).unwrap();
    assert!(signet(&["check-config", file]).0);
}

#[test]
fn sighup_names_restart_only_settings_and_refuses_what_start_up_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("signet.toml");
    std::fs::write(&config, PLAIN).unwrap();
    let s = serve()
        .config(&config)
        .ready_within(Some(Duration::from_secs(30)))
        .start();
    let wait_log =
        |from: usize, needle: &str| s.wait_log_within(from, needle, Duration::from_secs(30));

    // Restart-only settings changed, next to a reloadable one.
    let edited = PLAIN.replace("127.0.0.1:0", "127.0.0.1:1").replace(
        "plaintext = true\n",
        "plaintext = true\ndrain_delay = \"2s\"\n",
    ) + "[keys]\ndefault_grace_period = \"1d\"\n[limits]\nmax_in_flight = 7\n\
           [[limits.keys]]\nkey = \"k\"\nrate_per_second = 3\n";
    std::fs::write(&config, &edited).unwrap();
    let from = s.log_len();
    s.signal("-HUP");
    wait_log(from, "SIGHUP: reloaded");
    let said = s.since(from);
    for setting in [
        "server.listen",
        "server.drain_delay",
        "keys.default_grace_period",
        "limits.max_in_flight",
    ] {
        let line = said
            .lines()
            .find(|l| l.contains(&format!("SIGHUP: {setting} changed")))
            .unwrap_or_else(|| panic!("no warning for {setting}:\n{said}"));
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("only on restart"), "{line}");
    }
    assert!(!said.contains("limits.keys changed"), "{said}");

    // The same refusals as start-up: a duplicated token keeps the policy
    // in force, and the log names the identities, not the hash.
    let hash = token_hash("sgt_dup");
    let dup = format!(
        "{PLAIN}[[auth.identities]]\nname = \"ro\"\n[[auth.identities.grants]]\n\
         operations = [\"verify\"]\nkeys = [\"*\"]\n[[auth.identities]]\nname = \"rw\"\n\
         [[auth.identities.grants]]\noperations = [\"*\"]\nkeys = [\"*\"]\n\
         [[auth.tokens]]\nidentity = \"ro\"\nsha256 = \"{hash}\"\n\
         [[auth.tokens]]\nidentity = \"rw\"\nsha256 = \"{hash}\"\n"
    );
    std::fs::write(&config, dup).unwrap();
    let from = s.log_len();
    s.signal("-HUP");
    let line = wait_log(from, "config not reloaded");
    assert!(line.contains("\"ro\"") && line.contains("\"rw\""), "{line}");
    assert!(!line.contains(&hash), "{line}");
}

#[tokio::test]
async fn api_durations_out_of_range_are_invalid_argument_naming_the_field() {
    let s = TestServer::memory().await;
    let mut admin = s.admin();
    admin
        .create_key(pb::CreateKeyRequest {
            name: "k".into(),
            algorithm: pb::Algorithm::HmacSha256 as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    admin
        .rotate_key(pb::RotateKeyRequest {
            name: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // The largest a protobuf Duration holds (10,000 years).
    let huge = prost_types::Duration {
        seconds: 315_576_000_000,
        nanos: 0,
    };
    let ten_years_and_a_second = prost_types::Duration {
        seconds: 3650 * 86_400 + 1,
        nanos: 0,
    };
    for d in [huge, ten_years_and_a_second] {
        let e = admin
            .promote_key_version(pb::PromoteKeyVersionRequest {
                name: "k".into(),
                version: 2,
                grace_period: Some(d),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert!(
            e.message()
                .contains("grace_period must be between 1s and 3650d"),
            "{e:?}"
        );
        let e = admin
            .create_key(pb::CreateKeyRequest {
                name: "p".into(),
                algorithm: pb::Algorithm::HmacSha256 as i32,
                rotation_policy: Some(pb::RotationPolicy {
                    rotation_period: Some(d),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert!(
            e.message()
                .contains("rotation_policy.rotation_period must be between 1s and 3650d"),
            "{e:?}"
        );
    }
    // The largest accepted grace works, and every time in the answer is a
    // valid protobuf Timestamp.
    let k = admin
        .promote_key_version(pb::PromoteKeyVersionRequest {
            name: "k".into(),
            version: 2,
            grace_period: Some(prost_types::Duration {
                seconds: 3650 * 86_400,
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    let until = k.versions[0].verify_until.unwrap();
    assert!(until.seconds <= 253_402_300_799);
    s.stop().await.unwrap();
}
