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

/// The encryption bound is watched from `/metrics`: the count reserved
/// per AES key version, the fraction of the bound it is, and this
/// process's decryptions (docs/operations.md has the alert).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_counts_are_exported_per_version() {
    use signet::api::pb::cipher_service_client::CipherServiceClient;
    use signet::api::pb::key_admin_client::KeyAdminClient;

    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "signet.toml",
        &format!("{DEMO_WITH_ADMIN}\n[keys]\nmax_encryptions_per_version = 1000\n"),
    );
    let s = serve().config(&config).wait_for(WaitFor::Both).start();
    let ch = s.channel().await;
    KeyAdminClient::new(ch.clone())
        .create_key(pb::CreateKeyRequest {
            name: "vault".into(),
            algorithm: pb::Algorithm::Aes256Gcm as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut cipher = CipherServiceClient::new(ch);
    let mut last = Vec::new();
    for _ in 0..3 {
        last = cipher
            .encrypt(pb::EncryptRequest {
                key: "vault".into(),
                plaintext: b"m".to_vec(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .ciphertext;
    }
    for _ in 0..2 {
        cipher
            .decrypt(pb::DecryptRequest {
                key: "vault".into(),
                ciphertext: last.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let text = scrape(&s.admin);
    let labels = r#"{key="vault",version="1"}"#;
    // The bound is below a block: the first reservation took all of it.
    assert_eq!(
        sample(&text, &format!("signet_key_encryptions{labels}")),
        Some(1000.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("signet_key_encryption_bound_used{labels}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("signet_key_decryptions{labels}")),
        Some(2.0),
        "{text}"
    );
    // Signing keys have none.
    assert!(
        !text.contains(r#"signet_key_encryptions{key="demo-hmac""#),
        "{text}"
    );
}

/// A version's certificate is watched from `/metrics`: seconds to the
/// leaf's notAfter, and whether the version will still sign after it (an
/// ACTIVE version with no rotation policy always will; docs/operations.md
/// has the alert).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_expiry_is_exported_per_version() {
    use rcgen::{BasicConstraints, CertificateParams, CertificateSigningRequestParams, IsCa};
    use signet::api::pb::key_admin_client::KeyAdminClient;

    let dir = tempfile::tempdir().unwrap();
    let config = write_file(dir.path(), "signet.toml", DEMO_WITH_ADMIN);
    let s = serve().config(&config).wait_for(WaitFor::Both).start();
    let mut admin = KeyAdminClient::new(s.channel().await);
    admin
        .create_key(pb::CreateKeyRequest {
            name: "seal".into(),
            algorithm: pb::Algorithm::EcdsaP256Sha256 as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let csr = admin
        .create_certificate_request(pb::CreateCertificateRequestRequest {
            name: "seal".into(),
            subject: vec![pb::NameAttribute {
                r#type: "CN".into(),
                value: "seal".into(),
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut req = CertificateSigningRequestParams::from_der(&csr.csr_der.into()).unwrap();
    let in_30_days = std::time::SystemTime::now() + std::time::Duration::from_secs(30 * 86400);
    req.params.not_after = in_30_days.into();
    let leaf = req.signed_by(&issuer).unwrap();
    admin
        .import_certificate_chain(pb::ImportCertificateChainRequest {
            name: "seal".into(),
            chain: leaf.der().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let text = scrape(&s.admin);
    let labels = r#"{key="seal",version="1"}"#;
    let left = sample(
        &text,
        &format!("signet_key_certificate_expiry_seconds{labels}"),
    )
    .unwrap_or_else(|| panic!("no expiry gauge: {text}"));
    assert!(
        (29.0 * 86400.0..=30.0 * 86400.0).contains(&left),
        "{left} s left"
    );
    assert_eq!(
        sample(&text, &format!("signet_key_certificate_outlived{labels}")),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains(r#"signet_key_certificate_expiry_seconds{key="demo-"#));
}
