//! Signing by RFC 9421 §3.1: the components' values, the parameters, the
//! base, one signature per version, and the `Signature-Input` and
//! `Signature` fields (and `Content-Digest` when signet computed it).

use std::time::{SystemTime, UNIX_EPOCH};

use sfv::{BareItem, Dictionary, FieldType as _, Item, Key, ListEntry, Parser};

use super::base::{signature_base, signature_params, Params};
use super::components::{Message, Unresolved};
use super::{alg_name, digest, Settings, MAX_SIGNATURES};
use crate::error::{Error, Result};
use crate::httpsig::engine::{choose_nonce, is_token, Request, SignedRequest};
use crate::httpsig::profile::Profile;
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::registry::{Input, Registry};

/// The URL of a request, split; userinfo is refused (it is never part of
/// what a server receives).
pub(crate) fn parse_uri(url: &str) -> std::result::Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| "url is not a valid URI (absolute or origin-form)".to_string())?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("url must not carry userinfo".into());
    }
    if uri.scheme().is_some() != uri.authority().is_some() {
        return Err("url must be absolute (scheme://authority/...) or origin-form (/path)".into());
    }
    Ok(uri)
}

/// `SignHttpRequest` for an RFC 9421 profile.
pub(crate) async fn sign_request(
    profile: &Profile,
    s: &Settings,
    registry: &Registry,
    req: Request<'_>,
    headers: &[(String, String)],
    nonce: Option<&str>,
    now: SystemTime,
) -> Result<SignedRequest> {
    let key = profile.key.as_deref().ok_or_else(|| {
        Error::precondition(format!(
            "profile {} only verifies (it has no key)",
            profile.name
        ))
    })?;
    let alg = registry.get(key)?.record.algorithm;
    let alg_id = alg_name(alg).ok_or_else(|| {
        Error::precondition(format!(
            "key {key} is {alg}, which RFC 9421 names no algorithm for"
        ))
    })?;
    if !is_token(req.method) {
        return Err(Error::invalid("method must be an HTTP token"));
    }
    let uri = parse_uri(req.url).map_err(Error::invalid)?;
    if headers.iter().any(|(n, _)| !is_token(n)) {
        return Err(Error::invalid("a header name is not an HTTP token"));
    }
    // Content-Digest: the caller's, when it matches the body; else signet's.
    let mut all = headers.to_vec();
    let mut added = Vec::new();
    if s.components.iter().any(|c| c.name() == "content-digest") {
        let given: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-digest"))
            .map(|(_, v)| v.as_str())
            .collect();
        if given.is_empty() {
            let v = digest::content_digest(s.content_digest, req.body);
            all.push(("Content-Digest".into(), v.clone()));
            added.push(("Content-Digest".to_string(), v));
        } else if digest::check(&given.join(", "), req.body) != digest::Check::Matches {
            return Err(Error::invalid(
                "the request's Content-Digest does not match its body",
            ));
        }
    }
    let n = choose_nonce(profile, nonce)?;
    let since = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::internal("the clock is before 1970"))?;
    let created = i64::try_from(since.as_secs()).map_err(|_| Error::internal("clock"))?;
    let msg = Message {
        method: req.method,
        uri,
        headers: &all,
        field_types: &s.field_types,
    };
    let unresolved = |u: Unresolved| match u {
        Unresolved::Absent(what) => Error::invalid(format!(
            "the request has no {what}, which profile {} covers",
            profile.name
        )),
        Unresolved::Invalid(why) => Error::invalid(why),
    };
    let params_for = |kid: &str| -> Result<(String, String)> {
        let p = Params {
            created: s.created.then_some(created),
            expires: s.expires_seconds.map(|e| created.saturating_add(e as i64)),
            keyid: s
                .send_keyid
                .then(|| s.keyid.clone().unwrap_or_else(|| kid.to_string())),
            alg: s.send_alg.then(|| alg_id.to_string()),
            nonce: (!n.is_empty()).then(|| n.clone()),
            tag: s.tag.clone(),
        };
        let value = signature_params(&s.components, p.to_sfv().map_err(Error::invalid)?);
        let base = signature_base(&msg, &s.components, &value).map_err(unresolved)?;
        Ok((value, base))
    };
    let most = if s.sign_pending { MAX_SIGNATURES } else { 1 };
    let bases = parking_lot::Mutex::new(Vec::new());
    let sigs = registry
        .sign_each(key, most, SignatureFormat::Raw, |_, kid| {
            let (value, base) = params_for(kid)?;
            let input = Input::Message(base.clone().into_bytes());
            bases.lock().push((value, base));
            Ok(input)
        })
        .await?;
    let bases = bases.into_inner();
    let mut input_dict = Dictionary::new();
    let mut sig_dict = Dictionary::new();
    for (i, (sig, (value, _))) in sigs.iter().zip(&bases).enumerate() {
        let label = match i {
            0 => s.label.clone(),
            i => format!("{}-{}", s.label, i + 1),
        };
        let key = Key::from_string(label).map_err(|_| Error::internal("label"))?;
        // The inner list is parsed back from its own serialization, so the
        // field carries exactly what the base's last line says.
        let entry = Parser::new(value)
            .parse::<sfv::List>()
            .ok()
            .and_then(|mut l| l.pop())
            .ok_or_else(|| Error::internal("signature parameters do not read back"))?;
        input_dict.insert(key.clone(), entry);
        sig_dict.insert(
            key,
            ListEntry::Item(Item::new(BareItem::ByteSequence(sig.signature.clone()))),
        );
    }
    let field = |d: Dictionary| {
        d.serialize()
            .ok_or_else(|| Error::internal("an empty signature dictionary"))
    };
    let mut out = added;
    out.push(("Signature-Input".into(), field(input_dict)?));
    out.push(("Signature".into(), field(sig_dict)?));
    let first = &sigs[0];
    Ok(SignedRequest {
        headers: out,
        timestamp: if s.created {
            created.to_string()
        } else {
            String::new()
        },
        nonce: n,
        version: first.version,
        key_version_id: first.key_version_id.clone(),
        string_to_sign: bases.into_iter().next().map(|(_, b)| b).unwrap_or_default(),
    })
}
