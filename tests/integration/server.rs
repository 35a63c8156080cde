//! Server-level behaviour: health, reflection, request ids, graceful
//! shutdown, and the binary itself (demo mode, config errors, SIGTERM).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use signet::api::pb;
use signet::keys::Algorithm;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::conformance::{create, sign};
use crate::support::TestServer;

#[tokio::test]
async fn health_reports_serving_for_each_service() {
    let s = TestServer::memory().await;
    let mut h = HealthClient::new(s.channel());
    for svc in ["", "signet.v1.Signer", "signet.v1.KeyAdmin"] {
        // The monitor sets SERVING once the backend answered; poll briefly.
        let mut status = None;
        for _ in 0..100 {
            if let Ok(r) = h
                .check(HealthCheckRequest {
                    service: svc.into(),
                })
                .await
            {
                status = Some(r.into_inner().status());
                if status == Some(ServingStatus::Serving) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(status, Some(ServingStatus::Serving), "{svc:?}");
    }
    s.stop().await.unwrap();
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_calls() {
    let s = TestServer::memory().await;
    create(&s, "drain", Algorithm::RsaPkcs1_4096Sha256).await;
    // Start RSA-4096 rotations (each generates a key: slow) and stop the
    // server while they run: every one must complete, none be cut off.
    let mut calls = Vec::new();
    for _ in 0..3 {
        let mut c = s.admin();
        calls.push(tokio::spawn(async move {
            c.rotate_key(pb::RotateKeyRequest {
                name: "drain".into(),
                promote: false,
                grace_period: None,
            })
            .await
        }));
    }
    let mut signs = Vec::new();
    for _ in 0..20 {
        let mut c = s.signer();
        signs.push(tokio::spawn(async move {
            c.sign(pb::SignRequest {
                key: "drain".into(),
                input: Some(pb::sign_request::Input::Message(b"m".to_vec())),
                ..Default::default()
            })
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let registry = s.registry.clone();
    s.stop().await.unwrap();
    for c in calls {
        c.await.unwrap().expect("in-flight rotation completed");
    }
    for c in signs {
        c.await.unwrap().expect("in-flight sign completed");
    }
    assert_eq!(registry.get("drain").unwrap().record.versions.len(), 4);
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

/// A `signet serve` child process; killed on drop.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and returns it with the address it listens on and the
/// log lines up to that point.
pub(crate) fn spawn_serve(args: &[&str]) -> (Proc, String, Vec<String>) {
    spawn_serve_env(args, &[])
}

/// [`spawn_serve`] with extra environment variables.
pub(crate) fn spawn_serve_env(args: &[&str], env: &[(&str, &str)]) -> (Proc, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signet"))
        .arg("serve")
        .args(args)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                if let Some(i) = line.find("address=") {
                    let addr = line[i + 8..].split_whitespace().next().unwrap().to_string();
                    lines.push(line);
                    std::thread::spawn(move || while rx.recv().is_ok() {});
                    return (Proc(child), addr, lines);
                }
                lines.push(line);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("signet serve did not report its address: {lines:#?}");
}

#[tokio::test]
async fn binary_demo_mode_serves_demo_keys_and_stops_on_sigterm() {
    let (mut p, addr, lines) = spawn_serve(&["--listen", "127.0.0.1:0"]);
    let log = lines.join("\n");
    assert!(log.contains("demo"), "first log lines say demo mode: {log}");
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut signer = pb::signer_client::SignerClient::new(channel.clone());
    for key in ["demo-hmac", "demo-rsa", "demo-ecdsa", "demo-ed25519"] {
        let r = signer
            .sign(pb::SignRequest {
                key: key.into(),
                input: Some(pb::sign_request::Input::Message(b"hello".to_vec())),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.key_version_id, format!("{key}:v1"));
    }
    let pid = p.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || p.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

#[test]
fn binary_refuses_a_bad_config_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[keys]\ndefault_grace_period = \"0s\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keys.default_grace_period"), "{err}");
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:0\"\nbogus = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

#[test]
fn binary_refuses_an_invalid_profile_naming_it_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[profiles]]\nname = \"payouts\"\npreset = \"boxo\"\nkey = \"k\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("profile \"payouts\": "), "{err}");
    assert!(err.contains("client_id"), "{err}");
}

/// `signet http sign` prints headers that `signet http verify -H` accepts
/// once; the second time is a replay (exit 3, reason printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_http_sign_then_verify() {
    let config = signet::config::Config::parse(
        "[[profiles]]\nname = \"slack\"\npreset = \"slack\"\nkey = \"slack-hook\"\n",
    )
    .unwrap();
    let s = TestServer::start(config).await;
    s.admin()
        .import_key(pb::ImportKeyRequest {
            name: "slack-hook".into(),
            algorithm: pb::Algorithm::HmacSha256 as i32,
            material: b"slack-signing-secret-0123456789ab".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    std::fs::write(&body, "token=x&team_id=T1&command=%2Fpay").unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(["--endpoint", &s.endpoint])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let base = [
        "-p",
        "slack",
        "-u",
        "https://app.example/slack",
        "--body-file",
    ];
    let b = body.to_str().unwrap();
    let (code, out) =
        tokio::task::block_in_place(|| cli(&[&["http", "sign"][..], &base, &[b]].concat()));
    assert_eq!(code, Some(0), "{out}");
    let headers: Vec<&str> = out.lines().collect();
    assert!(headers[0].starts_with("X-Slack-Signature: v0="), "{out}");
    assert!(
        headers[1].starts_with("X-Slack-Request-Timestamp: "),
        "{out}"
    );
    let mut verify_args = vec!["http", "verify"];
    verify_args.extend(base);
    verify_args.push(b);
    for h in &headers {
        verify_args.extend(["-H", h]);
    }
    let (code, out) = tokio::task::block_in_place(|| cli(&verify_args));
    assert_eq!((code, out.as_str()), (Some(0), "valid (slack-hook:v1)\n"));
    let (code, out) = tokio::task::block_in_place(|| cli(&verify_args));
    assert_eq!((code, out.as_str()), (Some(3), "invalid: REPLAYED\n"));
    let (code, out) = tokio::task::block_in_place(|| cli(&["http", "profiles"]));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("slack\n"), "{out}");
    assert!(
        out.contains("  headers.signature = X-Slack-Signature\n"),
        "{out}"
    );
    assert!(
        out.contains("  payload_template = v0:{timestamp}:{payload}\n"),
        "{out}"
    );
    s.stop().await.unwrap();
}
