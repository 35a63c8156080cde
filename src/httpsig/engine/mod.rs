//! The signing and verification pipelines of docs/http-signing.md, step by
//! step: the steps both share here, then [`sign_request`] (`sign.rs`) and
//! [`verify_request`] (`verify.rs`). How the signature header is written
//! and read is [`super::headers`].

mod sign;
mod verify;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::Rng;

use super::json::{self, Style};
use super::profile::{
    BodyEncoding, EcdsaFormat, Field, PayloadEncoding, Profile, SigEncoding, UrlForm,
};
use super::template::Placeholder;
use crate::error::{Error, Result};
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::registry::Registry;
use crate::keys::{Algorithm, Family};
pub(crate) use sign::{sign_request, SignedRequest};
pub(crate) use verify::{verify_request, Reason, Verdict};

use super::profile::Scheme;
use super::replay::ReplayStore;

/// `SignHttpRequest` by the profile's scheme. `headers` are the request's
/// own, which only RFC 9421 profiles cover.
pub(crate) async fn sign(
    profile: &Profile,
    registry: &Registry,
    req: Request<'_>,
    headers: &[(String, String)],
    nonce: Option<&str>,
    now: SystemTime,
) -> Result<SignedRequest> {
    match &profile.scheme {
        Scheme::Template => sign_request(profile, registry, req, nonce, now).await,
        Scheme::Rfc9421(s) => {
            super::rfc9421::sign_request(profile, s, registry, req, headers, nonce, now).await
        }
    }
}

/// `VerifyHttpRequest` by the profile's scheme.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn verify(
    profile: &Profile,
    registry: &Registry,
    replay: &dyn ReplayStore,
    req: Request<'_>,
    headers: &[(String, String)],
    source_ip: &str,
    now: SystemTime,
) -> Result<Verdict> {
    match &profile.scheme {
        Scheme::Template => {
            verify_request(profile, registry, replay, req, headers, source_ip, now).await
        }
        Scheme::Rfc9421(s) => {
            super::rfc9421::verify_request(
                profile, s, registry, replay, req, headers, source_ip, now,
            )
            .await
        }
    }
}

/// The request as the caller describes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request<'a> {
    /// The method.
    pub method: &'a str,
    /// The URL string.
    pub url: &'a str,
    /// The body bytes.
    pub body: &'a [u8],
}

const NONCE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub(crate) fn is_nonce_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Step 1: T in the profile's unit, truncated.
pub(crate) fn timestamp(profile: &Profile, now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let units = since.as_nanos() / (1_000_000_000 / profile.timespec.per_second());
    units.to_string()
}

/// Step 2: N, drawn from the OS CSPRNG (`rand`'s `OsRng`-seeded thread RNG).
fn new_nonce(profile: &Profile) -> String {
    let mut rng = rand::thread_rng();
    let mut n = String::from(profile.nonce_prefix);
    n.extend(
        (0..profile.nonce_length)
            .map(|_| NONCE_ALPHABET[rng.gen_range(0..NONCE_ALPHABET.len())] as char),
    );
    n
}

/// Steps 2 and the caller's nonce: N for a profile with a nonce (the
/// caller's, checked, or a new one); empty without.
pub(crate) fn choose_nonce(profile: &Profile, nonce: Option<&str>) -> Result<String> {
    match (profile.use_nonce, nonce.filter(|n| !n.is_empty())) {
        (true, Some(n)) => {
            if n.len() > 128 || !n.bytes().all(is_nonce_char) {
                return Err(Error::invalid(
                    "nonce must be 1 to 128 characters from [A-Za-z0-9_.-]",
                ));
            }
            Ok(n.to_string())
        }
        (true, None) => Ok(new_nonce(profile)),
        (false, Some(_)) => Err(Error::invalid(format!(
            "profile {} does not use a nonce",
            profile.name
        ))),
        (false, None) => Ok(String::new()),
    }
}

/// Step 3: P.
fn payload(profile: &Profile, body: &[u8]) -> std::result::Result<String, String> {
    match profile.request_data_encoding {
        BodyEncoding::Raw => std::str::from_utf8(body)
            .map(str::to_string)
            .map_err(|_| "body is not UTF-8".to_string()),
        BodyEncoding::Json if body.is_empty() => Ok(String::new()),
        BodyEncoding::Json => json::canonicalize(
            body,
            Style {
                spaces: profile.json_spaces,
                sort_keys: profile.json_sort_keys,
                ascii: profile.json_ascii,
            },
        )
        .map_err(|e| e.to_string()),
        BodyEncoding::Base64 => Ok(STANDARD.encode(body)),
        BodyEncoding::Hex => Ok(hex::encode(body)),
    }
}

/// Whether `s` is an HTTP token (RFC 9110 §5.6.2).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Step 4: M.
fn method(m: &str) -> Result<String> {
    if !is_token(m) {
        return Err(Error::invalid("method must be an HTTP token"));
    }
    Ok(m.to_ascii_uppercase())
}

/// Step 5: U.
pub(crate) fn url_form(form: UrlForm, url: &str) -> String {
    if form == UrlForm::AsGiven {
        return url.to_string();
    }
    // The part after the authority for an absolute URL (one that starts
    // with `scheme://`), else all of it. Only a leading scheme counts: a
    // `://` inside the path or query (`/cb?next=https://x/y`) is data, and
    // taking it for the authority would drop the real path from what is
    // signed, so one signature would cover every path with that query.
    let rest = match absolute_authority_end(url) {
        Some(i) => {
            let after = &url[i..];
            match after.find(['/', '?', '#']) {
                Some(j) => &after[j..],
                None => "",
            }
        }
        None => url,
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    match (form, query) {
        (UrlForm::PathAndQuery, Some(q)) => format!("{path}?{q}"),
        _ => path.to_string(),
    }
}

/// For `scheme://…` (RFC 3986: a letter, then letters, digits, `+`, `-`,
/// `.`), the offset just past `://`; `None` for any other URL.
fn absolute_authority_end(url: &str) -> Option<usize> {
    let colon = url.find(':')?;
    let scheme = &url[..colon];
    let valid = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    (valid && url[colon..].starts_with("://")).then_some(colon + 3)
}

struct Values<'a> {
    profile: &'a Profile,
    t: &'a str,
    n: &'a str,
    m: &'a str,
    u: &'a str,
    p: &'a str,
}

impl Values<'_> {
    fn get(&self, ph: Placeholder) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        match ph {
            Placeholder::Timestamp => self.t.to_string(),
            Placeholder::Nonce => self.n.to_string(),
            Placeholder::Identity => opt(&self.profile.identity),
            Placeholder::ClientId => opt(&self.profile.client_id),
            Placeholder::MerchantId => opt(&self.profile.merchant_id),
            Placeholder::RequestMethod => self.m.to_string(),
            Placeholder::Url => self.u.to_string(),
            Placeholder::Payload => self.p.to_string(),
            Placeholder::Signature => String::new(),
        }
    }

    fn field(&self, f: Field) -> String {
        match f {
            Field::Timestamp => self.t.to_string(),
            Field::Nonce => self.n.to_string(),
            Field::Identity => self.get(Placeholder::Identity),
            Field::ClientId => self.get(Placeholder::ClientId),
            Field::MerchantId => self.get(Placeholder::MerchantId),
            Field::Signature => String::new(),
        }
    }
}

/// Step 7: B.
fn signed_bytes(profile: &Profile, s: &str) -> Vec<u8> {
    match profile.signature_payload_encoding {
        PayloadEncoding::Utf8 => s.as_bytes().to_vec(),
        PayloadEncoding::Base64 => STANDARD.encode(s).into_bytes(),
        PayloadEncoding::Hex => hex::encode(s).into_bytes(),
    }
}

/// Step 9: E.
fn encode_sig(enc: SigEncoding, sig: &[u8]) -> String {
    match enc {
        SigEncoding::Base64 => STANDARD.encode(sig),
        SigEncoding::Base64url => URL_SAFE_NO_PAD.encode(sig),
        SigEncoding::Hex => hex::encode(sig),
    }
}

/// Strict decoding of E: wrong alphabet, padding or length is `None`.
fn decode_sig(enc: SigEncoding, e: &str) -> Option<Vec<u8>> {
    match enc {
        SigEncoding::Base64 => STANDARD.decode(e).ok(),
        SigEncoding::Base64url => URL_SAFE_NO_PAD.decode(e).ok(),
        SigEncoding::Hex => {
            if e.bytes().any(|b| b.is_ascii_uppercase()) {
                return None;
            }
            hex::decode(e).ok()
        }
    }
}

fn ecdsa_format(p: &Profile) -> SignatureFormat {
    match p.ecdsa_format {
        EcdsaFormat::Der => SignatureFormat::Der,
        EcdsaFormat::Raw => SignatureFormat::Raw,
    }
}

/// The algorithm of `name`, refused when template profiles do not define
/// it: an encryption key, or Ed25519 outside a `standard-webhooks` profile
/// (whose `v1a` signatures are Ed25519).
fn check_key(profile: &Profile, registry: &Registry, name: &str) -> Result<Algorithm> {
    let alg = registry.get(name)?.record.algorithm;
    if alg.encrypts() {
        return Err(Error::invalid(format!(
            "key {name} is {alg}: it encrypts, and HTTP profiles sign with HMAC, RSA, ECDSA or Ed25519 keys"
        )));
    }
    if alg.family() == Family::Ed25519 && !asymmetric_webhooks(profile) {
        return Err(Error::precondition(format!(
            "key {name} is {alg}: template profiles sign with HMAC, RSA or ECDSA keys; \
             Ed25519 signs standard-webhooks (v1a) and rfc9421 profiles"
        )));
    }
    Ok(alg)
}

/// Whether the profile writes Standard Webhooks headers, where an Ed25519
/// key signs `v1a` entries.
fn asymmetric_webhooks(profile: &Profile) -> bool {
    profile.signature_header == super::headers::SignatureHeader::StandardWebhooks
}

#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod replay_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod v1a_tests;
