//! The replay store in PostgreSQL (`http.replay_store = "postgres"`), as
//! the Redis one is tested (tests/integration/redis.rs): the atomic
//! insert, expiry and the sweep of expired rows; two servers sharing it
//! agree on replays; and a database that is stopped or frozen fails
//! closed, within the statement timeout.

use std::time::{Duration, Instant};

use signet::api::pb;
use signet::config::{Config, ReplayStoreKind};
use signet::httpsig::replay::ReplayStore;
use signet::postgres::replay::PgReplayStore;
use signet::postgres::Database;

use super::*;

fn rows(pg: &Postgres, schema: &str) -> usize {
    pg.psql(&format!("SELECT count(*) FROM {schema}.replay"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_is_atomic_entries_expire_and_the_sweep_removes_them() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema();
    let db = Database::open(&pg_config(&pg, &schema, dir.path()))
        .await
        .unwrap();
    let shown = format!("{db:?}");
    assert!(
        !shown.contains(crate::support::postgres::PASSWORD),
        "{shown}"
    );
    let store = PgReplayStore::new(db.clone());
    assert_eq!(store.kind(), "postgres");
    store.health().await.unwrap();

    // Long enough that a slow machine cannot expire an entry between two
    // statements, short enough for a test.
    let ttl = Duration::from_millis(1500);
    assert!(store.insert("p", b"nonce-1", ttl).await.unwrap(), "new");
    assert!(
        !store.insert("p", b"nonce-1", ttl).await.unwrap(),
        "a live duplicate"
    );
    assert!(
        store.insert("q", b"nonce-1", ttl).await.unwrap(),
        "another scope"
    );
    assert!(
        store.insert("p", b"nonce-2", ttl).await.unwrap(),
        "another key"
    );
    assert_eq!(rows(&pg, &schema), 3);
    // Nothing has expired yet: the sweep leaves every row.
    assert_eq!(store.sweep_once().await.unwrap(), 0);

    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(
        store.insert("p", b"nonce-1", ttl).await.unwrap(),
        "an expired entry is new again"
    );
    assert!(
        !store.insert("p", b"nonce-1", ttl).await.unwrap(),
        "and live again"
    );
    // The two still expired (q/nonce-1, p/nonce-2) go; the renewed one stays.
    assert_eq!(store.sweep_once().await.unwrap(), 2);
    assert_eq!(rows(&pg, &schema), 1);
    assert_eq!(store.sweep_once().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(store.sweep_once().await.unwrap(), 1);
    assert_eq!(rows(&pg, &schema), 0);

    // A long TTL is kept as long (not cut to the sweep interval).
    assert!(store
        .insert("p", b"long", Duration::from_secs(3600))
        .await
        .unwrap());
    let left = pg.psql(&format!(
        "SELECT extract(epoch FROM expires_at - now())::int FROM {schema}.replay"
    ));
    let left: i64 = left.trim().parse().unwrap();
    assert!((3590..=3600).contains(&left), "{left}");

    // Frozen: no answer is UNAVAILABLE within the statement timeout (2 s
    // here), never "new".
    pg.freeze();
    let t = Instant::now();
    let e = store
        .insert("p", b"while-frozen", ttl)
        .await
        .expect_err("a frozen database accepted an entry");
    let took = t.elapsed();
    pg.thaw();
    assert_eq!(e.kind(), signet::error::ErrorKind::Unavailable, "{e:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");

    // Stopped: UNAVAILABLE at once; health says so too.
    tokio::task::block_in_place(|| pg.stop());
    let t = Instant::now();
    let e = store.insert("p", b"while-down", ttl).await.unwrap_err();
    assert_eq!(e.kind(), signet::error::ErrorKind::Unavailable, "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let shown = e.to_string();
    assert!(
        !shown.contains(crate::support::postgres::PASSWORD),
        "{shown}"
    );
    assert!(!shown.contains("postgres://"), "{shown}");
    assert!(store.health().await.is_err());
    assert!(store.sweep_once().await.is_err());

    // Back: the pool reconnects by itself, and what was refused was not
    // recorded.
    tokio::task::block_in_place(|| pg.start_again());
    let t = Instant::now();
    let fresh = loop {
        match store.insert("p", b"while-down", ttl).await {
            Ok(v) => break v,
            Err(e) => {
                assert_eq!(e.kind(), signet::error::ErrorKind::Unavailable, "{e:?}");
                assert!(t.elapsed() < Duration::from_secs(20), "no recovery: {e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(
        fresh,
        "an entry refused while the database was down was kept"
    );
    assert!(
        store.insert("p", b"while-frozen", ttl).await.unwrap(),
        "an entry refused while the database was frozen was kept"
    );
    store.health().await.unwrap();
}

/// A server on the memory backend with the replay store in `schema` of
/// `pg`, the GitHub preset's profile and its HMAC key.
async fn server(pg: &Postgres, schema: &str, dir: &std::path::Path) -> TestServer {
    let mut config =
        Config::parse("[[profiles]]\nname = \"gh\"\npreset = \"github\"\nkey = \"gh-hook\"\n")
            .unwrap();
    config.http.replay_store = ReplayStoreKind::Postgres;
    config.postgres = Some(pg_config(pg, schema, dir));
    let s = TestServer::start(config).await;
    s.admin()
        .import_key(pb::ImportKeyRequest {
            name: "gh-hook".into(),
            algorithm: pb::Algorithm::HmacSha256 as i32,
            material: b"shared-github-secret-pg-0123456789".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    s
}

// The same webhook profile and requests as the Redis tests.
use crate::redis::{sign_body, verify_body, BODY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_sharing_postgres_agree_on_replays_and_fail_closed() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema();
    let a = server(&pg, &schema, dir.path()).await;
    let b = server(&pg, &schema, dir.path()).await;

    let signed = sign_body(&a, BODY).await;
    let first = verify_body(&a, &signed.headers, BODY).await.unwrap();
    assert!(first.valid, "{first:?}");
    let replayed = verify_body(&b, &signed.headers, BODY).await.unwrap();
    assert!(!replayed.valid, "{replayed:?}");
    assert_eq!(replayed.reason, pb::VerifyFailureReason::Replayed as i32);
    // And back on A: the entry is in the shared table, not in B's memory.
    let again_on_a = verify_body(&a, &signed.headers, BODY).await.unwrap();
    assert_eq!(again_on_a.reason, pb::VerifyFailureReason::Replayed as i32);
    // GitHub's delivery id is not signed: a new id is still a replay.
    let mut renamed = signed.headers.clone();
    renamed[1].value = "fresh-delivery-0".into();
    let r = verify_body(&b, &renamed, BODY).await.unwrap();
    assert_eq!(r.reason, pb::VerifyFailureReason::Replayed as i32);
    assert!(rows(&pg, &schema) >= 1, "the entries are in PostgreSQL");

    // An unverified request writes nothing.
    let second_body = b"{\"action\":\"closed\"}";
    let second = sign_body(&a, second_body).await;
    let mut forged = second.headers.clone();
    forged[0].value = format!("sha256={}", "0".repeat(64));
    let r = verify_body(&b, &forged, second_body).await.unwrap();
    assert_eq!(r.reason, pb::VerifyFailureReason::SignatureMismatch as i32);
    assert!(
        verify_body(&b, &second.headers, second_body)
            .await
            .unwrap()
            .valid
    );

    // PostgreSQL stopped: verification fails closed, UNAVAILABLE, promptly.
    let third_body = b"{\"action\":\"reopened\"}";
    let third = sign_body(&a, third_body).await;
    tokio::task::block_in_place(|| pg.stop());
    for s in [&a, &b] {
        let t = Instant::now();
        let e = verify_body(s, &third.headers, third_body)
            .await
            .expect_err("verified with the replay store down");
        assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
        assert!(!e.message().contains(crate::support::postgres::PASSWORD));
        assert!(!e.message().contains("postgres://"), "{e:?}");
    }
    // Signing needs no replay store and goes on.
    sign_body(&a, b"{}").await;

    // Back: the same delivery (never recorded) verifies once, on either.
    tokio::task::block_in_place(|| pg.start_again());
    let t = Instant::now();
    let ok = loop {
        match verify_body(&b, &third.headers, third_body).await {
            Ok(r) => break r,
            Err(e) => {
                assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
                assert!(t.elapsed() < Duration::from_secs(20), "no recovery: {e:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert!(ok.valid, "{ok:?}");
    let r = verify_body(&a, &third.headers, third_body).await.unwrap();
    assert_eq!(r.reason, pb::VerifyFailureReason::Replayed as i32);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
