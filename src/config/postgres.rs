//! `[postgres]`: the database shared by replicas, for the key registry
//! (`registry.store = "postgres"`) and the replay store
//! (`http.replay_store = "postgres"`).
//!
//! The URL holds a password, so it is read from a file or an environment
//! variable, never from this file or the command line, and nothing here
//! prints it. TLS to the database is on when `ca_file` is set (its files
//! are read by `signet serve`, as the URL is, not by `check-config`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::in_range;
use crate::bounds;
use crate::error::ConfigError;

/// `[postgres]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// A file holding the URL,
    /// `postgres://user:password@host:port/database[?sslmode=...]`.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// An environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// The schema signet creates and migrates its tables in.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Connections in the pool admin calls and the replay store use (the
    /// notification listener has one more of its own).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// How long opening a connection may take.
    #[serde(default = "default_timeout", with = "super::duration")]
    pub connect_timeout: Duration,
    /// How long one database operation (an admin change's transaction, a
    /// replay check, a key's re-read) may take before it fails with
    /// `UNAVAILABLE`.
    #[serde(default = "default_timeout", with = "super::duration")]
    pub statement_timeout: Duration,
    /// How often the listener checks its session (and, on a replica that
    /// is not the scheduler, tries to become it).
    #[serde(default = "default_heartbeat", with = "super::duration")]
    pub heartbeat: Duration,
    /// The full re-read behind the notifications: a lost one costs at most
    /// this much latency.
    #[serde(default = "default_resync", with = "super::duration")]
    pub resync_interval: Duration,
    /// The PEM bundle of the CA(s) that sign the database server's
    /// certificate. Set: every connection is TLS (1.2 or later), the
    /// server's certificate verified against these CAs and the URL's host;
    /// the URL may not say `sslmode=disable`. Unset: plaintext, and the
    /// URL may not say `sslmode=require`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM, leaf first) to offer the server, for
    /// `clientcert=` in its pg_hba.conf; with `client_key_file` and
    /// `ca_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// The private key of `client_cert_file` (PEM).
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

impl PostgresConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.url_file.is_some() == self.url_env.is_some() {
            return Err(ConfigError::new(
                "postgres",
                "set exactly one of url_file and url_env",
            ));
        }
        if !valid_schema(&self.schema) {
            return Err(ConfigError::naming(
                "postgres.schema",
                "postgres.schema must be 1 to 63 of a-z, 0-9 and _, starting with a letter or _",
            ));
        }
        if !(1..=256).contains(&self.pool_size) {
            return Err(ConfigError::naming(
                "postgres.pool_size",
                "postgres.pool_size must be between 1 and 256",
            ));
        }
        for (field, d) in [
            ("postgres.connect_timeout", self.connect_timeout),
            ("postgres.statement_timeout", self.statement_timeout),
        ] {
            in_range(bounds::DATABASE_TIMEOUT, field, d)?;
        }
        in_range(bounds::HEARTBEAT, "postgres.heartbeat", self.heartbeat)?;
        in_range(
            bounds::RESYNC_INTERVAL,
            "postgres.resync_interval",
            self.resync_interval,
        )?;
        self.validate_tls()
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        for (field, path) in [
            ("postgres.ca_file", &self.ca_file),
            ("postgres.client_cert_file", &self.client_cert_file),
            ("postgres.client_key_file", &self.client_key_file),
        ] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(ConfigError::naming(
                    field,
                    format!("{field} is empty: name a file, or leave it out"),
                ));
            }
        }
        match (&self.client_cert_file, &self.client_key_file) {
            (Some(_), None) | (None, Some(_)) => Err(ConfigError::naming(
                "postgres.client_cert_file",
                "set both postgres.client_cert_file and postgres.client_key_file, or neither",
            )),
            (Some(_), Some(_)) if self.ca_file.is_none() => Err(ConfigError::naming(
                "postgres.client_cert_file",
                "postgres.client_cert_file needs postgres.ca_file: a client certificate is \
                 offered over TLS only",
            )),
            _ => Ok(()),
        }
    }

    /// The URL, from the file (trailing newline removed) or the variable.
    /// Errors name where it was looked for, never what was found.
    pub fn read_url(&self) -> Result<String, ConfigError> {
        let url = match (&self.url_file, &self.url_env) {
            (Some(path), _) => std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    format!("postgres.url_file {}", path.display()),
                    e.kind().to_string(),
                )
            })?,
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                ConfigError::new("postgres.url_env", format!("variable {var} is not set"))
            })?,
            (None, None) => String::new(),
        };
        let url = url.trim_end_matches(['\n', '\r']).to_string();
        if url.is_empty() {
            return Err(ConfigError::new("postgres", "the database URL is empty"));
        }
        Ok(url)
    }
}

/// A lower-case SQL identifier that needs no quoting.
fn valid_schema(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && s.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && !s.starts_with("pg_")
}

fn default_schema() -> String {
    "signet".into()
}
fn default_pool_size() -> usize {
    8
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(1)
}
fn default_resync() -> Duration {
    Duration::from_secs(30)
}

#[cfg(test)]
mod tests {
    use super::valid_schema;

    #[test]
    fn schema_names() {
        for ok in ["signet", "_x", "a1_b", &"a".repeat(63)] {
            assert!(valid_schema(ok), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "Signet",
            "a-b",
            "a b",
            "pg_x",
            "a\"b",
            &"a".repeat(64),
        ] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }
}
