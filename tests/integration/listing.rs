//! List RPCs reveal only what the caller may read: `ListKeys` and
//! `ListHttpProfiles` refuse an identity that holds their operation
//! nowhere, filter before paging, and hand out page tokens that name no
//! key the caller may not see and serve no other identity.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use signet::api::pb;
use signet::config::Config;
use tonic::Code;

use crate::support::TestServer;

const SIGNER: &str = "sgt_signer-only-one-key-0123456789abcdef";
const READER: &str = "sgt_reader-of-pay-keys-0123456789abcdef";
const CUSTODIAN: &str = "sgt_custodian-of-all-0123456789abcdef";

fn with_token<T>(mut r: tonic::Request<T>, token: &str) -> tonic::Request<T> {
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn config() -> Config {
    let hash = signet::auth::policy::token_hash;
    Config::parse(&format!(
        r#"
[audit]
output = "off"
[[profiles]]
name = "hooks"
preset = "stripe"
key = "pay-1"
[[auth.identities]]
name = "signer"
[[auth.identities.grants]]
operations = ["sign"]
keys = ["pay-1"]
[[auth.identities]]
name = "reader"
[[auth.identities.grants]]
operations = ["admin.read"]
keys = ["pay-*"]
[[auth.identities]]
name = "custodian"
[[auth.identities.grants]]
operations = ["admin.*", "http_profiles"]
keys = ["*"]
profiles = ["*"]
[[auth.tokens]]
identity = "signer"
sha256 = "{}"
[[auth.tokens]]
identity = "reader"
sha256 = "{}"
[[auth.tokens]]
identity = "custodian"
sha256 = "{}"
"#,
        hash(SIGNER),
        hash(READER),
        hash(CUSTODIAN)
    ))
    .unwrap()
}

async fn list(
    s: &TestServer,
    token: &str,
    page_size: u32,
    page_token: &str,
) -> Result<pb::ListKeysResponse, tonic::Status> {
    s.admin()
        .list_keys(with_token(
            tonic::Request::new(pb::ListKeysRequest {
                page_size,
                page_token: page_token.into(),
            }),
            token,
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_rpcs_show_only_what_the_caller_may_read() {
    let s = TestServer::start(config()).await;
    // Sorted: merger-… < pay-1 < pay-2 < pay-3 < zeta-…, so an unfiltered
    // cursor would land on hidden names between and after the visible ones.
    for name in [
        "merger-acme-2027",
        "pay-1",
        "pay-2",
        "pay-25-secret",
        "zeta-1",
    ] {
        s.admin()
            .create_key(with_token(
                tonic::Request::new(pb::CreateKeyRequest {
                    name: name.into(),
                    algorithm: pb::Algorithm::HmacSha256 as i32,
                    ..Default::default()
                }),
                CUSTODIAN,
            ))
            .await
            .unwrap();
    }
    let hidden = ["merger", "zeta"];

    // No admin.read anywhere: refused, with a request id.
    let e = list(&s, SIGNER, 1, "").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.metadata().get("x-request-id").is_some());

    // admin.read on pay-*: pages of one, only pay-* keys, every token opaque
    // to the names it does not hold.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let r = list(&s, READER, 1, &token).await.unwrap();
        pages += 1;
        assert!(r.keys.len() <= 1);
        seen.extend(r.keys.into_iter().map(|k| k.name));
        if r.next_page_token.is_empty() {
            break;
        }
        let decoded = URL_SAFE_NO_PAD.decode(&r.next_page_token).unwrap();
        let text = String::from_utf8_lossy(&decoded);
        for h in hidden {
            assert!(!text.contains(h), "page token reveals {h}");
        }
        // Another identity cannot use it.
        let e = list(&s, CUSTODIAN, 1, &r.next_page_token)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        token = r.next_page_token;
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen, ["pay-1", "pay-2", "pay-25-secret"]);
    assert_eq!(pages, 3, "no empty page at the end: more is known exactly");

    // A forged cursor (a plain base64 name, as the old tokens were) is refused.
    let forged = URL_SAFE_NO_PAD.encode("merger-acme-2027");
    let e = list(&s, READER, 1, &forged).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(!e.message().contains("merger"));

    // The custodian sees everything.
    let all = list(&s, CUSTODIAN, 100, "").await.unwrap();
    assert_eq!(all.keys.len(), 5);

    // ListHttpProfiles: refused without http_profiles anywhere.
    let e = s
        .signer()
        .list_http_profiles(with_token(
            tonic::Request::new(pb::ListHttpProfilesRequest {}),
            READER,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let ok = s
        .signer()
        .list_http_profiles(with_token(
            tonic::Request::new(pb::ListHttpProfilesRequest {}),
            CUSTODIAN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.profiles.len(), 1);
    s.stop().await.unwrap();
}

/// Two `authorization` headers are refused, whichever comes first; the
/// scheme name is case-insensitive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_headers_are_read_strictly() {
    let s = TestServer::start(config()).await;
    let mut r = tonic::Request::new(pb::ListKeysRequest::default());
    r.metadata_mut().append(
        "authorization",
        format!("Bearer {CUSTODIAN}").parse().unwrap(),
    );
    r.metadata_mut()
        .append("authorization", format!("Bearer {SIGNER}").parse().unwrap());
    let e = s.admin().list_keys(r).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.metadata().get("x-request-id").is_some());
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let mut r = tonic::Request::new(pb::ListKeysRequest::default());
        r.metadata_mut().insert(
            "authorization",
            format!("{scheme} {CUSTODIAN}").parse().unwrap(),
        );
        s.admin().list_keys(r).await.unwrap();
    }
    s.stop().await.unwrap();
}
