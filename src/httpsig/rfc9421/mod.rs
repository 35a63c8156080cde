//! RFC 9421 HTTP Message Signatures, with RFC 9530 `Content-Digest`
//! (`scheme = "rfc9421"`; docs/presets/rfc9421.md): a profile's settings,
//! resolved here from `[profiles.rfc9421]`; the components and their
//! values ([`components`]); the signature base ([`base`]); the digest
//! ([`digest`]); then [`sign`] and [`verify`].

pub(crate) mod base;
pub(crate) mod components;
pub(crate) mod digest;
mod sign;
mod verify;

use std::collections::BTreeMap;

pub(crate) use sign::sign_request;
pub(crate) use verify::verify_request;

use super::profile::{
    BodyEncoding, Cidr, EcdsaFormat, PayloadEncoding, Profile, ProfileConfig, Scheme, SigEncoding,
    SignatureHeader, Timespec, UrlForm,
};
use super::template::Template;
use crate::config::rfc9421::{DigestAlgorithm, FieldType, Rfc9421Config};
use crate::error::ConfigError;
use crate::keys::{Algorithm, Curve, Family, Hash};
use components::Component;

/// The most signatures one message may carry for signet to consider.
pub(crate) const MAX_SIGNATURES: usize = 16;

/// A key, or one version of it, that a `keyid` stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRef {
    pub name: String,
    pub version: Option<u32>,
}

impl KeyRef {
    /// `NAME` or `NAME:vN`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (name, version) = match text.rsplit_once(":v") {
            Some((n, v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                let v: u32 = v
                    .parse()
                    .map_err(|_| format!("{text:?}: no such version"))?;
                (n, Some(v))
            }
            _ => (text, None),
        };
        crate::keys::validate_name("key", name).map_err(|e| e.message().to_string())?;
        if version == Some(0) {
            return Err(format!("{text:?}: versions count from 1"));
        }
        Ok(Self {
            name: name.to_string(),
            version,
        })
    }
}

/// A resolved `[profiles.rfc9421]`.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub(crate) struct Settings {
    pub label: String,
    pub components: Vec<Component>,
    pub content_digest: DigestAlgorithm,
    pub created: bool,
    pub expires_seconds: Option<u64>,
    pub keyid: Option<String>,
    pub send_keyid: bool,
    pub send_alg: bool,
    pub tag: Option<String>,
    pub sign_pending: bool,
    pub verify_labels: Vec<String>,
    pub required: Vec<Component>,
    pub require_created: bool,
    pub require_keyid: bool,
    pub clock_skew_seconds: u64,
    pub keyids: BTreeMap<String, KeyRef>,
    pub field_types: BTreeMap<String, FieldType>,
}

/// What a profile covers when it names no components.
pub(crate) const DEFAULT_COMPONENTS: [&str; 3] = ["@method", "@target-uri", "content-digest"];

fn label_ok(l: &str) -> bool {
    sfv::KeyRef::from_str(l).is_ok()
}

impl Settings {
    /// Validates `c`; an error reads `FIELD: problem`.
    pub(crate) fn resolve(c: &Rfc9421Config) -> Result<Self, String> {
        let parse_list = |field: &str, list: &[String]| -> Result<Vec<Component>, String> {
            let v = list
                .iter()
                .map(|s| Component::parse(s).map_err(|e| format!("rfc9421.{field}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(i) = (1..v.len()).find(|&i| v[..i].iter().any(|o| o.same(&v[i]))) {
                return Err(format!(
                    "rfc9421.{field}: {} is listed twice",
                    v[i].serialized()
                ));
            }
            Ok(v)
        };
        let default: Vec<String> = DEFAULT_COMPONENTS.iter().map(|s| s.to_string()).collect();
        let components = parse_list("components", c.components.as_ref().unwrap_or(&default))?;
        let required = match &c.required_components {
            Some(r) => parse_list("required_components", r)?,
            None => components.clone(),
        };
        let label = c.label.clone().unwrap_or_else(|| "sig1".into());
        if !label_ok(&label) {
            return Err(format!(
                "rfc9421.label: {label:?} is not a Structured Field key (lowercase, a-z0-9_-.*)"
            ));
        }
        let verify_labels = c.verify_labels.clone().unwrap_or_default();
        if let Some(l) = verify_labels.iter().find(|l| !label_ok(l)) {
            return Err(format!(
                "rfc9421.verify_labels: {l:?} is not a Structured Field key"
            ));
        }
        for (field, v) in [("keyid", &c.keyid), ("tag", &c.tag)] {
            if let Some(v) = v {
                if v.is_empty() || sfv::StringRef::from_str(v).is_err() {
                    return Err(format!("rfc9421.{field}: must be printable ASCII"));
                }
            }
        }
        if c.expires_seconds == Some(0) || c.expires_seconds.is_some_and(|s| s > 86_400) {
            return Err("rfc9421.expires_seconds: must be between 1 and 86400".into());
        }
        let clock_skew_seconds = c.clock_skew_seconds.unwrap_or(5);
        if clock_skew_seconds > 300 {
            return Err("rfc9421.clock_skew_seconds: at most 300".into());
        }
        let keyids = c
            .keyids
            .iter()
            .flatten()
            .map(|(id, k)| {
                if id.is_empty() || sfv::StringRef::from_str(id).is_err() {
                    return Err(format!("rfc9421.keyids: {id:?} is not printable ASCII"));
                }
                KeyRef::parse(k)
                    .map(|k| (id.clone(), k))
                    .map_err(|e| format!("rfc9421.keyids.{id}: {e}"))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let field_types = c.field_types.clone().unwrap_or_default();
        for name in field_types.keys() {
            Component::parse(name)
                .ok()
                .filter(|c| !c.name().starts_with('@'))
                .ok_or_else(|| format!("rfc9421.field_types: {name:?} is not a field name"))?;
        }
        Ok(Self {
            label,
            components,
            content_digest: c.content_digest.unwrap_or_default(),
            created: c.created.unwrap_or(true),
            expires_seconds: c.expires_seconds,
            keyid: c.keyid.clone(),
            send_keyid: c.send_keyid.unwrap_or(true),
            send_alg: c.send_alg.unwrap_or(false),
            tag: c.tag.clone(),
            sign_pending: c.sign_pending.unwrap_or(false),
            verify_labels,
            required,
            require_created: c.require_created.unwrap_or(true),
            require_keyid: c.require_keyid.unwrap_or(false),
            clock_skew_seconds,
            keyids,
            field_types,
        })
    }

    /// The settings by config name, for `ListHttpProfiles`.
    pub(crate) fn settings(&self, put: &mut dyn FnMut(&str, String)) {
        let list = |v: &[Component]| {
            v.iter()
                .map(Component::serialized)
                .collect::<Vec<_>>()
                .join(" ")
        };
        put("rfc9421.label", self.label.clone());
        put("rfc9421.components", list(&self.components));
        put("rfc9421.required_components", list(&self.required));
        put("rfc9421.content_digest", self.content_digest.name().into());
        put("rfc9421.created", self.created.to_string());
        if let Some(s) = self.expires_seconds {
            put("rfc9421.expires_seconds", s.to_string());
        }
        if let Some(k) = &self.keyid {
            put("rfc9421.keyid", k.clone());
        }
        put("rfc9421.send_keyid", self.send_keyid.to_string());
        put("rfc9421.send_alg", self.send_alg.to_string());
        if let Some(t) = &self.tag {
            put("rfc9421.tag", t.clone());
        }
        put("rfc9421.sign_pending", self.sign_pending.to_string());
        put("rfc9421.verify_labels", self.verify_labels.join(","));
        put("rfc9421.require_created", self.require_created.to_string());
        put("rfc9421.require_keyid", self.require_keyid.to_string());
        put(
            "rfc9421.clock_skew_seconds",
            self.clock_skew_seconds.to_string(),
        );
        for (id, k) in &self.keyids {
            let v = match k.version {
                Some(v) => crate::keys::version_id(&k.name, v),
                None => k.name.clone(),
            };
            put(&format!("rfc9421.keyids.{id}"), v);
        }
    }
}

/// A `[[profiles]]` entry with `scheme = "rfc9421"`, validated. The
/// template fields are refused; the shared ones (`key`, `verify_key`,
/// `use_nonce`, `nonce_length`, `tolerance_seconds`,
/// `reject_replayed_signatures`, `allowed_source_ips`) mean what they mean
/// for every profile.
pub(crate) fn resolve_profile(c: &ProfileConfig) -> Result<Profile, ConfigError> {
    let fail = |field: &str, msg: String| {
        ConfigError::new(format!("profile {:?}", c.name), format!("{field}: {msg}"))
    };
    let template_only = [
        ("preset", c.preset.is_some()),
        ("client_id", c.client_id.is_some()),
        ("merchant_id", c.merchant_id.is_some()),
        ("identity", c.identity.is_some()),
        ("timespec", c.timespec.is_some()),
        ("headers", c.headers.is_some()),
        ("payload_template", c.payload_template.is_some()),
        ("signature_template", c.signature_template.is_some()),
        ("request_data_encoding", c.request_data_encoding.is_some()),
        ("json_spaces", c.json_spaces.is_some()),
        ("json_sort_keys", c.json_sort_keys.is_some()),
        ("json_ascii", c.json_ascii.is_some()),
        (
            "signature_payload_encoding",
            c.signature_payload_encoding.is_some(),
        ),
        ("signature_encoding", c.signature_encoding.is_some()),
        ("ecdsa_format", c.ecdsa_format.is_some()),
        ("url_form", c.url_form.is_some()),
    ];
    if let Some((f, _)) = template_only.iter().find(|(_, set)| *set) {
        return Err(fail(
            f,
            "is a template profile's field; RFC 9421 profiles set [profiles.rfc9421]".into(),
        ));
    }
    let settings = Settings::resolve(&c.rfc9421.clone().unwrap_or_default()).map_err(|e| {
        let (f, m) = e.split_once(": ").unwrap_or(("rfc9421", e.as_str()));
        fail(f, m.to_string())
    })?;
    for (field, k) in [("key", &c.key), ("verify_key", &c.verify_key)] {
        if let Some(k) = k {
            crate::keys::validate_name("key", k)
                .map_err(|e| fail(field, e.message().to_string()))?;
        }
    }
    if c.key.is_none() && c.verify_key.is_none() && settings.keyids.is_empty() {
        return Err(fail(
            "key",
            "set key (to sign), verify_key or rfc9421.keyids (to verify)".into(),
        ));
    }
    let nonce_length = c.nonce_length.unwrap_or(32);
    if !(8..=128).contains(&nonce_length) {
        return Err(fail("nonce_length", "must be between 8 and 128".into()));
    }
    let tolerance_seconds = c.tolerance_seconds.unwrap_or(300);
    if !(1..=3600).contains(&tolerance_seconds) {
        return Err(fail(
            "tolerance_seconds",
            "must be between 1 and 3600".into(),
        ));
    }
    let allowed_source_ips = c
        .allowed_source_ips
        .iter()
        .flatten()
        .map(|x| Cidr::parse(x).map_err(|e| fail("allowed_source_ips", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let empty = Template::parse("").expect("the empty template");
    Ok(Profile {
        name: c.name.clone(),
        preset: None,
        key: c.key.clone(),
        verify_key: c.verify_key.clone().or_else(|| c.key.clone()),
        client_id: None,
        merchant_id: None,
        identity: None,
        timespec: Timespec::Seconds,
        use_nonce: c.use_nonce.unwrap_or(false),
        nonce_length,
        nonce_prefix: "",
        headers: BTreeMap::new(),
        payload_template: empty.clone(),
        signature_template: empty,
        request_data_encoding: BodyEncoding::Raw,
        json_spaces: false,
        json_sort_keys: false,
        json_ascii: true,
        signature_payload_encoding: PayloadEncoding::Utf8,
        signature_encoding: SigEncoding::Base64,
        ecdsa_format: EcdsaFormat::Raw,
        url_form: UrlForm::AsGiven,
        tolerance_seconds,
        reject_replayed_signatures: c.reject_replayed_signatures.unwrap_or(true),
        allowed_source_ips,
        signature_header: SignatureHeader::Single,
        scheme: Scheme::Rfc9421(Box::new(settings)),
    })
}

/// The RFC 9421 algorithm (its §6.2 registry) a key signs with; `None`
/// for a key algorithm the registry has no name for.
pub(crate) fn alg_name(alg: Algorithm) -> Option<&'static str> {
    Some(match (alg.family(), alg.hash(), alg.curve()) {
        (Family::RsaPss, Some(Hash::Sha512), _) => "rsa-pss-sha512",
        (Family::RsaPkcs1, Some(Hash::Sha256), _) => "rsa-v1_5-sha256",
        (Family::Hmac, Some(Hash::Sha256), _) => "hmac-sha256",
        (Family::Ecdsa, _, Some(Curve::P256)) => "ecdsa-p256-sha256",
        (Family::Ecdsa, _, Some(Curve::P384)) => "ecdsa-p384-sha384",
        (Family::Ed25519, _, _) => "ed25519",
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
