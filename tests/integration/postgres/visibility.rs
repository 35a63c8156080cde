//! A key version one replica created, opened by another process that
//! has written the token since: SoftHSM2 hides such objects from it.

use std::sync::Arc;
use std::time::Duration;

use signet::api::pb;
use signet::keys::pkcs11::{Pkcs11Backend, Pkcs11Settings, TokenSelector};
use signet::keys::{Algorithm, KeyBackend};

use super::replica::Replicas;
use crate::support::postgres::Postgres;

/// The masking behind the races' UNAVAILABLE signs, made deterministic: this
/// process opens the token, a replica then creates a key on it, and this
/// process writes the token itself before it opens that key's version.
/// SoftHSM2 rescans its token directory only when the token's generation
/// moved since its own last write, so that write hides the replica's new
/// object. Opening it must work all the same (re-initialising the module),
/// or the replica that lost a race would not open the winner's version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_another_replica_created_opens_after_this_process_wrote_the_token() {
    let pg = Postgres::start();
    let replicas = Replicas::new(&pg);
    let a = replicas.spawn("");
    let token = replicas.token.clone();
    let backend = Arc::new(
        tokio::task::spawn_blocking(move || {
            let b = Pkcs11Backend::open(Pkcs11Settings {
                module: token.module.clone(),
                token: TokenSelector::Label(token.token_label.clone().unwrap()),
                pin: token.read_pin().unwrap(),
                max_sessions: 2,
                session_wait: Duration::from_secs(5),
                threads: 1,
            })
            .unwrap();
            // Indexes the token as of now.
            assert!(b.key_labels().unwrap().is_empty());
            b
        })
        .await
        .unwrap(),
    );
    a.admin()
        .create_key(pb::CreateKeyRequest {
            name: "elsewhere".into(),
            algorithm: pb::Algorithm::Ed25519 as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let label = pg.psql(&format!(
        "SELECT record->'versions'->0->>'label' FROM {}.keys WHERE name = 'elsewhere'",
        replicas.schema
    ));
    let label = label.trim().to_string();
    assert!(label.starts_with("elsewhere:v1:"), "{label}");
    let b = backend.clone();
    tokio::task::spawn_blocking(move || {
        b.generate("here:v1:00000000", Algorithm::Ed25519).unwrap();
        let opened = b.open(&label, Algorithm::Ed25519);
        assert!(opened.is_ok(), "{label}: {:?}", opened.err());
        b.shutdown();
    })
    .await
    .unwrap();
}
