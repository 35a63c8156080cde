//! The TOML configuration: strict (`deny_unknown_fields`) and validated
//! before the listener binds. Every field is documented in
//! `examples/signet.toml`.

use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
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
    pub profiles: Vec<crate::http::profile::ProfileConfig>,
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

/// `[admin]`: a plaintext port for probes and the metrics scraper. It
/// serves gRPC health (`grpc.health.v1`) and `GET /metrics`, no key
/// operation and nothing secret.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where to listen, e.g. `0.0.0.0:9090`. None: no admin port.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

/// `[telemetry]`.
#[derive(Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
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
    #[serde(default = "default_tls_reload", with = "duration")]
    pub reload_interval: Duration,
    /// A connection that has not finished its handshake by then is closed.
    #[serde(default = "default_handshake_timeout", with = "duration")]
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

/// `[auth]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Proxies whose `x-forwarded-for` is believed (CIDRs).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The identities and their grants. None: authorization is off, which
    /// only a loopback listener allows.
    #[serde(default)]
    pub identities: Vec<IdentityConfig>,
    /// Bearer tokens, as SHA-256 hashes.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// A TOML file of more `[[tokens]]` (same fields), e.g. a Kubernetes
    /// Secret mounted as a file. Read at start-up and on every SIGHUP.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
}

/// The contents of `auth.tokens_file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<TokenConfig>,
}

/// `[[auth.identities]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The identity: a certificate's URI SAN (e.g. a SPIFFE id), DNS SAN
    /// or CN, or the name tokens refer to.
    pub name: String,
    /// CIDRs it may connect from; empty: anywhere.
    #[serde(default)]
    pub allow_from: Vec<String>,
    /// Requests per second (token bucket); absent: no limit.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// Bucket size (default: the rate).
    #[serde(default)]
    pub burst: Option<u32>,
    /// What it may do.
    #[serde(default)]
    pub grants: Vec<GrantConfig>,
}

/// `[[auth.identities.grants]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    /// Operations (`sign`, `admin.rotate`, `admin.*`, `*`, ...).
    pub operations: Vec<String>,
    /// Key-name patterns (`*` wildcard).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Profile-name patterns, for the `http_*` operations.
    #[serde(default)]
    pub profiles: Vec<String>,
}

/// `[[auth.tokens]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The identity it authenticates as.
    pub identity: String,
    /// Lowercase hex SHA-256 of the token (`signet token new` prints it).
    pub sha256: String,
    /// RFC 3339 time after which it is refused.
    #[serde(default)]
    pub expires: Option<String>,
}

/// `[limits]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests being served at once; more are refused at once with
    /// `RESOURCE_EXHAUSTED` instead of queueing.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Largest HTTP body `SignHttpRequest`/`VerifyHttpRequest` accept.
    #[serde(default = "default_max_message_bytes")]
    pub max_http_body_bytes: usize,
    /// Most headers a `VerifyHttpRequest` may carry.
    #[serde(default = "default_max_http_headers")]
    pub max_http_headers: usize,
    /// Longest header (name plus value), in bytes.
    #[serde(default = "default_max_http_header_bytes")]
    pub max_http_header_bytes: usize,
    /// Longest URL, in bytes.
    #[serde(default = "default_max_url_bytes")]
    pub max_url_bytes: usize,
    /// Longest profile template, in bytes (checked at start-up).
    #[serde(default = "default_max_template_bytes")]
    pub max_template_bytes: usize,
    /// Per-key rate limits.
    #[serde(default)]
    pub keys: Vec<KeyLimitConfig>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_in_flight: default_max_in_flight(),
            max_http_body_bytes: default_max_message_bytes(),
            max_http_headers: default_max_http_headers(),
            max_http_header_bytes: default_max_http_header_bytes(),
            max_url_bytes: default_max_url_bytes(),
            max_template_bytes: default_max_template_bytes(),
            keys: Vec::new(),
        }
    }
}

fn default_max_in_flight() -> usize {
    1024
}
fn default_max_http_headers() -> usize {
    100
}
fn default_max_http_header_bytes() -> usize {
    8 * 1024
}
fn default_max_url_bytes() -> usize {
    8 * 1024
}
fn default_max_template_bytes() -> usize {
    1024
}

/// `[[limits.keys]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLimitConfig {
    /// The key's name.
    pub key: String,
    /// Operations per second on it, from every caller together.
    pub rate_per_second: u32,
    /// Bucket size (default: the rate).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// `[audit]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `stdout`, `file` (with `path`), or `off` (benchmarks only).
    #[serde(default = "default_audit_output")]
    pub output: String,
    /// The file audit records are appended to.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            output: default_audit_output(),
            path: None,
        }
    }
}

fn default_audit_output() -> String {
    "stdout".into()
}

/// `[http]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where seen nonces and signatures are kept: `memory` (this process)
    /// or `redis` (shared by replicas).
    #[serde(default)]
    pub replay_store: ReplayStoreKind,
    /// Live entries the in-memory replay store holds at most; a full store
    /// refuses (fails closed) rather than forgetting.
    #[serde(default = "default_replay_capacity")]
    pub replay_capacity: usize,
    /// `redis://[:password@]host:port[/db]` (or `rediss://` for TLS) when
    /// `replay_store = "redis"`. Or name an environment variable holding it
    /// with `redis_url_env`, to keep a password out of the file.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// The environment variable holding the Redis URL.
    #[serde(default)]
    pub redis_url_env: Option<String>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("replay_store", &self.replay_store)
            .field("replay_capacity", &self.replay_capacity)
            .field(
                "redis_url",
                &self
                    .redis_url
                    .as_deref()
                    .map(crate::http::replay::redact_url),
            )
            .field("redis_url_env", &self.redis_url_env)
            .finish()
    }
}

impl HttpConfig {
    /// The Redis URL, from the file or the environment (`None` with the
    /// memory store).
    pub fn resolve_redis_url(&self) -> std::result::Result<Option<String>, String> {
        if self.replay_store != ReplayStoreKind::Redis {
            return Ok(None);
        }
        match (&self.redis_url, &self.redis_url_env) {
            (Some(u), None) => Ok(Some(u.clone())),
            (None, Some(var)) => std::env::var(var)
                .map(Some)
                .map_err(|_| format!("http.redis_url_env: variable {var} is not set")),
            _ => Err("http: set exactly one of redis_url and redis_url_env".into()),
        }
    }
}

/// `http.replay_store`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReplayStoreKind {
    /// In this process.
    #[default]
    Memory,
    /// In Redis.
    Redis,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            replay_store: ReplayStoreKind::Memory,
            replay_capacity: default_replay_capacity(),
            redis_url: None,
            redis_url_env: None,
        }
    }
}

fn default_replay_capacity() -> usize {
    1_000_000
}

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest message `Sign`/`Verify` accept, in bytes.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// How long a shutdown waits for in-flight calls before exiting.
    #[serde(default = "default_shutdown_timeout", with = "duration")]
    pub shutdown_timeout: Duration,
    /// After SIGTERM, how long to keep accepting calls while reporting
    /// NOT_SERVING, so load balancers stop sending first (e.g. "5s" on
    /// Kubernetes). Then new connections are refused and in-flight calls
    /// get `shutdown_timeout` to finish.
    #[serde(default, with = "duration")]
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

fn default_listen() -> SocketAddr {
    "127.0.0.1:50051".parse().expect("valid literal")
}
fn default_max_message_bytes() -> usize {
    1024 * 1024
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_streams() -> u32 {
    256
}

/// `[backend]`, tagged by `type`.
#[derive(Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
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
    #[serde(default = "default_session_wait", with = "duration")]
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
    fn validate(&self) -> Result<(), String> {
        if self.token_label.is_some() == self.token_serial.is_some() {
            return Err(
                "backend: set exactly one of token_label and token_serial (slot indexes are not accepted)"
                    .into(),
            );
        }
        if self.pin_file.is_some() == self.pin_env.is_some() {
            return Err("backend: set exactly one of pin_file and pin_env".into());
        }
        if !(1..=1024).contains(&self.max_sessions) {
            return Err("backend.max_sessions must be between 1 and 1024".into());
        }
        if self.threads > 1024 {
            return Err("backend.threads must be at most 1024 (0 = one per CPU)".into());
        }
        if self.session_wait < Duration::from_millis(1)
            || self.session_wait > Duration::from_secs(300)
        {
            return Err("backend.session_wait must be between 1ms and 300s".into());
        }
        Ok(())
    }

    /// Reads the PIN from its file or variable. The PIN is returned as a
    /// secret and never appears in an error.
    pub fn read_pin(&self) -> Result<cryptoki::types::AuthPin, String> {
        let mut pin = if let Some(path) = &self.pin_file {
            std::fs::read_to_string(path)
                .map_err(|e| format!("backend.pin_file {}: {}", path.display(), e.kind()))?
        } else {
            let var = self.pin_env.as_deref().unwrap_or_default();
            std::env::var(var).map_err(|_| format!("backend.pin_env: variable {var} is not set"))?
        };
        let trimmed = pin.trim_end_matches(['\n', '\r']).to_string();
        zeroize::Zeroize::zeroize(&mut pin);
        if trimmed.is_empty() {
            return Err("backend: the PIN is empty".into());
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

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig::Memory { demo_keys: false }
    }
}

/// `[keys]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// Grace for the previous ACTIVE version when a promotion names none.
    #[serde(default = "default_grace", with = "duration")]
    pub default_grace_period: Duration,
    /// Delay between DestroyKeyVersion and the material's destruction.
    #[serde(default = "default_destroy_delay", with = "duration")]
    pub destroy_delay: Duration,
    /// How often time-driven transitions are applied.
    #[serde(default = "default_tick", with = "duration")]
    pub tick_interval: Duration,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            default_grace_period: default_grace(),
            destroy_delay: default_destroy_delay(),
            tick_interval: default_tick(),
        }
    }
}

fn default_grace() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_destroy_delay() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_tick() -> Duration {
    Duration::from_secs(1)
}

/// `[log]`.
#[derive(Debug, Deserialize)]
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

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        let mut c = Self::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
        c.read_tokens_file()?;
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
        let f: TokensFile = toml::from_str(&text).map_err(|e| {
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
        self.auth.tokens.extend(f.tokens);
        Ok(())
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    /// The profiles, validated; names are unique.
    pub fn resolved_profiles(&self) -> Result<Vec<crate::http::profile::Profile>, String> {
        let mut out: Vec<crate::http::profile::Profile> = Vec::new();
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

    /// Checks values that the types alone do not; messages name the field.
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.server;
        if !(1..=64 * 1024 * 1024).contains(&s.max_message_bytes) {
            return Err("server.max_message_bytes must be between 1 and 67108864".into());
        }
        if s.max_concurrent_streams == 0 {
            return Err("server.max_concurrent_streams must be at least 1".into());
        }
        if let BackendConfig::Pkcs11(p) = &self.backend {
            p.validate()?;
        }
        let l = &self.limits;
        for (v, name) in [
            (l.max_in_flight, "max_in_flight"),
            (l.max_http_body_bytes, "max_http_body_bytes"),
            (l.max_http_headers, "max_http_headers"),
            (l.max_http_header_bytes, "max_http_header_bytes"),
            (l.max_url_bytes, "max_url_bytes"),
            (l.max_template_bytes, "max_template_bytes"),
        ] {
            if v == 0 {
                return Err(format!("limits.{name} must be at least 1"));
            }
        }
        if l.max_http_body_bytes > 64 * 1024 * 1024 {
            return Err("limits.max_http_body_bytes must be at most 67108864".into());
        }
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
        if let Some(t) = &self.server.tls {
            if !["1.2", "1.3"].contains(&t.min_version.as_str()) {
                return Err(format!(
                    "server.tls.min_version must be \"1.2\" or \"1.3\", not {:?}",
                    t.min_version
                ));
            }
        }
        if self.http.replay_capacity == 0 {
            return Err("http.replay_capacity must be at least 1".into());
        }
        let has_url = self.http.redis_url.is_some() || self.http.redis_url_env.is_some();
        if (self.http.replay_store == ReplayStoreKind::Redis) != has_url {
            return Err(
                "http.redis_url or redis_url_env is required with replay_store = \"redis\", \
                 and only then"
                    .into(),
            );
        }
        if self.http.redis_url.is_some() && self.http.redis_url_env.is_some() {
            return Err("http: set exactly one of redis_url and redis_url_env".into());
        }
        let k = &self.keys;
        if k.default_grace_period < Duration::from_secs(1) {
            return Err("keys.default_grace_period must be at least 1s".into());
        }
        if k.tick_interval < Duration::from_millis(10) || k.tick_interval > Duration::from_secs(60)
        {
            return Err("keys.tick_interval must be between 10ms and 60s".into());
        }
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
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let text = include_str!("../examples/signet.toml");
        let c = Config::parse(text).unwrap();
        assert_eq!(c.keys.default_grace_period, Duration::from_secs(7 * 86400));
        assert_eq!(c.resolved_profiles().unwrap()[0].name, "acquirer");
        assert!(c.check_listener().is_ok());
        let c = Config::parse(include_str!("../examples/signet-pkcs11.toml")).unwrap();
        assert!(matches!(c.backend, BackendConfig::Pkcs11(_)));
        assert!(c.check_listener().is_ok());
    }

    #[test]
    fn every_preset_page_config_parses() {
        // Every ```toml block of the HTTP docs is a valid config, and each
        // preset page has one that uses its preset.
        let pages = [
            ("", include_str!("../docs/http-profiles.md")),
            ("boxo", include_str!("../docs/presets/boxo.md")),
            ("stripe", include_str!("../docs/presets/stripe.md")),
            (
                "standard-webhooks",
                include_str!("../docs/presets/standard-webhooks.md"),
            ),
            ("github", include_str!("../docs/presets/github.md")),
            ("slack", include_str!("../docs/presets/slack.md")),
            ("shopify", include_str!("../docs/presets/shopify.md")),
        ];
        for (preset, doc) in pages {
            let mut uses_preset = preset.is_empty();
            for block in doc.split("```toml\n").skip(1) {
                let text = block.split("```").next().unwrap();
                let c = Config::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
                let profiles = c.resolved_profiles().unwrap();
                uses_preset |= profiles
                    .iter()
                    .any(|p| p.preset.is_some_and(|x| x.name() == preset));
            }
            assert!(uses_preset, "docs/presets/{preset}.md has no configuration");
        }
    }

    #[test]
    fn empty_config_is_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.server.listen, default_listen());
        assert!(matches!(
            c.backend,
            BackendConfig::Memory { demo_keys: false }
        ));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n").unwrap_err();
        assert!(e.contains("lisen"), "{e}");
        let e = Config::parse("[backend]\ntype = \"floppy\"\n").unwrap_err();
        assert!(e.contains("floppy"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = Config::parse("[keys]\ndefault_grace_period = \"0s\"\n").unwrap_err();
        assert!(e.contains("keys.default_grace_period"), "{e}");
        let e = Config::parse("[keys]\ndestroy_delay = \"soon\"\n").unwrap_err();
        assert!(e.contains("soon"), "{e}");
        let e = Config::parse("[server]\nmax_message_bytes = 0\n").unwrap_err();
        assert!(e.contains("server.max_message_bytes"), "{e}");
    }

    #[test]
    fn limits_and_listener_rules() {
        let long = "x".repeat(2000);
        let e = Config::parse(&format!(
            "[[profiles]]\nname = \"p\"\nkey = \"k\"\nclient_id = \"c\"\npayload_template = \"{{payload}}{long}\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("max_template_bytes"), "{e}");
        let e = Config::parse("[limits]\nmax_in_flight = 0\n").unwrap_err();
        assert!(e.contains("limits.max_in_flight"), "{e}");
        // Plaintext: only when said, only on loopback; no auth: loopback only.
        let c = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\n").unwrap();
        assert!(c.check_listener().unwrap_err().contains("server.tls"));
        let c = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nplaintext = true\n").unwrap();
        assert!(c.check_listener().is_ok());
        let c = Config::parse("[server]\nlisten = \"0.0.0.0:1\"\nplaintext = true\n").unwrap();
        assert!(c.check_listener().unwrap_err().contains("not a loopback"));
        let c = Config::parse(
            "[server]\nlisten = \"[::]:1\"\n[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n",
        )
        .unwrap();
        assert!(c.check_listener().unwrap_err().contains("auth.identities"));
        let c = Config::parse(
            "[server]\nlisten = \"[::]:1\"\n[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n\
             [[auth.identities]]\nname = \"a\"\n",
        )
        .unwrap();
        assert!(c.check_listener().is_ok());
        let mut demo = Config::demo();
        assert!(demo.check_listener().is_ok());
        demo.server.listen = "0.0.0.0:50051".parse().unwrap();
        assert!(
            demo.check_listener().is_err(),
            "--listen 0.0.0.0 in demo mode"
        );
    }

    #[test]
    fn redis_replay_store_settings() {
        let e = Config::parse("[http]\nreplay_store = \"redis\"\n").unwrap_err();
        assert!(e.contains("redis_url"), "{e}");
        let e = Config::parse("[http]\nredis_url = \"redis://h\"\n").unwrap_err();
        assert!(e.contains("redis_url"), "{e}");
        let both = "[http]\nreplay_store = \"redis\"\nredis_url = \"redis://h\"\n\
                    redis_url_env = \"X\"\n";
        assert!(Config::parse(both).unwrap_err().contains("exactly one"));
        let c = Config::parse(
            "[http]\nreplay_store = \"redis\"\nredis_url = \"redis://:pw-9f3a@h:6379\"\n",
        )
        .unwrap();
        assert_eq!(
            c.http.resolve_redis_url().unwrap().as_deref(),
            Some("redis://:pw-9f3a@h:6379")
        );
        // The config's Debug output (which a log line could carry) hides the
        // password.
        let shown = format!("{c:?}");
        assert!(!shown.contains("pw-9f3a"), "{shown}");
        let c = Config::parse(
            "[http]\nreplay_store = \"redis\"\nredis_url_env = \"SIGNET_TEST_UNSET_9F3A\"\n",
        )
        .unwrap();
        let e = c.http.resolve_redis_url().unwrap_err();
        assert!(e.contains("SIGNET_TEST_UNSET_9F3A"), "{e}");
        assert_eq!(
            Config::parse("").unwrap().http.resolve_redis_url(),
            Ok(None)
        );
    }
}
