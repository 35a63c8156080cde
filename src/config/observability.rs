//! The sections about watching signet run: `[audit]`, `[admin]` (the
//! probe port), `[telemetry]` and `[log]`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::values::closed_set;
use crate::error::ConfigError;

closed_set! {
    /// `audit.output`: where audit records go.
    pub enum AuditOutput in "audit.output" {
        /// Standard output, one JSON object per line.
        #[default]
        Stdout = "stdout",
        /// Appended to `audit.path`.
        File = "file",
        /// Nowhere (benchmarks only).
        Off = "off",
    }
}

/// `[admin]`: a plaintext port for probes and the metrics scraper. It
/// serves gRPC health (`grpc.health.v1`) and `GET /metrics`, no key
/// operation and nothing secret.
#[derive(Clone, PartialEq, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where to listen, e.g. `0.0.0.0:9090`. None: no admin port.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

/// `[telemetry]`.
#[derive(Clone, PartialEq, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The `service.name` of traces and metrics; `OTEL_SERVICE_NAME` wins.
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            service_name: default_service_name(),
        }
    }
}

fn default_service_name() -> String {
    "signet".into()
}

/// `[log]`.
#[derive(Clone, PartialEq, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `signet=debug,info`. `RUST_LOG` wins.
    #[serde(default = "default_level")]
    pub level: String,
    /// `text` or `json`.
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: default_level(),
            format: LogFormat::default(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

closed_set! {
    /// `log.format`: the log line format.
    pub enum LogFormat in "log.format" {
        /// Human-readable.
        #[default]
        Text = "text",
        /// One JSON object per line.
        Json = "json",
    }
}

impl LogConfig {
    /// `log.level` is a valid `tracing` filter, in ASCII: the filter
    /// parser of tracing-subscriber 0.3.23 slices a directive by offsets
    /// into its trimmed text, so whitespace before a non-ASCII character
    /// makes it panic (found by `cargo fuzz run config`). Targets, spans,
    /// fields and levels are ASCII in practice.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.level.is_ascii() {
            return Err(ConfigError::new(
                "log.level",
                "must be ASCII (a tracing filter such as \"info\" or \"signet=debug,info\")",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            return Err(ConfigError::new(
                "log.level",
                format!("invalid filter {:?}", self.level),
            ));
        }
        Ok(())
    }
}

/// `[audit]`.
#[derive(Clone, PartialEq, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `stdout`, `file` (with `path`), or `off` (benchmarks only).
    #[serde(default)]
    pub output: AuditOutput,
    /// The file audit records are appended to.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

impl AuditConfig {
    /// The output and path agree. Pure: opening the file is
    /// [`crate::audit::Audit::open`]'s, which calls this first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (self.output, &self.path) {
            (AuditOutput::Off | AuditOutput::Stdout, None) | (AuditOutput::File, Some(_)) => Ok(()),
            (AuditOutput::File, None) => Err(ConfigError::naming(
                "audit.path",
                "audit.path is required with output = \"file\"",
            )),
            (AuditOutput::Stdout | AuditOutput::Off, Some(_)) => Err(ConfigError::naming(
                "audit.path",
                "audit.path is only for output = \"file\"",
            )),
        }
    }
}
