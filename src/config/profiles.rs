//! `[[profiles]]`: HTTP request signing and webhook verification
//! profiles, as written. Resolving one (presets, defaults, templates) is
//! [`crate::httpsig::profile`]'s, which re-exports these types.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A field a header can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The signature header (the signature template's output).
    Signature,
    /// T.
    Timestamp,
    /// N.
    Nonce,
    /// The identity.
    Identity,
    /// The client id.
    ClientId,
    /// The merchant id.
    MerchantId,
}

impl Field {
    /// Header output order.
    pub const ORDER: [Field; 6] = [
        Field::Signature,
        Field::Timestamp,
        Field::Nonce,
        Field::Identity,
        Field::ClientId,
        Field::MerchantId,
    ];
}

/// A preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Boxo-style defaults; `client_id` required.
    Boxo,
    /// Stripe's `Stripe-Signature`.
    Stripe,
    /// Standard Webhooks (Svix).
    StandardWebhooks,
    /// GitHub's `X-Hub-Signature-256`.
    Github,
    /// Slack's `X-Slack-Signature`.
    Slack,
    /// Shopify's `X-Shopify-Hmac-Sha256`.
    Shopify,
}

impl Preset {
    /// The name used in the config.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Boxo => "boxo",
            Preset::Stripe => "stripe",
            Preset::StandardWebhooks => "standard-webhooks",
            Preset::Github => "github",
            Preset::Slack => "slack",
            Preset::Shopify => "shopify",
        }
    }
}

/// `timespec`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Timespec {
    /// Unix seconds.
    #[default]
    Seconds,
    /// Unix milliseconds.
    Milliseconds,
    /// Unix microseconds.
    Microseconds,
    /// Unix nanoseconds.
    Nanoseconds,
}

impl Timespec {
    /// Units per second.
    pub fn per_second(self) -> u128 {
        match self {
            Timespec::Seconds => 1,
            Timespec::Milliseconds => 1_000,
            Timespec::Microseconds => 1_000_000,
            Timespec::Nanoseconds => 1_000_000_000,
        }
    }
}

/// `request_data_encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncoding {
    /// The body bytes, UTF-8.
    Raw,
    /// Canonical JSON.
    Json,
    /// Base64 of the body.
    Base64,
    /// Lowercase hex of the body.
    Hex,
}

/// `signature_payload_encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadEncoding {
    /// S's UTF-8 bytes.
    Utf8,
    /// Base64 (padded) of S.
    Base64,
    /// Lowercase hex of S.
    Hex,
}

/// `signature_encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigEncoding {
    /// Padded base64.
    Base64,
    /// Unpadded base64url.
    Base64url,
    /// Lowercase hex.
    Hex,
}

/// `ecdsa_format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EcdsaFormat {
    /// ASN.1 DER.
    Der,
    /// r‖s.
    Raw,
}

/// `url_form`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UrlForm {
    /// The URL verbatim.
    AsGiven,
    /// Its path.
    Path,
    /// Path and query.
    PathAndQuery,
}

/// One `[[profiles]]` entry, as written. Unset fields come from the preset,
/// then from the defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ProfileConfig {
    pub name: String,
    /// How requests are signed: by template (the default) or RFC 9421.
    pub scheme: Option<Scheme>,
    pub preset: Option<Preset>,
    pub key: Option<String>,
    pub verify_key: Option<String>,
    pub client_id: Option<String>,
    pub merchant_id: Option<String>,
    pub identity: Option<String>,
    pub timespec: Option<Timespec>,
    pub use_nonce: Option<bool>,
    pub nonce_length: Option<usize>,
    /// Replaces the preset's (or the default) map as a whole.
    pub headers: Option<BTreeMap<Field, String>>,
    pub payload_template: Option<String>,
    pub signature_template: Option<String>,
    pub request_data_encoding: Option<BodyEncoding>,
    pub json_spaces: Option<bool>,
    pub json_sort_keys: Option<bool>,
    pub json_ascii: Option<bool>,
    pub signature_payload_encoding: Option<PayloadEncoding>,
    pub signature_encoding: Option<SigEncoding>,
    pub ecdsa_format: Option<EcdsaFormat>,
    pub url_form: Option<UrlForm>,
    pub tolerance_seconds: Option<u64>,
    pub reject_replayed_signatures: Option<bool>,
    pub allowed_source_ips: Option<Vec<String>>,
    /// `[profiles.rfc9421]`: the settings of an RFC 9421 profile.
    pub rfc9421: Option<super::rfc9421::Rfc9421Config>,
}

/// `scheme`: the family of signatures a profile makes and checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// A payload template and a signature header template (the webhook
    /// dialects and their presets).
    #[default]
    Template,
    /// RFC 9421 HTTP Message Signatures, with RFC 9530 `Content-Digest`.
    Rfc9421,
}
