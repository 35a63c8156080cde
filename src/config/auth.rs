//! `[auth]`: identities, grants, tokens. Checked with `[[limits.keys]]`
//! when the policy is built, by the composition root.

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
