//! Replicas starting together on a database that has no schema yet: they
//! race to migrate it, one does, and all of them come up on it.

use std::time::Duration;

use signet::api::pb;

use super::replica::{eventually, Replica, Replicas};
use crate::support::postgres::Postgres;

/// The migrations in the source tree (`NNNN_*.sql`): what the schema must
/// record, one row each.
fn migrations() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/postgres/migrations");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    v.sort();
    v
}

/// Three replicas started at the same moment on a fresh schema. The
/// database is frozen until each has opened the token and is connecting,
/// so the three migrations reach the server together; one migrates, the
/// others find the schema current. All serve, and on one schema: a key one
/// creates, the others sign and verify with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_on_a_fresh_schema_migrate_it_once() {
    let pg = Postgres::start();
    let mut replicas = Replicas::new(&pg);
    // Enough to wait out the freeze.
    replicas.set("postgres", "connect_timeout", "\"20s\"").set(
        "postgres",
        "statement_timeout",
        "\"20s\"",
    );
    pg.freeze();
    let mut r: Vec<Replica> = (0..3).map(|_| replicas.start("")).collect();
    for x in &r {
        x.serve
            .wait_log_within(0, "PKCS#11 backend ready", Duration::from_secs(60));
    }
    // Each is now opening its connection to the frozen server.
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.thaw();
    for x in &mut r {
        x.wait_ready(Duration::from_secs(60));
    }

    let files = migrations();
    assert!(!files.is_empty());
    let rows = pg.psql(&format!(
        "SELECT version FROM {}.schema_migrations ORDER BY version",
        replicas.schema
    ));
    let want: String = (1..=files.len()).map(|v| format!("{v}\n")).collect();
    assert_eq!(rows, want, "one row per migration: {files:?}");
    // Exactly one replica applied each migration.
    for v in 1..=files.len() {
        let by: Vec<usize> = (0..3)
            .filter(|&i| {
                r[i].serve.log_text().lines().any(|l| {
                    l.contains("database schema migrated") && l.contains(&format!("version={v}"))
                })
            })
            .collect();
        assert_eq!(by.len(), 1, "migration {v} applied by replicas {by:?}");
    }

    eventually(
        "one replica runs the scheduler",
        Duration::from_secs(10),
        || async { r.iter().filter(|x| x.says_it_leads()).count() == 1 },
    )
    .await;
    r[0].admin()
        .create_key(pb::CreateKeyRequest {
            name: "together".into(),
            algorithm: pb::Algorithm::EcdsaP256Sha256 as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    for x in &r[1..] {
        eventually(
            "the others see the key",
            Duration::from_secs(10),
            || async { x.get_key("together").await.is_ok() },
        )
        .await;
    }
    let s = r[2]
        .signer()
        .sign(pb::SignRequest {
            key: "together".into(),
            input: Some(pb::sign_request::Input::Message(b"all three".to_vec())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.version, 1);
    let v = r[1]
        .signer()
        .verify(pb::VerifyRequest {
            key: "together".into(),
            input: Some(pb::verify_request::Input::Message(b"all three".to_vec())),
            signature: s.signature,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(v.valid);
}
