//! PostgreSQL, for what replicas share: the key registry
//! ([`registry::PgRegistryStore`]), its change notifications and the
//! scheduler election ([`listen`]), the audit record of each admin change
//! (written in the change's own transaction), and the replay store
//! ([`replay::PgReplayStore`]).
//!
//! [`Database`] is the connection pool and the schema; its connections,
//! the listener's included, are plaintext or TLS as [`tls`] decides from
//! `postgres.ca_file`. Every operation is
//! bounded by `postgres.statement_timeout` (on the client side, so a
//! frozen server cannot hold a caller longer) and every failure becomes an
//! `UNAVAILABLE` with a message of ours: the server's text goes to the log
//! only, and the URL's password goes nowhere.

pub mod copy;
pub(crate) mod listen;
mod migrations;
pub(crate) mod registry;
pub mod replay;
mod tls;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use tls::Connector;

use crate::config::PostgresConfig;
use crate::error::{ConfigError, Error, Result, StartupError};

/// The pool, the schema's table names and the timeouts.
pub struct Database {
    pool: Pool,
    /// For connections of our own (the listener).
    config: tokio_postgres::Config,
    /// Plaintext or TLS, for the pool and the listener alike.
    connector: Connector,
    schema: String,
    timeout: Duration,
    connect_timeout: Duration,
    heartbeat: Duration,
    resync_interval: Duration,
    /// `host:port/database` for logs: never the user's password.
    target: String,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .finish()
    }
}

/// The parts of the URL a log may show.
fn target_of(c: &tokio_postgres::Config) -> String {
    let host = c
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_default();
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", c.get_dbname().unwrap_or(""))
}

impl Database {
    /// Connects (one connection, to fail fast on a wrong URL or password),
    /// then creates or migrates the schema.
    pub async fn open(cfg: &PostgresConfig) -> Result<std::sync::Arc<Self>, StartupError> {
        let url = cfg.read_url()?;
        // The parser's message may quote the URL: it is not shown.
        let parsed = tokio_postgres::Config::from_str(&url);
        let mut config = parsed.map_err(|_| ConfigError::new("postgres", url_refused(&url)))?;
        drop(url);
        let connector = tls::connector(cfg, &mut config)?;
        config
            .application_name("signet")
            .connect_timeout(cfg.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10));
        let target = target_of(&config);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &connector {
            Connector::Plain => Manager::from_config(config.clone(), NoTls, manager_config),
            Connector::Tls(tls) => {
                Manager::from_config(config.clone(), tls.clone(), manager_config)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(cfg.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(cfg.statement_timeout))
            .create_timeout(Some(cfg.connect_timeout))
            .recycle_timeout(Some(cfg.statement_timeout))
            .build()
            .map_err(|e| StartupError::failed("PostgreSQL pool", e))?;
        let db = Self {
            pool,
            config,
            connector,
            schema: cfg.schema.clone(),
            timeout: cfg.statement_timeout,
            connect_timeout: cfg.connect_timeout,
            heartbeat: cfg.heartbeat,
            resync_interval: cfg.resync_interval,
            target,
        };
        // One connection first, so that a wrong address or password fails
        // start-up saying why (the server's words name the user, never the
        // password).
        let first =
            tokio::time::timeout(cfg.connect_timeout + cfg.statement_timeout, db.pool.get());
        match first.await {
            Ok(Ok(_client)) => {}
            Ok(Err(e)) => {
                let e = DbError::from(e);
                let hint = match &e {
                    DbError::Postgres(e) if !db.connector.is_tls() && tls_required(e) => {
                        "; if the server takes TLS connections only, set postgres.ca_file"
                    }
                    _ => "",
                };
                return Err(StartupError::failed(
                    "cannot connect to PostgreSQL",
                    format!("{}: {e}{hint}", db.target),
                ));
            }
            Err(_) => {
                return Err(StartupError::failed(
                    "cannot connect to PostgreSQL",
                    format!("{}: no answer within postgres.connect_timeout", db.target),
                ))
            }
        }
        migrations::run(&db)
            .await
            .map_err(|e| StartupError::dependency("cannot prepare the PostgreSQL schema", e))?;
        tracing::info!(
            database = %db.target, schema = %db.schema, tls = db.connector.is_tls(),
            "PostgreSQL ready"
        );
        Ok(std::sync::Arc::new(db))
    }

    /// `schema.table`: the schema name is checked to be a plain identifier
    /// ([`PostgresConfig`]), so it is safe to write into SQL.
    pub(crate) fn table(&self, table: &str) -> String {
        format!("{}.{table}", self.schema)
    }

    /// The schema.
    pub(crate) fn schema(&self) -> &str {
        &self.schema
    }

    /// Where the database is, for logs.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// Runs `op` on a pooled connection within the statement timeout.
    /// Failures are `UNAVAILABLE` saying `what` failed; the cause is logged.
    pub(crate) async fn with<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T>
    where
        F: FnOnce(deadpool_postgres::Object) -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        match self.attempt(op).await {
            Ok(v) => Ok(v),
            Err(DbError::Refused(e)) => Err(e),
            Err(e) => Err(unavailable(what, &e)),
        }
    }

    /// Runs `op` on a pooled connection within the statement timeout and
    /// says why it failed, for a caller that must tell failures apart
    /// (a commit whose outcome is unknown); [`Database::with`] otherwise.
    pub(crate) async fn attempt<T, F, Fut>(&self, op: F) -> Result<T, DbError>
    where
        F: FnOnce(deadpool_postgres::Object) -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        let run = async {
            let client = self.pool.get().await.map_err(DbError::from)?;
            op(client).await
        };
        tokio::time::timeout(self.timeout, run)
            .await
            .unwrap_or(Err(DbError::Timeout(self.timeout)))
    }
}

/// Why the URL does not parse, in words that never quote it: what
/// libpq's URLs may hold and signet does not take is named.
fn url_refused(url: &str) -> &'static str {
    if url.contains("sslmode=verify-") {
        "the database URL's sslmode=verify-ca / verify-full is not taken: with postgres.ca_file \
         set, signet always verifies the server's certificate and host name; remove sslmode \
         from the URL (or set sslmode=require)"
    } else if ["sslrootcert=", "sslcert=", "sslkey=", "sslpassword="]
        .iter()
        .any(|k| url.contains(k))
    {
        "the database URL names TLS files (sslrootcert, sslcert, sslkey), which signet does not \
         read from the URL: set postgres.ca_file (and postgres.client_cert_file, \
         postgres.client_key_file) instead"
    } else {
        "the database URL is not a PostgreSQL URL (postgres://user:password@host:port/database)"
    }
}

/// Whether the server refused a plaintext connection because its
/// pg_hba.conf takes only TLS ones (`hostssl`).
fn tls_required(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        db.code() == &tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            && (db.message().ends_with("no encryption") || db.message().ends_with("SSL off"))
    })
}

/// Why a database operation failed.
#[derive(Debug)]
pub(crate) enum DbError {
    /// The server or the connection failed.
    Postgres(tokio_postgres::Error),
    /// No connection could be had from the pool.
    Pool(String),
    /// Longer than the statement timeout.
    Timeout(Duration),
    /// An answer of ours (`ALREADY_EXISTS`, `ABORTED`), not a failure.
    Refused(Error),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

/// A connection the pool could not make is the driver's error (the
/// server's refusal, the socket's), not the pool's wrapper of it.
impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => DbError::Postgres(e),
            e => DbError::Pool(e.to_string()),
        }
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // tokio-postgres's text names the server's message and code,
            // never the password.
            DbError::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "{} ({})", db.message(), db.code().code()),
                // "error connecting to server" alone says nothing: add the
                // causes (the socket's error, a timeout).
                None => {
                    write!(f, "{e}")?;
                    let mut cause = std::error::Error::source(e);
                    while let Some(c) = cause {
                        write!(f, ": {c}")?;
                        cause = c.source();
                    }
                    match tls::explain(e) {
                        Some(why) => write!(f, " ({why})"),
                        None => Ok(()),
                    }
                }
            },
            DbError::Pool(e) => write!(f, "no connection: {e}"),
            DbError::Timeout(d) => write!(f, "no answer within {}", crate::bounds::show(*d)),
            DbError::Refused(e) => write!(f, "{}", e.message()),
        }
    }
}

/// `UNAVAILABLE`: `what` failed; the cause goes to the log.
pub(crate) fn unavailable(what: &'static str, e: &DbError) -> Error {
    tracing::warn!(error = %e, "PostgreSQL: {what} failed");
    Error::unavailable(format!("{what}: the database is unavailable"))
}
