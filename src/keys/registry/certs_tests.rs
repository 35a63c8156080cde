//! Certificates for key versions, in-memory: CSRs parse and verify under
//! the version's key, chains a CA issued for that key are attached, and
//! every chain that could not be right is refused without touching the one
//! stored. (The Python suite checks the same against OpenSSL and pyca.)

use std::time::UNIX_EPOCH;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use x509_parser::prelude::{FromDer, X509CertificationRequest};

use super::*;
use crate::error::ErrorKind;
use crate::keys::cert::CsrSubject;
use crate::keys::clock::ManualClock;
use crate::keys::memory::MemoryBackend;
use crate::keys::store::NullStore;

fn registry() -> (Arc<Registry>, ManualClock) {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let reg = Registry::new(
        Arc::new(MemoryBackend::new()),
        Arc::new(NullStore),
        Arc::new(clock.clone()),
        RegistrySettings::default(),
    );
    (Arc::new(reg), clock)
}

fn qseal_subject() -> CsrSubject {
    let a = |t: &str, v: &str| (t.to_string(), v.to_string());
    CsrSubject {
        attributes: vec![
            a("C", "DE"),
            a("O", "Zahlung GmbH"),
            a("organizationIdentifier", "PSDDE-BAFIN-123456"),
            a("CN", "Zahlung QSeal"),
        ],
        dns_names: vec!["tpp.example.com".into()],
        ..Default::default()
    }
}

async fn key(reg: &Registry, name: &str, alg: Algorithm) {
    reg.create_key(name, alg, Default::default(), None, false)
        .await
        .unwrap();
}

async fn csr(reg: &Registry, name: &str) -> Vec<u8> {
    reg.certificate_request(name, None, &qseal_subject())
        .await
        .unwrap()
        .der
}

/// A CA (a self-signed P-256 root) and a leaf it issued from `csr`.
fn issue(csr_der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (root, issuer) = root("Test Root");
    let leaf = leaf_from(csr_der, &issuer);
    (leaf, root)
}

fn root(cn: &str) -> (Vec<u8>, Issuer<'static, KeyPair>) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let der = p.self_signed(&key).unwrap().der().to_vec();
    (der, Issuer::new(p, key))
}

fn leaf_from(csr_der: &[u8], issuer: &Issuer<'_, KeyPair>) -> Vec<u8> {
    let mut req = CertificateSigningRequestParams::from_der(&csr_der.to_vec().into()).unwrap();
    req.params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    req.signed_by(issuer).unwrap().der().to_vec()
}

fn pem(chain: &[&[u8]]) -> Vec<u8> {
    chain
        .iter()
        .map(|d| crate::keys::public::pem_encode("CERTIFICATE", d))
        .collect::<String>()
        .into_bytes()
}

#[tokio::test]
async fn requests_verify_under_the_version_key_and_carry_the_subject() {
    let (reg, _) = registry();
    for (name, alg) in [
        ("rsa", Algorithm::RsaPkcs1_2048Sha256),
        ("p256", Algorithm::EcdsaP256Sha256),
        ("p384", Algorithm::EcdsaP384Sha384),
        ("ed", Algorithm::Ed25519),
    ] {
        key(&reg, name, alg).await;
        let der = csr(&reg, name).await;
        let (rest, req) = X509CertificationRequest::from_der(&der).unwrap();
        assert!(rest.is_empty(), "{name}");
        req.verify_signature().unwrap();
        let spki = reg.public_key(name, None).unwrap().key.spki_der().to_vec();
        assert_eq!(
            req.certification_request_info.subject_pki.raw,
            &spki[..],
            "{name}"
        );
        let subject = req.certification_request_info.subject.to_string();
        assert!(subject.contains("Zahlung QSeal"), "{name}: {subject}");
        let org_id = req
            .certification_request_info
            .subject
            .iter_attributes()
            .find(|a| a.attr_type().to_id_string() == "2.5.4.97")
            .and_then(|a| a.as_str().ok());
        assert_eq!(org_id, Some("PSDDE-BAFIN-123456"), "{name}");
    }
}

#[tokio::test]
async fn requests_are_refused_for_what_cannot_be_certified() {
    let (reg, _) = registry();
    key(&reg, "hmac", Algorithm::HmacSha256).await;
    key(&reg, "pss", Algorithm::RsaPss2048Sha256).await;
    key(&reg, "ec", Algorithm::EcdsaP256Sha256).await;
    let kind = |r: Result<CertificateRequest>| r.unwrap_err().kind();
    let s = qseal_subject();
    assert_eq!(
        kind(reg.certificate_request("hmac", None, &s).await),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(reg.certificate_request("pss", None, &s).await),
        ErrorKind::Unimplemented
    );
    assert_eq!(
        kind(reg.certificate_request("nope", None, &s).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(reg.certificate_request("ec", Some(9), &s).await),
        ErrorKind::NotFound
    );
    let bad = |f: &dyn Fn(&mut CsrSubject)| {
        let mut s = qseal_subject();
        f(&mut s);
        s
    };
    for s in [
        bad(&|s| s.attributes.push(("shoeSize".into(), "9".into()))),
        bad(&|s| s.attributes[0].1 = "Germany".into()),
        bad(&|s| s.attributes.push(("CN".into(), "twice".into()))),
        bad(&|s| s.attributes[1].1 = "line\nbreak".into()),
        bad(&|s| s.dns_names.push("not a name".into())),
        bad(&|s| s.uris.push("relative/path".into())),
        bad(&|s| s.emails.push("nobody".into())),
        CsrSubject::default(),
    ] {
        let e = reg.certificate_request("ec", None, &s).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{s:?}: {e}");
    }
    // A disabled version makes no request.
    reg.rotate("ec", true, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    reg.disable("ec", 1).await.unwrap();
    let e = reg
        .certificate_request("ec", Some(1), &qseal_subject())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
}

#[tokio::test]
async fn an_issued_chain_is_attached_returned_and_published() {
    let (reg, _) = registry();
    key(&reg, "seal", Algorithm::EcdsaP256Sha256).await;
    let (leaf, root) = issue(&csr(&reg, "seal").await);
    let got = reg
        .import_certificate_chain("seal", None, &pem(&[&leaf, &root]))
        .await
        .unwrap();
    assert_eq!((got.version, got.certificates.len()), (1, 2));
    let c = reg.certificate_chain("seal", Some(1)).unwrap();
    assert_eq!(c.certificates, vec![leaf.clone(), root.clone()]);
    assert!(
        c.leaf.subject.contains("Zahlung QSeal"),
        "{}",
        c.leaf.subject
    );
    assert_eq!(c.leaf.issuer, "CN=Test Root");
    let jwks = reg.jwks("seal").unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!(jwk["x5c"].as_array().unwrap().len(), 2);
    use base64::Engine as _;
    let first = base64::engine::general_purpose::STANDARD
        .decode(jwk["x5c"][0].as_str().unwrap())
        .unwrap();
    assert_eq!(first, leaf);
    assert!(jwk["x5t#S256"].is_string());
    // DER of the leaf alone is a chain too.
    reg.import_certificate_chain("seal", Some(1), &leaf)
        .await
        .unwrap();
    assert_eq!(
        reg.certificate_chain("seal", None).unwrap().certificates,
        vec![leaf]
    );
}

#[tokio::test]
async fn chains_that_cannot_be_right_are_refused_and_the_stored_one_kept() {
    let (reg, clock) = registry();
    key(&reg, "seal", Algorithm::EcdsaP256Sha256).await;
    key(&reg, "other", Algorithm::EcdsaP256Sha256).await;
    key(&reg, "mac", Algorithm::HmacSha256).await;
    let der = csr(&reg, "seal").await;
    let (root_der, issuer) = root("Test Root");
    let leaf = leaf_from(&der, &issuer);
    reg.import_certificate_chain("seal", None, &pem(&[&leaf, &root_der]))
        .await
        .unwrap();

    let (other_leaf, _) = issue(&csr(&reg, "other").await);
    let (stranger, _) = root("Test Root");
    // A CA certificate that is no CA: same name, cA not set.
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "Not a CA");
    let not_ca_key = KeyPair::generate().unwrap();
    let not_ca = p.self_signed(&not_ca_key).unwrap().der().to_vec();
    let under_not_ca = leaf_from(&der, &Issuer::new(p, not_ca_key));
    let mut expired_issuer =
        CertificateSigningRequestParams::from_der(&der.clone().into()).unwrap();
    expired_issuer.params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let expired = expired_issuer.signed_by(&issuer).unwrap().der().to_vec();
    let key_pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "another key's leaf",
            other_leaf,
            "does not hold this version's public key",
        ),
        ("root first", pem(&[&root_der, &leaf]), "does not hold"),
        (
            "a stranger's root",
            pem(&[&leaf, &stranger]),
            "does not verify",
        ),
        (
            "a non-CA issuer",
            pem(&[&under_not_ca, &not_ca]),
            "is not a CA",
        ),
        ("expired", expired, "expired"),
        ("garbage", b"\x30\x03\x02\x01".to_vec(), "not a DER X.509"),
        ("not PEM", b"hello".to_vec(), "neither DER nor PEM"),
        ("a private key", key_pem, "not a certificate"),
        ("empty", Vec::new(), "empty"),
    ];
    for (what, input, says) in cases {
        let e = reg
            .import_certificate_chain("seal", None, &input)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{what}: {e}");
        assert!(e.to_string().contains(says), "{what}: {e}");
        let kept = reg.certificate_chain("seal", None).unwrap();
        assert_eq!(
            kept.certificates[0], leaf,
            "{what} replaced the stored chain"
        );
    }
    let e = reg
        .import_certificate_chain("mac", None, &leaf)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = reg.certificate_chain("other", None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    // The gauges: an ACTIVE version with no rotation policy signs past any
    // notAfter.
    let g = reg.certificate_gauges(clock.now());
    assert_eq!(g.len(), 1);
    assert_eq!(
        (g[0].key.as_str(), g[0].version, g[0].outlived),
        ("seal", 1, true)
    );
}
