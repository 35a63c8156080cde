//! RFC 9421 Appendix B.2, reproduced with the RFC's own test keys (B.1):
//! the signature bases byte for byte, the deterministic signatures (HMAC,
//! Ed25519) byte for byte, the randomised ones (RSA-PSS, ECDSA) verified.
//! Then the policy's refusals, each with its reason.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::STANDARD, Engine};

use crate::httpsig::engine::{self, Reason, Request};
use crate::httpsig::profile::{Profile, ProfileConfig};
use crate::httpsig::replay::MemoryReplayStore;
use crate::keys::clock::ManualClock;
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::memory::MemoryBackend;
use crate::keys::registry::{Input, Registry, RegistrySettings};
use crate::keys::store::NullStore;
use crate::keys::Algorithm;

/// The RFC's `created`.
const CREATED: u64 = 1_618_884_473;

// Appendix B.1's keys, as the RFC publishes them.
const RSA_PSS_PUB: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr4tmm3r20Wd/PbqvP1s2
+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry53mm+
oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7OyrFAHq
gDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUAAN5W
Utzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw9lq4
aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oyc6XI
2wIDAQAB
-----END PUBLIC KEY-----
";
const ECC_P256_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----
";
const ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
";
const SHARED_SECRET: &str =
    "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==";

/// Appendix B.2's request.
const URL: &str = "https://example.com/foo?param=Value&Pet=dog";
const BODY: &[u8] = br#"{"hello": "world"}"#;
const DIGEST: &str =
    "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";

fn headers() -> Vec<(String, String)> {
    [
        ("Host", "example.com"),
        ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("Content-Type", "application/json"),
        ("Content-Digest", DIGEST),
        ("Content-Length", "18"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

fn req() -> Request<'static> {
    Request {
        method: "POST",
        url: URL,
        body: BODY,
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

async fn registry() -> (Arc<Registry>, ManualClock) {
    let clock = ManualClock::new(at(CREATED));
    let reg = Arc::new(Registry::new(
        Arc::new(MemoryBackend::new()),
        Arc::new(NullStore),
        Arc::new(clock.clone()),
        RegistrySettings::default(),
    ));
    let secret = STANDARD.decode(SHARED_SECRET).unwrap();
    for (name, alg, material) in [
        (
            "rsa-pss",
            Algorithm::RsaPss2048Sha512,
            RSA_PSS_PUB.as_bytes(),
        ),
        (
            "ecc-p256",
            Algorithm::EcdsaP256Sha256,
            ECC_P256_PUB.as_bytes(),
        ),
        ("ed25519", Algorithm::Ed25519, ED25519.as_bytes()),
        ("shared", Algorithm::HmacSha256, &secret[..]),
    ] {
        reg.import_key(name, alg, material, false, BTreeMap::new())
            .await
            .unwrap();
    }
    (reg, clock)
}

fn profile(toml_text: &str) -> Profile {
    let c: ProfileConfig = toml::from_str(toml_text).unwrap();
    c.resolve().unwrap_or_else(|e| panic!("{e}"))
}

fn value<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    &h.iter().find(|(n, _)| n == name).unwrap().1
}

/// Signs B.2's request by `profile` at the RFC's time; the headers signet
/// adds and the base.
async fn sign(reg: &Registry, p: &Profile, nonce: Option<&str>) -> engine::SignedRequest {
    engine::sign(p, reg, req(), &headers(), nonce, at(CREATED))
        .await
        .unwrap()
}

async fn verify(reg: &Registry, p: &Profile, extra: &[(&str, &str)], now: u64) -> Option<Reason> {
    let mut h = headers();
    h.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    let replay = MemoryReplayStore::new(1024);
    engine::verify(p, reg, &replay, req(), &h, "", at(now))
        .await
        .unwrap()
        .reason
}

/// B.2.5: HMAC-SHA256, deterministic: base and signature byte for byte,
/// and the RFC's fields verify.
#[tokio::test]
async fn b25_hmac_sha256() {
    let (reg, _) = registry().await;
    let p = profile(
        r#"name = "b25"
scheme = "rfc9421"
key = "shared"
[rfc9421]
label = "sig-b25"
components = ["date", "@authority", "content-type"]
keyid = "test-shared-secret"
[rfc9421.keyids]
"test-shared-secret" = "shared"
"#,
    );
    let out = sign(&reg, &p, None).await;
    assert_eq!(
        out.string_to_sign,
        "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\
         \"@authority\": example.com\n\
         \"content-type\": application/json\n\
         \"@signature-params\": (\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\""
    );
    assert_eq!(
        value(&out.headers, "Signature-Input"),
        "sig-b25=(\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\""
    );
    assert_eq!(
        value(&out.headers, "Signature"),
        "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:"
    );
    let fields = [
        ("Signature-Input", value(&out.headers, "Signature-Input")),
        ("Signature", value(&out.headers, "Signature")),
    ];
    assert_eq!(verify(&reg, &p, &fields, CREATED + 10).await, None);
}

/// B.2.6: Ed25519, deterministic.
#[tokio::test]
async fn b26_ed25519() {
    let (reg, _) = registry().await;
    let p = profile(
        r#"name = "b26"
scheme = "rfc9421"
key = "ed25519"
[rfc9421]
label = "sig-b26"
components = ["date", "@method", "@path", "@authority", "content-type", "content-length"]
keyid = "test-key-ed25519"
[rfc9421.keyids]
"test-key-ed25519" = "ed25519"
"#,
    );
    let out = sign(&reg, &p, None).await;
    assert_eq!(
        out.string_to_sign,
        "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\
         \"@method\": POST\n\
         \"@path\": /foo\n\
         \"@authority\": example.com\n\
         \"content-type\": application/json\n\
         \"content-length\": 18\n\
         \"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\""
    );
    assert_eq!(
        value(&out.headers, "Signature"),
        "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
    );
}

/// A verify-only RSA-PSS profile for B.2.1 to B.2.3 (signet holds only
/// the RFC's public key; its signatures are randomised).
fn pss_profile(components: &str) -> Profile {
    profile(&format!(
        r#"name = "pss"
scheme = "rfc9421"
verify_key = "rsa-pss"
use_nonce = false
[rfc9421]
required_components = {components}
[rfc9421.keyids]
"test-key-rsa-pss" = "rsa-pss"
"#
    ))
}

/// B.2.1: no components, a nonce. The base is checked by signing it with
/// the RFC's parameters under a signing profile of our own (a fresh
/// RSA-PSS key), and the RFC's signature verifies.
#[tokio::test]
async fn b21_minimal() {
    let (reg, _) = registry().await;
    reg.create_key(
        "own-pss",
        Algorithm::RsaPss2048Sha512,
        BTreeMap::new(),
        None,
        false,
    )
    .await
    .unwrap();
    let signer = profile(
        r#"name = "b21"
scheme = "rfc9421"
key = "own-pss"
use_nonce = true
[rfc9421]
label = "sig-b21"
components = []
keyid = "test-key-rsa-pss"
"#,
    );
    let out = sign(&reg, &signer, Some("b3k2pp5k7z-50gnwp.yemd")).await;
    assert_eq!(
        out.string_to_sign,
        "\"@signature-params\": ();created=1618884473;keyid=\"test-key-rsa-pss\";nonce=\"b3k2pp5k7z-50gnwp.yemd\""
    );
    let fields = [
        ("Signature-Input", "sig-b21=();created=1618884473;keyid=\"test-key-rsa-pss\";nonce=\"b3k2pp5k7z-50gnwp.yemd\""),
        ("Signature", "sig-b21=:d2pmTvmbncD3xQm8E9ZV2828BjQWGgiwAaw5bAkgibUopemLJcWDy/lkbbHAve4cRAtx31Iq786U7it++wgGxbtRxf8Udx7zFZsckzXaJMkA7ChG52eSkFxykJeNqsrWH5S+oxNFlD4dzVuwe8DhTSja8xxbR/Z2cOGdCbzR72rgFWhzx2VjBqJzsPLMIQKhO4DGezXehhWwE56YCE+O6c0mKZsfxVrogUvA4HELjVKWmAvtl6UnCh8jYzuVG5WSb/QEVPnP5TmcAnLH1g+s++v6d4s8m0gCw1fV5/SITLq9mhho8K3+7EPYTU8IU1bLhdxO5Nyt8C8ssinQ98Xw9Q==:"),
    ];
    assert_eq!(
        verify(&reg, &pss_profile("[]"), &fields, CREATED).await,
        None
    );
    // One byte of the nonce changed: the same signature no longer verifies.
    let tampered = [
        ("Signature-Input", "sig-b21=();created=1618884473;keyid=\"test-key-rsa-pss\";nonce=\"b3k2pp5k7z-50gnwp.yemE\""),
        fields[1],
    ];
    assert_eq!(
        verify(&reg, &pss_profile("[]"), &tampered, CREATED).await,
        Some(Reason::SignatureMismatch)
    );
}

const B22_INPUT: &str = "sig-b22=(\"@authority\" \"content-digest\" \"@query-param\";name=\"Pet\");created=1618884473;keyid=\"test-key-rsa-pss\";tag=\"header-example\"";
const B22_SIG: &str = "sig-b22=:LjbtqUbfmvjj5C5kr1Ugj4PmLYvx9wVjZvD9GsTT4F7GrcQEdJzgI9qHxICagShLRiLMlAJjtq6N4CDfKtjvuJyE5qH7KT8UCMkSowOB4+ECxCmT8rtAmj/0PIXxi0A0nxKyB09RNrCQibbUjsLS/2YyFYXEu4TRJQzRw1rLEuEfY17SARYhpTlaqwZVtR8NV7+4UKkjqpcAoFqWFQh62s7Cl+H2fjBSpqfZUJcsIk4N6wiKYd4je2U/lankenQ99PZfB4jY3I5rSV2DSBVkSFsURIjYErOs0tFTQosMTAoxk//0RoKUqiYY8Bh0aaUEb0rQl3/XaVe4bXTugEjHSw==:";

/// B.2.2: selective components, a query parameter, a tag; its base is
/// reproduced and its signature verifies.
#[tokio::test]
async fn b22_selective() {
    let (reg, _) = registry().await;
    reg.create_key(
        "own-pss",
        Algorithm::RsaPss2048Sha512,
        BTreeMap::new(),
        None,
        false,
    )
    .await
    .unwrap();
    let signer = profile(
        r#"name = "b22"
scheme = "rfc9421"
key = "own-pss"
[rfc9421]
label = "sig-b22"
components = ["@authority", "content-digest", '"@query-param";name="Pet"']
keyid = "test-key-rsa-pss"
tag = "header-example"
"#,
    );
    let out = sign(&reg, &signer, None).await;
    assert_eq!(
        out.string_to_sign,
        format!(
            "\"@authority\": example.com\n\
             \"content-digest\": {DIGEST}\n\
             \"@query-param\";name=\"Pet\": dog\n\
             \"@signature-params\": (\"@authority\" \"content-digest\" \"@query-param\";name=\"Pet\");created=1618884473;keyid=\"test-key-rsa-pss\";tag=\"header-example\""
        )
    );
    // The caller's Content-Digest matched the body, so signet wrote none.
    assert!(out.headers.iter().all(|(n, _)| n != "Content-Digest"));
    let p = pss_profile(r#"["@authority", "content-digest"]"#);
    let fields = [("Signature-Input", B22_INPUT), ("Signature", B22_SIG)];
    assert_eq!(verify(&reg, &p, &fields, CREATED).await, None);
}

/// B.2.3: full coverage.
#[tokio::test]
async fn b23_full() {
    let (reg, _) = registry().await;
    let components = r#"["date", "@method", "@path", "@query", "@authority", "content-type", "content-digest", "content-length"]"#;
    let input = "sig-b23=(\"date\" \"@method\" \"@path\" \"@query\" \"@authority\" \"content-type\" \"content-digest\" \"content-length\");created=1618884473;keyid=\"test-key-rsa-pss\"";
    let sig = "sig-b23=:bbN8oArOxYoyylQQUU6QYwrTuaxLwjAC9fbY2F6SVWvh0yBiMIRGOnMYwZ/5MR6fb0Kh1rIRASVxFkeGt683+qRpRRU5p2voTp768ZrCUb38K0fUxN0O0iC59DzYx8DFll5GmydPxSmme9v6ULbMFkl+V5B1TP/yPViV7KsLNmvKiLJH1pFkh/aYA2HXXZzNBXmIkoQoLd7YfW91kE9o/CCoC1xMy7JA1ipwvKvfrs65ldmlu9bpG6A9BmzhuzF8Eim5f8ui9eH8LZH896+QIF61ka39VBrohr9iyMUJpvRX2Zbhl5ZJzSRxpJyoEZAFL2FUo5fTIztsDZKEgM4cUA==:";
    let p = pss_profile(components);
    assert_eq!(
        verify(
            &reg,
            &p,
            &[("Signature-Input", input), ("Signature", sig)],
            CREATED
        )
        .await,
        None
    );
}

/// B.2.4 signs a response (`@status`), which a request signer has no use
/// for: its base, as the RFC gives it, verifies under the RFC's P-256 key
/// with the signature as r‖s.
#[tokio::test]
async fn b24_ecdsa_p256_base_verifies() {
    let (reg, _) = registry().await;
    let base = "\"@status\": 200\n\
        \"content-type\": application/json\n\
        \"content-digest\": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:\n\
        \"content-length\": 23\n\
        \"@signature-params\": (\"@status\" \"content-type\" \"content-digest\" \"content-length\");created=1618884473;keyid=\"test-key-ecc-p256\"";
    let sig = STANDARD
        .decode("wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==")
        .unwrap();
    let ok = |b: &str| {
        let reg = reg.clone();
        let (b, sig) = (b.as_bytes().to_vec(), sig.clone());
        async move {
            reg.verify(
                "ecc-p256",
                None,
                Input::Message(b),
                vec![sig],
                SignatureFormat::Raw,
            )
            .await
            .unwrap()
            .valid
        }
    };
    assert!(ok(base).await);
    assert!(!ok(&base.replace("200", "201")).await);
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod policy;
