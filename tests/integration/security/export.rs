//! Wrapped export end to end over TLS: `admin.export` is granted by name
//! only (the custodian's `admin.*` does not cover it), and every export,
//! allowed or refused, is in the audit trail with the SHA-256 of the key
//! it was wrapped to. What is exported is checked by the Python tests,
//! with other implementations unwrapping it.

use aws_lc_rs::encoding::AsDer;
use signet::api::pb;

use super::{audit_lines, setup, tls_channel, with_token, CUSTODIAN_TOKEN};

const EXPORTER_TOKEN: &str = "sgt_exporter-test-token-0123456789abcdefABCDEF";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_granted_by_name_only_and_always_audited() {
    let extra = format!(
        "[[auth.identities]]\nname = \"exporter\"\n[[auth.identities.grants]]\n\
         operations = [\"admin.export\"]\nkeys = [\"shared-*\"]\n\
         [[auth.tokens]]\nidentity = \"exporter\"\nsha256 = \"{}\"\n",
        signet::auth::policy::token_hash(EXPORTER_TOKEN)
    );
    let s = setup(&extra).await;
    let ch = tls_channel(&s.server, &s.ca.pem, None).await.unwrap();
    let mut admin = pb::key_admin_client::KeyAdminClient::new(ch);
    for (name, exportable) in [("shared-1", true), ("shared-plain", false)] {
        admin
            .create_key(with_token(
                tonic::Request::new(pb::CreateKeyRequest {
                    name: name.into(),
                    algorithm: pb::Algorithm::HmacSha256 as i32,
                    exportable,
                    ..Default::default()
                }),
                CUSTODIAN_TOKEN,
            ))
            .await
            .unwrap();
    }
    let rsa =
        aws_lc_rs::rsa::PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let spki = rsa.public_key().as_der().unwrap().as_ref().to_vec();
    let fingerprint = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki));
    let req = |name: &str, token: &str| {
        with_token(
            tonic::Request::new(pb::ExportKeyRequest {
                name: name.into(),
                wrapping_public_key: spki.clone(),
                ..Default::default()
            }),
            token,
        )
    };

    // admin.* is not enough.
    let e = admin
        .export_key(req("shared-1", CUSTODIAN_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(e.metadata().get("x-request-id").is_some());
    // The exporter's grant: its keys only.
    let ok = admin
        .export_key(req("shared-1", EXPORTER_TOKEN))
        .await
        .unwrap();
    let request_id = ok
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let ok = ok.into_inner();
    assert_eq!(ok.key_version_id, "shared-1:v1");
    assert_eq!(ok.wrapping_key_sha256, fingerprint);
    assert_eq!(ok.wrapped_material.len(), 256 + 40);
    let e = admin
        .export_key(req("other", EXPORTER_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    // Granted, but the key was not created exportable.
    let e = admin
        .export_key(req("shared-plain", EXPORTER_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);

    // Denials are written behind the answer: wait for all six records.
    let exports = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let found: Vec<_> = audit_lines(&s.audit)
                .into_iter()
                .filter(|l| l["rpc"] == "signet.v1.KeyAdmin/ExportKey")
                .collect();
            if found.len() >= 6 || std::time::Instant::now() > deadline {
                break found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let of = |id: &str, outcome: &str| {
        exports
            .iter()
            .filter(|l| l["identity"] == id && l["outcome"] == outcome)
            .count()
    };
    assert_eq!(of("custodian", "denied"), 1, "{exports:#?}");
    assert_eq!(of("exporter", "denied"), 1, "{exports:#?}");
    assert_eq!(of("exporter", "started"), 2, "{exports:#?}");
    assert_eq!(of("exporter", "ok"), 1, "{exports:#?}");
    assert_eq!(of("exporter", "error"), 1, "{exports:#?}");
    let done = exports.iter().find(|l| l["outcome"] == "ok").unwrap();
    assert_eq!(done["request_id"], request_id.as_str());
    assert_eq!(done["operation"], "admin.export");
    assert_eq!(done["key"], "shared-1");
    assert_eq!(done["version"], 1);
    assert_eq!(done["message_sha256"], fingerprint.as_str());
    // The wrapped bytes are in no record.
    let trail = std::fs::read_to_string(&s.audit).unwrap();
    assert!(!trail.contains(&hex::encode(&ok.wrapped_material[..16])));
}
