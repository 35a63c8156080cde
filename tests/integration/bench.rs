//! `signet bench --floor` as a process against `signet serve`: the report
//! carries every part of the limit and the arithmetic that joins them, and
//! the bare tonic server it starts is gone when it ends. Nothing here
//! times anything: the figures are whatever this machine gives, and only
//! their consistency is checked.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use signet::api::pb;

use crate::support::process::{serve, wait_exit};

fn signet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_signet"))
}

fn num(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {v:#}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Whether process `pid` is still a bench floor server (a reused pid is
/// some other program).
fn floor_server_alive(pid: u64) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("bench-floor-server"))
        .unwrap_or(false)
}

#[test]
fn bench_floor_reports_the_limit_from_the_parts_it_measured() {
    let server = serve()
        .args(["--listen", "127.0.0.1:0"])
        .keep_log(false)
        .start();
    let out = signet()
        .args(["--json", "--endpoint", &server.endpoint()])
        .args(["bench", "--floor", "--key", "demo-ecdsa"])
        .args(["--duration", "1s", "--warmup", "0s"])
        .args(["--concurrency", "4", "--connections", "2"])
        .args(["--server-pid", &server.pid().to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let r: Value = serde_json::from_str(&stdout).unwrap();

    // signet's own report, as a plain run prints it.
    assert_eq!(r["mode"], "rpc", "{r:#}");
    assert_eq!(r["algorithm"], "ECDSA_P256_SHA256");
    assert!(r["requests"].as_u64().unwrap() > 0, "{r:#}");
    assert_eq!(
        r["order"],
        serde_json::json!(["floor", "signet", "signing"])
    );

    // The floor: its own process, every call answered.
    let floor = &r["floor"];
    assert_eq!(floor["mode"], "floor");
    assert!(floor["requests"].as_u64().unwrap() > 0, "{floor:#}");
    assert_eq!(floor["errors"], 0, "{floor:#}");
    assert_eq!(floor["concurrency"], 4);
    assert_eq!(floor["connections"], 2);
    assert_ne!(floor["endpoint"], r["endpoint"]);
    let floor_pid = floor["server_pid"].as_u64().unwrap();
    assert_ne!(floor_pid, u64::from(server.pid()));
    assert_ne!(floor_pid, u64::from(std::process::id()));
    assert!(
        !floor_server_alive(floor_pid),
        "the floor server {floor_pid} outlived the bench"
    );

    // The signing cost: one thread, a key of the same algorithm.
    let signing = &r["signing"];
    assert_eq!(signing["mode"], "in-process");
    assert_eq!(signing["algorithm"], "ECDSA_P256_SHA256");
    assert_eq!(signing["concurrency"], 1);
    assert!(signing["requests"].as_u64().unwrap() > 0, "{signing:#}");

    // Every part of the limit, the same figures as the reports above.
    let l = &r["limit"];
    for field in [
        "cpus",
        "floor_requests_per_second",
        "floor_server_cpu_us_per_request",
        "floor_client_cpu_us_per_request",
        "signing_cpu_us_per_op",
        "limit_requests_per_second",
        "signet_requests_per_second",
        "share_percent",
        "signet_server_cpu_us_per_request",
        "signet_overhead_cpu_us_per_request",
        "target_share_percent",
        "target_overhead_ratio",
    ] {
        num(l, field);
    }
    let (fs, fc, sg) = (
        num(l, "floor_server_cpu_us_per_request"),
        num(l, "floor_client_cpu_us_per_request"),
        num(l, "signing_cpu_us_per_op"),
    );
    assert_eq!(fs, num(floor, "server_cpu_us_per_request"));
    assert_eq!(fc, num(floor, "client_cpu_us_per_request"));
    assert_eq!(sg, num(signing, "client_cpu_us_per_request"));
    assert_eq!(
        num(l, "floor_requests_per_second"),
        num(floor, "requests_per_second")
    );
    assert_eq!(
        num(l, "signet_requests_per_second"),
        num(&r, "requests_per_second")
    );
    let ss = num(l, "signet_server_cpu_us_per_request");
    assert_eq!(ss, num(&r, "server_cpu_us_per_request"));
    let cpus = num(l, "cpus");
    assert_eq!(
        cpus as usize,
        std::thread::available_parallelism().unwrap().get()
    );

    // The arithmetic.
    let limit = num(l, "limit_requests_per_second");
    assert!(close(limit, cpus * 1e6 / (fs + fc + sg)), "{l:#}");
    assert!(
        close(
            num(l, "share_percent"),
            num(l, "signet_requests_per_second") / limit * 100.0
        ),
        "{l:#}"
    );
    let overhead = num(l, "signet_overhead_cpu_us_per_request");
    assert!(close(overhead, ss - sg), "{l:#}");
    if fs > 0.0 {
        assert!(close(num(l, "overhead_ratio"), overhead / fs), "{l:#}");
    } else {
        assert!(l["overhead_ratio"].is_null(), "{l:#}");
    }
}

#[test]
fn bench_floor_with_a_key_that_cannot_sign_fails_before_any_load() {
    let server = serve()
        .args(["--listen", "127.0.0.1:0"])
        .keep_log(false)
        .start();
    let out = signet()
        .args(["--endpoint", &server.endpoint()])
        .args([
            "bench",
            "--floor",
            "--key",
            "no-such-key",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NOT_FOUND"), "{stderr}");
    assert!(!stderr.contains("bench --floor: the floor"), "{stderr}");
}

#[test]
fn bench_rpc_loads_the_cipher_service_against_a_floor_of_the_same_bytes() {
    let server = serve()
        .args(["--listen", "127.0.0.1:0"])
        .keep_log(false)
        .start();
    let ok = signet()
        .args(["--endpoint", &server.endpoint()])
        .args(["keys", "create", "bench-aes", "--algorithm", "AES_256_GCM"])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    for rpc in ["encrypt", "decrypt", "data-key"] {
        let out = signet()
            .args(["--json", "--endpoint", &server.endpoint()])
            .args(["bench", "--floor", "--key", "bench-aes", "--rpc", rpc])
            .args([
                "--message-size",
                "256",
                "--duration",
                "1s",
                "--warmup",
                "0s",
            ])
            .args(["--concurrency", "2", "--connections", "1"])
            .args(["--server-pid", &server.pid().to_string()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{rpc}: {stdout}{out:?}");
        let r: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(r["algorithm"], "AES_256_GCM", "{r:#}");
        assert!(r["requests"].as_u64().unwrap() > 0, "{rpc}: {r:#}");
        assert_eq!(r["errors"], 0, "{rpc}: {r:#}");
        assert_eq!(r["floor"]["errors"], 0, "{rpc}: {r:#}");
        // The in-process part did the same operation, without a failure.
        assert!(
            r["signing"]["requests"].as_u64().unwrap() > 0,
            "{rpc}: {r:#}"
        );
        assert_eq!(r["signing"]["errors"], 0, "{rpc}: {r:#}");
    }
    // A signing key cannot be loaded with a cipher call: refused before
    // the load, with the server's code.
    let out = signet()
        .args(["--endpoint", &server.endpoint()])
        .args([
            "bench",
            "--key",
            "demo-hmac",
            "--rpc",
            "encrypt",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("INVALID_ARGUMENT"));
    // In-process, a cipher call needs an AES key.
    let out = signet()
        .args([
            "bench",
            "--in-process",
            "--algorithm",
            "ED25519",
            "--rpc",
            "encrypt",
        ])
        .args(["--duration", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs an AES_256_GCM key"));
    // --rpc and --batch do not go together.
    let out = signet()
        .args(["bench", "--key", "k", "--rpc", "decrypt", "--batch", "10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// The floor server alone: `Sign` answers what it was told, the other
/// methods UNIMPLEMENTED, and it exits when its standard input closes.
#[tokio::test]
async fn floor_server_answers_the_size_it_was_given_and_exits_with_its_parent() {
    let mut child = signet()
        .args(["bench-floor-server", "--signature-length", "64"])
        .args(["--version", "3", "--key-version-id", "demo-ed25519:v3"])
        .args(["--algorithm", &(pb::Algorithm::Ed25519 as i32).to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let endpoint = format!("http://{}", line.trim());
    let mut client = pb::signer_client::SignerClient::connect(endpoint)
        .await
        .unwrap();
    let r = client
        .sign(pb::SignRequest {
            key: "anything".into(),
            input: Some(pb::sign_request::Input::Message(b"hello".to_vec())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.signature.len(), 64);
    assert_eq!(r.version, 3);
    assert_eq!(r.key_version_id, "demo-ed25519:v3");
    assert_eq!(r.algorithm, pb::Algorithm::Ed25519 as i32);
    let e = client
        .verify(pb::VerifyRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented);
    drop(child.stdin.take());
    let status = wait_exit(
        &mut child,
        Duration::from_secs(10),
        "the floor server did not exit when its standard input closed",
    );
    assert!(status.success(), "{status:?}");
}
