//! `[server]` and `[server.tls]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::in_range;
use super::values::closed_set;
use crate::bounds;
use crate::error::ConfigError;

closed_set! {
    /// `server.tls.min_version`: the lowest TLS version accepted.
    pub enum TlsVersion in "server.tls.min_version" {
        /// TLS 1.2 and 1.3.
        #[default]
        Tls12 = "1.2",
        /// TLS 1.3 only.
        Tls13 = "1.3",
    }
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
    #[serde(default)]
    pub min_version: TlsVersion,
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=64 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err(ConfigError::naming(
                "server.max_message_bytes",
                "server.max_message_bytes must be between 1 and 67108864",
            ));
        }
        if self.max_concurrent_streams == 0 {
            return Err(ConfigError::naming(
                "server.max_concurrent_streams",
                "server.max_concurrent_streams must be at least 1",
            ));
        }
        in_range(
            bounds::SHUTDOWN_TIMEOUT,
            "server.shutdown_timeout",
            self.shutdown_timeout,
        )?;
        in_range(bounds::DRAIN_DELAY, "server.drain_delay", self.drain_delay)?;
        if let Some(t) = &self.tls {
            in_range(
                bounds::TLS_RELOAD_INTERVAL,
                "server.tls.reload_interval",
                t.reload_interval,
            )?;
            in_range(
                bounds::HANDSHAKE_TIMEOUT,
                "server.tls.handshake_timeout",
                t.handshake_timeout,
            )?;
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
