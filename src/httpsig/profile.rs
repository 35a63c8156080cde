//! Profiles: the configuration (`[[profiles]]`), the presets, and the
//! validation that turns a configuration into a [`Profile`] or an error
//! naming the profile and the field (http-signing.md, "Profile fields",
//! "Presets").

use std::collections::BTreeMap;

use super::template::{Placeholder, Template};

// The `[[profiles]]` schema lives with the rest of the configuration;
// it is re-exported here, where profiles are resolved.
pub use crate::config::profiles::{
    BodyEncoding, EcdsaFormat, Field, PayloadEncoding, Preset, ProfileConfig, SigEncoding,
    Timespec, UrlForm,
};
pub use crate::net::Cidr;

/// How a preset's signature header carries signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureHeader {
    /// One signature, by the signature template.
    Single,
    /// Stripe: `t=T,v1=σ1,v1=σ2`, any element order, other schemes ignored.
    Stripe,
    /// Standard Webhooks: `v1,σ1 v1,σ2`.
    StandardWebhooks,
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

struct Defaults {
    headers: BTreeMap<Field, String>,
    payload_template: &'static str,
    signature_template: &'static str,
    body: BodyEncoding,
    sig: SigEncoding,
    use_nonce: bool,
    nonce_prefix: &'static str,
    nonce_length: usize,
    header: SignatureHeader,
}

fn headers(pairs: &[(Field, &str)]) -> BTreeMap<Field, String> {
    pairs.iter().map(|(f, h)| (*f, h.to_string())).collect()
}

fn defaults(preset: Option<Preset>) -> Defaults {
    let base = Defaults {
        headers: headers(&[
            (Field::Signature, "X-Signature"),
            (Field::Timestamp, "X-Timestamp"),
            (Field::ClientId, "X-Client-Id"),
        ]),
        payload_template: "{timestamp}{client_id}{request_method}{url}{payload}",
        signature_template: "{signature}",
        body: BodyEncoding::Json,
        sig: SigEncoding::Base64,
        use_nonce: false,
        nonce_prefix: "",
        nonce_length: 32,
        header: SignatureHeader::Single,
    };
    match preset {
        None | Some(Preset::Boxo) => base,
        Some(Preset::Stripe) => Defaults {
            headers: headers(&[(Field::Signature, "Stripe-Signature")]),
            payload_template: "{timestamp}.{payload}",
            signature_template: "t={timestamp},v1={signature}",
            body: BodyEncoding::Raw,
            sig: SigEncoding::Hex,
            header: SignatureHeader::Stripe,
            ..base
        },
        Some(Preset::StandardWebhooks) => Defaults {
            headers: headers(&[
                (Field::Signature, "webhook-signature"),
                (Field::Timestamp, "webhook-timestamp"),
                (Field::Nonce, "webhook-id"),
            ]),
            payload_template: "{nonce}.{timestamp}.{payload}",
            signature_template: "v1,{signature}",
            body: BodyEncoding::Raw,
            sig: SigEncoding::Base64,
            use_nonce: true,
            nonce_prefix: "msg_",
            nonce_length: 24,
            header: SignatureHeader::StandardWebhooks,
        },
        Some(Preset::Github) => Defaults {
            headers: headers(&[
                (Field::Signature, "X-Hub-Signature-256"),
                (Field::Nonce, "X-GitHub-Delivery"),
            ]),
            payload_template: "{payload}",
            signature_template: "sha256={signature}",
            body: BodyEncoding::Raw,
            sig: SigEncoding::Hex,
            use_nonce: true,
            ..base
        },
        Some(Preset::Slack) => Defaults {
            headers: headers(&[
                (Field::Signature, "X-Slack-Signature"),
                (Field::Timestamp, "X-Slack-Request-Timestamp"),
            ]),
            payload_template: "v0:{timestamp}:{payload}",
            signature_template: "v0={signature}",
            body: BodyEncoding::Raw,
            sig: SigEncoding::Hex,
            ..base
        },
        Some(Preset::Shopify) => Defaults {
            headers: headers(&[
                (Field::Signature, "X-Shopify-Hmac-Sha256"),
                (Field::Nonce, "X-Shopify-Webhook-Id"),
            ]),
            payload_template: "{payload}",
            signature_template: "{signature}",
            body: BodyEncoding::Raw,
            sig: SigEncoding::Base64,
            use_nonce: true,
            ..base
        },
    }
}

impl ProfileConfig {
    /// Validates and resolves. Errors read `profile NAME: FIELD: problem`.
    pub fn resolve(&self) -> Result<Profile, String> {
        let name = &self.name;
        let fail = |field: &str, msg: String| format!("profile {name:?}: {field}: {msg}");
        crate::keys::validate_name("profile", name)
            .map_err(|e| fail("name", e.message().to_string()))?;
        let d = defaults(self.preset);
        let payload_template = Template::parse(
            self.payload_template
                .as_deref()
                .unwrap_or(d.payload_template),
        )
        .map_err(|e| fail("payload_template", e))?;
        let signature_template = Template::parse(
            self.signature_template
                .as_deref()
                .unwrap_or(d.signature_template),
        )
        .map_err(|e| fail("signature_template", e))?;
        if signature_template.count(Placeholder::Signature) != 1 {
            return Err(fail(
                "signature_template",
                "must contain {signature} exactly once".into(),
            ));
        }
        if payload_template.uses(Placeholder::Signature) {
            return Err(fail(
                "payload_template",
                "{signature} is only allowed in signature_template".into(),
            ));
        }
        let use_nonce = self.use_nonce.unwrap_or(d.use_nonce);
        let nonce_length = self.nonce_length.unwrap_or(d.nonce_length);
        if !(8..=128).contains(&nonce_length) {
            return Err(fail("nonce_length", "must be between 8 and 128".into()));
        }
        let headers = self.headers.clone().unwrap_or(d.headers);
        if !headers.contains_key(&Field::Signature) {
            return Err(fail("headers", "must map the signature field".into()));
        }
        for (f, h) in &headers {
            let token = !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(fail(
                    "headers",
                    format!("{h:?} ({f:?}) is not a valid header name"),
                ));
            }
        }
        let lower: Vec<String> = headers.values().map(|h| h.to_ascii_lowercase()).collect();
        if (1..lower.len()).any(|i| lower[..i].contains(&lower[i])) {
            return Err(fail("headers", "two fields map to the same header".into()));
        }
        // Every placeholder used, and every mapped field, needs its value.
        let configured = |p: Placeholder| -> bool {
            match p {
                Placeholder::Nonce => use_nonce,
                Placeholder::Identity => self.identity.is_some(),
                Placeholder::ClientId => self.client_id.is_some(),
                Placeholder::MerchantId => self.merchant_id.is_some(),
                _ => true,
            }
        };
        for (field, t) in [
            ("payload_template", &payload_template),
            ("signature_template", &signature_template),
        ] {
            for part in t.parts() {
                if let super::template::Part::Placeholder(p) = part {
                    if !configured(*p) {
                        let why = match p {
                            Placeholder::Nonce => "needs use_nonce = true",
                            _ => "has no value configured",
                        };
                        return Err(fail(field, format!("{p} {why}")));
                    }
                }
            }
        }
        for f in headers.keys() {
            let ok = match f {
                Field::Nonce => use_nonce,
                Field::Identity => self.identity.is_some(),
                Field::ClientId => self.client_id.is_some(),
                Field::MerchantId => self.merchant_id.is_some(),
                Field::Signature | Field::Timestamp => true,
            };
            if !ok {
                return Err(fail(
                    "headers",
                    format!("{f:?} is mapped but has no value configured"),
                ));
            }
        }
        for (p, f) in [
            (Placeholder::Timestamp, Field::Timestamp),
            (Placeholder::Nonce, Field::Nonce),
        ] {
            if payload_template.uses(p) && !headers.contains_key(&f) && !signature_template.uses(p)
            {
                return Err(fail(
                    "payload_template",
                    format!("{p} is carried by neither a header nor signature_template, so a verifier could not recover it"),
                ));
            }
        }
        if self.preset == Some(Preset::Boxo) && self.client_id.is_none() {
            return Err(fail(
                "client_id",
                "the boxo preset requires client_id".into(),
            ));
        }
        let tolerance_seconds = self.tolerance_seconds.unwrap_or(300);
        if !(1..=3600).contains(&tolerance_seconds) {
            return Err(fail(
                "tolerance_seconds",
                "must be between 1 and 3600".into(),
            ));
        }
        for (field, v) in [
            ("client_id", &self.client_id),
            ("merchant_id", &self.merchant_id),
            ("identity", &self.identity),
        ] {
            if let Some(v) = v {
                if v.is_empty() || v.chars().any(char::is_control) {
                    return Err(fail(
                        field,
                        "must be non-empty, without control characters".into(),
                    ));
                }
            }
        }
        for (field, k) in [("key", &self.key), ("verify_key", &self.verify_key)] {
            if let Some(k) = k {
                crate::keys::validate_name("key", k)
                    .map_err(|e| fail(field, e.message().to_string()))?;
            }
        }
        if self.key.is_none() && self.verify_key.is_none() {
            return Err(fail(
                "key",
                "set key (to sign) or verify_key (to verify only)".into(),
            ));
        }
        let allowed_source_ips = self
            .allowed_source_ips
            .iter()
            .flatten()
            .map(|c| Cidr::parse(c).map_err(|e| fail("allowed_source_ips", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let signature_header = match (d.header, self.signature_template.is_some()) {
            // An overridden template is matched as written.
            (_, true) => SignatureHeader::Single,
            (h, false) => h,
        };
        Ok(Profile {
            name: name.clone(),
            preset: self.preset,
            key: self.key.clone(),
            verify_key: self.verify_key.clone().or_else(|| self.key.clone()),
            client_id: self.client_id.clone(),
            merchant_id: self.merchant_id.clone(),
            identity: self.identity.clone(),
            timespec: self.timespec.unwrap_or_default(),
            use_nonce,
            nonce_length,
            nonce_prefix: d.nonce_prefix,
            headers,
            payload_template,
            signature_template,
            request_data_encoding: self.request_data_encoding.unwrap_or(d.body),
            json_spaces: self.json_spaces.unwrap_or(false),
            json_sort_keys: self.json_sort_keys.unwrap_or(false),
            json_ascii: self.json_ascii.unwrap_or(true),
            signature_payload_encoding: self
                .signature_payload_encoding
                .unwrap_or(PayloadEncoding::Utf8),
            signature_encoding: self.signature_encoding.unwrap_or(d.sig),
            ecdsa_format: self.ecdsa_format.unwrap_or(EcdsaFormat::Der),
            url_form: self.url_form.unwrap_or(UrlForm::AsGiven),
            tolerance_seconds,
            reject_replayed_signatures: self.reject_replayed_signatures.unwrap_or(true),
            allowed_source_ips,
            signature_header,
        })
    }
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
        self.signature_header != SignatureHeader::Single
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml_text: &str) -> Result<Profile, String> {
        let c: ProfileConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        c.resolve()
    }

    #[test]
    fn presets_resolve() {
        for p in ["stripe", "standard-webhooks", "github", "slack", "shopify"] {
            let prof = cfg(&format!("name = \"p\"\npreset = \"{p}\"\nkey = \"k\"\n")).unwrap();
            assert_eq!(prof.request_data_encoding, BodyEncoding::Raw, "{p}");
        }
        let b = cfg("name = \"b\"\npreset = \"boxo\"\nkey = \"k\"\nclient_id = \"c1\"\n").unwrap();
        assert_eq!(b.request_data_encoding, BodyEncoding::Json);
        assert_eq!(b.headers[&Field::ClientId], "X-Client-Id");
        let s = cfg("name = \"s\"\npreset = \"standard-webhooks\"\nkey = \"k\"\n").unwrap();
        assert!(s.use_nonce && s.multi_signature() && s.nonce_prefix == "msg_");
        let m = s.settings();
        assert_eq!(m["preset"], "standard-webhooks");
        assert_eq!(m["headers.nonce"], "webhook-id");
        assert_eq!(m["payload_template"], "{nonce}.{timestamp}.{payload}");
        assert_eq!(m["signature_encoding"], "base64");
        assert_eq!(m["url_form"], "as_given");
    }

    #[test]
    fn errors_name_profile_and_field() {
        let e = cfg("name = \"b\"\npreset = \"boxo\"\nkey = \"k\"\n").unwrap_err();
        assert!(
            e.starts_with("profile \"b\": payload_template: {client_id}"),
            "{e}"
        );
        let e = cfg("name = \"x\"\nkey = \"k\"\nclient_id = \"c\"\nsignature_template = \"{signature}{signature}\"\n").unwrap_err();
        assert_eq!(
            e,
            "profile \"x\": signature_template: must contain {signature} exactly once"
        );
        let e = cfg("name = \"x\"\nkey = \"k\"\nclient_id = \"c\"\npayload_template = \"{nonce}{payload}\"\n").unwrap_err();
        assert!(
            e.contains("payload_template: {nonce} needs use_nonce = true"),
            "{e}"
        );
        let e =
            cfg("name = \"x\"\nkey = \"k\"\nclient_id = \"c\"\npayload_template = \"{bogus}\"\n")
                .unwrap_err();
        assert!(e.contains("unknown placeholder {bogus}"), "{e}");
        let e = cfg(
            "name = \"x\"\nkey = \"k\"\nclient_id = \"c\"\nheaders = { signature = \"X-Sig\" }\n",
        )
        .unwrap_err();
        assert!(e.contains("{timestamp} is carried by neither"), "{e}");
        let e = cfg("name = \"x\"\nkey = \"k\"\nclient_id = \"c\"\ntolerance_seconds = 0\n")
            .unwrap_err();
        assert!(e.contains("tolerance_seconds"), "{e}");
        let e = cfg("name = \"x\"\nkey = \"k\"\nclient_id = \"c\"\nallowed_source_ips = [\"10.0.0.0/33\"]\n").unwrap_err();
        assert!(e.contains("allowed_source_ips"), "{e}");
        let e = cfg("name = \"x\"\nclient_id = \"c\"\n").unwrap_err();
        assert!(e.contains(": key: "), "{e}");
        assert!(
            cfg("name = \"x\"\nkey = \"k\"\nclient_id = \"c\"\nwhat = 1\n")
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn cidrs_fail_closed() {
        let v4 = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(v4.contains("10.1.255.3".parse().unwrap()));
        assert!(!v4.contains("10.2.0.1".parse().unwrap()));
        assert!(v4.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!v4.contains("2001:db8::1".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let host = Cidr::parse("192.0.2.7").unwrap();
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(!host.contains("192.0.2.8".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        for bad in ["", "10.0.0.0/", "10.0.0/8", "::/129", "x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}

/// The profiles in force, replaceable as a whole (a SIGHUP reload): a
/// request uses the set it started with.
#[derive(Debug, Default)]
pub struct ProfileSet {
    current: parking_lot::RwLock<std::sync::Arc<Profiles>>,
}

/// One generation of profiles.
#[derive(Debug, Default)]
pub struct Profiles {
    by_name: std::collections::HashMap<String, std::sync::Arc<Profile>>,
    whsec_keys: std::collections::BTreeSet<String>,
}

impl Profiles {
    fn new(profiles: Vec<Profile>) -> Self {
        // Imports for keys named by a `standard-webhooks` profile decode a
        // `whsec_` secret (http-signing.md, Presets).
        let whsec_keys = profiles
            .iter()
            .filter(|p| p.preset == Some(Preset::StandardWebhooks))
            .flat_map(|p| [p.key.clone(), p.verify_key.clone()])
            .flatten()
            .collect();
        let by_name = profiles
            .into_iter()
            .map(|p| (p.name.clone(), std::sync::Arc::new(p)))
            .collect();
        Self {
            by_name,
            whsec_keys,
        }
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Option<&std::sync::Arc<Profile>> {
        self.by_name.get(name)
    }

    /// Every profile, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &std::sync::Arc<Profile>> {
        self.by_name.values()
    }

    /// Is `key` named by a `standard-webhooks` profile?
    pub fn takes_whsec(&self, key: &str) -> bool {
        self.whsec_keys.contains(key)
    }
}

impl ProfileSet {
    /// A set holding `profiles`.
    pub fn new(profiles: Vec<Profile>) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            current: parking_lot::RwLock::new(std::sync::Arc::new(Profiles::new(profiles))),
        })
    }

    /// The profiles in force.
    pub fn current(&self) -> std::sync::Arc<Profiles> {
        self.current.read().clone()
    }

    /// Replaces every profile at once.
    pub fn replace(&self, profiles: Vec<Profile>) {
        *self.current.write() = std::sync::Arc::new(Profiles::new(profiles));
    }
}
