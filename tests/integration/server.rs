//! The gRPC surface of an in-process server: reflection (v1 and
//! v1alpha) lists the services, every response and error carries a
//! request id, and concurrent signers get signatures that verify.

use signet::api::pb;
use signet::keys::Algorithm;

use crate::conformance::{create, sign};
use crate::support::TestServer;

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_both_services() {
    use tokio_stream::StreamExt;
    let s = TestServer::memory().await;
    {
        use tonic_reflection::pb::v1::{
            server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
            ServerReflectionRequest,
        };
        let mut c = ServerReflectionClient::new(s.channel());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = c
            .server_reflection_info(tokio_stream::iter([req]))
            .await
            .unwrap()
            .into_inner();
        let resp = stream.next().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
            panic!("unexpected reflection response");
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        for want in [
            "signet.v1.Signer",
            "signet.v1.KeyAdmin",
            "grpc.health.v1.Health",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "v1 reflection lacks {want}: {names:?}"
            );
        }
    }
    {
        use tonic_reflection::pb::v1alpha::{
            server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
            ServerReflectionRequest,
        };
        let mut c = ServerReflectionClient::new(s.channel());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "signet.v1.Signer".into(),
            )),
        };
        let mut stream = c
            .server_reflection_info(tokio_stream::iter([req]))
            .await
            .unwrap()
            .into_inner();
        let resp = stream.next().await.unwrap().unwrap();
        assert!(
            matches!(resp.message_response, Some(MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()),
            "v1alpha reflection resolves signet.v1.Signer"
        );
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn responses_and_errors_carry_a_request_id() {
    let s = TestServer::memory().await;
    create(&s, "rid", Algorithm::HmacSha256).await;
    let ok = s
        .signer()
        .sign(pb::SignRequest {
            key: "rid".into(),
            input: Some(pb::sign_request::Input::Message(b"m".to_vec())),
            ..Default::default()
        })
        .await
        .unwrap();
    let rid = ok
        .metadata()
        .get("x-request-id")
        .expect("request id")
        .to_str()
        .unwrap();
    assert_eq!(rid.len(), 32);
    let err = s
        .signer()
        .sign(pb::SignRequest {
            key: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.metadata().get("x-request-id").is_some());
    s.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_signers_agree() {
    let s = TestServer::memory().await;
    create(&s, "many", Algorithm::Ed25519).await;
    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let mut c = s.signer();
        tasks.push(tokio::spawn(async move {
            let m = i.to_be_bytes().to_vec();
            let r = c
                .sign(pb::SignRequest {
                    key: "many".into(),
                    input: Some(pb::sign_request::Input::Message(m.clone())),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            (m, r.signature)
        }));
    }
    for t in tasks {
        let (m, sig) = t.await.unwrap();
        assert!(crate::conformance::verify(&s, "many", &m, &sig).await.valid);
    }
    let _ = sign(&s, "many", b"x").await;
    s.stop().await.unwrap();
}
