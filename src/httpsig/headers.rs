//! Signature header formats: how a signature header carries one or more
//! signatures, both ways (render when signing, parse when verifying).

use super::profile::{Profile, SigEncoding};
use super::template::{Part, Placeholder, Template};

/// How a preset's signature header carries signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignatureHeader {
    /// One signature, by the signature template.
    Single,
    /// Stripe: `t=T,v1=σ1,v1=σ2`, any element order, other schemes ignored.
    Stripe,
    /// Standard Webhooks: `v1,σ1 v1,σ2`.
    StandardWebhooks,
}

/// What a signature header yielded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ParsedSignatureHeader {
    /// The encoded signatures, in header order.
    pub sigs: Vec<String>,
    /// T, when the header carries it.
    pub timestamp: Option<String>,
    /// N, when the header carries it.
    pub nonce: Option<String>,
}

/// The most signatures one header may carry (Stripe, Standard Webhooks).
/// A sender writes one per ACTIVE and PENDING version, so two in practice;
/// more than this is `MALFORMED_HEADER`, so that what one request costs to
/// verify stays bounded whatever the header holds.
pub(crate) const MAX_SIGNATURES: usize = 16;

/// The regular expression an encoded signature matches.
pub(super) fn sig_alphabet(enc: SigEncoding) -> &'static str {
    match enc {
        SigEncoding::Base64 => "[A-Za-z0-9+/]+={0,2}",
        SigEncoding::Base64url => "[A-Za-z0-9_-]+",
        SigEncoding::Hex => "[0-9a-f]+",
    }
}

impl SignatureHeader {
    /// Whether the header carries several signatures (ACTIVE and PENDING
    /// during a staged rotation).
    pub(crate) fn carries_several(self) -> bool {
        self != SignatureHeader::Single
    }

    /// The header value for `encoded` signatures (the first is the ACTIVE
    /// version's); `render_one` renders the signature template around one.
    pub(crate) fn render(self, encoded: &[String], render_one: impl Fn(&str) -> String) -> String {
        match self {
            SignatureHeader::Single => render_one(&encoded[0]),
            SignatureHeader::Stripe => {
                let mut v = render_one(&encoded[0]);
                for e in &encoded[1..] {
                    v.push_str(",v1=");
                    v.push_str(e);
                }
                v
            }
            SignatureHeader::StandardWebhooks => encoded
                .iter()
                .map(|e| render_one(e))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// The version tag of Standard Webhooks' asymmetric (Ed25519) signatures;
/// `v1` is HMAC-SHA256's.
pub(crate) const V1A: &str = "v1a";

/// Verification step 2: the signature header against the profile's format;
/// `None` when it does not have that format. With `asymmetric` (an Ed25519
/// verify key), a Standard Webhooks header yields its `v1a` entries.
pub(crate) fn parse_signature_header(
    profile: &Profile,
    value: &str,
    asymmetric: bool,
) -> Option<ParsedSignatureHeader> {
    let value = value.trim_matches([' ', '\t']);
    let alphabet = regex::Regex::new(&format!("^{}$", sig_alphabet(profile.signature_encoding)))
        .expect("static pattern");
    match profile.signature_header {
        SignatureHeader::Stripe => parse_stripe(value, &alphabet),
        SignatureHeader::StandardWebhooks => {
            parse_standard_webhooks(value, &alphabet, if asymmetric { V1A } else { "v1" })
        }
        SignatureHeader::Single => parse_template(profile, value),
    }
}

fn parse_stripe(value: &str, alphabet: &regex::Regex) -> Option<ParsedSignatureHeader> {
    let (mut t, mut sigs) = (None, Vec::new());
    for el in value.split(',') {
        let (k, v) = el.split_once('=')?;
        match k {
            "t" if t.is_none() && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                t = Some(v.to_string())
            }
            "t" => return None,
            "v1" if alphabet.is_match(v) => sigs.push(v.to_string()),
            "v1" => return None,
            // Other schemes (v0, ...) are ignored, as Stripe's libraries do.
            _ => {}
        }
    }
    (t.is_some() && !sigs.is_empty() && sigs.len() <= MAX_SIGNATURES).then_some(
        ParsedSignatureHeader {
            sigs,
            timestamp: t,
            nonce: None,
        },
    )
}

/// `tag,σ` entries separated by spaces; entries of another version (the
/// other scheme's, or a future one) are ignored, as the spec's libraries do.
fn parse_standard_webhooks(
    value: &str,
    alphabet: &regex::Regex,
    tag: &str,
) -> Option<ParsedSignatureHeader> {
    let mut sigs = Vec::new();
    for entry in value.split(' ') {
        let (version, sig) = entry.split_once(',')?;
        if version == tag {
            if !alphabet.is_match(sig) {
                return None;
            }
            sigs.push(sig.to_string());
        }
    }
    (!sigs.is_empty() && sigs.len() <= MAX_SIGNATURES).then_some(ParsedSignatureHeader {
        sigs,
        timestamp: None,
        nonce: None,
    })
}

/// Whether `c` can occur in the value of the captured placeholder `p`
/// (step 2's alphabets; `{signature}` in `enc`).
fn can_contain(p: Placeholder, enc: SigEncoding, c: char) -> bool {
    let alnum = c.is_ascii_alphanumeric();
    match (p, enc) {
        (Placeholder::Timestamp, _) => c.is_ascii_digit(),
        (Placeholder::Nonce, _) => alnum || matches!(c, '_' | '.' | '-'),
        (_, SigEncoding::Base64) => alnum || matches!(c, '+' | '/' | '='),
        (_, SigEncoding::Base64url) => alnum || matches!(c, '_' | '-'),
        (_, SigEncoding::Hex) => matches!(c, '0'..='9' | 'a'..='f'),
    }
}

/// Checks, when a profile loads, that the header its signature template
/// writes reads back as written (docs/http-signing.md, "Checks when the
/// configuration loads"); `fixed` gives the configured `{identity}`,
/// `{client_id}` and `{merchant_id}`. Found by `cargo fuzz run
/// webhook_headers`, which signs and then verifies: without these rules a
/// profile could sign requests that it then refused, and `{payload}` put
/// the body's line breaks into a header value.
///
/// - No `{request_method}`, `{url}` or `{payload}`: request data is not
///   read back from the header, can hold what a header value cannot, and
///   matched as any text it swallows what surrounds it.
/// - The fixed text holds no control character, and the value neither
///   starts nor ends with a space or tab (it is read trimmed).
/// - `{signature}`, `{timestamp}` and `{nonce}` each end the template or
///   are followed by a character they cannot contain, so the header
///   splits one way only.
pub(crate) fn check_signature_template<'a>(
    template: &Template,
    enc: SigEncoding,
    fixed: impl Fn(Placeholder) -> Option<&'a str>,
) -> Result<(), String> {
    // The template as fixed text and captured placeholders.
    let mut pieces: Vec<Result<String, Placeholder>> = Vec::new();
    for part in template.parts() {
        let text = match part {
            Part::Literal(l) => l.as_str(),
            Part::Placeholder(
                p @ (Placeholder::Signature | Placeholder::Timestamp | Placeholder::Nonce),
            ) => {
                pieces.push(Err(*p));
                continue;
            }
            Part::Placeholder(
                p @ (Placeholder::Identity | Placeholder::ClientId | Placeholder::MerchantId),
            ) => fixed(*p).unwrap_or_default(),
            Part::Placeholder(p) => {
                return Err(format!(
                    "{p} is request data, which a signature header cannot carry back"
                ))
            }
        };
        match pieces.last_mut() {
            _ if text.is_empty() => {}
            Some(Ok(t)) => t.push_str(text),
            _ => pieces.push(Ok(text.to_string())),
        }
    }
    let blank = |c: Option<char>| matches!(c, Some(' ' | '\t'));
    let starts_blank = matches!(pieces.first(), Some(Ok(t)) if blank(t.chars().next()));
    let ends_blank = matches!(pieces.last(), Some(Ok(t)) if blank(t.chars().next_back()));
    if starts_blank || ends_blank {
        return Err("starts or ends with a space or tab, which a header value loses".into());
    }
    for (i, piece) in pieces.iter().enumerate() {
        match (piece, pieces.get(i + 1)) {
            (Ok(t), _) if t.chars().any(char::is_control) => {
                return Err("holds a control character, which a header value cannot".into())
            }
            (Err(p), Some(Err(q))) => {
                return Err(format!(
                    "{p} is followed directly by {q}: nothing marks where it ends"
                ))
            }
            (Err(p), Some(Ok(t))) => {
                if let Some(c) = t.chars().next().filter(|c| can_contain(*p, enc, *c)) {
                    return Err(format!(
                        "{p} is followed by {c:?}, which it can contain: nothing marks where it ends"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The header matched against the signature template, as written.
fn parse_template(profile: &Profile, value: &str) -> Option<ParsedSignatureHeader> {
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
                    // Values of the request itself are refused in a
                    // signature template when the profile loads
                    // (check_signature_template); were one here, it
                    // would match anything.
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
    let mut parsed = ParsedSignatureHeader::default();
    let mut sig = None;
    for (i, ph) in groups.iter().enumerate() {
        let v = caps.get(i + 1)?.as_str().to_string();
        let slot = match ph {
            Placeholder::Signature => &mut sig,
            Placeholder::Timestamp => &mut parsed.timestamp,
            _ => &mut parsed.nonce,
        };
        // The same placeholder twice must carry the same value: the signer
        // writes one signature, however often the template names it.
        if slot.as_ref().is_some_and(|old| *old != v) {
            return None;
        }
        *slot = Some(v);
    }
    parsed.sigs.extend(sig);
    Some(parsed)
}
