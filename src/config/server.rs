//! `[server]` (with `[server.tls]`), `[admin]`, `[telemetry]` and `[log]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::bounds;

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

/// `[server.tls]`.
#[derive(Clone, PartialEq, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub key_file: PathBuf,
    /// PEM CA bundle that client certificates must chain to (mutual TLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// With `client_ca_file`: refuse connections without a client
    /// certificate (default). False lets token-only clients connect; a
    /// certificate presented is still verified.
    #[serde(default = "default_true")]
    pub require_client_cert: bool,
    /// Lowest TLS version: "1.2" or "1.3".
    #[serde(default = "default_tls_min")]
    pub min_version: String,
    /// How often the files are checked for changes (rotation).
    #[serde(default = "default_tls_reload", with = "super::duration")]
    pub reload_interval: Duration,
    /// A connection that has not finished its handshake by then is closed.
    #[serde(default = "default_handshake_timeout", with = "super::duration")]
    pub handshake_timeout: Duration,
}

fn default_true() -> bool {
    true
}
fn default_tls_min() -> String {
    "1.2".into()
}
fn default_tls_reload() -> Duration {
    Duration::from_secs(5)
}
fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[server]`.
#[derive(Clone, PartialEq, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest message `Sign`/`Verify` accept, in bytes.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// How long a shutdown waits for in-flight calls before exiting.
    #[serde(default = "default_shutdown_timeout", with = "super::duration")]
    pub shutdown_timeout: Duration,
    /// After SIGTERM, how long to keep accepting calls while reporting
    /// NOT_SERVING, so load balancers stop sending first (e.g. "5s" on
    /// Kubernetes). Then new connections are refused and in-flight calls
    /// get `shutdown_timeout` to finish.
    #[serde(default, with = "super::duration")]
    pub drain_delay: Duration,
    /// Most concurrent streams per HTTP/2 connection.
    #[serde(default = "default_max_streams")]
    pub max_concurrent_streams: u32,
    /// Serve without TLS. Only on a loopback address, and only when said
    /// here (or in the built-in demo mode, with no config file).
    #[serde(default)]
    pub plaintext: bool,
    /// TLS, and mutual TLS with `client_ca_file`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_message_bytes: default_max_message_bytes(),
            shutdown_timeout: default_shutdown_timeout(),
            drain_delay: Duration::ZERO,
            max_concurrent_streams: default_max_streams(),
            plaintext: false,
            tls: None,
        }
    }
}

impl ServerConfig {
    /// `[server]` and `[server.tls]` values; durations by their ranges
    /// ([`crate::bounds`]).
    pub(super) fn validate(&self) -> Result<(), String> {
        if !(1..=64 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err("server.max_message_bytes must be between 1 and 67108864".into());
        }
        if self.max_concurrent_streams == 0 {
            return Err("server.max_concurrent_streams must be at least 1".into());
        }
        bounds::SHUTDOWN_TIMEOUT.check("server.shutdown_timeout", self.shutdown_timeout)?;
        bounds::DRAIN_DELAY.check("server.drain_delay", self.drain_delay)?;
        if let Some(t) = &self.tls {
            if !["1.2", "1.3"].contains(&t.min_version.as_str()) {
                return Err(format!(
                    "server.tls.min_version must be \"1.2\" or \"1.3\", not {:?}",
                    t.min_version
                ));
            }
            bounds::TLS_RELOAD_INTERVAL.check("server.tls.reload_interval", t.reload_interval)?;
            bounds::HANDSHAKE_TIMEOUT.check("server.tls.handshake_timeout", t.handshake_timeout)?;
        }
        Ok(())
    }
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:50051".parse().expect("valid literal")
}
pub(super) fn default_max_message_bytes() -> usize {
    1024 * 1024
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_streams() -> u32 {
    256
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

/// Log line format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}
