//! Readiness and health: an in-process server reports SERVING for each
//! service once its backend answered, and a real `signet serve` that is
//! still starting is alive but not ready on its admin port.

use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::support::process::{sample, scrape, serve, write_file, WaitFor, DEMO_WITH_ADMIN};
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

/// While signet starts (here: waiting for a Redis that does not answer),
/// the admin port is up and says alive but not ready; the gRPC port is not
/// listening yet. Start-up then fails with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alive_but_not_ready_during_start_up() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "signet.toml",
        &format!(
            "{DEMO_WITH_ADMIN}\n[http]\nreplay_store = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}\"\n"
        ),
    );
    let mut s = serve().config(&config).wait_for(WaitFor::Admin).start();
    assert_eq!(s.admin_health("liveness").await, ServingStatus::Serving);
    for svc in ["", "signet.v1.Signer", "signet.v1.KeyAdmin"] {
        assert_eq!(
            s.admin_health(svc).await,
            ServingStatus::NotServing,
            "{svc:?}"
        );
    }
    let text = scrape(&s.admin);
    assert_eq!(sample(&text, "signet_ready"), Some(0.0), "{text}");
    assert!(s.grpc.is_empty(), "the gRPC port is not up yet");
    let status = tokio::task::spawn_blocking(move || {
        let st = s.wait();
        (st, s)
    })
    .await
    .unwrap();
    assert!(!status.0.unwrap().success());
    // The reader thread may still be draining the last lines.
    status.1.wait_log(0, "Redis");
}
