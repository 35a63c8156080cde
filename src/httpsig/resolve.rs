//! Validation: a `[[profiles]]` entry, its preset's defaults filled in,
//! becomes a [`Profile`] or an error naming the profile and the field
//! (docs/http-signing.md, "Profile fields", "Presets").

use super::headers::check_signature_template;
use super::presets;
use super::profile::{
    Cidr, EcdsaFormat, Field, PayloadEncoding, Profile, ProfileConfig, SignatureHeader, UrlForm,
};
use super::template::{Placeholder, Template};
use crate::config::profiles::Scheme;
use crate::error::ConfigError;

impl ProfileConfig {
    /// Validates and resolves. The error names the profile (`profile
    /// "NAME"`) and reads `FIELD: problem`.
    pub(crate) fn resolve(&self) -> Result<Profile, ConfigError> {
        let name = &self.name;
        let fail = |field: &str, msg: String| {
            ConfigError::new(format!("profile {name:?}"), format!("{field}: {msg}"))
        };
        crate::keys::validate_name("profile", name)
            .map_err(|e| fail("name", e.message().to_string()))?;
        match (self.scheme.unwrap_or_default(), &self.rfc9421) {
            (Scheme::Rfc9421, _) => return super::rfc9421::resolve_profile(self),
            (Scheme::Template, Some(_)) => {
                return Err(fail("rfc9421", "is only for scheme = \"rfc9421\"".into()))
            }
            (Scheme::Template, None) => {}
        }
        let d = presets::defaults(self.preset);
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
        let headers = self
            .headers
            .clone()
            .unwrap_or_else(|| d.headers.iter().map(|(f, h)| (*f, h.to_string())).collect());
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
        if let Some(p) = self.preset.filter(|p| p.row().requires_client_id) {
            if self.client_id.is_none() {
                return Err(fail(
                    "client_id",
                    format!("the {} preset requires client_id", p.name()),
                ));
            }
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
        let signature_encoding = self.signature_encoding.unwrap_or(d.sig);
        check_signature_template(&signature_template, signature_encoding, |p| match p {
            Placeholder::Identity => self.identity.as_deref(),
            Placeholder::ClientId => self.client_id.as_deref(),
            Placeholder::MerchantId => self.merchant_id.as_deref(),
            _ => None,
        })
        .map_err(|e| fail("signature_template", e))?;
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
            signature_encoding,
            ecdsa_format: self.ecdsa_format.unwrap_or(EcdsaFormat::Der),
            url_form: self.url_form.unwrap_or(UrlForm::AsGiven),
            tolerance_seconds,
            reject_replayed_signatures: self.reject_replayed_signatures.unwrap_or(true),
            allowed_source_ips,
            signature_header,
            scheme: super::profile::Scheme::Template,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::httpsig::profile::BodyEncoding;

    fn cfg(toml_text: &str) -> Result<Profile, String> {
        let c: ProfileConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        c.resolve().map_err(|e| e.to_string())
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

    /// Found by `cargo fuzz run webhook_headers`, which signs a request
    /// and verifies what it signed: each of these templates made headers
    /// that their own profile refused (or, with `{payload}`, a header
    /// value holding the body's line breaks).
    #[test]
    fn signature_templates_that_do_not_read_back_are_refused() {
        let with = |template: &str, enc: &str| {
            cfg(&format!(
                "name = \"x\"\nkey = \"k\"\nclient_id = \"c\"\nidentity = \" id\"\n\
                 use_nonce = true\nsignature_encoding = \"{enc}\"\nsignature_template = {}\n",
                toml::Value::String(template.into())
            ))
        };
        for (template, enc, why) in [
            ("{signature}\u{0}\t", "base64url", "space or tab"),
            ("{signature};\u{0}", "base64url", "control character"),
            (
                "v1={signature}\r\nX-Injected: 1",
                "hex",
                "control character",
            ),
            ("{signature}\t", "hex", "space or tab"),
            (" {signature}", "hex", "space or tab"),
            ("{identity}{signature}", "hex", "space or tab"),
            ("{url}{signature}", "hex", "{url} is request data"),
            (
                "s={signature};b={payload}",
                "hex",
                "{payload} is request data",
            ),
            (
                "{request_method}:{signature}",
                "hex",
                "{request_method} is request data",
            ),
            (
                "{signature}{timestamp}",
                "hex",
                "{signature} is followed directly by {timestamp}",
            ),
            (
                "{signature}-{nonce}",
                "base64url",
                "followed by '-', which it can contain",
            ),
            (
                "{signature}={timestamp}",
                "base64",
                "followed by '=', which it can contain",
            ),
            (
                "{timestamp}1{signature}",
                "hex",
                "{timestamp} is followed by '1'",
            ),
            ("{nonce}.{signature}", "hex", "{nonce} is followed by '.'"),
        ] {
            let e = with(template, enc).unwrap_err();
            assert!(
                e.contains("signature_template: ") && e.contains(why),
                "{template:?}: {e}"
            );
        }
        for template in [
            "t={timestamp},v1={signature}",
            "{{{signature}}}",
            "ts={timestamp};n={nonce};sig={signature}",
            "{signature}-{nonce}",
            "n={nonce};{identity}:{signature} {timestamp}",
        ] {
            with(template, "hex").unwrap_or_else(|e| panic!("{template:?}: {e}"));
        }
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
}
