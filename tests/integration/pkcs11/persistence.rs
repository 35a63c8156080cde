//! What a persistent backend keeps: keys, versions and states across a
//! restart, a second registry on the same token, and a consistent registry
//! after a kill during rotations.

use signet::api::pb;
use signet::keys::Algorithm;

use super::*;
use crate::conformance::{create, pem, sign, verify};
use crate::support::{code, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_keys_versions_and_states() {
    let cfg = new_token(&fresh_label());
    let algs = [
        Algorithm::HmacSha256,
        Algorithm::RsaPkcs1_2048Sha256,
        Algorithm::EcdsaP256Sha256,
        Algorithm::Ed25519,
    ];
    let msg = b"persist me";
    let s = TestServer::start(config(cfg.clone())).await;
    let mut before = Vec::new();
    for alg in algs {
        let name = format!("k-{}", alg.name().to_ascii_lowercase().replace('_', "-"));
        create(&s, &name, alg).await;
        rotate(&s, &name, true).await.unwrap();
        rotate(&s, &name, false).await.unwrap();
        let sig = sign(&s, &name, msg).await;
        assert_eq!(sig.version, 2);
        let public = if alg.is_symmetric() {
            String::new()
        } else {
            pem(&s, &name, 2).await
        };
        before.push((
            name.clone(),
            summary(&get_key(&s, &name).await),
            sig.signature,
            public,
        ));
    }
    s.stop().await.unwrap();

    let s = TestServer::start(config(cfg)).await;
    for (name, versions, sig, public) in before {
        let k = get_key(&s, &name).await;
        assert_eq!(summary(&k), versions, "{name}");
        assert_eq!(k.active_version, 2, "{name}");
        assert_eq!(k.protection_level, pb::ProtectionLevel::Hsm as i32);
        // The signature made before the restart verifies after it, and the
        // same key signs again.
        assert!(verify(&s, &name, msg, &sig).await.valid, "{name}");
        let again = sign(&s, &name, msg).await;
        assert!(verify(&s, &name, msg, &again.signature).await.valid);
        if !public.is_empty() {
            assert_eq!(pem(&s, &name, 2).await, public, "{name}");
        }
    }
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_registries_on_one_token_agree() {
    let cfg = new_token(&fresh_label());
    let a = TestServer::start(config(cfg.clone())).await;
    create(&a, "shared", Algorithm::EcdsaP256Sha256).await;
    let b = TestServer::start(config(cfg)).await;
    assert_eq!(get_key(&b, "shared").await.active_version, 1);

    // A rotates and promotes; B sees it after its next refresh (every tick).
    rotate(&a, "shared", true).await.unwrap();
    b.registry.refresh().await.unwrap();
    let kb = get_key(&b, "shared").await;
    assert_eq!(summary(&kb), summary(&get_key(&a, "shared").await));
    assert_eq!(kb.active_version, 2);
    let sig = sign(&b, "shared", b"from b").await;
    assert_eq!(sig.version, 2);
    assert!(verify(&a, "shared", b"from b", &sig.signature).await.valid);

    // B acting on a stale view is refused, not silently overwriting A.
    rotate(&a, "shared", false).await.unwrap();
    let r = rotate(&b, "shared", false).await;
    assert_eq!(code(r), tonic::Code::Aborted);
    b.registry.refresh().await.unwrap();
    let k = rotate(&b, "shared", false).await.unwrap();
    assert_eq!(k.versions.len(), 4);
    a.registry.refresh().await.unwrap();
    let ka = get_key(&a, "shared").await;
    assert_eq!(summary(&ka), summary(&k));
    assert_eq!(
        ka.versions
            .iter()
            .filter(|v| v.state == pb::KeyVersionState::Active as i32)
            .count(),
        1
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Kill -9 the server while it rotates keys under signing load, restart
/// it: no key has two ACTIVE versions, every version that may verify still
/// has its material, and leftovers are reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_rotations_restarts_consistent() {
    let cfg = new_token(&fresh_label());
    let names = ["crash-ec", "crash-hmac", "crash-ed"];
    let algs = [
        Algorithm::EcdsaP256Sha256,
        Algorithm::HmacSha256,
        Algorithm::Ed25519,
    ];
    for round in 0..2 {
        let child = Child::spawn(&cfg);
        if round == 0 {
            for (n, a) in names.iter().zip(algs) {
                child
                    .admin()
                    .await
                    .create_key(pb::CreateKeyRequest {
                        name: n.to_string(),
                        algorithm: pb::Algorithm::from(a) as i32,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
            }
        }
        let mut tasks = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let mut admin = child.admin().await;
            let mut signer = child.signer().await;
            let n = n.to_string();
            tasks.push(tokio::spawn(async move {
                for j in 0.. {
                    let _ = admin
                        .rotate_key(pb::RotateKeyRequest {
                            name: n.clone(),
                            promote: (i + j) % 2 == 0,
                            grace_period: Some(prost_types::Duration {
                                seconds: 3600,
                                nanos: 0,
                            }),
                        })
                        .await;
                    let _ = signer
                        .sign(pb::SignRequest {
                            key: n.clone(),
                            input: Some(pb::sign_request::Input::Message(b"load".to_vec())),
                            ..Default::default()
                        })
                        .await;
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(1500 + 250 * round)).await;
        let mut child = child;
        child.serve.kill(); // SIGKILL: no shutdown path runs
        for t in tasks {
            t.abort();
        }
    }

    let child = Child::spawn(&cfg);
    let mut admin = child.admin().await;
    for n in names {
        let k = admin
            .get_key(pb::GetKeyRequest { name: n.into() })
            .await
            .unwrap()
            .into_inner()
            .key
            .unwrap();
        assert!(k.versions.len() > 2, "{n}: the load rotated nothing");
        let active = k
            .versions
            .iter()
            .filter(|v| v.state == pb::KeyVersionState::Active as i32)
            .count();
        assert_eq!(active, 1, "{n}: {:?}", k.versions);
        // Every version that may verify still has its material: a
        // signature by the active version verifies, and each verifying
        // version of an asymmetric key exports its public key.
        let mut signer = child.signer().await;
        let sig = signer
            .sign(pb::SignRequest {
                key: n.into(),
                input: Some(pb::sign_request::Input::Message(b"after".to_vec())),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let ok = signer
            .verify(pb::VerifyRequest {
                key: n.into(),
                input: Some(pb::verify_request::Input::Message(b"after".to_vec())),
                signature: sig.signature,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(ok.valid);
        if n != "crash-hmac" {
            for v in &k.versions {
                let verifies = [
                    pb::KeyVersionState::Active,
                    pb::KeyVersionState::Pending,
                    pb::KeyVersionState::Retiring,
                ]
                .iter()
                .any(|s| *s as i32 == v.state);
                if verifies {
                    signer
                        .get_public_key(pb::GetPublicKeyRequest {
                            key: n.into(),
                            version: v.version,
                            ..Default::default()
                        })
                        .await
                        .unwrap_or_else(|e| panic!("{n} v{}: {e}", v.version));
                }
            }
        }
    }
    let log = child.serve.log_text();
    assert!(!log.contains("cannot be opened"), "{log}");
    // At most one interrupted create/rotation per key and kill.
    let reported = log.matches("no key record names").count();
    assert!(reported <= 2 * names.len(), "{log}");
    drop(admin);
    drop(child);

    // A start with destroy_orphans removes what was reported; the next
    // start finds nothing left over.
    let mut cleaning = cfg.clone();
    cleaning.destroy_orphans = true;
    let s = TestServer::start(config(cleaning)).await;
    s.stop().await.unwrap();
    let backend = std::sync::Arc::new(open_backend(&cfg));
    let store = signet::keys::pkcs11::store::TokenStore::new(backend.clone());
    let records = store.read_now().unwrap();
    let referenced: Vec<String> = records
        .iter()
        .flat_map(|r| r.versions.iter())
        .filter(|v| v.state != signet::keys::record::VersionState::Destroyed)
        .map(|v| v.label.clone())
        .collect();
    assert_eq!(
        signet::keys::KeyBackend::orphan_check(&*backend, &referenced).unwrap(),
        Vec::<String>::new()
    );
}
