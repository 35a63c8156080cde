//! Why signet cannot start, or why a reload or `check-config` refuses a
//! file: errors for the operator, not for gRPC callers.

use std::fmt;
use std::path::PathBuf;

/// A configuration value that is refused: the field (dotted TOML path, or
/// the profile or identity it belongs to) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    field: String,
    message: String,
    /// The message is a sentence that already names the field
    /// (`keys.tick_interval must be between ...`).
    named: bool,
}

impl ConfigError {
    /// `field` is refused because of `message`. Neither may carry a
    /// secret (a token, a password in a URL, a PIN).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            named: false,
        }
    }

    /// `field` is refused, and `sentence` says why in words that already
    /// name it (`server.drain_delay must be between 0s and 5m`, or an
    /// error of the module that checked it, such as a profile's). Shown as
    /// the sentence alone.
    pub fn naming(field: impl Into<String>, sentence: impl Into<String>) -> Self {
        Self {
            named: true,
            ..Self::new(field, sentence)
        }
    }

    /// The refused field.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() || self.named {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why `signet serve` (or a reload, or `check-config`) stops.
#[derive(Debug)]
pub enum StartupError {
    /// The file does not parse, or a value in it is refused.
    Config(ConfigError),
    /// A file the configuration names cannot be read.
    File {
        /// What the file is for (`PIN file`, `tokens_file`, ...).
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A value in the configuration file `path` is refused.
    InFile {
        /// The configuration file.
        path: PathBuf,
        /// What is refused.
        source: ConfigError,
    },
    /// A dependency does not answer: the HSM, Redis, the listener's port.
    Dependency {
        /// Which one (`PKCS#11 backend`, `replay store`, `listener`).
        what: &'static str,
        /// signet's error, whose message says what is wrong.
        source: super::Error,
    },
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Config(e) => e.fmt(f),
            StartupError::InFile { path, source } => {
                write!(f, "config {}: {source}", path.display())
            }
            StartupError::File { what, path, source } => {
                write!(f, "cannot read {what} {}: {source}", path.display())
            }
            StartupError::Dependency { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for StartupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartupError::Config(e) => Some(e),
            StartupError::InFile { source, .. } => Some(source),
            StartupError::File { source, .. } => Some(source),
            StartupError::Dependency { source, .. } => Some(source),
        }
    }
}

impl StartupError {
    /// A dependency failed with signet's error.
    pub fn dependency(what: &'static str, source: super::Error) -> Self {
        StartupError::Dependency { what, source }
    }

    /// A dependency failed with a library's message (kept for the
    /// operator: start-up errors never reach a gRPC caller).
    pub fn failed(what: &'static str, detail: impl std::fmt::Display) -> Self {
        StartupError::Dependency {
            what,
            source: super::Error::unavailable(detail.to_string()),
        }
    }
}

impl From<ConfigError> for StartupError {
    fn from(e: ConfigError) -> Self {
        StartupError::Config(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_the_dependency() {
        let e = ConfigError::new("server.drain_delay", "must be at most 5m");
        assert_eq!(e.to_string(), "server.drain_delay: must be at most 5m");
        assert_eq!(ConfigError::new("", "no field").to_string(), "no field");
        let named = ConfigError::naming("keys.tick_interval", "keys.tick_interval must be 1s");
        assert_eq!(named.to_string(), "keys.tick_interval must be 1s");
        assert_eq!(named.field(), "keys.tick_interval");
        let in_file = StartupError::InFile {
            path: "/etc/signet.toml".into(),
            source: named,
        };
        assert_eq!(
            in_file.to_string(),
            "config /etc/signet.toml: keys.tick_interval must be 1s"
        );
        let s = StartupError::from(e);
        assert!(s.to_string().starts_with("server.drain_delay"));
        let d = StartupError::Dependency {
            what: "replay store",
            source: super::super::Error::unavailable("Redis does not answer"),
        };
        assert_eq!(d.to_string(), "replay store: Redis does not answer");
    }
}
