//! The token itself: clear errors for a wrong PIN, a missing token or
//! module; keys that are sensitive and never extractable; recovery from
//! lost sessions; the benchmark against a token.

use std::sync::Arc;

use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use signet::keys::clock::SystemClock;
use signet::keys::Algorithm;
use signet::server::build_registry;

use super::*;
use crate::conformance::{create, sign, verify};
use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pin_missing_token_and_module_are_clear_errors() {
    let cfg = new_token(&fresh_label());
    let clock: Arc<dyn signet::keys::clock::Clock> = Arc::new(SystemClock);

    let mut wrong = cfg.clone();
    let pin_file = env().dir.join("wrong.pin");
    std::fs::write(&pin_file, "not-the-pin\n").unwrap();
    wrong.pin_file = Some(pin_file);
    let e = build_registry(&config(wrong), clock.clone())
        .await
        .unwrap_err();
    assert!(e.contains("wrong PIN"), "{e}");
    assert!(!e.contains("not-the-pin"), "the PIN leaked: {e}");
    // One refused login does not lock the token: the right PIN still works.
    build_registry(&config(cfg.clone()), clock.clone())
        .await
        .unwrap();

    let mut missing = cfg.clone();
    missing.token_label = Some("no-such-token".into());
    let e = build_registry(&config(missing), clock.clone())
        .await
        .unwrap_err();
    assert!(
        e.contains("no PKCS#11 token with label \"no-such-token\""),
        "{e}"
    );

    let mut no_module = cfg;
    no_module.module = "/nonexistent/libpkcs11.so".into();
    let e = build_registry(&config(no_module), clock).await.unwrap_err();
    assert!(
        e.contains("module not found: /nonexistent/libpkcs11.so"),
        "{e}"
    );
}

/// Keys, generated or imported, are on the token as sensitive,
/// never-extractable objects with exactly the usages they need, as seen by
/// OpenSC's pkcs11-tool (an independent PKCS#11 client), which also cannot
/// read their values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_on_token_are_sensitive_and_never_extractable() {
    let label = fresh_label();
    let cfg = new_token(&label);
    let s = TestServer::start(config(cfg.clone())).await;
    for alg in [
        Algorithm::HmacSha256,
        Algorithm::RsaPss2048Sha256,
        Algorithm::EcdsaP384Sha384,
        Algorithm::Ed25519,
    ] {
        let name = format!("k-{}", alg.name().to_ascii_lowercase().replace('_', "-"));
        create(&s, &name, alg).await;
    }
    // Imported keys get the same templates: an HMAC secret and an ECDSA
    // key from OpenSSL.
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = crate::support::openssl(
        dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k.pem",
        ],
    );
    assert!(ok, "{out}");
    for (name, alg, material) in [
        (
            "i-hmac",
            Algorithm::HmacSha256,
            b"imported hmac secret, 32 bytes!!".to_vec(),
        ),
        (
            "i-ecdsa",
            Algorithm::EcdsaP256Sha256,
            std::fs::read(dir.path().join("k.pem")).unwrap(),
        ),
    ] {
        s.admin()
            .import_key(pb::ImportKeyRequest {
                name: name.into(),
                algorithm: pb::Algorithm::from(alg) as i32,
                material,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let pin = std::fs::read_to_string(cfg.pin_file.as_ref().unwrap()).unwrap();
    let out = std::process::Command::new("pkcs11-tool")
        .args(["--module"])
        .arg(&cfg.module)
        .args([
            "--token-label",
            &label,
            "--login",
            "--pin",
            pin.trim(),
            "--list-objects",
        ])
        .output()
        .expect("pkcs11-tool (opensc) is required for this test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys =
        text.matches("Private Key Object").count() + text.matches("Secret Key Object").count();
    assert_eq!(keys, 6, "{text}");
    // Each key object has exactly the usages its purpose needs, whatever
    // the module's defaults (SoftHSM2's would add decrypt and unwrap):
    // private keys sign, public keys verify, HMAC secrets sign and verify.
    let lines: Vec<&str> = text.lines().collect();
    let mut usages_checked = 0;
    for (i, l) in lines.iter().enumerate() {
        let want: &[&str] = if l.starts_with("Private Key Object") {
            &["sign"]
        } else if l.starts_with("Public Key Object") {
            &["verify"]
        } else if l.starts_with("Secret Key Object") {
            // pkcs11-tool lists no "sign" for a secret key (CKA_SIGN is
            // read back below), but would list encrypt, decrypt, wrap...
            &["verify"]
        } else {
            continue;
        };
        let usage = lines[i + 1..]
            .iter()
            .take_while(|x| x.starts_with(' ') || x.starts_with('\t'))
            .find(|x| x.trim_start().starts_with("Usage:"))
            .unwrap_or_else(|| panic!("no Usage line for {l}\n{text}"));
        let mut got: Vec<&str> = usage
            .trim_start()
            .trim_start_matches("Usage:")
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        got.sort_unstable();
        assert_eq!(got, want, "{l}: {usage}\n{text}");
        usages_checked += 1;
    }
    // Six private or secret keys and the public halves of the four pairs.
    assert_eq!(usages_checked, 6 + 4, "{text}");
    // Every "Access:" line of a private or secret key says sensitive and
    // never extractable; none says extractable without "never".
    let mut checked = 0;
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("Private Key Object") || l.starts_with("Secret Key Object") {
            let access = lines[i..]
                .iter()
                .take_while(|x| **x == *l || x.starts_with(' ') || x.starts_with('\t'))
                .find(|x| x.trim_start().starts_with("Access:"))
                .unwrap_or_else(|| panic!("no Access line for {l}\n{text}"));
            assert!(access.contains("sensitive"), "{access}");
            // An imported key was extractable once, by definition (it came
            // from outside); it is not extractable now either.
            let imported = lines[i + 1].contains("label:      i-");
            if imported {
                assert!(!access.contains("extractable"), "{access}");
            } else {
                assert!(access.contains("never extractable"), "{access}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 6);

    // Reading a value out is refused by the token.
    let ctx = signet::keys::pkcs11::module_context(&cfg.module).unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == label)
        .unwrap();
    let session = ctx.open_ro_session(slot).unwrap();
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::SECRET_KEY] {
        for h in session.find_objects(&[Attribute::Class(class)]).unwrap() {
            let attrs = session
                .get_attributes(
                    h,
                    &[
                        AttributeType::Sensitive,
                        AttributeType::Extractable,
                        AttributeType::Token,
                        AttributeType::Private,
                    ],
                )
                .unwrap();
            for a in attrs {
                match a {
                    Attribute::Sensitive(v) | Attribute::Token(v) | Attribute::Private(v) => {
                        assert!(v, "{a:?}")
                    }
                    Attribute::Extractable(v) => assert!(!v),
                    _ => {}
                }
            }
            // It signs; the usages no key of signet's has read back false.
            let usages = session
                .get_attributes(
                    h,
                    &[
                        AttributeType::Sign,
                        AttributeType::Decrypt,
                        AttributeType::Unwrap,
                        AttributeType::Derive,
                    ],
                )
                .unwrap();
            assert_eq!(usages.len(), 4, "{usages:?}");
            for a in usages {
                match a {
                    Attribute::Sign(v) => assert!(v, "{a:?}"),
                    Attribute::Decrypt(v) | Attribute::Unwrap(v) | Attribute::Derive(v) => {
                        assert!(!v, "{a:?}")
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            let value = session.get_attributes(h, &[AttributeType::Value]);
            assert!(
                !matches!(value.as_deref(), Ok([Attribute::Value(_)])),
                "a key value was readable"
            );
        }
    }
    drop(session);
    s.stop().await.unwrap();
}

/// `signet bench --in-process --backend-config` runs against a token, raw
/// and through the backend, and leaves no key behind.
#[test]
fn bench_against_a_token() {
    let cfg = new_token(&fresh_label());
    let path = write_config(&cfg, "");
    for raw in [false, true] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_signet"));
        cmd.args(["--json", "bench", "--in-process", "--backend-config"])
            .arg(&path)
            .args(["-a", "ECDSA_P256_SHA256", "--concurrency", "2"])
            .args(["--duration", "300ms", "--warmup", "0s"])
            .env("SOFTHSM2_CONF", env().dir.join("softhsm2.conf"));
        if raw {
            cmd.arg("--raw");
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert!(report["requests"].as_u64().unwrap() > 0, "{report}");
        assert_eq!(report["errors"].as_u64(), Some(0), "{report}");
        let want = if raw {
            "raw PKCS#11 C_Sign"
        } else {
            "in-process PKCS#11 backend"
        };
        assert_eq!(report["mode"], want);
    }
    // The temporary bench keys are gone from the token.
    let backend = open_backend(&cfg);
    assert_eq!(
        signet::keys::KeyBackend::orphan_check(&backend, &[]).unwrap(),
        Vec::<String>::new()
    );
}

/// A token that loses signet's sessions and login (here: another client
/// of the module logs the application out) costs no failed request: the
/// backend reopens sessions and logs in again on its own; health stays
/// SERVING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_from_lost_sessions_and_login() {
    let label = fresh_label();
    let cfg = new_token(&label);
    let s = TestServer::start(config(cfg.clone())).await;
    create(&s, "survivor", Algorithm::EcdsaP256Sha256).await;
    create(&s, "survivor-mac", Algorithm::HmacSha256).await;
    sign(&s, "survivor", b"before").await;

    let ctx = signet::keys::pkcs11::module_context(&cfg.module).unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|sl| ctx.get_token_info(*sl).unwrap().label().trim_end() == label)
        .unwrap();
    let outsider = ctx.open_ro_session(slot).unwrap();
    outsider.logout().unwrap(); // PKCS#11 logins are per application
    drop(outsider);

    for key in ["survivor", "survivor-mac"] {
        let sig = sign(&s, key, b"after").await;
        assert!(verify(&s, key, b"after", &sig.signature).await.valid);
    }
    let mut health = tonic_health::pb::health_client::HealthClient::new(s.channel());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    s.stop().await.unwrap();
}
