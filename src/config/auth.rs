//! `[auth]` (identities, grants, tokens), `[limits]` and `[audit]`.

use std::path::PathBuf;

use serde::Deserialize;

/// `[auth]`.
#[derive(Clone, PartialEq, Debug, Default, Deserialize)]
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
    /// The tokens read from `tokens_file` (by [`super::Config::load`]);
    /// kept apart so that errors say where a token was written.
    #[serde(skip)]
    pub file_tokens: Vec<TokenConfig>,
}

/// The contents of `auth.tokens_file`.
#[derive(Clone, PartialEq, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokensFile {
    #[serde(default)]
    pub(super) tokens: Vec<TokenConfig>,
}

/// `[[auth.identities]]`.
#[derive(Clone, PartialEq, Debug, Deserialize)]
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
#[derive(Clone, PartialEq, Debug, Deserialize)]
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
#[derive(Clone, PartialEq, Debug, Deserialize)]
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
#[derive(Clone, PartialEq, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests being served at once; more are refused at once with
    /// `RESOURCE_EXHAUSTED` instead of queueing.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Largest HTTP body `SignHttpRequest`/`VerifyHttpRequest` accept.
    #[serde(default = "super::server::default_max_message_bytes")]
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
            max_http_body_bytes: super::server::default_max_message_bytes(),
            max_http_headers: default_max_http_headers(),
            max_http_header_bytes: default_max_http_header_bytes(),
            max_url_bytes: default_max_url_bytes(),
            max_template_bytes: default_max_template_bytes(),
            keys: Vec::new(),
        }
    }
}

impl LimitsConfig {
    /// Sizes and counts are at least 1; `[[limits.keys]]` rates are checked
    /// with the policy ([`crate::auth::Policy::new`]).
    pub(super) fn validate(&self) -> Result<(), String> {
        for (v, name) in [
            (self.max_in_flight, "max_in_flight"),
            (self.max_http_body_bytes, "max_http_body_bytes"),
            (self.max_http_headers, "max_http_headers"),
            (self.max_http_header_bytes, "max_http_header_bytes"),
            (self.max_url_bytes, "max_url_bytes"),
            (self.max_template_bytes, "max_template_bytes"),
        ] {
            if v == 0 {
                return Err(format!("limits.{name} must be at least 1"));
            }
        }
        if self.max_http_body_bytes > 64 * 1024 * 1024 {
            return Err("limits.max_http_body_bytes must be at most 67108864".into());
        }
        Ok(())
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
#[derive(Clone, PartialEq, Debug, Deserialize)]
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
#[derive(Clone, PartialEq, Debug, Deserialize)]
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

impl AuditConfig {
    /// The output and path agree. Pure: opening the file is
    /// [`crate::audit::Audit::open`]'s, which calls this first.
    pub fn validate(&self) -> Result<(), String> {
        match (self.output.as_str(), &self.path) {
            ("off" | "stdout", None) | ("file", Some(_)) => Ok(()),
            ("file", None) => Err("audit.path is required with output = \"file\"".into()),
            ("stdout" | "off", Some(_)) => Err("audit.path is only for output = \"file\"".into()),
            (o, _) => Err(format!(
                "audit.output must be \"stdout\", \"file\" or \"off\", not {o:?}"
            )),
        }
    }
}

fn default_audit_output() -> String {
    "stdout".into()
}
