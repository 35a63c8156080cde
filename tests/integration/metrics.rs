//! Metric labels seen on a real `signet serve`'s `/metrics`: a method the
//! server does not know is counted under `unknown`, so callers cannot
//! mint label values.

use signet::api::pb;

use crate::support::process::{sample, scrape, serve, write_file, WaitFor, DEMO_WITH_ADMIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_do_not_mint_metric_labels() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(dir.path(), "signet.toml", DEMO_WITH_ADMIN);
    let s = serve().config(&config).wait_for(WaitFor::Both).start();
    let ch = s.channel().await;
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/evil.Service/Attacker-Chosen-Name");
    let e = grpc
        .unary::<pb::GetKeyRequest, pb::Key, _>(
            tonic::Request::new(pb::GetKeyRequest::default()),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented);
    let text = scrape(&s.admin);
    assert!(!text.contains("Attacker-Chosen-Name"), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"signet_rpc_requests_total{algorithm="",method="unknown",outcome="UNIMPLEMENTED",service="unknown"}"#
        ),
        Some(1.0),
        "{text}"
    );
}
