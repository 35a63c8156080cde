//! Signing: docs/http-signing.md, "Signing", steps 1 to 10.

use std::time::SystemTime;

use super::{
    check_key, choose_nonce, ecdsa_format, encode_sig, method, payload, signed_bytes, timestamp,
    url_form, Request, Values,
};
use crate::error::{Error, Result};
use crate::httpsig::headers::{MAX_SIGNATURES, V1A};
use crate::httpsig::profile::{Field, Profile};
use crate::httpsig::template::Placeholder;
use crate::keys::registry::{Input, Registry};
use crate::keys::Family;

/// A signed HTTP request: what `SignHttpRequest` returns.
#[derive(Clone, Debug)]
pub(crate) struct SignedRequest {
    /// Header name and value, in the spec's order.
    pub headers: Vec<(String, String)>,
    /// T.
    pub timestamp: String,
    /// N (empty without a nonce).
    pub nonce: String,
    /// The ACTIVE version that signed.
    pub version: u32,
    /// Its `NAME:vN`.
    pub key_version_id: String,
    /// S.
    pub string_to_sign: String,
}

/// `SignHttpRequest`: the headers that sign `req` by `profile`.
pub(crate) async fn sign_request(
    profile: &Profile,
    registry: &Registry,
    req: Request<'_>,
    nonce: Option<&str>,
    now: SystemTime,
) -> Result<SignedRequest> {
    let key = profile.key.as_deref().ok_or_else(|| {
        Error::precondition(format!(
            "profile {} only verifies (it has no key)",
            profile.name
        ))
    })?;
    let alg = check_key(profile, registry, key)?;
    let t = timestamp(profile, now);
    let n = choose_nonce(profile, nonce)?;
    let p = payload(profile, req.body).map_err(Error::invalid)?;
    let m = method(req.method)?;
    let u = url_form(profile.url_form, req.url);
    let values = Values {
        profile,
        t: &t,
        n: &n,
        m: &m,
        u: &u,
        p: &p,
    };
    let s = profile.payload_template.render(|ph| values.get(ph));
    let b = signed_bytes(profile, &s);
    let format = ecdsa_format(profile);
    let sigs = if profile.multi_signature() {
        registry
            .sign_active_and_pending(key, Input::Message(b), format, MAX_SIGNATURES)
            .await?
    } else {
        vec![registry.sign(key, None, Input::Message(b), format).await?]
    };
    let first = &sigs[0];
    let encoded: Vec<String> = sigs
        .iter()
        .map(|s| encode_sig(profile.signature_encoding, &s.signature))
        .collect();
    let render_sig = |e: &str| {
        profile.signature_template.render(|ph| match ph {
            Placeholder::Signature => e.to_string(),
            other => values.get(other),
        })
    };
    // Standard Webhooks with an Ed25519 key: `v1a,σ` entries (its spec's
    // asymmetric scheme); the template's `v1,` is HMAC's.
    let sig_value = if alg.family() == Family::Ed25519 {
        encoded
            .iter()
            .map(|e| format!("{V1A},{e}"))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        profile.signature_header.render(&encoded, render_sig)
    };
    let mut headers = Vec::new();
    for f in Field::ORDER {
        if let Some(h) = profile.headers.get(&f) {
            let v = match f {
                Field::Signature => sig_value.clone(),
                f => values.field(f),
            };
            headers.push((h.clone(), v));
        }
    }
    Ok(SignedRequest {
        headers,
        timestamp: t,
        nonce: n,
        version: first.version,
        key_version_id: first.key_version_id.clone(),
        string_to_sign: s,
    })
}
