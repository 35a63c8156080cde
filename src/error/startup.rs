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
}

impl ConfigError {
    /// `field` is refused because of `message`. Neither may carry a
    /// secret (a token, a password in a URL, a PIN).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
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
        if self.field.is_empty() {
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
            StartupError::File { source, .. } => Some(source),
            StartupError::Dependency { source, .. } => Some(source),
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
        let s = StartupError::from(e);
        assert!(s.to_string().starts_with("server.drain_delay"));
        let d = StartupError::Dependency {
            what: "replay store",
            source: super::super::Error::unavailable("Redis does not answer"),
        };
        assert_eq!(d.to_string(), "replay store: Redis does not answer");
    }
}
