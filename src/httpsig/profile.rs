//! Profiles: the configuration (`[[profiles]]`) and the validated
//! [`Profile`] it resolves to ([`ProfileConfig::resolve`], in
//! `resolve.rs`; the presets' defaults are in [`super::presets`]).
//! http-signing.md, "Profile fields".

use std::collections::BTreeMap;

use serde::Deserialize;

pub use super::cidr::Cidr;
pub use super::headers::SignatureHeader;
pub use super::presets::Preset;
pub use super::set::{ProfileSet, Profiles};
use super::template::Template;

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
}

/// A validated profile.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct Profile {
    pub name: String,
    pub preset: Option<Preset>,
    pub key: Option<String>,
    pub verify_key: Option<String>,
    pub client_id: Option<String>,
    pub merchant_id: Option<String>,
    pub identity: Option<String>,
    pub timespec: Timespec,
    pub use_nonce: bool,
    pub nonce_length: usize,
    /// Generated nonces start with this (Standard Webhooks: `msg_`).
    pub nonce_prefix: &'static str,
    pub headers: BTreeMap<Field, String>,
    pub payload_template: Template,
    pub signature_template: Template,
    pub request_data_encoding: BodyEncoding,
    pub json_spaces: bool,
    pub json_sort_keys: bool,
    pub json_ascii: bool,
    pub signature_payload_encoding: PayloadEncoding,
    pub signature_encoding: SigEncoding,
    pub ecdsa_format: EcdsaFormat,
    pub url_form: UrlForm,
    pub tolerance_seconds: u64,
    pub reject_replayed_signatures: bool,
    pub allowed_source_ips: Vec<Cidr>,
    pub signature_header: SignatureHeader,
}

impl Profile {
    /// Every setting as text, by its config name: what `ListHttpProfiles`
    /// and `signet http profiles` show.
    pub fn settings(&self) -> BTreeMap<String, String> {
        fn name<T: std::fmt::Debug>(v: T) -> String {
            // Debug names are the variants; config names are snake/kebab.
            let d = format!("{v:?}");
            let mut out = String::new();
            for (i, c) in d.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        }
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        if let Some(p) = self.preset {
            put("preset", p.name().to_string());
        }
        for (k, v) in [
            ("key", &self.key),
            ("verify_key", &self.verify_key),
            ("client_id", &self.client_id),
            ("merchant_id", &self.merchant_id),
            ("identity", &self.identity),
        ] {
            if let Some(v) = v {
                put(k, v.clone());
            }
        }
        put("timespec", name(self.timespec));
        put("use_nonce", self.use_nonce.to_string());
        if self.use_nonce {
            put("nonce_length", self.nonce_length.to_string());
        }
        for (f, h) in &self.headers {
            put(&format!("headers.{}", name(f)), h.clone());
        }
        put("payload_template", self.payload_template.to_string());
        put("signature_template", self.signature_template.to_string());
        put("request_data_encoding", name(self.request_data_encoding));
        if self.request_data_encoding == BodyEncoding::Json {
            put("json_spaces", self.json_spaces.to_string());
            put("json_sort_keys", self.json_sort_keys.to_string());
            put("json_ascii", self.json_ascii.to_string());
        }
        put(
            "signature_payload_encoding",
            name(self.signature_payload_encoding),
        );
        put("signature_encoding", name(self.signature_encoding));
        put("ecdsa_format", name(self.ecdsa_format));
        put("url_form", name(self.url_form));
        put("tolerance_seconds", self.tolerance_seconds.to_string());
        put(
            "reject_replayed_signatures",
            self.reject_replayed_signatures.to_string(),
        );
        let ips: Vec<String> = self
            .allowed_source_ips
            .iter()
            .map(|c| c.to_string())
            .collect();
        put("allowed_source_ips", ips.join(","));
        m
    }

    /// Whether the profile signs with several versions (ACTIVE and PENDING)
    /// in one header.
    pub fn multi_signature(&self) -> bool {
        self.signature_header.carries_several()
    }
}
