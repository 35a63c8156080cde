//! Shutdown and drain: SIGTERM on a real `signet serve` under load
//! answers every call it accepted (the audit trail shows which) while
//! readiness goes off, and an in-process server's graceful stop finishes
//! the calls in flight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use signet::api::pb;
use signet::keys::Algorithm;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::conformance::create;
use crate::support::process::{serve, write_file, WaitFor, DEMO_WITH_ADMIN};
use crate::support::TestServer;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_every_call_it_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let config = write_file(
        dir.path(),
        "signet.toml",
        &format!(
            "{}\ndrain_delay = \"1s\"\nshutdown_timeout = \"20s\"\n[audit]\noutput = \"file\"\npath = \"{}\"\n",
            DEMO_WITH_ADMIN,
            audit.display()
        )
        .replacen("[admin]", "[admin]", 1),
    );
    // drain_delay and shutdown_timeout belong to [server]: move them there.
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("\ndrain_delay = \"1s\"\nshutdown_timeout = \"20s\"\n", "\n")
        .replace(
            "plaintext = true\n",
            "plaintext = true\ndrain_delay = \"1s\"\nshutdown_timeout = \"20s\"\n",
        );
    std::fs::write(&config, text).unwrap();
    let s = serve().config(&config).wait_for(WaitFor::Both).start();
    let channels = [s.channel().await, s.channel().await];
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let ch = channels[i % 2].clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut signer = pb::signer_client::SignerClient::new(ch);
            let mut outcomes: HashMap<&'static str, usize> = HashMap::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = signer
                    .sign(pb::SignRequest {
                        // RSA keeps calls in flight long enough to matter.
                        key: if i % 4 == 0 { "demo-rsa" } else { "demo-ecdsa" }.into(),
                        input: Some(pb::sign_request::Input::Message(b"load".to_vec())),
                        ..Default::default()
                    })
                    .await;
                // A call the closing connection never carried fails in the
                // transport (UNAVAILABLE in most gRPC clients; tonic says
                // CANCELLED or UNKNOWN); anything else came from the server.
                let code = match r {
                    Ok(_) => "ok",
                    Err(e) if e.code() == tonic::Code::Unavailable => "transport",
                    Err(e)
                        if std::error::Error::source(&e).is_some_and(|s| {
                            s.downcast_ref::<tonic::transport::Error>().is_some()
                        }) =>
                    {
                        "transport"
                    }
                    Err(e) => panic!("the server answered {:?}: {}", e.code(), e.message()),
                };
                *outcomes.entry(code).or_default() += 1;
                if code != "ok" {
                    // The server is going away: stop this client.
                    break;
                }
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.signal("-TERM");
    // Draining: not ready, still alive, still answering.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.admin_health("").await, ServingStatus::NotServing);
    assert_eq!(s.admin_health("liveness").await, ServingStatus::Serving);
    let mut s = s;
    let status = tokio::task::spawn_blocking(move || {
        let st = s.wait();
        (st, s)
    })
    .await
    .unwrap();
    let (status, s) = status;
    assert!(status.unwrap().success());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total: HashMap<&'static str, usize> = HashMap::new();
    for t in tasks {
        for (k, v) in t.await.unwrap() {
            *total.entry(k).or_default() += v;
        }
    }
    let ok = total.get("ok").copied().unwrap_or(0);
    assert!(ok > 0, "{total:?}");
    // Every call the server took, it answered: the audit trail holds
    // exactly the calls the clients saw succeed, so none of the calls that
    // failed in the transport had reached a handler, and none was cut off.
    let audited: Vec<String> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"rpc\":\"signet.v1.Signer/Sign\""))
        .map(String::from)
        .collect();
    assert!(audited.iter().all(|l| l.contains("\"outcome\":\"ok\"")));
    assert_eq!(audited.len(), ok, "{total:?}");
    s.wait_log(0, "signet stopped");
}
