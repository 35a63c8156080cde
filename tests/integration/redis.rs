//! The Redis replay store against a real `redis-server` on loopback (CI
//! installs it; missing is a failure, not a skip): two signet servers
//! sharing Redis agree on replays, entries expire, and a Redis outage
//! fails closed.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use signet::api::pb;
use signet::config::Config;
use signet::httpsig::replay::{RedisReplayStore, ReplayStore};

use crate::support::process::serve;
use crate::support::TestServer;

pub(crate) struct Redis {
    child: Child,
    pub(crate) url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn redis_server() -> Redis {
    redis_server_with(&[])
}

fn redis_server_with(extra: &[&str]) -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port = match extra.iter().position(|a| *a == "--port") {
        Some(i) => extra[i + 1].parse().unwrap(),
        None => port,
    };
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is required for these tests (apt-get install redis-server)");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Redis {
                child,
                url: format!("redis://127.0.0.1:{port}"),
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    panic!("redis-server did not start on port {port}");
}

#[tokio::test]
async fn set_nx_px_is_the_atomic_insert() {
    let redis = redis_server();
    let store = RedisReplayStore::connect(&redis.url).await.unwrap();
    let ttl = Duration::from_millis(300);
    assert!(store.insert("p", b"nonce-1", ttl).await.unwrap());
    assert!(!store.insert("p", b"nonce-1", ttl).await.unwrap());
    assert!(store.insert("q", b"nonce-1", ttl).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        store.insert("p", b"nonce-1", ttl).await.unwrap(),
        "entries expire"
    );
    // A Debug print never shows a password from the URL.
    let locked = redis_server_with(&["--requirepass", "right-one"]);
    let with_pw = RedisReplayStore::connect(&locked.url.replace("redis://", "redis://:hunter2@"))
        .await
        .map(|s| format!("{s:?}"))
        .unwrap_or_else(|e| e);
    assert!(!with_pw.contains("hunter2"), "{with_pw}");
    assert!(with_pw.contains("authentication failed"), "{with_pw}");
    // The right password (with an '@' in it) connects, and still does not
    // print.
    drop(locked);
    let locked = redis_server_with(&["--requirepass", "p@ss-word"]);
    let store = RedisReplayStore::connect(&locked.url.replace("redis://", "redis://:p%40ss-word@"))
        .await
        .unwrap();
    assert!(store.insert("p", b"n", ttl).await.unwrap());
    let shown = format!("{store:?}");
    assert!(!shown.contains("ss-word"), "{shown}");
}

async fn server(url: &str) -> TestServer {
    let config = Config::parse(&format!(
        "[http]\nreplay_store = \"redis\"\nredis_url = \"{url}\"\n\
         [[profiles]]\nname = \"gh\"\npreset = \"github\"\nkey = \"gh-hook\"\n"
    ))
    .unwrap();
    let s = TestServer::start(config).await;
    s.admin()
        .import_key(pb::ImportKeyRequest {
            name: "gh-hook".into(),
            algorithm: pb::Algorithm::HmacSha256 as i32,
            material: b"shared-github-secret-0123456789ab".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    s
}

pub(crate) const BODY: &[u8] = b"{\"action\":\"opened\"}";

async fn verify(
    s: &TestServer,
    headers: &[pb::HttpHeader],
) -> Result<pb::VerifyHttpRequestResponse, tonic::Status> {
    verify_body(s, headers, BODY).await
}

pub(crate) async fn verify_body(
    s: &TestServer,
    headers: &[pb::HttpHeader],
    body: &[u8],
) -> Result<pb::VerifyHttpRequestResponse, tonic::Status> {
    s.signer()
        .verify_http_request(pb::VerifyHttpRequestRequest {
            profile: "gh".into(),
            method: "POST".into(),
            url: "https://ci.example/hook".into(),
            body: body.to_vec(),
            headers: headers.to_vec(),
            source_ip: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub(crate) async fn sign_body(s: &TestServer, body: &[u8]) -> pb::SignHttpRequestResponse {
    s.signer()
        .sign_http_request(pb::SignHttpRequestRequest {
            profile: "gh".into(),
            method: "POST".into(),
            url: "https://ci.example/hook".into(),
            body: body.to_vec(),
            nonce: String::new(),
            headers: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_sharing_redis_agree_on_replays_and_fail_closed() {
    let redis = redis_server();
    let a = server(&redis.url).await;
    let b = server(&redis.url).await;
    let signed = sign_body(&a, BODY).await;
    let first = verify(&a, &signed.headers).await.unwrap();
    assert!(first.valid, "{first:?}");
    let replayed = verify(&b, &signed.headers).await.unwrap();
    assert!(!replayed.valid);
    assert_eq!(replayed.reason, pb::VerifyFailureReason::Replayed as i32);
    // GitHub's delivery id is not signed: the same delivery under a new id
    // is still a replay, on the other replica too.
    let mut renamed = signed.headers.clone();
    renamed[1].value = "fresh-delivery-0".into();
    let r = verify(&b, &renamed).await.unwrap();
    assert_eq!(r.reason, pb::VerifyFailureReason::Replayed as i32);

    // An unverified request writes nothing: a forged signature with a fresh
    // delivery id fails, and that id then still verifies a genuine delivery.
    let second_body = b"{\"action\":\"closed\"}";
    let second = sign_body(&a, second_body).await;
    let mut forged = second.headers.clone();
    forged[0].value = format!("sha256={}", "0".repeat(64));
    forged[1].value = "fresh-delivery-1".into();
    let r = verify_body(&b, &forged, second_body).await.unwrap();
    assert_eq!(r.reason, pb::VerifyFailureReason::SignatureMismatch as i32);
    let mut genuine = second.headers.clone();
    genuine[1].value = "fresh-delivery-1".into();
    assert!(verify_body(&b, &genuine, second_body).await.unwrap().valid);

    // Redis gone: verification fails closed with UNAVAILABLE.
    let port = redis.url.rsplit(':').next().unwrap().to_string();
    drop(redis);
    let mut again = signed.headers.clone();
    again[1].value = "fresh-delivery-2".into();
    let e = verify(&a, &again).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");

    // Redis back on the same port: the connection is re-established and
    // the same delivery (never recorded) now verifies.
    let _back = redis_server_with(&["--port", &port]);
    let mut ok = None;
    for _ in 0..50 {
        match verify(&a, &again).await {
            Ok(r) => {
                ok = Some(r);
                break;
            }
            Err(e) => assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ok.expect("no recovery after Redis came back").valid);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Two `signet serve` processes (the URL, with its password, comes from
/// the environment): every webhook delivered to both at once is accepted
/// by exactly one of them, a Standard Webhooks one by its `webhook-id` and
/// an RFC 9421 one by its signed `nonce`, and the log never shows the
/// password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_race_on_each_delivery_and_exactly_one_wins() {
    let redis = redis_server_with(&["--requirepass", "r3dis-pw-77"]);
    let url = redis.url.replace("redis://", "redis://:r3dis-pw-77@");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("signet.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\nplaintext = true\n\
         [http]\nreplay_store = \"redis\"\nredis_url_env = \"SIGNET_TEST_REDIS_URL\"\n\
         [[profiles]]\nname = \"sw\"\npreset = \"standard-webhooks\"\nkey = \"sw-hook\"\n\
         [[profiles]]\nname = \"op\"\nscheme = \"rfc9421\"\nkey = \"sw-hook\"\nuse_nonce = true\n",
    )
    .unwrap();
    let env = [("SIGNET_TEST_REDIS_URL", url.as_str())];
    let cfg = config.to_str().unwrap();
    let start = || serve().config(cfg).envs(&env).keep_log(false).start();
    let (serve_a, serve_b) = (start(), start());
    for log in [serve_a.startup_log(), serve_b.startup_log()] {
        let log = log.join("\n");
        assert!(log.contains("replay store: Redis"), "{log}");
        assert!(!log.contains("r3dis-pw-77"), "{log}");
    }
    let connect = |addr: String| async move {
        tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap()
    };
    let (ca, cb) = (
        connect(serve_a.grpc.clone()).await,
        connect(serve_b.grpc.clone()).await,
    );
    for c in [&ca, &cb] {
        pb::key_admin_client::KeyAdminClient::new(c.clone())
            .import_key(pb::ImportKeyRequest {
                name: "sw-hook".into(),
                algorithm: pb::Algorithm::HmacSha256 as i32,
                material: b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_vec(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let (mut sa, mut sb) = (
        pb::signer_client::SignerClient::new(ca),
        pb::signer_client::SignerClient::new(cb),
    );
    for i in 0..20 {
        let profile = if i % 2 == 0 { "sw" } else { "op" };
        let body = format!("{{\"n\":{i}}}").into_bytes();
        let signed = sa
            .sign_http_request(pb::SignHttpRequestRequest {
                profile: profile.into(),
                method: "POST".into(),
                url: "https://merchant.example/hooks".into(),
                body: body.clone(),
                nonce: String::new(),
                headers: Vec::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let req = pb::VerifyHttpRequestRequest {
            profile: profile.into(),
            method: "POST".into(),
            url: "https://merchant.example/hooks".into(),
            body,
            headers: signed.headers,
            source_ip: String::new(),
        };
        let (ra, rb) = tokio::join!(
            sa.verify_http_request(req.clone()),
            sb.verify_http_request(req)
        );
        let (ra, rb) = (ra.unwrap().into_inner(), rb.unwrap().into_inner());
        assert!(
            ra.valid != rb.valid,
            "{profile} delivery {i}: {ra:?} {rb:?}"
        );
        let loser = if ra.valid { rb } else { ra };
        assert_eq!(loser.reason, pb::VerifyFailureReason::Replayed as i32);
    }
}
