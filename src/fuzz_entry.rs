//! Entry points of the fuzz targets in `fuzz/` (docs/fuzzing.md): one
//! function per target, taking the fuzzer's bytes and handing them to the
//! parsers signet runs on outside input, then checking what must hold of
//! whatever they accept. A broken property panics, which the fuzzer
//! reports as a crash.
//!
//! Compiled only with `--cfg fuzzing` (which `cargo fuzz` sets) and in
//! unit tests, which run every entry on the seed corpus in
//! `fuzz/corpus/`. It is no part of signet's interface. Each entry returns
//! whether the input got past the parser, so those tests can check that
//! the seeds reach the code behind it.

mod webhook;

pub use webhook::webhook_headers;

use crate::httpsig::json::{self, Style};
use crate::httpsig::presets::SecretEncoding;
use crate::httpsig::template::{Part, Placeholder, Template};
use crate::keys::jwk;
use crate::keys::material::check_pkcs8;
use crate::keys::memory::aws_lc::KeyPair;
use crate::keys::public::{parse_material, Material, PublicKey};
use crate::keys::{Algorithm, ImportMaterial};

/// `Template::parse` on the input as text. What parses is written back
/// and parses to the same template; adjacent literals are merged.
pub fn template(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let Ok(t) = Template::parse(&text) else {
        return false;
    };
    let written = t.to_string();
    let again = Template::parse(&written).expect("a template's own text parses");
    assert_eq!(
        again, t,
        "{written:?} does not parse to the template it came from"
    );
    let unmerged = t
        .parts()
        .windows(2)
        .any(|w| matches!(w, [Part::Literal(_), Part::Literal(_)]));
    let empty = t
        .parts()
        .iter()
        .any(|p| matches!(p, Part::Literal(l) if l.is_empty()));
    assert!(
        !unmerged && !empty,
        "unmerged or empty literals in {:?}",
        t.parts()
    );
    let placeholders = t
        .parts()
        .iter()
        .filter(|p| matches!(p, Part::Placeholder(_)))
        .count();
    let counted: usize = Placeholder::ALL.into_iter().map(|p| t.count(p)).sum();
    assert_eq!(counted, placeholders);
    true
}

/// Every canonical JSON style a profile can choose.
fn styles() -> impl Iterator<Item = Style> {
    (0..8u8).map(|bits| Style {
        spaces: bits & 1 != 0,
        sort_keys: bits & 2 != 0,
        ascii: bits & 4 != 0,
    })
}

/// The canonical JSON reader, then the writer in every style. The
/// canonical form is a fixed point (canonical(canonical(x)) ==
/// canonical(x)), is ASCII when the style says so, and, in input order,
/// reads back as the value it was written from.
pub fn canonical_json(data: &[u8]) -> bool {
    plant(data);
    let value = match json::parse(data) {
        Ok(v) => v,
        Err(e) => {
            assert!(
                e.offset <= data.len(),
                "error offset {} past the end",
                e.offset
            );
            return false;
        }
    };
    for style in styles() {
        let once = json::canonicalize(data, style).expect("parsed once, parses again");
        let twice = json::canonicalize(once.as_bytes(), style)
            .unwrap_or_else(|e| panic!("canonical form {once:?} ({style:?}) does not parse: {e}"));
        assert_eq!(twice, once, "canonicalize is not idempotent in {style:?}");
        if style.ascii {
            assert!(once.is_ascii(), "non-ASCII output in {style:?}: {once:?}");
        }
        if !style.sort_keys {
            let back = json::parse(once.as_bytes()).expect("checked above");
            assert_eq!(
                back, value,
                "{once:?} ({style:?}) reads back as another value"
            );
        }
    }
    true
}

/// `SIGNET_FUZZ_PLANT=1` makes [`canonical_json`] panic on input that
/// starts with [`PLANT_PREFIX`]: the planted crash `scripts/fuzz.sh
/// --self-test` must catch. Only in fuzz builds (`cfg(fuzzing)`); unit
/// tests and signet itself have no such code.
#[cfg(fuzzing)]
fn plant(data: &[u8]) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on = *ON.get_or_init(|| std::env::var_os("SIGNET_FUZZ_PLANT").is_some_and(|v| v == "1"));
    if on && data.starts_with(PLANT_PREFIX) {
        panic!("planted crash (SIGNET_FUZZ_PLANT=1)");
    }
}

#[cfg(not(fuzzing))]
fn plant(_: &[u8]) {}

/// The input prefix the planted crash fires on.
pub const PLANT_PREFIX: &[u8] = b"SIGNET-PLANTED-CRASH";

/// The most `ImportKey` takes (larger material is refused before any
/// parsing).
const MAX_MATERIAL: usize = crate::api::admin::MAX_MATERIAL_BYTES;

/// `ImportKey`'s material recognition: the first byte picks the algorithm
/// (its low four bits, modulo the 14 algorithms) and, for HMAC, whether the
/// material is first decoded as a `standard-webhooks` `whsec_` secret (bit
/// 4); the rest is the material. PKCS#8 that passes goes on to both
/// backends' parsers (the memory backend's and the PKCS#11 import's), which
/// agree on the public key; a public key that passes comes back the same
/// from its own SPKI, PEM and JWK.
pub fn import(data: &[u8]) -> bool {
    let Some((&selector, material)) = data.split_first() else {
        return false;
    };
    if material.len() > MAX_MATERIAL {
        return false;
    }
    let alg = Algorithm::ALL[usize::from(selector & 0x0f) % Algorithm::ALL.len()];
    let mut material = zeroize::Zeroizing::new(material.to_vec());
    if alg.is_symmetric() && selector & 0x10 != 0 {
        match SecretEncoding::Whsec.decode(material) {
            Ok(m) => material = m,
            Err(_) => return false,
        }
    }
    match parse_material(alg, &material) {
        Err(e) => {
            assert_eq!(
                e.kind(),
                crate::error::ErrorKind::InvalidArgument,
                "{}",
                e.message()
            );
            false
        }
        Ok(Material::Private(ImportMaterial::Secret(s))) => {
            assert!(alg.is_symmetric() && (16..=128).contains(&s.expose().len()));
            true
        }
        Ok(Material::Private(ImportMaterial::Pkcs8(der))) => {
            assert!(!alg.is_symmetric());
            let memory = KeyPair::from_pkcs8(alg, der.expose()).and_then(|k| k.public_key(alg));
            if let Ok(token) = check_pkcs8(alg, der.expose()) {
                let memory =
                    memory.expect("the PKCS#11 import took a key the memory backend refuses");
                assert_eq!(memory.spki_der(), token.public.spki_der());
                public_round_trips(&token.public);
            } else if let Ok(public) = memory {
                public_round_trips(&public);
            }
            true
        }
        Ok(Material::Public(public)) => {
            assert_eq!(public.algorithm(), alg);
            public_round_trips(&public);
            true
        }
    }
}

/// A public key signet took is taken back, unchanged, from each form it
/// exports: SPKI DER, PEM and JWK.
fn public_round_trips(public: &PublicKey) {
    let alg = public.algorithm();
    let spki = public.spki_der();
    let from_der = PublicKey::from_spki_der(alg, spki).expect("its own SPKI");
    assert_eq!(from_der.spki_der(), spki);
    match parse_material(alg, public.to_pem().as_bytes()) {
        Ok(Material::Public(p)) => assert_eq!(p.spki_der(), spki),
        other => panic!("its own PEM came back as {other:?}"),
    }
    let jwk_text = public.to_jwk("fuzz").to_string();
    let parts = jwk::from_jwk(alg, jwk_text.as_bytes()).expect("its own JWK");
    let from_jwk = PublicKey::from_parts(alg, parts).expect("its own JWK's parts");
    assert_eq!(from_jwk.spki_der(), spki, "JWK {jwk_text}");
}

/// The configuration file: `Config::parse` on the input as UTF-8 text,
/// then, for what parses, the settings `serve`, `check-config` and a
/// reload build from it, and the reload's comparison of it with itself
/// (which must find nothing to restart for). The same text is also read
/// as an `auth.tokens_file`.
pub fn config(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let _ = crate::config::parse_tokens_file(text, "auth.tokens_file fuzz");
    let Ok(c) = crate::config::Config::parse(text) else {
        return false;
    };
    let changes = crate::config::restart_only_changes(&c, &c);
    assert!(
        changes.is_empty(),
        "a configuration differs from itself in {changes:?}"
    );
    let _ = crate::server::settings::Settings::from_config(&c);
    let _ = crate::server::settings::Settings::for_bound_listener(&c);
    true
}

#[cfg(test)]
#[path = "fuzz_entry/tests.rs"]
mod tests;
