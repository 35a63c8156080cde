//! Verification: docs/http-signing.md, "Verification", steps 1 to 6.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::{
    check_key, decode_sig, ecdsa_format, is_nonce_char, method, payload, signed_bytes, timestamp,
    url_form, Request, Values,
};
use crate::error::{Error, Result};
use crate::httpsig::headers::parse_signature_header;
use crate::httpsig::profile::{Field, Profile};
use crate::httpsig::replay::ReplayStore;
use crate::httpsig::template::Placeholder;
use crate::keys::registry::{Input, Registry};

/// Why a request failed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub(crate) enum Reason {
    MissingHeader,
    MalformedHeader,
    MalformedBody,
    SourceIpNotAllowed,
    TimestampOutOfWindow,
    SignatureMismatch,
    Replayed,
    // RFC 9421's own (docs/presets/rfc9421.md, "Verification").
    ComponentNotCovered,
    DigestMismatch,
    UnknownKey,
    AlgorithmMismatch,
    ParameterMissing,
    ParameterMismatch,
    SignatureExpired,
    LabelNotFound,
}

/// What `VerifyHttpRequest` returns.
#[derive(Clone, Debug, Default)]
pub(crate) struct Verdict {
    /// The first failed check; `None` when valid.
    pub reason: Option<Reason>,
    /// The version that matched.
    pub version: Option<u32>,
    /// Its `NAME:vN`.
    pub key_version_id: Option<String>,
    /// T, when the request carried one.
    pub timestamp: Option<String>,
}

impl Verdict {
    pub(crate) fn fail(reason: Reason, timestamp: Option<String>) -> Self {
        Self {
            reason: Some(reason),
            timestamp,
            ..Default::default()
        }
    }
}

/// `VerifyHttpRequest`: whether `req`, carrying `headers`, is signed by
/// `profile`'s verify key, and if not, the first check that failed.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn verify_request(
    profile: &Profile,
    registry: &Registry,
    replay: &dyn ReplayStore,
    req: Request<'_>,
    headers: &[(String, String)],
    source_ip: &str,
    now: SystemTime,
) -> Result<Verdict> {
    let key = profile.verify_key.as_deref().ok_or_else(|| {
        Error::precondition(format!("profile {} has no verify key", profile.name))
    })?;
    let alg = check_key(profile, registry, key)?;
    // 1. Headers, case-insensitively; the ones the profile needs.
    let mut found = std::collections::BTreeMap::new();
    for (field, name) in &profile.headers {
        let values: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        match values.as_slice() {
            [] if matches!(field, Field::Signature | Field::Timestamp | Field::Nonce) => {
                return Ok(Verdict::fail(Reason::MissingHeader, None))
            }
            [] => {}
            [v] => {
                found.insert(*field, v.trim_matches([' ', '\t']).to_string());
            }
            _ => return Ok(Verdict::fail(Reason::MalformedHeader, None)),
        }
    }
    // 2. The signature header.
    let asymmetric = alg.family() == crate::keys::Family::Ed25519;
    let Some(parsed) = parse_signature_header(profile, &found[&Field::Signature], asymmetric)
    else {
        return Ok(Verdict::fail(Reason::MalformedHeader, None));
    };
    let header_t = found.get(&Field::Timestamp).cloned();
    if header_t
        .as_ref()
        .is_some_and(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()))
    {
        return Ok(Verdict::fail(Reason::MalformedHeader, None));
    }
    let nonce = match (found.get(&Field::Nonce), &parsed.nonce) {
        (Some(a), Some(b)) if a != b => return Ok(Verdict::fail(Reason::MalformedHeader, None)),
        (Some(a), _) => Some(a.clone()),
        (None, b) => b.clone(),
    };
    if nonce
        .as_ref()
        .is_some_and(|n| n.is_empty() || n.len() > 128 || !n.bytes().all(is_nonce_char))
    {
        return Ok(Verdict::fail(Reason::MalformedHeader, None));
    }
    // 3. Source address, failing closed.
    if !profile.allowed_source_ips.is_empty() {
        let allowed = source_ip
            .trim()
            .parse::<IpAddr>()
            .is_ok_and(|ip| profile.allowed_source_ips.iter().any(|c| c.contains(ip)));
        if !allowed {
            return Ok(Verdict::fail(Reason::SourceIpNotAllowed, None));
        }
    }
    // 4. Timestamp.
    let t = match (header_t, parsed.timestamp) {
        (Some(a), Some(b)) if a != b => return Ok(Verdict::fail(Reason::MalformedHeader, None)),
        (a, b) => a.or(b),
    };
    if let Some(t) = &t {
        if t.len() > 20 {
            return Ok(Verdict::fail(Reason::MalformedHeader, None));
        }
        let sent: u128 = t.parse().expect("up to 20 digits fit in u128");
        let now_t: u128 = timestamp(profile, now).parse().expect("decimal");
        let window = u128::from(profile.tolerance_seconds) * profile.timespec.per_second();
        if sent.abs_diff(now_t) > window {
            return Ok(Verdict::fail(Reason::TimestampOutOfWindow, Some(t.clone())));
        }
    }
    // 5. Signature.
    let Ok(p) = payload(profile, req.body) else {
        return Ok(Verdict::fail(Reason::MalformedBody, t));
    };
    let Ok(m) = method(req.method) else {
        return Ok(Verdict::fail(Reason::SignatureMismatch, t));
    };
    let u = url_form(profile.url_form, req.url);
    let empty = String::new();
    let values = Values {
        profile,
        t: t.as_ref().unwrap_or(&empty),
        n: nonce.as_ref().unwrap_or(&empty),
        m: &m,
        u: &u,
        p: &p,
    };
    let s = profile.payload_template.render(|ph| values.get(ph));
    let b = signed_bytes(profile, &s);
    let format = ecdsa_format(profile);
    // Every signature in the header at once: each version's MAC (or the
    // message's hash) is computed once, not once per signature.
    let sigs: Vec<Vec<u8>> = parsed
        .sigs
        .iter()
        .filter_map(|e| decode_sig(profile.signature_encoding, e))
        .collect();
    let v = registry
        .verify(key, None, Input::Message(b.clone()), sigs, format)
        .await?;
    if !v.valid {
        return Ok(Verdict::fail(Reason::SignatureMismatch, t));
    }
    // 6. Replay, only now that the request verified. Without a nonce the
    // key is a digest of the bytes the signature covers, never the
    // signature's own bytes: an attacker can re-encode those (ECDSA's
    // (r, n − s), a second DER or base64 spelling, a reordered or extra
    // signature in the header) but cannot change what was signed without
    // failing step 5.
    //
    // A nonce the signature does not cover (GitHub's and Shopify's delivery
    // ids) is a spelling too: a request re-sent with a new one is caught by
    // the content digest, which is checked as well. The two kinds of entry
    // are tagged so a nonce can never collide with a digest.
    let nonce_signed = profile.payload_template.uses(Placeholder::Nonce);
    let mut replay_keys = Vec::with_capacity(2);
    if let Some(n) = &nonce {
        replay_keys.push([&b"n:"[..], n.as_bytes()].concat());
    }
    if profile.reject_replayed_signatures && (nonce.is_none() || !nonce_signed) {
        replay_keys.push([&b"c:"[..], &covered_digest(&b)].concat());
    }
    let ttl = Duration::from_secs(profile.tolerance_seconds.saturating_mul(2));
    for k in replay_keys {
        if !crate::telemetry::rpc::replay_check(
            replay.kind(),
            replay.insert(&profile.name, &k, ttl),
        )
        .await?
        {
            return Ok(Verdict::fail(Reason::Replayed, t));
        }
    }
    Ok(Verdict {
        reason: None,
        version: v.version,
        key_version_id: v.key_version_id,
        timestamp: t,
    })
}

/// The replay identity of a request without a nonce: SHA-256 over the
/// signed bytes (which hold the timestamp wherever the profile signs one).
fn covered_digest(signed: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(signed).to_vec()
}
