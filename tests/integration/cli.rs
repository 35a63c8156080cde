//! The `signet` binary's command line: demo mode serving the demo keys
//! and stopping cleanly on SIGTERM, `serve` refusing a bad config by
//! naming the field, and `signet http sign` / `verify` / `profiles`
//! against a server.

use std::process::Command;

use signet::api::pb;

use crate::support::process::serve;
use crate::support::TestServer;

/// The `signet` binary as a client of `endpoint`.
fn signet_cli(endpoint: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["--endpoint", endpoint])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn binary_demo_mode_serves_demo_keys_and_stops_on_sigterm() {
    let mut p = serve()
        .args(["--listen", "127.0.0.1:0"])
        .keep_log(false)
        .start();
    let log = p.startup_log().join("\n");
    assert!(log.contains("demo"), "first log lines say demo mode: {log}");
    let channel = p.channel().await;
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
    p.signal("-TERM");
    let status = tokio::task::spawn_blocking(move || p.wait())
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
        let out = signet_cli(&s.endpoint, args);
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

/// `--json` output a script can use as it is: `sign --json --out F` writes
/// the signature to F and describes it on standard output, a JWK is an
/// object, not a string holding one; `--help` lists the algorithms.
#[tokio::test(flavor = "multi_thread")]
async fn cli_json_outputs_and_algorithm_help() {
    let s = TestServer::memory().await;
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("msg");
    std::fs::write(&msg, "amount=1000").unwrap();
    let cli = |args: &[&str]| {
        let out = signet_cli(&s.endpoint, args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
    tokio::task::block_in_place(|| {
        cli(&["keys", "create", "cli-ec", "-a", "ECDSA_P256_SHA256"]);
        let sig = dir.path().join("sig");
        let m = msg.to_str().unwrap();
        let out = json(&cli(&[
            "--json",
            "sign",
            "--key",
            "cli-ec",
            "--file",
            m,
            "--out",
            sig.to_str().unwrap(),
        ]));
        assert_eq!(out["key_version_id"], "cli-ec:v1");
        assert_eq!(out["out"], sig.to_str().unwrap());
        use base64::Engine;
        let written = std::fs::read(&sig).unwrap();
        let printed = base64::engine::general_purpose::STANDARD
            .decode(out["signature"].as_str().unwrap())
            .unwrap();
        assert_eq!(written, printed, "--out holds the raw signature");
        // And it verifies, read back from the file.
        let s_file = sig.to_str().unwrap();
        let v = cli(&[
            "verify",
            "--key",
            "cli-ec",
            "--file",
            m,
            "--signature-file",
            s_file,
            "--encoding",
            "raw",
        ]);
        assert_eq!(v, "valid (cli-ec:v1)\n");

        let out = json(&cli(&[
            "--json",
            "public-key",
            "--key",
            "cli-ec",
            "--format",
            "jwk",
        ]));
        assert_eq!(out["public_key"]["kty"], "EC", "{out}");
        assert_eq!(out["public_key"]["crv"], "P-256", "{out}");
        let pem = json(&cli(&["--json", "public-key", "--key", "cli-ec"]));
        assert!(pem["public_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----"));

        let help = cli(&["keys", "create", "--help"]);
        for a in signet::keys::Algorithm::ALL {
            assert!(
                help.contains(a.name()),
                "{} missing from:\n{help}",
                a.name()
            );
        }
    });
    s.stop().await.unwrap();
}
