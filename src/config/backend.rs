//! `[backend]`: memory or PKCS#11.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::in_range;
use crate::bounds;
use crate::error::ConfigError;

/// `[backend]`, tagged by `type`.
#[derive(Clone, PartialEq, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum BackendConfig {
    /// Keys in process memory; lost on restart.
    Memory {
        /// Create the demo keys at start-up.
        #[serde(default)]
        demo_keys: bool,
    },
    /// Keys on a PKCS#11 token (an HSM; SoftHSM2 in development).
    Pkcs11(Pkcs11Config),
}

/// `[backend]` with `type = "pkcs11"`.
#[derive(Clone, PartialEq, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: std::path::PathBuf,
    /// The token's label (exactly one of `token_label`, `token_serial`).
    #[serde(default)]
    pub token_label: Option<String>,
    /// The token's serial number.
    #[serde(default)]
    pub token_serial: Option<String>,
    /// A file whose content (trailing newline removed) is the user PIN
    /// (exactly one of `pin_file`, `pin_env`).
    #[serde(default)]
    pub pin_file: Option<std::path::PathBuf>,
    /// An environment variable holding the user PIN.
    #[serde(default)]
    pub pin_env: Option<String>,
    /// Most PKCS#11 sessions open at once (one more keeps the login).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// How long an operation waits for a free session before failing with
    /// `UNAVAILABLE`.
    #[serde(default = "default_session_wait", with = "super::duration")]
    pub session_wait: Duration,
    /// Threads making PKCS#11 calls (signing, verification, registry
    /// reads). 0 means one per CPU, right for a CPU-bound token such as
    /// SoftHSM2; a network HSM with more parallelism than the host has CPUs
    /// wants more.
    #[serde(default)]
    pub threads: usize,
    /// At start-up, destroy key objects no record names (left by a crash
    /// between generating a version and recording it) instead of only
    /// reporting them. Only for a token no other signet process uses.
    #[serde(default)]
    pub destroy_orphans: bool,
}

fn default_session_wait() -> Duration {
    Duration::from_secs(5)
}

fn default_max_sessions() -> usize {
    16
}

impl Pkcs11Config {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.token_label.is_some() == self.token_serial.is_some() {
            return Err(ConfigError::new(
                "backend",
                "set exactly one of token_label and token_serial (slot indexes are not accepted)",
            ));
        }
        if self.pin_file.is_some() == self.pin_env.is_some() {
            return Err(ConfigError::new(
                "backend",
                "set exactly one of pin_file and pin_env",
            ));
        }
        if !(1..=1024).contains(&self.max_sessions) {
            return Err(ConfigError::naming(
                "backend.max_sessions",
                "backend.max_sessions must be between 1 and 1024",
            ));
        }
        if self.threads > 1024 {
            return Err(ConfigError::naming(
                "backend.threads",
                "backend.threads must be at most 1024 (0 = one per CPU)",
            ));
        }
        in_range(
            bounds::SESSION_WAIT,
            "backend.session_wait",
            self.session_wait,
        )
    }

    /// Reads the PIN from its file or variable. The PIN is returned as a
    /// secret and never appears in an error.
    pub fn read_pin(&self) -> Result<cryptoki::types::AuthPin, ConfigError> {
        let mut pin = if let Some(path) = &self.pin_file {
            std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    format!("backend.pin_file {}", path.display()),
                    e.kind().to_string(),
                )
            })?
        } else {
            let var = self.pin_env.as_deref().unwrap_or_default();
            std::env::var(var).map_err(|_| {
                ConfigError::new("backend.pin_env", format!("variable {var} is not set"))
            })?
        };
        let trimmed = pin.trim_end_matches(['\n', '\r']).to_string();
        zeroize::Zeroize::zeroize(&mut pin);
        if trimmed.is_empty() {
            return Err(ConfigError::new("backend", "the PIN is empty"));
        }
        Ok(cryptoki::types::AuthPin::new(trimmed.into()))
    }

    /// `threads`, with 0 resolved to the number of CPUs.
    pub fn worker_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

impl BackendConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match self {
            BackendConfig::Memory { .. } => Ok(()),
            BackendConfig::Pkcs11(p) => p.validate(),
        }
    }
}

/// `[backend]` read with `type = "memory"` when the table names no type,
/// as documented (`[backend] demo_keys = true` alone is a memory backend).
pub(super) fn memory_unless_typed<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BackendConfig, D::Error> {
    let mut table = toml::Table::deserialize(d)?;
    table
        .entry("type")
        .or_insert_with(|| toml::Value::String("memory".into()));
    BackendConfig::deserialize(toml::Value::Table(table))
        .map_err(|e| serde::de::Error::custom(e.message().trim()))
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig::Memory { demo_keys: false }
    }
}
