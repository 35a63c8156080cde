//! Registry tests with the in-memory backend and a manual clock: staged
//! rotation end to end, time-driven transitions, concurrency.

use std::time::UNIX_EPOCH;

use super::*;
use crate::error::ErrorKind;
use crate::keys::clock::ManualClock;
use crate::keys::ecdsa_sig::SignatureFormat;
use crate::keys::memory::MemoryBackend;
use crate::keys::record::RotationPolicy;
use crate::keys::store::NullStore;

fn registry() -> (Arc<Registry>, ManualClock) {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let reg = Registry::new(
        Arc::new(MemoryBackend::new()),
        Arc::new(NullStore),
        Arc::new(clock.clone()),
        RegistrySettings {
            default_grace: Duration::from_secs(3600),
            destroy_delay: Duration::from_secs(600),
            destroy_orphans: false,
            ..Default::default()
        },
    );
    (Arc::new(reg), clock)
}

fn msg(m: &[u8]) -> Input {
    Input::Message(m.to_vec())
}

async fn sign(reg: &Registry, name: &str) -> KeySignature {
    reg.sign(name, None, msg(b"payload"), SignatureFormat::Der)
        .await
        .unwrap()
}

async fn verifies(reg: &Registry, name: &str, sig: &[u8]) -> Option<u32> {
    reg.verify(
        name,
        None,
        msg(b"payload"),
        vec![sig.to_vec()],
        SignatureFormat::Der,
    )
    .await
    .unwrap()
    .version
}

fn state(reg: &Registry, name: &str, v: u32) -> VersionState {
    reg.get(name).unwrap().record.version(v).unwrap().state
}

#[tokio::test]
async fn staged_rotation_walk() {
    let (reg, clock) = registry();
    reg.create_key(
        "k",
        Algorithm::EcdsaP256Sha256,
        BTreeMap::new(),
        None,
        false,
    )
    .await
    .unwrap();
    let s1 = sign(&reg, "k").await;
    assert_eq!(s1.version, 1);
    assert_eq!(s1.key_version_id, "k:v1");

    let (_, v2) = reg.rotate("k", false, None).await.unwrap();
    assert_eq!(v2, 2);
    assert_eq!(state(&reg, "k", 2), VersionState::Pending);
    // The old version still signs; the pending one neither signs nor verifies.
    assert_eq!(sign(&reg, "k").await.version, 1);
    let e = reg
        .sign("k", Some(2), msg(b"payload"), SignatureFormat::Der)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    // Its public key is already published.
    assert_eq!(reg.jwks("k").unwrap()["keys"].as_array().unwrap().len(), 2);

    reg.promote("k", 2, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    let s2 = sign(&reg, "k").await;
    assert_eq!(s2.version, 2);
    assert_eq!(verifies(&reg, "k", &s1.signature).await, Some(1));
    assert_eq!(verifies(&reg, "k", &s2.signature).await, Some(2));

    clock.advance(Duration::from_secs(29));
    assert_eq!(verifies(&reg, "k", &s1.signature).await, Some(1));
    clock.advance(Duration::from_secs(1));
    // Grace over: without any tick, the old version no longer verifies.
    assert_eq!(verifies(&reg, "k", &s1.signature).await, None);
    assert_eq!(state(&reg, "k", 1), VersionState::Disabled);
    let e = reg
        .verify(
            "k",
            Some(1),
            msg(b"payload"),
            vec![s1.signature.clone()],
            SignatureFormat::Der,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);

    // Enable gives it a new grace period.
    reg.enable("k", 1, Some(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(verifies(&reg, "k", &s1.signature).await, Some(1));
    reg.disable("k", 1).await.unwrap();
    assert_eq!(verifies(&reg, "k", &s1.signature).await, None);
}

#[tokio::test]
async fn scheduled_destruction_removes_material() {
    let (reg, clock) = registry();
    reg.create_key("k", Algorithm::HmacSha256, BTreeMap::new(), None, false)
        .await
        .unwrap();
    reg.rotate("k", true, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(5));
    reg.tick().await;
    let rec = reg.get("k").unwrap().record;
    assert_eq!(rec.version(1).unwrap().state, VersionState::Disabled);
    reg.destroy("k", 1).await.unwrap();
    assert_eq!(state(&reg, "k", 1), VersionState::DestroyScheduled);
    reg.restore("k", 1).await.unwrap();
    reg.destroy("k", 1).await.unwrap();
    clock.advance(Duration::from_secs(600));
    // Effective immediately, written down (and material destroyed) by the tick.
    assert_eq!(state(&reg, "k", 1), VersionState::Destroyed);
    reg.tick().await;
    let entry = reg.entry("k").unwrap();
    assert!(!entry.state.read().material.contains_key(&1));
    assert_eq!(
        entry.state.read().record.versions[0].state,
        VersionState::Destroyed
    );
    assert_eq!(
        reg.restore("k", 1).await.unwrap_err().kind(),
        ErrorKind::FailedPrecondition
    );
}

#[tokio::test]
async fn rotation_policy_runs_on_the_clock() {
    let (reg, clock) = registry();
    let policy = RotationPolicy {
        rotation_period: Duration::from_secs(100),
        pending_period: Duration::from_secs(30),
        grace_period: Some(Duration::from_secs(20)),
        rotate_after_encryptions: None,
    };
    let v = reg
        .create_key(
            "k",
            Algorithm::Ed25519,
            BTreeMap::new(),
            Some(policy),
            false,
        )
        .await
        .unwrap();
    let start = clock.now();
    assert_eq!(v.next_rotation, Some(start + Duration::from_secs(70)));
    clock.advance(Duration::from_secs(69));
    reg.tick().await;
    assert_eq!(reg.get("k").unwrap().record.versions.len(), 1);
    clock.advance(Duration::from_secs(1));
    reg.tick().await;
    assert_eq!(state(&reg, "k", 2), VersionState::Pending);
    clock.advance(Duration::from_secs(30));
    reg.tick().await;
    assert_eq!(state(&reg, "k", 2), VersionState::Active);
    assert_eq!(state(&reg, "k", 1), VersionState::Retiring);
    clock.advance(Duration::from_secs(20));
    reg.tick().await;
    assert_eq!(
        reg.entry("k").unwrap().state.read().record.versions[0].state,
        VersionState::Disabled
    );
    assert_eq!(sign(&reg, "k").await.version, 2);
}

#[tokio::test]
async fn concurrent_rotations_keep_one_active() {
    let (reg, _) = registry();
    reg.create_key("k", Algorithm::HmacSha256, BTreeMap::new(), None, false)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let r = reg.clone();
        tasks.push(tokio::spawn(async move {
            r.rotate("k", true, None).await.map(|(_, v)| v)
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap());
    }
    versions.sort();
    assert_eq!(versions, (2..=17).collect::<Vec<_>>());
    let rec = reg.get("k").unwrap().record;
    rec.check_invariants().unwrap();
    assert_eq!(rec.active().unwrap().version, 17);
    assert_eq!(sign(&reg, "k").await.version, 17);
}

#[tokio::test]
async fn import_rules() {
    let (reg, _) = registry();
    let secret = [7u8; 32];
    reg.import_key("h", Algorithm::HmacSha256, &secret, false, BTreeMap::new())
        .await
        .unwrap();
    let e = reg
        .import_key("h", Algorithm::HmacSha256, &secret, false, BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    let e = reg
        .import_key("h", Algorithm::HmacSha512, &secret, true, BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = reg
        .import_key(
            "nope",
            Algorithm::HmacSha256,
            &secret,
            true,
            BTreeMap::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let v = reg
        .import_key(
            "h",
            Algorithm::HmacSha256,
            &[9u8; 32],
            true,
            BTreeMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(v.record.version(2).unwrap().state, VersionState::Pending);

    // A public key makes a verify-only key that refuses to sign or rotate.
    let (src, _) = registry();
    src.create_key(
        "e",
        Algorithm::EcdsaP256Sha256,
        BTreeMap::new(),
        None,
        false,
    )
    .await
    .unwrap();
    let pem = src.public_key("e", None).unwrap().key.to_pem();
    let sig = sign(&src, "e").await;
    reg.import_key(
        "pub",
        Algorithm::EcdsaP256Sha256,
        pem.as_bytes(),
        false,
        BTreeMap::new(),
    )
    .await
    .unwrap();
    assert!(reg.get("pub").unwrap().record.verify_only);
    assert_eq!(verifies(&reg, "pub", &sig.signature).await, Some(1));
    let e = reg
        .sign("pub", None, msg(b"payload"), SignatureFormat::Der)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    let e = reg.rotate("pub", false, None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
}

#[tokio::test]
async fn failed_input_checks_change_nothing() {
    let (reg, _) = registry();
    reg.create_key(
        "k",
        Algorithm::RsaPss2048Sha256,
        BTreeMap::new(),
        None,
        false,
    )
    .await
    .unwrap();
    let e = reg
        .sign("k", None, Input::Digest(vec![0; 31]), SignatureFormat::Der)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = reg
        .create_key("k", Algorithm::HmacSha256, BTreeMap::new(), None, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        reg.get("k").unwrap().record.algorithm,
        Algorithm::RsaPss2048Sha256
    );
    assert_eq!(
        reg.promote("k", 1, None).await.unwrap_err().kind(),
        ErrorKind::FailedPrecondition
    );
    assert_eq!(
        reg.promote("k", 7, None).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(sign(&reg, "k").await.version, 1);
}
