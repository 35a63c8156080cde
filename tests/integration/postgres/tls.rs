//! TLS to PostgreSQL (`postgres.ca_file`), against servers that take TLS
//! connections only over TCP (`support::postgres::Postgres::start_tls`)
//! with certificates from a throw-away CA: every signet connection, the
//! listener's included, is encrypted and verified; a CA that did not sign
//! the server's certificate, a host the certificate does not name, no
//! `ca_file` at all, `sslmode=require` without one and `ca_file` with
//! `sslmode=disable` all stop start-up, saying why and never showing the
//! password. Mutual TLS (`client_cert_file`, `client_key_file`) too.

use std::path::{Path, PathBuf};

use signet::api::pb;
use signet::config::PostgresConfig;
use signet::postgres::Database;

use super::*;
use crate::support::postgres::{ServerTls, PASSWORD};

use crate::support::ca::Ca;

/// TLS for a database server on 127.0.0.1, also reached as localhost.
fn server_tls(ca: &Ca, client_ca: Option<&Ca>) -> ServerTls {
    let (cert_pem, key_pem) = ca.server_cert("signet test database");
    ServerTls {
        cert_pem,
        key_pem,
        client_ca_pem: client_ca.map(|c| c.pem.clone()),
    }
}

/// `text` in `dir/name`.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `[postgres]` on `pg` with the URL `url` and `ca_file`.
fn tls_config(pg: &Postgres, dir: &Path, url: &str, ca_file: Option<PathBuf>) -> PostgresConfig {
    let mut c = pg_config(pg, &fresh_schema(), dir);
    std::fs::write(c.url_file.as_ref().unwrap(), format!("{url}\n")).unwrap();
    c.ca_file = ca_file;
    c
}

/// [`Database::open`] on `cfg` fails: its error as text, without the
/// password.
async fn open_error(cfg: &PostgresConfig) -> String {
    crate::support::capture_logs();
    let e = Database::open(cfg)
        .await
        .expect_err("opened a database that should have been refused");
    let shown = format!("{e} / {e:?}");
    assert!(!shown.contains(PASSWORD), "the password in: {shown}");
    shown
}

/// The `ssl` column of pg_stat_ssl for signet's connections, and the
/// protocol versions, as psql shows them.
fn signet_connections(pg: &Postgres) -> String {
    pg.psql(
        "SELECT count(*) || ' ' || bool_and(ssl) || ' ' || string_agg(DISTINCT version, ',') \
         FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE application_name = 'signet'",
    )
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ca_file_every_connection_is_verified_tls_the_listener_included() {
    let ca = Ca::new("signet test database CA");
    let pg = Postgres::start_tls(&server_tls(&ca, None));
    // The server takes no plaintext connection over TCP.
    let timeout = std::time::Duration::from_secs(5);
    let plain = pg.psql_tcp_sslmode("select 1", timeout, "disable");
    assert!(
        plain.as_ref().is_err_and(|e| e.contains("no encryption")),
        "{plain:?}"
    );
    assert_eq!(pg.psql_tcp("select 1", timeout).unwrap().trim(), "1");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);
    let schema = fresh_schema();
    let mut config = config_on(&pg, &schema, dir.path());
    // 127.0.0.1 in the URL: verified against the certificate's IP SAN.
    config.postgres.as_mut().unwrap().ca_file = Some(ca_file.clone());
    let server = TestServer::start(config).await;
    // The listener has connected, listened and taken the scheduler's lock.
    wait_leader(&server).await;
    server
        .admin()
        .create_key(pb::CreateKeyRequest {
            name: "over-tls".into(),
            algorithm: pb::Algorithm::Ed25519 as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let rows = pg.psql(&format!(
        "SELECT count(*) FROM {schema}.keys WHERE name = 'over-tls'"
    ));
    assert_eq!(rows.trim(), "1");
    // Every signet connection (the pool's and the listener's) is TLS 1.2+.
    let all = signet_connections(&pg);
    let (count, rest) = all.split_once(' ').unwrap();
    assert!(count.parse::<u32>().unwrap() >= 2, "{all}");
    let versions = rest.strip_prefix("true ");
    let versions = versions.unwrap_or_else(|| panic!("a plaintext signet connection: {all}"));
    for v in versions.split(',') {
        assert!(v == "TLSv1.3" || v == "TLSv1.2", "{all}");
    }
    // The listener is the session holding the scheduler's advisory lock.
    let listener = pg.psql(
        "SELECT string_agg(ssl::text, ',') FROM pg_stat_ssl JOIN pg_locks USING (pid) \
         WHERE locktype = 'advisory' AND granted",
    );
    assert_eq!(listener.trim(), "true", "the listener's connection");
    // It signs from the registry it reads over TLS.
    let signed = server
        .signer()
        .sign(pb::SignRequest {
            key: "over-tls".into(),
            input: Some(pb::sign_request::Input::Message(b"payment 42".to_vec())),
            ..Default::default()
        })
        .await;
    assert!(signed.is_ok(), "{signed:?}");
    server.stop().await.unwrap();

    // localhost in the URL: verified against the certificate's DNS SAN;
    // and SCRAM bound to the TLS channel (SCRAM-SHA-256-PLUS).
    let url = format!(
        "{}?channel_binding=require",
        pg.url().replace("127.0.0.1", "localhost")
    );
    let db = Database::open(&tls_config(&pg, dir.path(), &url, Some(ca_file)))
        .await
        .expect("localhost is in the certificate");
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_verified_or_is_not_tls_stops_start_up_saying_why() {
    let ca = Ca::new("signet test database CA");
    let pg = Postgres::start_tls(&server_tls(&ca, None));
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "ca.pem", &ca.pem);
    let other = write(dir.path(), "other.pem", &Ca::new("another CA").pem);
    let port = pg.port();

    // A CA that did not sign the server's certificate.
    let shown = open_error(&tls_config(&pg, dir.path(), &pg.url(), Some(other))).await;
    for want in [
        "cannot connect to PostgreSQL",
        &format!("127.0.0.1:{port}/postgres"),
        "not trusted",
        "postgres.ca_file",
    ] {
        assert!(shown.contains(want), "want {want:?} in {shown}");
    }

    // A host the certificate does not name (hostaddr: where to connect;
    // the host: what the certificate must name).
    let url = format!(
        "{}?hostaddr=127.0.0.1",
        pg.url().replace("127.0.0.1", "db.invalid")
    );
    let shown = open_error(&tls_config(&pg, dir.path(), &url, Some(good.clone()))).await;
    assert!(shown.contains("does not name the URL's host"), "{shown}");

    // No ca_file: plaintext, which the server's pg_hba.conf refuses.
    let shown = open_error(&tls_config(&pg, dir.path(), &pg.url(), None)).await;
    for want in [
        "cannot connect to PostgreSQL",
        "no pg_hba.conf entry",
        "no encryption",
        "set postgres.ca_file",
    ] {
        assert!(shown.contains(want), "want {want:?} in {shown}");
    }

    // sslmode=require without ca_file: refused before connecting.
    let url = format!("{}?sslmode=require", pg.url());
    let shown = open_error(&tls_config(&pg, dir.path(), &url, None)).await;
    assert!(shown.contains("sslmode=require"), "{shown}");
    assert!(shown.contains("set postgres.ca_file"), "{shown}");
    assert!(!shown.contains("cannot connect"), "{shown}");

    // ca_file with sslmode=disable: refused before connecting.
    let url = format!("{}?sslmode=disable", pg.url());
    let shown = open_error(&tls_config(&pg, dir.path(), &url, Some(good.clone()))).await;
    assert!(shown.contains("sslmode=disable"), "{shown}");
    assert!(shown.contains("postgres.ca_file"), "{shown}");
    assert!(!shown.contains("cannot connect"), "{shown}");

    // libpq's verify-full and sslrootcert: named, not "not a URL".
    let url = format!("{}?sslmode=verify-full&sslrootcert=/ca.pem", pg.url());
    let shown = open_error(&tls_config(&pg, dir.path(), &url, Some(good.clone()))).await;
    assert!(shown.contains("verify-full is not taken"), "{shown}");
    let url = format!("{}?sslrootcert=/ca.pem", pg.url());
    let shown = open_error(&tls_config(&pg, dir.path(), &url, Some(good.clone()))).await;
    assert!(shown.contains("set postgres.ca_file"), "{shown}");

    // A missing CA file: named.
    let missing = dir.path().join("missing.pem");
    let shown = open_error(&tls_config(&pg, dir.path(), &pg.url(), Some(missing))).await;
    assert!(shown.contains("postgres.ca_file"), "{shown}");
    assert!(shown.contains("missing.pem"), "{shown}");

    // And the right CA connects.
    Database::open(&tls_config(&pg, dir.path(), &pg.url(), Some(good)))
        .await
        .expect("the right CA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_file_against_a_server_without_tls_is_refused() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.pem", &Ca::new("a CA").pem);
    let shown = open_error(&tls_config(&pg, dir.path(), &pg.url(), Some(ca))).await;
    assert!(shown.contains("cannot connect to PostgreSQL"), "{shown}");
    assert!(shown.contains("server does not support TLS"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_offered_to_a_server_that_requires_one() {
    let ca = Ca::new("signet test database CA");
    let clients = Ca::new("signet test database clients");
    let pg = Postgres::start_tls(&server_tls(&ca, Some(&clients)));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);

    // Without one: the server refuses (clientcert=verify-ca).
    let cfg = tls_config(&pg, dir.path(), &pg.url(), Some(ca_file.clone()));
    let shown = open_error(&cfg).await;
    assert!(shown.contains("cannot connect to PostgreSQL"), "{shown}");
    assert!(shown.contains("certificate"), "{shown}");

    // With one the clients' CA signed: connects, and the server saw it.
    let (cert, key) = clients.issue(vec![], "signet-replica", false);
    let mut cfg = cfg;
    cfg.client_cert_file = Some(write(dir.path(), "client.crt", &cert));
    cfg.client_key_file = Some(write(dir.path(), "client.key", &key));
    let db = Database::open(&cfg)
        .await
        .expect("with a client certificate");
    let dn = pg.psql(
        "SELECT string_agg(DISTINCT client_dn, ',') FROM pg_stat_ssl \
         JOIN pg_stat_activity USING (pid) WHERE application_name = 'signet'",
    );
    assert_eq!(dn.trim(), "/CN=signet-replica");
    drop(db);
}
