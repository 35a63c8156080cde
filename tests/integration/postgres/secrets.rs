//! The database password never shows: not when it is wrong, not when the
//! URL holding it does not parse, not in `check-config`. And a schema
//! newer than the binary is refused at start-up, saying which versions.
//!
//! The passwords below are byte-string literals with "secret" in them, so
//! `scripts/sweep-logs.py` looks for them in every log the tests wrote
//! (the servers' logs here go through `support::process`).

use signet::config::PostgresConfig;
use signet::postgres::Database;

use super::procs::*;
use crate::support::postgres::PASSWORD;

/// A password the server does not have.
const WRONG_PASSWORD: &[u8] = b"wrong-secret-pw-Zq81x";
/// A password in a URL that does not parse.
const UNPARSED_PASSWORD: &[u8] = b"unparsed-secret-pw-4Hk2";

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

/// None of the passwords in `shown`.
fn assert_no_password(shown: &str) {
    for pw in [PASSWORD, text(WRONG_PASSWORD), text(UNPARSED_PASSWORD)] {
        assert!(!shown.contains(pw), "a password in:\n{shown}");
    }
}

/// `d`'s `[postgres]` with the URL `url` in a file of its own.
fn postgres_with_url(d: &Deployment, url: &str) -> String {
    let file = d
        .dir
        .path()
        .join(format!("{}.url", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, format!("{url}\n")).unwrap();
    d.postgres_toml_with_url(&file, "2s")
}

/// A config with the registry, or only the replay store, on `url`.
fn configs_on(d: &Deployment, url: &str) -> [std::path::PathBuf; 2] {
    let pg = postgres_with_url(d, url);
    [
        d.write_config(&format!("[registry]\nstore = \"postgres\"\n{pg}")),
        d.write_config(&format!("[http]\nreplay_store = \"postgres\"\n{pg}")),
    ]
}

/// In process: [`Database::open`] on `url`; its error as text.
async fn open_error(d: &Deployment, url: &str) -> String {
    crate::support::capture_logs();
    let file = d
        .dir
        .path()
        .join(format!("{}.url", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, url).unwrap();
    let cfg = PostgresConfig {
        url_file: Some(file),
        url_env: None,
        schema: d.schema.clone(),
        pool_size: 2,
        connect_timeout: std::time::Duration::from_secs(2),
        statement_timeout: std::time::Duration::from_secs(2),
        heartbeat: std::time::Duration::from_secs(1),
        resync_interval: std::time::Duration::from_secs(30),
        ca_file: None,
        client_cert_file: None,
        client_key_file: None,
    };
    let e = Database::open(&cfg)
        .await
        .expect_err("opened a database with a bad URL");
    let shown = format!("{e} / {e:?}");
    assert_no_password(&shown);
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_start_up_clearly_without_either_password() {
    let d = Deployment::new();
    let wrong = d.pg.url().replace(PASSWORD, text(WRONG_PASSWORD));
    crate::support::remember_secret(WRONG_PASSWORD);
    assert_ne!(wrong, d.pg.url());
    let port = d.pg.port();
    for config in configs_on(&d, &wrong) {
        let (line, log) = tokio::task::block_in_place(|| spawn_failing(&config));
        assert_no_password(&log);
        // What failed, where, and why (the server's own words, which name
        // the user).
        for want in [
            "cannot connect to PostgreSQL",
            &format!("127.0.0.1:{port}/postgres"),
            "password authentication failed for user \"signet\"",
        ] {
            assert!(line.contains(want), "want {want:?} in {line}");
        }
        assert!(!line.contains("postgres://"), "{line}");
    }
    let shown = open_error(&d, &wrong).await;
    assert!(shown.contains("password authentication failed"), "{shown}");
    // A server that is not there: refused, and the socket's error says so.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = closed.local_addr().unwrap().port();
    drop(closed);
    let shown = open_error(
        &d,
        &d.pg.url().replace(&port.to_string(), &nobody.to_string()),
    )
    .await;
    assert!(shown.contains("cannot connect to PostgreSQL"), "{shown}");
    assert!(shown.contains("refused"), "{shown}");
    // The server's log too (copied into the sweep directory on drop).
    assert_no_password(&d.pg.log_tail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_that_does_not_parse_is_refused_without_its_password() {
    let d = Deployment::new();
    crate::support::remember_secret(UNPARSED_PASSWORD);
    let pw = text(UNPARSED_PASSWORD);
    let port = d.pg.port();
    for url in [
        format!("postgres://signet:{pw}@127.0.0.1:notaport/postgres"),
        format!("postgres://signet:{pw}@127.0.0.1:{port}/postgres?sslmode=bogus"),
        format!("postgres//signet:{pw}@127.0.0.1:{port}"),
    ] {
        for config in configs_on(&d, &url) {
            let (line, log) = tokio::task::block_in_place(|| spawn_failing(&config));
            assert_no_password(&log);
            assert!(
                line.contains("the database URL is not a PostgreSQL URL"),
                "{url}: {line}"
            );
        }
        let shown = open_error(&d, &url).await;
        assert!(shown.contains("not a PostgreSQL URL"), "{shown}");
    }
    // TLS required without a CA to verify the server against: refused,
    // naming the setting, without the password.
    let tls = format!("postgres://signet:{pw}@127.0.0.1:{port}/postgres?sslmode=require");
    let (line, log) = tokio::task::block_in_place(|| spawn_failing(&configs_on(&d, &tls)[0]));
    assert_no_password(&log);
    assert!(line.contains("set postgres.ca_file"), "{line}");
    // An empty file says so, and nothing more.
    let shown = open_error(&d, "\n").await;
    assert!(shown.contains("the database URL is empty"), "{shown}");
}

#[test]
fn check_config_passes_without_reading_the_url_and_never_prints_it() {
    let d = Deployment::new();
    // The URL's file does not exist: check-config does not read it.
    let missing = d.dir.path().join("no-such.url");
    let body = format!(
        "[registry]\nstore = \"postgres\"\n[http]\nreplay_store = \"postgres\"\n{}",
        d.postgres_toml_with_url(&missing, "2s")
    );
    let config = d.write_config(&body);
    let out = signet(&["check-config", config.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(": ok"), "{}", out.stdout);

    // With the real URL in the file, or in a variable: passes, and the
    // password is nowhere in what it prints.
    let body = format!(
        "[registry]\nstore = \"postgres\"\n[http]\nreplay_store = \"postgres\"\n{}",
        d.postgres_toml("2s")
    );
    let config = d.write_config(&body);
    let out = signet(&["check-config", config.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_no_password(&format!("{}{}", out.stdout, out.stderr));

    let body = format!(
        "[registry]\nstore = \"postgres\"\n[postgres]\nurl_env = \"SIGNET_TEST_PG_URL\"\nschema = \"{}\"\n",
        d.schema
    );
    let config = d.write_config(&body);
    let url = d.pg.url();
    let out = signet_with_env(
        &["check-config", config.to_str().unwrap()],
        &[("SIGNET_TEST_PG_URL", &url)],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_no_password(&format!("{}{}", out.stdout, out.stderr));
    // Nor with the --json flag.
    let out = signet_with_env(
        &["--json", "check-config", config.to_str().unwrap()],
        &[("SIGNET_TEST_PG_URL", &url)],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_no_password(&format!("{}{}", out.stdout, out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_the_binary_is_refused_naming_the_versions() {
    let d = Deployment::new();
    let config = d.registry_config("60s", "2s");
    let mut s = spawn(&config);
    let ch = s.channel().await;
    create(&ch, "before", signet::api::pb::Algorithm::Ed25519)
        .await
        .unwrap();
    s.kill();
    let known: i32 =
        d.pg.psql(&format!(
            "SELECT max(version) FROM {}.schema_migrations",
            d.schema
        ))
        .trim()
        .parse()
        .unwrap();
    assert!(known >= 1);
    d.pg.psql(&format!(
        "INSERT INTO {}.schema_migrations (version, description) VALUES (999, 'from the future')",
        d.schema
    ));
    let (line, log) = tokio::task::block_in_place(|| spawn_failing(&config));
    assert_no_password(&log);
    let want = format!(
        "the database schema {} is at version 999, newer than this signet knows (version {known})",
        d.schema
    );
    assert!(line.contains(&want), "{line}");
    // Nothing was changed: the newer version is still the latest, and the
    // key's row is as it was.
    assert_eq!(
        d.pg.psql(&format!(
            "SELECT max(version) FROM {}.schema_migrations",
            d.schema
        ))
        .trim(),
        "999"
    );
    assert_eq!(
        d.pg.psql(&format!("SELECT count(*) FROM {}.keys", d.schema))
            .trim(),
        "1"
    );
}
