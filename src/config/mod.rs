//! The TOML configuration: the schema only. Strict
//! (`deny_unknown_fields`), one submodule per section, and each section
//! checks its own values ([`Config::validate`]); a closed set of values is
//! an enum read from its TOML spelling. Every field is documented in
//! `examples/signet.toml`, with its range.
//!
//! This module is a leaf: it knows nothing of policies, profiles or
//! stores. What needs them, or more than one section (the listener rules,
//! profiles against `limits.max_template_bytes`, identities against
//! `[[limits.keys]]`), is checked where the configuration becomes running
//! objects, `crate::server::settings`, the one path of `signet serve`,
//! `signet check-config` and the SIGHUP reload.

mod auth;
mod backend;
mod http;
mod keys;
mod limits;
mod observability;
mod postgres;
pub mod profiles;
mod registry;
mod reload;
pub mod rfc9421;
mod server;
mod values;

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use crate::error::{ConfigError, StartupError};

pub use auth::{AuthConfig, GrantConfig, IdentityConfig, TokenConfig};
pub use backend::{BackendConfig, Pkcs11Config};
pub use http::{HttpConfig, ReplayStoreKind};
pub use keys::KeysConfig;
pub use limits::{KeyLimitConfig, LimitsConfig};
pub use observability::{
    AdminConfig, AuditConfig, AuditOutput, LogConfig, LogFormat, TelemetryConfig,
};
pub use postgres::PostgresConfig;
pub use registry::{RegistryConfig, RegistryStoreKind};
pub(crate) use reload::restart_only_changes;
pub use server::{ServerConfig, TlsConfig, TlsVersion};

/// The built-in demo configuration, as a file would say it.
const DEMO: &str = r#"
[server]
plaintext = true

[backend]
type = "memory"
demo_keys = true

[[profiles]]
name = "stripe"
preset = "stripe"
key = "demo-hmac"
"#;

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gRPC listener.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where keys live; `type` defaults to `memory`.
    #[serde(default, deserialize_with = "backend::memory_unless_typed")]
    pub backend: BackendConfig,
    /// Key lifecycle defaults.
    #[serde(default)]
    pub keys: KeysConfig,
    /// Where the key registry is kept.
    #[serde(default)]
    pub registry: RegistryConfig,
    /// The database shared by replicas, when a store is `postgres`.
    #[serde(default)]
    pub postgres: Option<PostgresConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// HTTP signing settings shared by the profiles.
    #[serde(default)]
    pub http: HttpConfig,
    /// HTTP request signing and webhook verification profiles.
    #[serde(default)]
    pub profiles: Vec<profiles::ProfileConfig>,
    /// Who may call what.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Rates, concurrency and input sizes.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The audit trail.
    #[serde(default)]
    pub audit: AuditConfig,
    /// The admin port: health and metrics.
    #[serde(default)]
    pub admin: AdminConfig,
    /// OpenTelemetry resource settings (export is set by `OTEL_*` variables).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

impl Config {
    /// Reads a file and its `auth.tokens_file`, and checks every section.
    /// Errors name the file.
    pub fn load(path: &Path) -> Result<Self, StartupError> {
        let text = std::fs::read_to_string(path).map_err(|source| StartupError::File {
            what: "config",
            path: path.to_path_buf(),
            source,
        })?;
        let in_file = |source: ConfigError| StartupError::InFile {
            path: path.to_path_buf(),
            source,
        };
        let mut c = Self::parse_unchecked(&text).map_err(in_file)?;
        c.read_tokens_file()?;
        c.validate().map_err(in_file)?;
        Ok(c)
    }

    /// Adds the tokens of `auth.tokens_file`, if set.
    fn read_tokens_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = self.auth.tokens_file.clone() else {
            return Ok(());
        };
        let field = format!("auth.tokens_file {}", path.display());
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::new(&field, format!("cannot read: {e}")))?;
        self.auth.file_tokens = parse_tokens_file(&text, &field)?;
        Ok(())
    }

    /// Parses TOML text and checks every section.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let c = Self::parse_unchecked(text)?;
        c.validate()?;
        Ok(c)
    }

    /// The parser's message on one line, with where it found the fault
    /// (the source line itself is not quoted: it may hold a password).
    fn parse_unchecked(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim().replace('\n', "; ");
            let at = e.span().map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" (line {line}, column {column})")
            });
            ConfigError::new("", format!("{message}{}", at.unwrap_or_default()))
        })
    }

    /// The built-in demo configuration (`signet serve` with no file):
    /// memory backend with demo keys, plaintext on loopback, and a `stripe`
    /// profile on `demo-hmac` so the HTTP signing commands work at once.
    pub fn demo() -> Self {
        Self::parse(DEMO).expect("the built-in demo configuration is valid")
    }

    /// Applies `signet serve --listen`, which wins over `server.listen` at
    /// start-up and on every reload.
    pub fn override_listen(&mut self, listen: Option<SocketAddr>) {
        if let Some(l) = listen {
            self.server.listen = l;
        }
    }

    /// Checks each section's own values; messages name the field (and for
    /// durations, the range). Pure: reads no file and no variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.backend.validate()?;
        self.keys.validate()?;
        self.registry.validate()?;
        if let Some(p) = &self.postgres {
            p.validate()?;
        }
        self.check_database()?;
        self.limits.validate()?;
        self.http.validate()?;
        self.audit.validate()?;
        self.log.validate()
    }
}

impl Config {
    /// A `postgres` store has a `[postgres]` section, and the registry is
    /// in PostgreSQL only with keys every replica can open (PKCS#11).
    fn check_database(&self) -> Result<(), ConfigError> {
        let registry = self.registry.store == RegistryStoreKind::Postgres;
        let replay = self.http.replay_store == ReplayStoreKind::Postgres;
        if (registry || replay) && self.postgres.is_none() {
            return Err(ConfigError::naming(
                "postgres",
                "a [postgres] section is required with registry.store = \"postgres\" or \
                 http.replay_store = \"postgres\"",
            ));
        }
        if registry && !matches!(self.backend, BackendConfig::Pkcs11(_)) {
            return Err(ConfigError::naming(
                "registry.store",
                "registry.store = \"postgres\" needs backend.type = \"pkcs11\": in-memory keys \
                 die with their process, and other replicas could not open them",
            ));
        }
        Ok(())
    }
}

/// The tokens of an `auth.tokens_file` whose text is `text`; the error
/// names `field` and the line only: the file is a secret, and a parser
/// message may quote what it found there.
pub(crate) fn parse_tokens_file(text: &str, field: &str) -> Result<Vec<TokenConfig>, ConfigError> {
    let f: auth::TokensFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        ConfigError::new(
            field,
            format!(
                "not a list of [[tokens]] with identity, sha256 and expires{}",
                line.map(|l| format!(" (line {l})")).unwrap_or_default()
            ),
        )
    })?;
    Ok(f.tokens)
}

/// `d` is inside `range`; the refusal names `field`, the range and `d`.
fn in_range(
    range: crate::bounds::Range,
    field: &str,
    d: std::time::Duration,
) -> Result<(), ConfigError> {
    range
        .check(field, d)
        .map_err(|sentence| ConfigError::naming(field, sentence))
}

/// Durations written as humantime strings: "30s", "7d", "1h 30m".
mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
