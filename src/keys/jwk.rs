//! JSON Web Keys (RFC 7517, RFC 7518, RFC 8037) for public keys: export, and
//! the parsing half of import (the checks against the algorithm are done by
//! [`PublicKey`](super::PublicKey) on the components).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::public::KeyParts;
use super::{Algorithm, Family};
use crate::error::{Error, Result};

fn b64(bytes: &[u8]) -> Value {
    Value::String(URL_SAFE_NO_PAD.encode(bytes))
}

/// Builds the JWK of a public key, with `kid`, `alg` and `"use":"sig"`.
pub(crate) fn to_jwk(alg: Algorithm, parts: &KeyParts, kid: &str) -> Value {
    let mut m = Map::new();
    match parts {
        KeyParts::Rsa { n, e } => {
            m.insert("kty".into(), "RSA".into());
            m.insert("n".into(), b64(n));
            m.insert("e".into(), b64(e));
        }
        KeyParts::Ec { curve, point } => {
            // point = 04 ‖ x ‖ y, each coordinate exactly the curve size.
            let (x, y) = point[1..].split_at(curve.size());
            m.insert("kty".into(), "EC".into());
            m.insert("crv".into(), curve.jwk_crv().into());
            m.insert("x".into(), b64(x));
            m.insert("y".into(), b64(y));
        }
        KeyParts::Ed25519 { x } => {
            m.insert("kty".into(), "OKP".into());
            m.insert("crv".into(), "Ed25519".into());
            m.insert("x".into(), b64(x));
        }
    }
    m.insert("kid".into(), kid.into());
    m.insert("alg".into(), alg.jose_alg().into());
    m.insert("use".into(), "sig".into());
    Value::Object(m)
}

/// The members a public JWK import looks at. Every other member (including
/// the private ones) is skipped without being stored.
#[derive(Deserialize)]
struct JwkIn {
    kty: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    /// When present, must be the algorithm's JOSE name.
    alg: Option<String>,
    /// When present, must be "sig".
    #[serde(rename = "use")]
    use_: Option<String>,
    /// Present in every private JWK (RSA, EC and OKP); never read.
    d: Option<IgnoredAny>,
}

fn field(value: Option<&str>, name: &'static str) -> Result<Vec<u8>> {
    let value = value.ok_or_else(|| Error::invalid(format!("JWK is missing \"{name}\"")))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| Error::invalid(format!("JWK \"{name}\" is not unpadded base64url")))
}

fn fixed(value: Option<&str>, name: &'static str, len: usize) -> Result<Vec<u8>> {
    let bytes = field(value, name)?;
    if bytes.len() != len {
        return Err(Error::invalid(format!(
            "JWK \"{name}\" has the wrong length"
        )));
    }
    Ok(bytes)
}

/// A JWK's optional `alg` must be the algorithm's JOSE name, and its
/// optional `use` must be `sig`.
fn check_alg_and_use(alg: Algorithm, jwk_alg: Option<&str>, use_: Option<&str>) -> Result<()> {
    if jwk_alg.is_some_and(|a| a != alg.jose_alg()) {
        return Err(Error::invalid(format!(
            "JWK \"alg\" does not match {alg} (expected {})",
            alg.jose_alg()
        )));
    }
    let (want, kind) = if alg.encrypts() {
        ("enc", "an encryption")
    } else {
        ("sig", "a signing")
    };
    if use_.is_some_and(|u| u != want) {
        return Err(Error::invalid(format!(
            "JWK \"use\" must be \"{want}\" for {kind} key"
        )));
    }
    Ok(())
}

/// The members an `oct` JWK import looks at (RFC 7518 §6.4).
#[derive(Deserialize)]
struct OctIn {
    kty: String,
    k: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
}

/// An HMAC secret sent as a JWK: `{"kty":"oct","k":"<base64url>"}` gives
/// the decoded `k`; any other JWK is refused with a hint. `None` when the
/// material is not a JSON object with a `kty` (then it is a raw secret).
pub(crate) fn oct_secret(
    alg: Algorithm,
    material: &[u8],
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    if !material.trim_ascii_start().starts_with(b"{") {
        return Ok(None);
    }
    let Ok(jwk) = serde_json::from_slice::<OctIn>(material) else {
        return Ok(None);
    };
    let k = jwk.k.map(zeroize::Zeroizing::new);
    if jwk.kty != "oct" {
        return Err(Error::invalid(format!(
            "a JWK with kty {:?} is not a secret key; send an oct JWK or the raw secret",
            jwk.kty.chars().take(8).collect::<String>()
        )));
    }
    check_alg_and_use(alg, jwk.alg.as_deref(), jwk.use_.as_deref())?;
    let k = k.ok_or_else(|| Error::invalid("JWK is missing \"k\""))?;
    URL_SAFE_NO_PAD
        .decode(k.as_bytes())
        .map(|v| Some(zeroize::Zeroizing::new(v)))
        .map_err(|_| Error::invalid("JWK \"k\" is not unpadded base64url"))
}

/// Parses a public JWK for `alg` into key components. Private JWKs are
/// refused; `kty` and `crv` must match `alg`.
pub(crate) fn from_jwk(alg: Algorithm, json: &[u8]) -> Result<KeyParts> {
    // An object only (serde would also take the struct as an array).
    if !json.trim_ascii_start().starts_with(b"{") {
        return Err(Error::invalid("malformed JWK"));
    }
    let jwk: JwkIn = serde_json::from_slice(json).map_err(|_| Error::invalid("malformed JWK"))?;
    if jwk.d.is_some() {
        return Err(Error::invalid(
            "private JWKs are not accepted; import PKCS#8",
        ));
    }
    check_alg_and_use(alg, jwk.alg.as_deref(), jwk.use_.as_deref())?;
    let kty = jwk.kty.as_deref();
    let crv = jwk.crv.as_deref();
    let wrong = || Error::invalid(format!("JWK kty/crv does not match {alg}"));
    match alg.family() {
        Family::RsaPkcs1 | Family::RsaPss if kty == Some("RSA") => Ok(KeyParts::Rsa {
            n: field(jwk.n.as_deref(), "n")?,
            e: field(jwk.e.as_deref(), "e")?,
        }),
        Family::Ecdsa => {
            let curve = alg.curve().ok_or_else(wrong)?;
            if kty != Some("EC") || crv != Some(curve.jwk_crv()) {
                return Err(wrong());
            }
            let mut point = Vec::with_capacity(1 + 2 * curve.size());
            point.push(0x04);
            point.extend(fixed(jwk.x.as_deref(), "x", curve.size())?);
            point.extend(fixed(jwk.y.as_deref(), "y", curve.size())?);
            Ok(KeyParts::Ec { curve, point })
        }
        Family::Ed25519 if kty == Some("OKP") && crv == Some("Ed25519") => {
            let x = fixed(jwk.x.as_deref(), "x", 32)?;
            let mut out = [0u8; 32];
            out.copy_from_slice(&x);
            Ok(KeyParts::Ed25519 { x: out })
        }
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn alg_and_use_must_agree_when_present() {
        let x = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let jwk = |extra: &str| format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}"{extra}}}"#);
        from_jwk(Algorithm::Ed25519, jwk("").as_bytes()).unwrap();
        from_jwk(
            Algorithm::Ed25519,
            jwk(r#","alg":"EdDSA","use":"sig""#).as_bytes(),
        )
        .unwrap();
        for bad in [r#","alg":"ES256""#, r#","use":"enc""#] {
            let e = from_jwk(Algorithm::Ed25519, jwk(bad).as_bytes())
                .err()
                .unwrap();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
    }

    fn err(alg: Algorithm, json: &str) -> Error {
        match from_jwk(alg, json.as_bytes()) {
            Ok(_) => panic!("accepted {json}"),
            Err(e) => e,
        }
    }

    #[test]
    fn private_jwks_are_refused_without_echo() {
        let json = r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"c2VjcmV0LXNjYWxhcg"}"#;
        let e = err(Algorithm::EcdsaP256Sha256, json);
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(e.message(), "private JWKs are not accepted; import PKCS#8");
        let e = err(
            Algorithm::RsaPss2048Sha256,
            r#"{"kty":"RSA","n":"AQ","e":"AQAB","d":{}}"#,
        );
        assert!(e.message().contains("private JWKs"));
    }

    #[test]
    fn kty_and_crv_must_match() {
        let ec = r#"{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}"#;
        assert!(err(Algorithm::EcdsaP256Sha256, ec)
            .message()
            .contains("kty/crv"));
        assert!(err(Algorithm::RsaPkcs1_2048Sha256, ec)
            .message()
            .contains("kty/crv"));
        let okp = r#"{"kty":"OKP","crv":"X25519","x":"AA"}"#;
        assert!(err(Algorithm::Ed25519, okp).message().contains("kty/crv"));
        let oct = r#"{"kty":"oct","k":"AAAA"}"#;
        assert!(err(Algorithm::Ed25519, oct).message().contains("kty/crv"));
    }

    #[test]
    fn members_are_checked() {
        for json in ["[]", "{", "\"x\"", r#"{"kty":5}"#, "{} {}"] {
            assert_eq!(err(Algorithm::Ed25519, json).message(), "malformed JWK");
        }
        let short = r#"{"kty":"OKP","crv":"Ed25519","x":"AAAA"}"#;
        assert!(err(Algorithm::Ed25519, short)
            .message()
            .contains("wrong length"));
        let padded = r#"{"kty":"RSA","n":"AQ==","e":"AQAB"}"#;
        assert!(err(Algorithm::RsaPkcs1_2048Sha256, padded)
            .message()
            .contains("base64url"));
        let missing = r#"{"kty":"RSA","n":"AQ"}"#;
        assert!(err(Algorithm::RsaPkcs1_2048Sha256, missing)
            .message()
            .contains("missing"));
    }
}
