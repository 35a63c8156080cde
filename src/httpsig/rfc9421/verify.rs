//! Verification by RFC 9421 §3.2 and the profile's policy: each
//! signature the message carries under an accepted label is checked in
//! turn, and the first that passes every check verifies the request.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sfv::{Dictionary, Parser};
use sha2::Digest as _;

use super::base::{read_input, read_signature, signature_base, Params};
use super::components::{Message, Unresolved};
use super::sign::parse_uri;
use super::{alg_name, digest, KeyRef, Settings, MAX_SIGNATURES};
use crate::error::{Error, ErrorKind, Result};
use crate::httpsig::engine::{is_nonce_char, is_token, Reason, Request, Verdict};
use crate::httpsig::profile::Profile;
use crate::httpsig::replay::ReplayStore;
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::registry::{Input, Registry};

/// Every line of `name`, joined as one field value.
fn field(headers: &[(String, String)], name: &str) -> Option<String> {
    let v: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim_matches([' ', '\t']))
        .collect();
    (!v.is_empty()).then(|| v.join(", "))
}

/// A Dictionary field; a repeated member name is refused (RFC 9651 keeps
/// the last, so two readers of one field could disagree on a signature).
fn dictionary(value: &str) -> Option<Dictionary> {
    let names = Parser::new(value)
        .parse_dictionary_with_visitor(Names(Vec::new()))
        .ok()?;
    let dict: Dictionary = Parser::new(value).parse().ok()?;
    (names.len() == dict.len()).then_some(dict)
}

/// Collects a dictionary's member names, repeats included.
struct Names(Vec<String>);

impl<'de> sfv::visitor::DictionaryVisitor<'de> for Names {
    type Out = Vec<String>;
    type Error = std::convert::Infallible;

    fn entry(
        &mut self,
        key: &'de sfv::KeyRef,
    ) -> std::result::Result<impl sfv::visitor::EntryVisitor<'de>, Self::Error> {
        self.0.push(key.as_str().to_string());
        Ok(sfv::visitor::Ignored)
    }

    fn finish(self) -> std::result::Result<Vec<String>, Self::Error> {
        Ok(self.0)
    }
}

/// The time as Unix seconds.
fn unix(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `VerifyHttpRequest` for an RFC 9421 profile.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn verify_request(
    profile: &Profile,
    s: &Settings,
    registry: &Registry,
    replay: &dyn ReplayStore,
    req: Request<'_>,
    headers: &[(String, String)],
    source_ip: &str,
    now: SystemTime,
) -> Result<Verdict> {
    let fail = |r: Reason| Ok(Verdict::fail(r, None));
    if !is_token(req.method) {
        return Err(Error::invalid("method must be an HTTP token"));
    }
    let uri = parse_uri(req.url).map_err(Error::invalid)?;
    let (Some(input), Some(sig)) = (
        field(headers, "signature-input"),
        field(headers, "signature"),
    ) else {
        return fail(Reason::MissingHeader);
    };
    let (Some(inputs), Some(sigs)) = (dictionary(&input), dictionary(&sig)) else {
        return fail(Reason::MalformedHeader);
    };
    if inputs.len() > MAX_SIGNATURES {
        return fail(Reason::MalformedHeader);
    }
    if !profile.allowed_source_ips.is_empty() {
        let allowed = source_ip
            .trim()
            .parse::<IpAddr>()
            .is_ok_and(|ip| profile.allowed_source_ips.iter().any(|c| c.contains(ip)));
        if !allowed {
            return fail(Reason::SourceIpNotAllowed);
        }
    }
    let candidates: Vec<_> = inputs
        .iter()
        .filter(|(l, _)| {
            s.verify_labels.is_empty() || s.verify_labels.iter().any(|v| v == l.as_str())
        })
        .collect();
    if candidates.is_empty() {
        return fail(Reason::LabelNotFound);
    }
    let msg = Message {
        method: req.method,
        uri,
        headers,
        field_types: &s.field_types,
    };
    let mut first: Option<Verdict> = None;
    for (label, entry) in candidates {
        let Some(sig) = sigs.get(label) else {
            return fail(Reason::MalformedHeader);
        };
        let v = one(
            profile, s, registry, replay, &msg, req.body, entry, sig, now,
        )
        .await?;
        if v.reason.is_none() {
            return Ok(v);
        }
        first.get_or_insert(v);
    }
    Ok(first.expect("at least one candidate"))
}

/// Checks one signature.
#[allow(clippy::too_many_arguments)]
async fn one(
    profile: &Profile,
    s: &Settings,
    registry: &Registry,
    replay: &dyn ReplayStore,
    msg: &Message<'_>,
    body: &[u8],
    entry: &sfv::ListEntry,
    sig: &sfv::ListEntry,
    now: SystemTime,
) -> Result<Verdict> {
    let (Ok((components, raw_params)), Some(signature)) = (read_input(entry), read_signature(sig))
    else {
        return Ok(Verdict::fail(Reason::MalformedHeader, None));
    };
    let Ok(p) = Params::from_sfv(&raw_params) else {
        return Ok(Verdict::fail(Reason::MalformedHeader, None));
    };
    let t = p.created.map(|c| c.to_string());
    let fail = |r: Reason| Ok(Verdict::fail(r, t.clone()));
    // Policy: what must be covered and carried.
    if !s
        .required
        .iter()
        .all(|r| components.iter().any(|c| c.same(r)))
    {
        return fail(Reason::ComponentNotCovered);
    }
    if (s.require_created && p.created.is_none())
        || (s.require_keyid && p.keyid.is_none())
        || (profile.use_nonce && p.nonce.is_none())
        || (s.tag.is_some() && p.tag.is_none())
    {
        return fail(Reason::ParameterMissing);
    }
    if s.tag.is_some() && p.tag != s.tag {
        return fail(Reason::ParameterMismatch);
    }
    if p.nonce
        .as_ref()
        .is_some_and(|n| n.is_empty() || n.len() > 128 || !n.bytes().all(is_nonce_char))
    {
        return fail(Reason::MalformedHeader);
    }
    // Time.
    let now_s = unix(now);
    let skew = s.clock_skew_seconds as i64;
    if let Some(c) = p.created {
        if c > now_s.saturating_add(skew)
            || now_s.saturating_sub(c) > profile.tolerance_seconds as i64
        {
            return fail(Reason::TimestampOutOfWindow);
        }
    }
    if let Some(e) = p.expires {
        if e.saturating_add(skew) < now_s || p.created.is_some_and(|c| e < c) {
            return fail(Reason::SignatureExpired);
        }
    }
    // The key: from keyid, never from the message's alg.
    let Some(key) = key_for(profile, s, p.keyid.as_deref()) else {
        return fail(Reason::UnknownKey);
    };
    let alg = match registry.get(&key.name) {
        Ok(k) => k.record.algorithm,
        Err(e) if e.kind() == ErrorKind::NotFound => return fail(Reason::UnknownKey),
        Err(e) => return Err(e),
    };
    let Some(alg_id) = alg_name(alg) else {
        return Err(Error::precondition(format!(
            "key {} is {alg}, which RFC 9421 names no algorithm for",
            key.name
        )));
    };
    if p.alg.as_deref().is_some_and(|a| a != alg_id) {
        return fail(Reason::AlgorithmMismatch);
    }
    // The body, when its digest is covered in any form (the whole field,
    // `sf`, one member by `key`, `bs`): the field must match the body.
    if components.iter().any(|c| c.name() == "content-digest") {
        let Some(d) = field(msg.headers, "content-digest") else {
            return fail(Reason::MissingHeader);
        };
        match digest::check(&d, body) {
            digest::Check::Matches => {}
            digest::Check::Mismatch => return fail(Reason::DigestMismatch),
            digest::Check::Malformed => return fail(Reason::MalformedHeader),
        }
    }
    let params_value = super::base::signature_params(&components, raw_params);
    let base = match signature_base(msg, &components, &params_value) {
        Ok(b) => b,
        Err(Unresolved::Absent(_)) => return fail(Reason::MissingHeader),
        Err(Unresolved::Invalid(_)) => return fail(Reason::MalformedHeader),
    };
    let v = registry
        .verify(
            &key.name,
            key.version,
            Input::Message(base.clone().into_bytes()),
            vec![signature],
            SignatureFormat::Raw,
        )
        .await;
    let v = match v {
        Ok(v) => v,
        // A keyid naming a version that no longer verifies.
        Err(e) if e.kind() == ErrorKind::FailedPrecondition && key.version.is_some() => {
            return fail(Reason::UnknownKey)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => return fail(Reason::UnknownKey),
        Err(e) => return Err(e),
    };
    if !v.valid {
        return fail(Reason::SignatureMismatch);
    }
    // Replay: the nonce (which the signature covers), or else the digest
    // of the base, which names every covered value and `created`.
    let mut replay_keys = Vec::with_capacity(1);
    if let Some(n) = &p.nonce {
        replay_keys.push([&b"n:"[..], n.as_bytes()].concat());
    } else if profile.reject_replayed_signatures {
        replay_keys.push([&b"c:"[..], &sha2::Sha256::digest(base.as_bytes())[..]].concat());
    }
    let ttl = Duration::from_secs(
        profile
            .tolerance_seconds
            .saturating_add(s.clock_skew_seconds)
            .saturating_mul(2),
    );
    for k in replay_keys {
        if !crate::telemetry::rpc::replay_check(
            replay.kind(),
            replay.insert(&profile.name, &k, ttl),
        )
        .await?
        {
            return fail(Reason::Replayed);
        }
    }
    Ok(Verdict {
        reason: None,
        version: v.version,
        key_version_id: v.key_version_id,
        timestamp: t,
    })
}

/// The key (or version) `keyid` stands for: through the profile's
/// `keyids` table when it has one; otherwise the verify key, or one of its
/// versions by `NAME:vN`; without a keyid, every version of the verify key.
fn key_for(profile: &Profile, s: &Settings, keyid: Option<&str>) -> Option<KeyRef> {
    if !s.keyids.is_empty() {
        return s.keyids.get(keyid?).cloned();
    }
    let name = profile.verify_key.clone()?;
    let Some(id) = keyid else {
        return Some(KeyRef {
            name,
            version: None,
        });
    };
    let k = KeyRef::parse(id).ok()?;
    (k.name == name).then_some(k)
}
