//! The encryption bound (`keys.max_encryptions_per_version`, NIST SP
//! 800-38D §8.3) through the API: enforced, lifted by a rotation, and
//! counted durably, so that a restart on a shared registry in PostgreSQL
//! never hands out a count twice.

use signet::api::pb;
use signet::config::Config;
use signet::keys::Algorithm;
use tonic::Code;

use crate::conformance::create;
use crate::postgres::{config_on, wait_leader};
use crate::support::postgres::{fresh_schema, Postgres};
use crate::support::{code, TestServer};

/// One reservation: docs/encryption.md, "Limits".
const BLOCK: u64 = 65_536;

async fn encrypt(s: &TestServer, key: &str) -> Result<pb::EncryptResponse, tonic::Status> {
    s.cipher()
        .encrypt(pb::EncryptRequest {
            key: key.into(),
            plaintext: b"m".to_vec(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

fn reserved(s: &TestServer, key: &str, version: usize) -> u64 {
    s.registry.get(key).unwrap().record.versions[version - 1].encryptions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_is_enforced_and_a_rotation_lifts_it() {
    let mut c = Config::default();
    c.keys.max_encryptions_per_version = 3;
    let s = TestServer::start(c).await;
    create(&s, "k", Algorithm::Aes256Gcm).await;
    let first = encrypt(&s, "k").await.unwrap();
    for _ in 0..2 {
        encrypt(&s, "k").await.unwrap();
    }
    let e = encrypt(&s, "k").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("rotate"), "{}", e.message());
    assert!(e.metadata().get("x-request-id").is_some());
    let dk = s
        .cipher()
        .generate_data_key(pb::GenerateDataKeyRequest {
            key: "k".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(dk), Code::FailedPrecondition);
    assert_eq!(reserved(&s, "k", 1), 3);
    // Decryption has no bound.
    s.cipher()
        .decrypt(pb::DecryptRequest {
            key: "k".into(),
            ciphertext: first.ciphertext,
            ..Default::default()
        })
        .await
        .unwrap();
    s.admin()
        .rotate_key(pb::RotateKeyRequest {
            name: "k".into(),
            promote: true,
            grace_period: None,
        })
        .await
        .unwrap();
    assert_eq!(encrypt(&s, "k").await.unwrap().version, 2);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_never_reuses_a_reserved_count() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config_on(&pg, &fresh_schema(), dir.path());

    let a = TestServer::start(config.clone()).await;
    wait_leader(&a).await;
    create(&a, "k", Algorithm::Aes256Gcm).await;
    create(&a, "small", Algorithm::Aes256Gcm).await;
    for _ in 0..3 {
        encrypt(&a, "k").await.unwrap();
    }
    assert_eq!(reserved(&a, "k", 1), BLOCK);
    a.stop().await.unwrap();

    // The next process starts after the reserved block, not at 3.
    let b = TestServer::start(config.clone()).await;
    wait_leader(&b).await;
    assert_eq!(reserved(&b, "k", 1), BLOCK);
    encrypt(&b, "k").await.unwrap();
    assert_eq!(reserved(&b, "k", 1), 2 * BLOCK);
    b.stop().await.unwrap();

    // With a bound below a block, the first process reserved all of it:
    // what it did not spend is lost, never handed out again.
    let mut low = config.clone();
    low.keys.max_encryptions_per_version = 5;
    let c = TestServer::start(low.clone()).await;
    wait_leader(&c).await;
    encrypt(&c, "small").await.unwrap();
    assert_eq!(reserved(&c, "small", 1), 5);
    c.stop().await.unwrap();
    let d = TestServer::start(low).await;
    wait_leader(&d).await;
    assert_eq!(code(encrypt(&d, "small").await), Code::FailedPrecondition);
    d.stop().await.unwrap();
}
