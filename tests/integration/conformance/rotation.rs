//! Rotation and the version lifecycle: staged rotation with grace, one-step
//! rotation, disable/destroy/restore, rotation policies, concurrent rotations.

use std::time::Duration;

use signet::api::pb;
use signet::keys::Algorithm;
use tonic::Code;

use super::*;
use crate::support::{code, TestServer};

/// RotateKey → old still signs; promote → new signs, old verifies until the
/// grace runs out, then not.
pub async fn rotation_walk_with_grace(s: &TestServer) {
    create(s, "walk", Algorithm::EcdsaP256Sha256).await;
    let old = sign(s, "walk", b"m").await;
    let r = s
        .admin()
        .rotate_key(pb::RotateKeyRequest {
            name: "walk".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let v2 = r.version.unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.state(), pb::KeyVersionState::Pending);
    assert_eq!(r.key.unwrap().active_version, 1);
    assert_eq!(
        sign(s, "walk", b"m").await.version,
        1,
        "old version still signs"
    );
    assert_eq!(
        code(try_sign(s, "walk", 2, b"m").await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(try_verify(s, "walk", 2, b"m", &old.signature).await),
        Code::FailedPrecondition
    );

    let k = s
        .admin()
        .promote_key_version(pb::PromoteKeyVersionRequest {
            name: "walk".into(),
            version: 2,
            grace_period: dur(60),
        })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    assert_eq!(k.active_version, 2);
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Retiring);
    let until = k.versions[0].verify_until.unwrap();
    assert_eq!(
        until,
        prost_types::Timestamp::from(s.now() + Duration::from_secs(60))
    );
    let new = sign(s, "walk", b"m").await;
    assert_eq!(new.version, 2);
    assert_eq!(
        code(try_sign(s, "walk", 1, b"m").await),
        Code::FailedPrecondition
    );
    let v = verify(s, "walk", b"m", &old.signature).await;
    assert!(v.valid);
    assert_eq!(v.version, 1, "old signature verifies with v1 during grace");
    assert_eq!(verify(s, "walk", b"m", &new.signature).await.version, 2);

    s.advance(Duration::from_secs(59)).await;
    assert!(verify(s, "walk", b"m", &old.signature).await.valid);
    s.advance(Duration::from_secs(1)).await;
    assert!(
        !verify(s, "walk", b"m", &old.signature).await.valid,
        "grace over"
    );
    assert_eq!(
        state_of(&get(s, "walk").await, 1),
        pb::KeyVersionState::Disabled
    );
    assert!(verify(s, "walk", b"m", &new.signature).await.valid);
}

/// RotateKey with promote=true creates and promotes at once.
pub async fn rotate_and_promote_in_one_step(s: &TestServer) {
    create(s, "quick", Algorithm::HmacSha512).await;
    let old = sign(s, "quick", b"m").await;
    let r = s
        .admin()
        .rotate_key(pb::RotateKeyRequest {
            name: "quick".into(),
            promote: true,
            grace_period: dur(5),
        })
        .await
        .unwrap()
        .into_inner();
    let k = r.key.unwrap();
    assert_eq!(k.active_version, 2);
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Retiring);
    assert_eq!(sign(s, "quick", b"m").await.version, 2);
    assert_eq!(verify(s, "quick", b"m", &old.signature).await.version, 1);
    let r = s
        .admin()
        .rotate_key(pb::RotateKeyRequest {
            name: "quick".into(),
            promote: true,
            grace_period: Some(prost_types::Duration {
                seconds: 0,
                nanos: 500_000_000,
            }),
        })
        .await;
    assert_eq!(code(r), Code::InvalidArgument, "grace under 1s");
}

/// Disable, enable, destroy with delay, restore; DESTROYED is final.
pub async fn disable_destroy_restore(s: &TestServer) {
    create(s, "life", Algorithm::Ed25519).await;
    let old = sign(s, "life", b"m").await;
    s.admin()
        .rotate_key(pb::RotateKeyRequest {
            name: "life".into(),
            promote: true,
            grace_period: dur(3600),
        })
        .await
        .unwrap();
    let admin = || s.admin();
    let dis = |v| pb::DisableKeyVersionRequest {
        name: "life".into(),
        version: v,
    };
    assert_eq!(
        code(admin().disable_key_version(dis(2)).await),
        Code::FailedPrecondition,
        "ACTIVE"
    );
    let k = admin()
        .disable_key_version(dis(1))
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Disabled);
    assert!(
        !verify(s, "life", b"m", &old.signature).await.valid,
        "disabled does not verify"
    );
    assert_eq!(
        code(try_verify(s, "life", 1, b"m", &old.signature).await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(try_sign(s, "life", 1, b"m").await),
        Code::FailedPrecondition
    );

    let k = admin()
        .enable_key_version(pb::EnableKeyVersionRequest {
            name: "life".into(),
            version: 1,
            grace_period: dur(10),
        })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Retiring);
    assert!(
        verify(s, "life", b"m", &old.signature).await.valid,
        "enabled verifies again"
    );
    admin().disable_key_version(dis(1)).await.unwrap();

    let destroy = |v| pb::DestroyKeyVersionRequest {
        name: "life".into(),
        version: v,
    };
    assert_eq!(
        code(admin().destroy_key_version(destroy(2)).await),
        Code::FailedPrecondition
    );
    let k = admin()
        .destroy_key_version(destroy(1))
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::DestroyScheduled);
    assert!(k.versions[0].destroy_time.is_some());
    let restore = |v| pb::RestoreKeyVersionRequest {
        name: "life".into(),
        version: v,
    };
    let k = admin()
        .restore_key_version(restore(1))
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Disabled);
    assert_eq!(
        code(admin().restore_key_version(restore(1)).await),
        Code::FailedPrecondition
    );
    admin().destroy_key_version(destroy(1)).await.unwrap();
    s.advance(Duration::from_secs(24 * 3600)).await;
    let k = get(s, "life").await;
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Destroyed);
    assert_eq!(
        code(admin().restore_key_version(restore(1)).await),
        Code::FailedPrecondition
    );
    let r = s
        .signer()
        .get_public_key(pb::GetPublicKeyRequest {
            key: "life".into(),
            version: 1,
            format: 0,
        })
        .await;
    assert_eq!(code(r), Code::FailedPrecondition);
    assert_eq!(
        sign(s, "life", b"m").await.version,
        2,
        "the key still signs"
    );
}

/// A rotation policy creates a PENDING version, then promotes it.
pub async fn rotation_policy_rotates(s: &TestServer) {
    let k = s
        .admin()
        .create_key(pb::CreateKeyRequest {
            name: "auto".into(),
            algorithm: alg_pb(Algorithm::EcdsaP256Sha256),
            rotation_policy: Some(pb::RotationPolicy {
                rotation_period: dur(90 * 86400),
                pending_period: dur(7 * 86400),
                grace_period: dur(86400),
                rotate_after_encryptions: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    let next = k.next_rotation_time.unwrap();
    assert_eq!(
        next,
        prost_types::Timestamp::from(s.now() + Duration::from_secs(83 * 86400))
    );
    s.advance(Duration::from_secs(83 * 86400)).await;
    let k = get(s, "auto").await;
    assert_eq!(state_of(&k, 2), pb::KeyVersionState::Pending);
    assert_eq!(k.active_version, 1);
    s.advance(Duration::from_secs(7 * 86400)).await;
    let k = get(s, "auto").await;
    assert_eq!(k.active_version, 2);
    assert_eq!(state_of(&k, 1), pb::KeyVersionState::Retiring);
    assert_eq!(sign(s, "auto", b"m").await.version, 2);
    let bad = s
        .admin()
        .create_key(pb::CreateKeyRequest {
            name: "badpolicy".into(),
            algorithm: alg_pb(Algorithm::EcdsaP256Sha256),
            rotation_policy: Some(pb::RotationPolicy {
                rotation_period: dur(10),
                pending_period: dur(10),
                grace_period: None,
                rotate_after_encryptions: 0,
            }),
            ..Default::default()
        })
        .await;
    assert_eq!(code(bad), Code::InvalidArgument);
}

/// Concurrent rotations of one key all land, in order, with one ACTIVE.
pub async fn concurrent_rotations_of_one_key(s: &TestServer) {
    create(s, "busy", Algorithm::EcdsaP256Sha256).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let mut c = s.admin();
        tasks.push(tokio::spawn(async move {
            c.rotate_key(pb::RotateKeyRequest {
                name: "busy".into(),
                promote: i % 2 == 0,
                grace_period: None,
            })
            .await
            .map(|r| r.into_inner().version.unwrap().version)
        }));
    }
    // Signing goes on while they run.
    for _ in 0..20 {
        let s1 = sign(s, "busy", b"m").await;
        assert!(verify(s, "busy", b"m", &s1.signature).await.valid);
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap());
    }
    versions.sort();
    assert_eq!(versions, (2..=13).collect::<Vec<_>>());
    let k = get(s, "busy").await;
    let active: Vec<_> = k
        .versions
        .iter()
        .filter(|v| v.state() == pb::KeyVersionState::Active)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].version, k.active_version);
}
