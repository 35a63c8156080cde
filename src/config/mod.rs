//! The TOML configuration: strict (`deny_unknown_fields`) and validated
//! before the listener binds. Every field is documented in
//! `examples/signet.toml`, with its range.
//!
//! One function decides whether a configuration is acceptable:
//! [`Config::check`]. `signet serve` (at start-up, after `--listen`),
//! `signet check-config` and a SIGHUP reload all call it, so none of them
//! accepts what another refuses. Only what needs the files or the
//! environment a configuration names (TLS files, the PIN, `tokens_file`,
//! `redis_url_env`, the audit file) is left to `serve` and the reload.
//!
//! The sections live in submodules by topic; their types are re-exported
//! here, so `crate::config::TlsConfig` and the like keep working.

mod auth;
mod backend;
mod http;
pub mod profiles;
mod reload;
mod server;

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

pub use auth::{
    AuditConfig, AuthConfig, GrantConfig, IdentityConfig, KeyLimitConfig, LimitsConfig, TokenConfig,
};
pub use backend::{BackendConfig, KeysConfig, Pkcs11Config};
pub use http::{HttpConfig, ReplayStoreKind};
pub use reload::restart_only_changes;
pub use server::{AdminConfig, LogConfig, LogFormat, ServerConfig, TelemetryConfig, TlsConfig};

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gRPC listener.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where keys live.
    #[serde(default)]
    pub backend: BackendConfig,
    /// Key lifecycle defaults.
    #[serde(default)]
    pub keys: KeysConfig,
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
    /// Reads a file and its `auth.tokens_file`, and validates the whole
    /// (tokens from both places together).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        let in_file = |e: String| format!("config {}: {e}", path.display());
        let mut c = Self::parse_unchecked(&text).map_err(in_file)?;
        c.read_tokens_file()?;
        c.validate().map_err(in_file)?;
        Ok(c)
    }

    /// Adds the tokens of `auth.tokens_file`, if set.
    fn read_tokens_file(&mut self) -> Result<(), String> {
        let Some(path) = self.auth.tokens_file.clone() else {
            return Ok(());
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("auth.tokens_file {}: cannot read: {e}", path.display()))?;
        // The error names the line only: the file is a secret, and a
        // parser message may quote what it found there.
        let f: auth::TokensFile = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            format!(
                "auth.tokens_file {}: not a list of [[tokens]] with identity, sha256 and \
                 expires{}",
                path.display(),
                line.map(|l| format!(" (line {l})")).unwrap_or_default()
            )
        })?;
        self.auth.file_tokens = f.tokens;
        Ok(())
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let c = Self::parse_unchecked(text)?;
        c.validate()?;
        Ok(c)
    }

    fn parse_unchecked(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The profiles, validated; names are unique.
    pub fn resolved_profiles(&self) -> Result<Vec<crate::httpsig::profile::Profile>, String> {
        let mut out: Vec<crate::httpsig::profile::Profile> = Vec::new();
        for p in &self.profiles {
            let r = p.resolve()?;
            if out.iter().any(|o| o.name == r.name) {
                return Err(format!("profile {:?}: name: defined twice", r.name));
            }
            out.push(r);
        }
        Ok(out)
    }

    /// The built-in demo configuration: memory backend with demo keys.
    pub fn demo() -> Self {
        let mut c = Config {
            backend: BackendConfig::Memory { demo_keys: true },
            ..Default::default()
        };
        c.server.plaintext = true;
        c
    }

    /// Everything a configuration must pass to be served: [`Config::validate`]
    /// and [`Config::check_listener`]. The one check `serve` (once
    /// `--listen` is applied), `check-config` and the SIGHUP reload share.
    pub fn check(&self) -> Result<(), String> {
        self.validate()?;
        self.check_listener()
    }

    /// Applies `signet serve --listen`, which wins over `server.listen` at
    /// start-up and on every reload.
    pub fn override_listen(&mut self, listen: Option<SocketAddr>) {
        if let Some(l) = listen {
            self.server.listen = l;
        }
    }

    /// The rules for the listener, checked once its address is final
    /// (after `--listen`): plaintext only on loopback and only when said;
    /// authorization off only on loopback.
    pub fn check_listener(&self) -> Result<(), String> {
        let s = &self.server;
        let loopback = s.listen.ip().is_loopback();
        match (&s.tls, s.plaintext) {
            (Some(_), true) => {
                return Err("server: set either server.tls or server.plaintext, not both".into())
            }
            (None, false) => {
                return Err(format!(
                    "server.listen {}: configure [server.tls], or set server.plaintext = true \
                     (loopback addresses only)",
                    s.listen
                ))
            }
            (None, true) if !loopback => {
                return Err(format!(
                    "server.listen {} is not a loopback address: plaintext is refused; configure [server.tls]",
                    s.listen
                ))
            }
            _ => {}
        }
        if self.auth.identities.is_empty() && !loopback {
            return Err(format!(
                "server.listen {} is not a loopback address: configure [[auth.identities]] \
                 (without them every caller may do everything)",
                s.listen
            ));
        }
        Ok(())
    }

    /// Checks values that the types alone do not; messages name the field
    /// (and for durations, the range). Pure: reads no file and no variable.
    pub fn validate(&self) -> Result<(), String> {
        self.server.validate()?;
        self.backend.validate()?;
        self.keys.validate()?;
        let l = &self.limits;
        l.validate()?;
        for p in self.resolved_profiles()? {
            for (t, field) in [
                (p.payload_template.to_string(), "payload_template"),
                (p.signature_template.to_string(), "signature_template"),
            ] {
                if t.len() > l.max_template_bytes {
                    return Err(format!(
                        "profile {}: {field} is {} bytes; limits.max_template_bytes is {}",
                        p.name,
                        t.len(),
                        l.max_template_bytes
                    ));
                }
            }
        }
        crate::auth::Policy::new(&self.auth, &self.limits)?;
        self.http.validate()?;
        self.audit.validate()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(format!("log.level: invalid filter {:?}", self.log.level));
        }
        Ok(())
    }
}

/// Durations written as humantime strings: "30s", "7d", "1h 30m".
mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
