//! The presets, one row each: the defaults a preset fills in, the format
//! of its signature header and how its secrets are written.
//!
//! A new preset is a variant of [`Preset`] (the configuration's closed set
//! of names, `config/profiles.rs`), a row of [`PRESETS`], its page
//! `docs/presets/NAME.md` and its name in the Helm chart's schema (a test
//! checks the last two against this table).

use zeroize::Zeroizing;

use super::headers::SignatureHeader;
use super::profile::{BodyEncoding, Field, SigEncoding};
pub(crate) use crate::config::profiles::Preset;
use crate::error::{Error, Result};

/// How a preset's platform hands out the shared secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SecretEncoding {
    /// The key bytes as they are.
    Raw,
    /// Standard Webhooks: `whsec_` + standard base64 of the key bytes.
    Whsec,
}

impl SecretEncoding {
    /// The HMAC key bytes imported `material` stands for. `Whsec`
    /// material without the prefix is taken as it is.
    pub(crate) fn decode(self, material: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>> {
        use base64::{engine::general_purpose::STANDARD, Engine};
        if self == SecretEncoding::Raw {
            return Ok(material);
        }
        let Some(rest) = material.strip_prefix(b"whsec_") else {
            return Ok(material);
        };
        let rest = rest.trim_ascii_end();
        let decoded = STANDARD
            .decode(rest)
            .map(Zeroizing::new)
            .map_err(|_| Error::invalid("a whsec_ secret must be whsec_ followed by base64"))?;
        if decoded.is_empty() {
            return Err(Error::invalid("the whsec_ secret is empty"));
        }
        Ok(decoded)
    }
}

impl SecretEncoding {
    /// [`Self::decode`] for a key of `alg`: a `standard-webhooks` profile's
    /// Ed25519 keys come as `whsk_` (secret) or `whpk_` (public).
    pub(crate) fn decode_for(
        self,
        alg: crate::keys::Algorithm,
        material: Zeroizing<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        match (self, alg.family()) {
            (SecretEncoding::Whsec, crate::keys::Family::Ed25519) => super::whsk::decode(material),
            (_, crate::keys::Family::Hmac) => self.decode(material),
            _ => Ok(material),
        }
    }
}

/// What a preset (or no preset) fills in for unset profile fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Defaults {
    /// Field → header name.
    pub headers: &'static [(Field, &'static str)],
    /// `payload_template`.
    pub payload_template: &'static str,
    /// `signature_template`.
    pub signature_template: &'static str,
    /// `request_data_encoding`.
    pub body: BodyEncoding,
    /// `signature_encoding`.
    pub sig: SigEncoding,
    /// `use_nonce`.
    pub use_nonce: bool,
    /// What generated nonces start with.
    pub nonce_prefix: &'static str,
    /// `nonce_length`.
    pub nonce_length: usize,
    /// The signature header format (while `signature_template` is not
    /// overridden).
    pub header: SignatureHeader,
}

/// The defaults without a preset (and of `boxo`).
pub(crate) const GENERIC: Defaults = Defaults {
    headers: &[
        (Field::Signature, "X-Signature"),
        (Field::Timestamp, "X-Timestamp"),
        (Field::ClientId, "X-Client-Id"),
    ],
    payload_template: "{timestamp}{client_id}{request_method}{url}{payload}",
    signature_template: "{signature}",
    body: BodyEncoding::Json,
    sig: SigEncoding::Base64,
    use_nonce: false,
    nonce_prefix: "",
    nonce_length: 32,
    header: SignatureHeader::Single,
};

/// One preset.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PresetRow {
    /// Which. Read only by the tests, which check that the table follows
    /// [`Preset`]'s order (`row` indexes it by discriminant).
    #[cfg_attr(not(test), allow(dead_code))]
    pub preset: Preset,
    /// Its name in the configuration, the docs and the Helm chart. Read
    /// only by the tests, against [`Preset::name`].
    #[cfg_attr(not(test), allow(dead_code))]
    pub name: &'static str,
    /// What it fills in.
    pub defaults: Defaults,
    /// How its secrets are written (what `ImportKey` decodes).
    pub secret: SecretEncoding,
    /// Whether a profile of it must set `client_id`.
    pub requires_client_id: bool,
}

/// Every preset, in [`Preset`]'s order.
pub(crate) const PRESETS: [PresetRow; 6] = [
    PresetRow {
        preset: Preset::Boxo,
        name: "boxo",
        defaults: GENERIC,
        secret: SecretEncoding::Raw,
        requires_client_id: true,
    },
    PresetRow {
        preset: Preset::Stripe,
        name: "stripe",
        defaults: Defaults {
            headers: &[(Field::Signature, "Stripe-Signature")],
            payload_template: "{timestamp}.{payload}",
            signature_template: "t={timestamp},v1={signature}",
            body: BodyEncoding::Raw,
            sig: SigEncoding::Hex,
            header: SignatureHeader::Stripe,
            ..GENERIC
        },
        secret: SecretEncoding::Raw,
        requires_client_id: false,
    },
    PresetRow {
        preset: Preset::StandardWebhooks,
        name: "standard-webhooks",
        defaults: Defaults {
            headers: &[
                (Field::Signature, "webhook-signature"),
                (Field::Timestamp, "webhook-timestamp"),
                (Field::Nonce, "webhook-id"),
            ],
            payload_template: "{nonce}.{timestamp}.{payload}",
            signature_template: "v1,{signature}",
            body: BodyEncoding::Raw,
            sig: SigEncoding::Base64,
            use_nonce: true,
            nonce_prefix: "msg_",
            nonce_length: 24,
            header: SignatureHeader::StandardWebhooks,
        },
        secret: SecretEncoding::Whsec,
        requires_client_id: false,
    },
    PresetRow {
        preset: Preset::Github,
        name: "github",
        defaults: Defaults {
            headers: &[
                (Field::Signature, "X-Hub-Signature-256"),
                (Field::Nonce, "X-GitHub-Delivery"),
            ],
            payload_template: "{payload}",
            signature_template: "sha256={signature}",
            body: BodyEncoding::Raw,
            sig: SigEncoding::Hex,
            use_nonce: true,
            ..GENERIC
        },
        secret: SecretEncoding::Raw,
        requires_client_id: false,
    },
    PresetRow {
        preset: Preset::Slack,
        name: "slack",
        defaults: Defaults {
            headers: &[
                (Field::Signature, "X-Slack-Signature"),
                (Field::Timestamp, "X-Slack-Request-Timestamp"),
            ],
            payload_template: "v0:{timestamp}:{payload}",
            signature_template: "v0={signature}",
            body: BodyEncoding::Raw,
            sig: SigEncoding::Hex,
            ..GENERIC
        },
        secret: SecretEncoding::Raw,
        requires_client_id: false,
    },
    PresetRow {
        preset: Preset::Shopify,
        name: "shopify",
        defaults: Defaults {
            headers: &[
                (Field::Signature, "X-Shopify-Hmac-Sha256"),
                (Field::Nonce, "X-Shopify-Webhook-Id"),
            ],
            payload_template: "{payload}",
            signature_template: "{signature}",
            body: BodyEncoding::Raw,
            sig: SigEncoding::Base64,
            use_nonce: true,
            ..GENERIC
        },
        secret: SecretEncoding::Raw,
        requires_client_id: false,
    },
];

impl Preset {
    /// Its row.
    pub(crate) fn row(self) -> &'static PresetRow {
        &PRESETS[self as usize]
    }
}

/// The defaults of `preset`, or [`GENERIC`] without one.
pub(crate) fn defaults(preset: Option<Preset>) -> &'static Defaults {
    preset.map_or(&GENERIC, |p| &p.row().defaults)
}

#[cfg(test)]
#[path = "presets_tests.rs"]
mod tests;
