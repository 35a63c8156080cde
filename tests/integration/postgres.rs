//! The key registry and the replay store on PostgreSQL, against a real
//! server of the test's own (`support::postgres`; CI installs PostgreSQL,
//! and its absence is a failure, never a skip).

use std::time::{Duration, Instant};

use signet::config::{Config, PostgresConfig, RegistryStoreKind};

use crate::pkcs11::{config as pkcs11_config, new_token};
use crate::support::postgres::{fresh_schema, Postgres};
use crate::support::TestServer;

/// `[postgres]` for `pg`, schema `schema`, its URL in a file under `dir`;
/// short timeouts and heartbeats, as tests want.
pub fn pg_config(pg: &Postgres, schema: &str, dir: &std::path::Path) -> PostgresConfig {
    let url_file = dir.join(format!("{schema}.url"));
    std::fs::write(&url_file, format!("{}\n", pg.url())).unwrap();
    PostgresConfig {
        url_file: Some(url_file),
        url_env: None,
        schema: schema.to_string(),
        pool_size: 4,
        connect_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(2),
        heartbeat: Duration::from_millis(100),
        resync_interval: Duration::from_secs(5),
        ca_file: None,
        client_cert_file: None,
        client_key_file: None,
    }
}

/// A fresh SoftHSM2 token with the registry in `schema` of `pg`.
pub fn config_on(pg: &Postgres, schema: &str, dir: &std::path::Path) -> Config {
    let label = format!("p{}", uuid::Uuid::new_v4().simple());
    let mut c = pkcs11_config(new_token(&label[..32]));
    c.registry.store = RegistryStoreKind::Postgres;
    c.postgres = Some(pg_config(pg, schema, dir));
    c
}

/// Waits until the in-process server's registry runs the scheduler (its
/// listener took the lock), so tests can drive time-driven transitions.
pub async fn wait_leader(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.registry.leads() {
        assert!(Instant::now() < deadline, "never became the scheduler");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An in-process server on SoftHSM2 + a PostgreSQL server of its own.
pub async fn start_fresh() -> TestServer {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config_on(&pg, &fresh_schema(), dir.path());
    let mut server = TestServer::start(config).await;
    wait_leader(&server).await;
    server.keep.push(Box::new(dir));
    server.keep.push(Box::new(pg));
    server
}

/// The conformance suite, unchanged, on SoftHSM2 with the registry in
/// PostgreSQL.
mod conformance_on_postgres {
    conformance_suite!(super::start_fresh());
}

/// Racing admin writes on two replicas.
mod races;
/// `signet serve` replicas on one token and one schema (shared helpers).
pub(crate) mod replica;
/// The scheduler on three replicas, and its takeover.
mod scheduler;
/// Replicas starting together on a fresh schema.
mod startup;
mod store;

/// `signet serve` and `signet registry migrate` processes on a token and a
/// database of their own.
mod procs;

/// `signet registry migrate --to postgres`.
mod migrate;
/// The database stopped or frozen under two replicas signing under load.
mod outage;
/// The replay store in PostgreSQL.
mod replay;
/// The database password never shows; a newer schema is refused.
mod secrets;
/// TLS to the database: verified, everywhere, or start-up stops.
mod tls;
/// A version another replica created opens whatever this process wrote.
mod visibility;
