//! The `webhook_headers` target: the signature header formats of the
//! presets and of custom templates, and the verification pipeline that
//! reads every header of an incoming webhook.
//!
//! Input: the first byte picks the profile (modulo 8): 0 to 5 are the
//! presets in `presets::PRESETS` order (boxo, stripe, standard-webhooks,
//! github, slack, shopify); 6 and 7 are profiles without a preset whose
//! signature and payload templates are the first two lines (6: hex
//! signatures, raw body; 7: base64url, canonical JSON, milliseconds). Then,
//! like an HTTP request: a line `METHOD URL`, header lines `Name: value`,
//! an empty line, and the body.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::httpsig::engine::{sign_request, verify_request, Request};
use crate::httpsig::headers::{parse_signature_header, ParsedSignatureHeader, MAX_SIGNATURES};
use crate::httpsig::presets::PRESETS;
use crate::httpsig::profile::{
    BodyEncoding, Field, Profile, ProfileConfig, SigEncoding, SignatureHeader, Timespec,
};
use crate::httpsig::replay::MemoryReplayStore;
use crate::httpsig::template::Placeholder;
use crate::keys::clock::ManualClock;
use crate::keys::memory::MemoryBackend;
use crate::keys::registry::{Registry, RegistrySettings};
use crate::keys::store::NullStore;
use crate::keys::Algorithm;

/// The HMAC-SHA256 key `hook` every profile signs and verifies with (the
/// seeds' signatures are made with it).
const SECRET: &[u8] = b"fuzz-webhook-secret-0123456789ab";
/// The time of every verification: 2027-01-15T08:00:00Z.
const NOW: u64 = 1_800_000_000;
/// The nonce signing uses where a profile has one.
const NONCE: &str = "fuzz-nonce-0123456789";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    registry: Arc<Registry>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let registry = Arc::new(Registry::new(
            Arc::new(MemoryBackend::new()),
            Arc::new(NullStore),
            Arc::new(ManualClock::new(now())),
            RegistrySettings::default(),
        ));
        runtime
            .block_on(registry.import_key(
                "hook",
                Algorithm::HmacSha256,
                SECRET,
                false,
                BTreeMap::new(),
            ))
            .expect("the fixture key imports");
        Fixture { runtime, registry }
    })
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// The profile of `slot`; `None` when the templates are refused.
fn profile(slot: u8, templates: Option<(&str, &str)>) -> Option<Profile> {
    let mut c = ProfileConfig {
        name: "fuzz".into(),
        key: Some("hook".into()),
        client_id: Some("cli-9".into()),
        ..ProfileConfig::default()
    };
    match templates {
        None => c.preset = Some(PRESETS[usize::from(slot)].preset),
        Some((signature, payload)) => {
            c.signature_template = Some(signature.into());
            c.payload_template = Some(payload.into());
            c.use_nonce = Some(true);
            c.identity = Some("id-1".into());
            c.merchant_id = Some("m-1".into());
            c.headers = Some(BTreeMap::from([
                (Field::Signature, "X-Signature".into()),
                (Field::Timestamp, "X-Timestamp".into()),
                (Field::Nonce, "X-Nonce".into()),
                (Field::ClientId, "X-Client-Id".into()),
            ]));
            let json = slot == 7;
            c.signature_encoding = Some(if json {
                SigEncoding::Base64url
            } else {
                SigEncoding::Hex
            });
            c.request_data_encoding = Some(if json {
                BodyEncoding::Json
            } else {
                BodyEncoding::Raw
            });
            c.timespec = Some(if json {
                Timespec::Milliseconds
            } else {
                Timespec::Seconds
            });
        }
    }
    c.resolve().ok()
}

/// See the module's documentation for the input's form.
pub fn webhook_headers(data: &[u8]) -> bool {
    let Some((&selector, rest)) = data.split_first() else {
        return false;
    };
    let slot = selector % 8;
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, &b""[..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n');
    let templates = (slot >= 6).then(|| (lines.next().unwrap_or(""), lines.next().unwrap_or("")));
    let Some(profile) = profile(slot, templates) else {
        return false;
    };
    let request_line = lines.next().unwrap_or("");
    let (method, url) = request_line.split_once(' ').unwrap_or((request_line, ""));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let signature_name = &profile.headers[&Field::Signature];
    for (_, value) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(signature_name))
    {
        if let Some(parsed) = parse_signature_header(&profile, value, false) {
            check_parsed(&profile, &parsed);
        }
    }
    let req = Request { method, url, body };
    let f = fixture();
    let verdict = f
        .runtime
        .block_on(verify_request(
            &profile,
            &f.registry,
            &MemoryReplayStore::new(16),
            req,
            &headers,
            "127.0.0.1",
            now(),
        ))
        .expect("verification answers with a verdict");
    sign_then_verify(&profile, req);
    verdict.reason.is_none()
}

/// What a header yielded is of the profile's alphabets; for a preset's
/// format, the header written back from it yields the same again.
fn check_parsed(profile: &Profile, parsed: &ParsedSignatureHeader) {
    assert!(!parsed.sigs.is_empty() && parsed.sigs.len() <= MAX_SIGNATURES);
    if profile.signature_header == SignatureHeader::Single {
        assert_eq!(
            parsed.sigs.len(),
            1,
            "a single-signature header yielded several"
        );
    }
    for s in &parsed.sigs {
        assert!(
            of_alphabet(profile.signature_encoding, s),
            "{s:?} is not {:?}",
            profile.signature_encoding
        );
    }
    if let Some(t) = &parsed.timestamp {
        assert!(
            !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()),
            "timestamp {t:?}"
        );
    }
    if let Some(n) = &parsed.nonce {
        assert!(
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
            "nonce {n:?}"
        );
    }
    if profile.preset.is_none() {
        // A custom template may be ambiguous; only the presets' formats
        // are checked both ways.
        return;
    }
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let render_one = |e: &str| {
        profile.signature_template.render(|ph| match ph {
            Placeholder::Signature => e.to_string(),
            Placeholder::Timestamp => opt(&parsed.timestamp),
            Placeholder::Nonce => opt(&parsed.nonce),
            Placeholder::Identity => opt(&profile.identity),
            Placeholder::ClientId => opt(&profile.client_id),
            Placeholder::MerchantId => opt(&profile.merchant_id),
            _ => String::new(),
        })
    };
    let written = profile.signature_header.render(&parsed.sigs, render_one);
    let again = parse_signature_header(profile, &written, false);
    assert_eq!(again.as_ref(), Some(parsed), "written back as {written:?}");
}

/// Step 9's alphabets, written out independently of the header parser.
fn of_alphabet(enc: SigEncoding, s: &str) -> bool {
    match enc {
        SigEncoding::Hex => {
            !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }
        SigEncoding::Base64url => {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
        SigEncoding::Base64 => {
            let body = s.trim_end_matches('=');
            s.len() - body.len() <= 2
                && !body.is_empty()
                && body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        }
    }
}

/// What signet signs for a request, signet verifies: the headers that
/// `sign_request` writes pass `verify_request` at the same instant.
fn sign_then_verify(profile: &Profile, req: Request<'_>) {
    let f = fixture();
    let nonce = profile.use_nonce.then_some(NONCE);
    let Ok(signed) = f
        .runtime
        .block_on(sign_request(profile, &f.registry, req, nonce, now()))
    else {
        return;
    };
    let verdict = f
        .runtime
        .block_on(verify_request(
            profile,
            &f.registry,
            &MemoryReplayStore::new(16),
            req,
            &signed.headers,
            "127.0.0.1",
            now(),
        ))
        .expect("verification answers with a verdict");
    assert_eq!(
        verdict.reason, None,
        "signet does not verify its own signature: headers {:?}, string to sign {:?}",
        signed.headers, signed.string_to_sign
    );
}
