//! Profiles: the validated [`Profile`] that a `[[profiles]]` entry
//! resolves to ([`ProfileConfig::resolve`], in `resolve.rs`; the presets'
//! defaults are in [`super::presets`]). The entry as written, and its
//! closed sets of values, are the configuration's
//! ([`crate::config::profiles`]), re-exported here. docs/http-signing.md,
//! "Profile fields".

use std::collections::BTreeMap;

pub(crate) use super::headers::SignatureHeader;
pub(crate) use super::set::ProfileSet;
use super::template::Template;
pub(crate) use crate::config::profiles::{
    BodyEncoding, EcdsaFormat, Field, PayloadEncoding, Preset, ProfileConfig, SigEncoding,
    Timespec, UrlForm,
};
pub(crate) use crate::net::Cidr;

/// A validated profile.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub(crate) struct Profile {
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
    /// The scheme, and its own settings.
    pub scheme: Scheme,
}

/// How a profile signs: by its templates, or by RFC 9421 (whose profiles
/// leave the template fields at their defaults, unused).
#[derive(Clone, Debug)]
pub(crate) enum Scheme {
    /// The templates and the signature header format.
    Template,
    /// RFC 9421 HTTP Message Signatures.
    Rfc9421(Box<super::rfc9421::Settings>),
}

impl Profile {
    /// Every setting as text, by its config name: what `ListHttpProfiles`
    /// and `signet http profiles` show.
    pub(crate) fn settings(&self) -> BTreeMap<String, String> {
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
        if let Scheme::Rfc9421(s) = &self.scheme {
            put("scheme", "rfc9421".into());
            self.common_settings(&mut put);
            s.settings(&mut put);
            return m;
        }
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

    /// The settings every scheme has.
    fn common_settings(&self, put: &mut dyn FnMut(&str, String)) {
        for (k, v) in [("key", &self.key), ("verify_key", &self.verify_key)] {
            if let Some(v) = v {
                put(k, v.clone());
            }
        }
        put("use_nonce", self.use_nonce.to_string());
        if self.use_nonce {
            put("nonce_length", self.nonce_length.to_string());
        }
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
    }

    /// Whether the profile signs with several versions (ACTIVE and PENDING)
    /// in one header.
    pub(crate) fn multi_signature(&self) -> bool {
        self.signature_header.carries_several()
    }
}
