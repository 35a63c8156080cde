//! `[limits]` and `[[limits.keys]]`.

use serde::Deserialize;

use crate::error::ConfigError;

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
    /// Most items one `SignBatch` or `VerifyBatch` may carry.
    #[serde(default = "default_max_batch_items")]
    pub max_batch_items: usize,
    /// Most bytes of key names, messages, digests and signatures one batch
    /// may carry, all its items together.
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: usize,
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
            max_batch_items: default_max_batch_items(),
            max_batch_bytes: default_max_batch_bytes(),
            keys: Vec::new(),
        }
    }
}

impl LimitsConfig {
    /// Sizes and counts are at least 1; `[[limits.keys]]` rates are checked
    /// with the policy, by the composition root (`crate::server::settings`).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (v, name) in [
            (self.max_in_flight, "max_in_flight"),
            (self.max_http_body_bytes, "max_http_body_bytes"),
            (self.max_http_headers, "max_http_headers"),
            (self.max_http_header_bytes, "max_http_header_bytes"),
            (self.max_url_bytes, "max_url_bytes"),
            (self.max_template_bytes, "max_template_bytes"),
            (self.max_batch_items, "max_batch_items"),
            (self.max_batch_bytes, "max_batch_bytes"),
        ] {
            if v == 0 {
                let field = format!("limits.{name}");
                let sentence = format!("{field} must be at least 1");
                return Err(ConfigError::naming(field, sentence));
            }
        }
        if self.max_http_body_bytes > 64 * 1024 * 1024 {
            return Err(ConfigError::naming(
                "limits.max_http_body_bytes",
                "limits.max_http_body_bytes must be at most 67108864",
            ));
        }
        if self.max_batch_items > MAX_BATCH_ITEMS {
            return Err(ConfigError::naming(
                "limits.max_batch_items",
                format!("limits.max_batch_items must be at most {MAX_BATCH_ITEMS}"),
            ));
        }
        if self.max_batch_bytes > 64 * 1024 * 1024 {
            return Err(ConfigError::naming(
                "limits.max_batch_bytes",
                "limits.max_batch_bytes must be at most 67108864",
            ));
        }
        Ok(())
    }
}

/// The most `limits.max_batch_items` may be.
const MAX_BATCH_ITEMS: usize = 100_000;

fn default_max_batch_items() -> usize {
    1000
}
fn default_max_batch_bytes() -> usize {
    4 * 1024 * 1024
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
