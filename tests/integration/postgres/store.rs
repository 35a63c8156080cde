//! The store itself, in process: compare-and-set, the audit row in the
//! same commit, the schema's versioning.

use signet::api::pb;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_commits_with_its_audit_row_and_the_schema_is_versioned() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema();
    let server = TestServer::start(config_on(&pg, &schema, dir.path())).await;
    wait_leader(&server).await;
    let mut admin = server.admin();
    admin
        .create_key(pb::CreateKeyRequest {
            name: "audited".into(),
            algorithm: pb::Algorithm::Ed25519 as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    admin
        .rotate_key(pb::RotateKeyRequest {
            name: "audited".into(),
            promote: true,
            grace_period: None,
        })
        .await
        .unwrap();
    // A refused change (already exists) leaves no row.
    let e = admin
        .create_key(pb::CreateKeyRequest {
            name: "audited".into(),
            algorithm: pb::Algorithm::Ed25519 as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::AlreadyExists);
    let rows = pg.psql(&format!(
        "SELECT rpc || ' ' || generation FROM {schema}.audit WHERE key = 'audited' ORDER BY id"
    ));
    assert_eq!(
        rows.trim(),
        "signet.v1.KeyAdmin/CreateKey 1\nsignet.v1.KeyAdmin/RotateKey 2",
        "one audit row per committed change"
    );
    let gen = pg.psql(&format!(
        "SELECT generation FROM {schema}.keys WHERE name = 'audited'"
    ));
    assert_eq!(gen.trim(), "2");
    server.stop().await.unwrap();
}
