//! Refusing rather than degrading: past `max_in_flight` calls are shed at
//! once, not queued, and an admin operation whose audit record cannot be
//! written is not done.

use signet::api::pb;
use signet::config::Config;

use crate::support::TestServer;

/// Past `max_in_flight`, requests are refused at once rather than queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_sheds_instead_of_queueing() {
    let s = TestServer::start(
        Config::parse("[audit]\noutput = \"off\"\n[limits]\nmax_in_flight = 1\n").unwrap(),
    )
    .await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..4 {
        let mut admin = s.admin();
        calls.spawn(async move {
            admin
                .create_key(pb::CreateKeyRequest {
                    name: format!("big-{i}"),
                    algorithm: pb::Algorithm::RsaPss4096Sha512 as i32,
                    ..Default::default()
                })
                .await
                .map(|_| ())
        });
    }
    let mut shed = 0;
    while let Some(r) = calls.join_next().await {
        if let Err(e) = r.unwrap() {
            assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
            let hint = e.metadata().get("retry-after-ms").unwrap();
            assert_eq!(e.metadata().get("grpc-retry-pushback-ms"), Some(hint));
            shed += 1;
        }
    }
    assert!(shed >= 1, "four RSA-4096 generations at once, none shed");
    s.stop().await.unwrap();
}

/// An admin operation whose audit record cannot be written is not done.
#[tokio::test]
async fn admin_operations_fail_closed_without_an_audit_trail() {
    let s = TestServer::start(
        Config::parse("[audit]\noutput = \"file\"\npath = \"/dev/full\"\n").unwrap(),
    )
    .await;
    let e = s
        .admin()
        .create_key(pb::CreateKeyRequest {
            name: "unaudited".into(),
            algorithm: pb::Algorithm::HmacSha256 as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert!(s.registry.get("unaudited").is_err(), "the key was created");
    s.stop().await.unwrap();
}
