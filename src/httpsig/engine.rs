//! The signing and verification pipelines of http-signing.md, step by step.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::Rng;

use super::json::{self, Style};
use super::profile::{
    BodyEncoding, EcdsaFormat, Field, PayloadEncoding, Profile, SigEncoding, SignatureHeader,
    UrlForm,
};
use super::replay::ReplayStore;
use super::template::{Part, Placeholder};
use crate::error::{Error, Result};
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::registry::{Input, Registry};
use crate::keys::Family;

/// The request as the caller describes it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The method.
    pub method: &'a str,
    /// The URL string.
    pub url: &'a str,
    /// The body bytes.
    pub body: &'a [u8],
}

/// What `SignHttpRequest` returns.
#[derive(Clone, Debug)]
pub struct Signed {
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

/// Why a request failed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Reason {
    MissingHeader,
    MalformedHeader,
    MalformedBody,
    SourceIpNotAllowed,
    TimestampOutOfWindow,
    SignatureMismatch,
    Replayed,
}

/// What `VerifyHttpRequest` returns.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
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
    fn fail(reason: Reason, timestamp: Option<String>) -> Self {
        Self {
            reason: Some(reason),
            timestamp,
            ..Default::default()
        }
    }
}

const NONCE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn is_nonce_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Step 1: T in the profile's unit, truncated.
pub fn timestamp(profile: &Profile, now: SystemTime) -> String {
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

/// Step 4: M.
fn method(m: &str) -> Result<String> {
    let token = !m.is_empty()
        && m.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(Error::invalid("method must be an HTTP token"));
    }
    Ok(m.to_ascii_uppercase())
}

/// Step 5: U.
pub fn url_form(form: UrlForm, url: &str) -> String {
    if form == UrlForm::AsGiven {
        return url.to_string();
    }
    // The part after the authority for an absolute URL, else all of it.
    let rest = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
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

fn sig_alphabet(enc: SigEncoding) -> &'static str {
    match enc {
        SigEncoding::Base64 => "[A-Za-z0-9+/]+={0,2}",
        SigEncoding::Base64url => "[A-Za-z0-9_-]+",
        SigEncoding::Hex => "[0-9a-f]+",
    }
}

fn ecdsa_format(p: &Profile) -> SignatureFormat {
    match p.ecdsa_format {
        EcdsaFormat::Der => SignatureFormat::Der,
        EcdsaFormat::Raw => SignatureFormat::Raw,
    }
}

/// Refuses keys whose algorithm the profiles do not define (Ed25519).
fn check_key(registry: &Registry, name: &str) -> Result<()> {
    let alg = registry.get(name)?.record.algorithm;
    if alg.family() == Family::Ed25519 {
        return Err(Error::precondition(format!(
            "key {name} is {alg}: HTTP profiles sign with HMAC, RSA or ECDSA keys"
        )));
    }
    Ok(())
}

/// `SignHttpRequest`.
pub async fn sign(
    profile: &Profile,
    registry: &Registry,
    req: Request<'_>,
    nonce: Option<&str>,
    now: SystemTime,
) -> Result<Signed> {
    let key = profile.key.as_deref().ok_or_else(|| {
        Error::precondition(format!(
            "profile {} only verifies (it has no key)",
            profile.name
        ))
    })?;
    check_key(registry, key)?;
    let t = timestamp(profile, now);
    let n = match (profile.use_nonce, nonce.filter(|n| !n.is_empty())) {
        (true, Some(n)) => {
            if n.len() > 128 || !n.bytes().all(is_nonce_char) {
                return Err(Error::invalid(
                    "nonce must be 1 to 128 characters from [A-Za-z0-9_.-]",
                ));
            }
            n.to_string()
        }
        (true, None) => new_nonce(profile),
        (false, Some(_)) => {
            return Err(Error::invalid(format!(
                "profile {} does not use a nonce",
                profile.name
            )))
        }
        (false, None) => String::new(),
    };
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
            .sign_active_and_pending(key, Input::Message(b), format)
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
    let sig_value = match profile.signature_header {
        SignatureHeader::Single => render_sig(&encoded[0]),
        SignatureHeader::Stripe => {
            let mut v = render_sig(&encoded[0]);
            for e in &encoded[1..] {
                v.push_str(",v1=");
                v.push_str(e);
            }
            v
        }
        SignatureHeader::StandardWebhooks => encoded
            .iter()
            .map(|e| render_sig(e))
            .collect::<Vec<_>>()
            .join(" "),
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
    Ok(Signed {
        headers,
        timestamp: t,
        nonce: n,
        version: first.version,
        key_version_id: first.key_version_id.clone(),
        string_to_sign: s,
    })
}

/// What the signature header yielded.
struct Parsed {
    sigs: Vec<String>,
    timestamp: Option<String>,
    nonce: Option<String>,
}

/// Step 2: the signature header against the profile's format.
fn parse_signature_header(profile: &Profile, value: &str) -> Option<Parsed> {
    let value = value.trim_matches([' ', '\t']);
    let alphabet = regex::Regex::new(&format!("^{}$", sig_alphabet(profile.signature_encoding)))
        .expect("static pattern");
    match profile.signature_header {
        SignatureHeader::Stripe => {
            let (mut t, mut sigs) = (None, Vec::new());
            for el in value.split(',') {
                let (k, v) = el.split_once('=')?;
                match k {
                    "t" if t.is_none()
                        && !v.is_empty()
                        && v.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        t = Some(v.to_string())
                    }
                    "t" => return None,
                    "v1" if alphabet.is_match(v) => sigs.push(v.to_string()),
                    "v1" => return None,
                    // Other schemes (v0, ...) are ignored, as Stripe's libraries do.
                    _ => {}
                }
            }
            (t.is_some() && !sigs.is_empty()).then_some(Parsed {
                sigs,
                timestamp: t,
                nonce: None,
            })
        }
        SignatureHeader::StandardWebhooks => {
            let mut sigs = Vec::new();
            for entry in value.split(' ') {
                let (version, sig) = entry.split_once(',')?;
                if version == "v1" {
                    if !alphabet.is_match(sig) {
                        return None;
                    }
                    sigs.push(sig.to_string());
                }
            }
            (!sigs.is_empty()).then_some(Parsed {
                sigs,
                timestamp: None,
                nonce: None,
            })
        }
        SignatureHeader::Single => {
            let mut pattern = String::from("^");
            let mut groups = Vec::new();
            for part in profile.signature_template.parts() {
                match part {
                    Part::Literal(l) => pattern.push_str(&regex::escape(l)),
                    Part::Placeholder(ph) => {
                        let p = match ph {
                            Placeholder::Signature => {
                                format!("({})", sig_alphabet(profile.signature_encoding))
                            }
                            Placeholder::Timestamp => "([0-9]+)".into(),
                            Placeholder::Nonce => "([A-Za-z0-9_.-]+)".into(),
                            Placeholder::Identity => {
                                regex::escape(profile.identity.as_deref().unwrap_or_default())
                            }
                            Placeholder::ClientId => {
                                regex::escape(profile.client_id.as_deref().unwrap_or_default())
                            }
                            Placeholder::MerchantId => {
                                regex::escape(profile.merchant_id.as_deref().unwrap_or_default())
                            }
                            // Values of the request itself are not carried
                            // in a header; match anything.
                            _ => "(?:.*)".into(),
                        };
                        if matches!(
                            ph,
                            Placeholder::Signature | Placeholder::Timestamp | Placeholder::Nonce
                        ) {
                            groups.push(*ph);
                        }
                        pattern.push_str(&p);
                    }
                }
            }
            pattern.push('$');
            let re = regex::Regex::new(&pattern).ok()?;
            let caps = re.captures(value)?;
            let mut parsed = Parsed {
                sigs: Vec::new(),
                timestamp: None,
                nonce: None,
            };
            for (i, ph) in groups.iter().enumerate() {
                let v = caps.get(i + 1)?.as_str().to_string();
                let slot = match ph {
                    Placeholder::Signature => {
                        parsed.sigs.push(v);
                        continue;
                    }
                    Placeholder::Timestamp => &mut parsed.timestamp,
                    _ => &mut parsed.nonce,
                };
                // The same placeholder twice must carry the same value.
                if slot.as_ref().is_some_and(|old| *old != v) {
                    return None;
                }
                *slot = Some(v);
            }
            Some(parsed)
        }
    }
}

/// `VerifyHttpRequest`.
#[allow(clippy::too_many_arguments)]
pub async fn verify(
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
    check_key(registry, key)?;
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
    let Some(parsed) = parse_signature_header(profile, &found[&Field::Signature]) else {
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
    let mut matched = None;
    for e in &parsed.sigs {
        let Some(sig) = decode_sig(profile.signature_encoding, e) else {
            continue;
        };
        let v = registry
            .verify(key, None, Input::Message(b.clone()), sig.clone(), format)
            .await?;
        if v.valid {
            matched = Some(v);
            break;
        }
    }
    let Some(v) = matched else {
        return Ok(Verdict::fail(Reason::SignatureMismatch, t));
    };
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

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
