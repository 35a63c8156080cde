//! The TOML configuration: strict (`deny_unknown_fields`) and validated
//! before the listener binds. Every field is documented in
//! `examples/signet.toml`.

use std::net::SocketAddr;
use std::path::Path;
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
    /// Most concurrent streams per HTTP/2 connection.
    #[serde(default = "default_max_streams")]
    pub max_concurrent_streams: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_message_bytes: default_max_message_bytes(),
            shutdown_timeout: default_shutdown_timeout(),
            max_concurrent_streams: default_max_streams(),
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
        Self::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
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
        Config {
            backend: BackendConfig::Memory { demo_keys: true },
            ..Default::default()
        }
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
        self.resolved_profiles()?;
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
