//! Who may call what, end to end over real TLS: each refusal has its
//! documented code (or, for TLS, a refused handshake), is logged and is
//! audited; a client certificate is mandatory unless the config says
//! otherwise; forwarded addresses count only from trusted proxies.
//! [`cert_rotation`] and [`fail_closed`] use the CA and setup here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::SanType;
use signet::api::pb;
use signet::config::Config;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::support::TestServer;

/// A certificate rotation on disk, under load.
mod cert_rotation;
/// Wrapped export: its own grant, always audited.
mod export;
/// Overload and an unwritable audit trail refuse instead of degrading.
mod fail_closed;

use crate::support::ca::Ca;

fn uri(id: &str) -> SanType {
    SanType::URI(id.try_into().unwrap())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    // Write then rename, as a secret volume update does: a reader never
    // sees half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    p
}

/// A TLS channel to `s`, trusting `ca_pem`, with an optional client
/// certificate.
async fn tls_channel(
    s: &TestServer,
    ca_pem: &str,
    client: Option<&(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((c, k)) = client {
        tls = tls.identity(Identity::from_pem(c, k));
    }
    Channel::from_shared(format!("https://{}", s.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

pub(crate) fn with_token<T>(mut r: tonic::Request<T>, token: &str) -> tonic::Request<T> {
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn sign_req(key: &str) -> pb::SignRequest {
    pb::SignRequest {
        key: key.into(),
        input: Some(pb::sign_request::Input::Message(b"payment 42".to_vec())),
        ..Default::default()
    }
}

fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const CUSTODIAN_TOKEN: &str = "sgt_custodian-test-token-0123456789abcdefABCDEF";
const EXPIRED_TOKEN: &str = "sgt_expired-test-token-0123456789abcdefABCDEF";

struct Setup {
    _dir: tempfile::TempDir,
    ca: Ca,
    audit: PathBuf,
    server: TestServer,
}

async fn setup(extra: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("signet test clients and server");
    let (cert, key) = ca.server_cert("signet test server");
    let cert_file = write(dir.path(), "server.crt", &cert);
    let key_file = write(dir.path(), "server.key", &key);
    let ca_file = write(dir.path(), "ca.crt", &ca.pem);
    let audit = dir.path().join("audit.jsonl");
    let hash = |t: &str| signet::auth::policy::token_hash(t);
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[server.tls]
cert_file = "{cert}"
key_file = "{key}"
client_ca_file = "{ca}"
require_client_cert = false
reload_interval = "100ms"
[audit]
output = "file"
path = "{audit}"
[[auth.identities]]
name = "spiffe://test/payments"
[[auth.identities.grants]]
operations = ["sign", "verify"]
keys = ["pay-*"]
[[auth.identities]]
name = "custodian"
[[auth.identities.grants]]
operations = ["admin.*"]
keys = ["*"]
[[auth.identities]]
name = "elsewhere"
allow_from = ["10.0.0.0/8"]
[[auth.identities.grants]]
operations = ["*"]
keys = ["*"]
[[auth.identities]]
name = "spiffe://test/busy"
rate_per_second = 1
burst = 2
[[auth.identities.grants]]
operations = ["sign"]
keys = ["*"]
[[auth.tokens]]
identity = "custodian"
sha256 = "{custodian}"
[[auth.tokens]]
identity = "custodian"
sha256 = "{expired}"
expires = "2020-01-01T00:00:00Z"
{extra}"#,
        cert = cert_file.display(),
        key = key_file.display(),
        ca = ca_file.display(),
        audit = audit.display(),
        custodian = hash(CUSTODIAN_TOKEN),
        expired = hash(EXPIRED_TOKEN),
    );
    let server = TestServer::start_lazy(Config::parse(&config).unwrap()).await;
    Setup {
        _dir: dir,
        ca,
        audit,
        server,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_code_and_its_audit_record() {
    let s = setup("").await;
    let payments =
        s.ca.issue(vec![uri("spiffe://test/payments")], "payments", false);

    // The custodian (token, no certificate) creates the keys.
    let anon = tls_channel(&s.server, &s.ca.pem, None).await.unwrap();
    let mut admin = pb::key_admin_client::KeyAdminClient::new(anon.clone());
    for name in ["pay-1", "other-1"] {
        admin
            .create_key(with_token(
                tonic::Request::new(pb::CreateKeyRequest {
                    name: name.into(),
                    algorithm: pb::Algorithm::EcdsaP256Sha256 as i32,
                    ..Default::default()
                }),
                CUSTODIAN_TOKEN,
            ))
            .await
            .unwrap();
    }

    // The payment back-end, by its certificate: its own keys only.
    let ch = tls_channel(&s.server, &s.ca.pem, Some(&payments))
        .await
        .unwrap();
    let mut signer = pb::signer_client::SignerClient::new(ch.clone());
    let ok = signer.sign(sign_req("pay-1")).await.unwrap();
    assert!(ok.metadata().get("x-request-id").is_some());
    let other = signer.sign(sign_req("other-1")).await.unwrap_err();
    let missing = signer.sign(sign_req("no-such-key")).await.unwrap_err();
    assert_eq!(other.code(), tonic::Code::PermissionDenied);
    assert_eq!(missing.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        other.message(),
        missing.message(),
        "a denial must not tell whether the key exists"
    );
    // Its certificate grants no admin operation.
    let e = pb::key_admin_client::KeyAdminClient::new(ch.clone())
        .rotate_key(pb::RotateKeyRequest {
            name: "pay-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);

    // No credentials at all, an unknown token, an expired one.
    let mut anon_signer = pb::signer_client::SignerClient::new(anon.clone());
    let e = anon_signer.sign(sign_req("pay-1")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    for t in ["sgt_not-a-token", EXPIRED_TOKEN] {
        let e = anon_signer
            .sign(with_token(tonic::Request::new(sign_req("pay-1")), t))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{t}");
    }

    // From an address outside the identity's allow-list.
    let elsewhere = s.ca.issue(vec![], "elsewhere", false);
    let ch2 = tls_channel(&s.server, &s.ca.pem, Some(&elsewhere))
        .await
        .unwrap();
    let e = pb::signer_client::SignerClient::new(ch2)
        .sign(sign_req("pay-1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);

    // Over its rate: a burst of 2, then RESOURCE_EXHAUSTED with a hint.
    let busy = s.ca.issue(vec![uri("spiffe://test/busy")], "busy", false);
    let ch3 = tls_channel(&s.server, &s.ca.pem, Some(&busy))
        .await
        .unwrap();
    let mut busy_signer = pb::signer_client::SignerClient::new(ch3);
    let mut limited = None;
    for _ in 0..5 {
        if let Err(e) = busy_signer.sign(sign_req("pay-1")).await {
            limited = Some(e);
            break;
        }
    }
    let e = limited.expect("never rate limited");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    let ms: u64 = e
        .metadata()
        .get("retry-after-ms")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1000).contains(&ms), "{ms}");
    // gRPC's standard retry policy reads the same wait from its own key.
    assert_eq!(
        e.metadata().get("grpc-retry-pushback-ms").unwrap(),
        &ms.to_string()
    );

    // TLS refusals: plaintext, a certificate from another CA, an expired
    // one. Each handshake fails; no call gets through.
    let plain = Channel::from_shared(format!("http://{}", s.server.addr))
        .unwrap()
        .connect()
        .await;
    if let Ok(ch) = plain {
        let e = pb::signer_client::SignerClient::new(ch)
            .sign(sign_req("pay-1"))
            .await
            .unwrap_err();
        assert_ne!(e.code(), tonic::Code::Ok);
    }
    let rogue_ca = Ca::new("rogue");
    let rogue = rogue_ca.issue(vec![uri("spiffe://test/payments")], "payments", false);
    let expired =
        s.ca.issue(vec![uri("spiffe://test/payments")], "payments", true);
    for (what, cert) in [("another CA", &rogue), ("expired", &expired)] {
        let r = match tls_channel(&s.server, &s.ca.pem, Some(cert)).await {
            Err(e) => Err(e.to_string()),
            Ok(ch) => pb::signer_client::SignerClient::new(ch)
                .sign(sign_req("pay-1"))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        assert!(r.is_err(), "{what}: a call went through");
    }

    // The trail: who, what, outcome; denials included; no token.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = audit_lines(&s.audit);
    let text = std::fs::read_to_string(&s.audit).unwrap();
    assert!(!text.contains(CUSTODIAN_TOKEN) && !text.contains("payment 42"));
    let has = |pred: &dyn Fn(&serde_json::Value) -> bool, what: &str| {
        assert!(
            lines.iter().any(pred),
            "no audit record for {what}:\n{text}"
        );
    };
    has(
        &|l| {
            l["rpc"] == "signet.v1.KeyAdmin/CreateKey"
                && l["identity"] == "custodian"
                && l["outcome"] == "started"
        },
        "an admin operation about to run",
    );
    has(
        &|l| {
            l["rpc"] == "signet.v1.Signer/Sign"
                && l["identity"] == "spiffe://test/payments"
                && l["key"] == "pay-1"
                && l["outcome"] == "ok"
                && l["version"] == 1
                && l["message_sha256"].as_str().map(str::len) == Some(64)
        },
        "a signature",
    );
    has(
        &|l| l["key"] == "other-1" && l["code"] == "PERMISSION_DENIED",
        "a grant for another key",
    );
    has(
        &|l| {
            l["rpc"] == "signet.v1.KeyAdmin/RotateKey"
                && l["code"] == "PERMISSION_DENIED"
                && l["operation"] == "admin.rotate"
        },
        "a denied admin operation",
    );
    has(
        &|l| l["code"] == "UNAUTHENTICATED" && l.get("identity").is_none(),
        "no credentials",
    );
    has(
        &|l| l["identity"] == "elsewhere" && l["code"] == "PERMISSION_DENIED",
        "a disallowed address",
    );
    has(
        &|l| l["identity"] == "spiffe://test/busy" && l["code"] == "RESOURCE_EXHAUSTED",
        "a rate limit",
    );
    let refused = lines.iter().filter(|l| l["outcome"] == "refused").count();
    assert!(refused >= 3, "TLS refusals audited: {refused}\n{text}");
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_require_false_a_certificate_is_mandatory() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("ca");
    let (cert, key) = ca.server_cert("signet test server");
    let config = format!(
        "[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\n\
         [audit]\noutput = \"off\"\n[[auth.identities]]\nname = \"x\"\n",
        write(dir.path(), "s.crt", &cert).display(),
        write(dir.path(), "s.key", &key).display(),
        write(dir.path(), "ca.crt", &ca.pem).display(),
    );
    let s = TestServer::start_lazy(Config::parse(&config).unwrap()).await;
    let r = match tls_channel(&s, &ca.pem, None).await {
        Err(e) => Err(e.to_string()),
        Ok(ch) => pb::signer_client::SignerClient::new(ch)
            .sign(sign_req("k"))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    assert!(r.is_err(), "no client certificate, yet a call went through");
    let (c, k) = ca.issue(vec![], "x", false);
    let ch = tls_channel(&s, &ca.pem, Some(&(c, k))).await.unwrap();
    // Authenticated as "x", which has no grant: denied, not refused.
    let e = pb::signer_client::SignerClient::new(ch)
        .sign(sign_req("k"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_only_from_trusted_proxies() {
    let base = |proxies: &str| {
        format!(
            "[audit]\noutput = \"off\"\n[auth]\ntrusted_proxies = [{proxies}]\n\
             [[auth.identities]]\nname = \"app\"\nallow_from = [\"10.1.0.0/16\"]\n\
             [[auth.identities.grants]]\noperations = [\"public_key\"]\nkeys = [\"*\"]\n\
             [[auth.tokens]]\nidentity = \"app\"\nsha256 = \"{}\"\n",
            signet::auth::policy::token_hash("sgt_app")
        )
    };
    for (proxies, xff, want) in [
        ("\"127.0.0.0/8\"", "10.1.2.3", tonic::Code::NotFound),
        (
            "\"127.0.0.0/8\"",
            "192.0.2.1",
            tonic::Code::PermissionDenied,
        ),
        (
            "\"127.0.0.0/8\"",
            "10.1.2.3, 192.0.2.1",
            tonic::Code::PermissionDenied,
        ),
        ("", "10.1.2.3", tonic::Code::PermissionDenied),
    ] {
        let s = TestServer::start(Config::parse(&base(proxies)).unwrap()).await;
        let mut r = with_token(
            tonic::Request::new(pb::GetPublicKeyRequest {
                key: "k".into(),
                ..Default::default()
            }),
            "sgt_app",
        );
        r.metadata_mut()
            .insert("x-forwarded-for", xff.parse().unwrap());
        let e = s.signer().get_public_key(r).await.unwrap_err();
        assert_eq!(e.code(), want, "proxies [{proxies}], x-forwarded-for {xff}");
        s.stop().await.unwrap();
    }
}
