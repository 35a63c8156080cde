//! Readiness and the probe port (`[admin] listen`; not to be confused
//! with the KeyAdmin gRPC service, [`crate::api::admin`]).
//!
//! [`Readiness`] owns the `grpc.health.v1` statuses. Readiness (the
//! overall status `""`, and `signet.v1.KeyAdmin`) is SERVING only when the
//! server has started, is not draining, and its key backend answers.
//! `signet.v1.Signer` also needs the replay store: a Redis outage fails
//! webhook verification closed but does not take signing out of service
//! (every replica shares the outage, so none would be better to send to).
//! `liveness` is SERVING from the start to the exit.
//!
//! The probe port is plaintext, for kubelet probes and
//! the Prometheus scraper: it serves the same health statuses over gRPC
//! and `GET /metrics`, and nothing else.

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};
use tonic_health::ServingStatus;

/// The health service name that reports liveness.
pub(crate) const LIVENESS: &str = "liveness";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    started: bool,
    draining: bool,
    backend: bool,
    replay: bool,
}

impl State {
    fn ready(self) -> bool {
        self.started && !self.draining && self.backend
    }

    fn statuses(self) -> [(&'static str, bool); 4] {
        let ready = self.ready();
        [
            ("", ready),
            ("signet.v1.KeyAdmin", ready),
            ("signet.v1.Signer", ready && self.replay),
            ("signet.v1.CipherService", ready),
        ]
    }
}

/// Whether the server is ready for traffic: start-up, dependency health
/// and draining, as the health service reports them.
#[derive(Debug)]
pub(crate) struct Readiness {
    reporter: HealthReporter,
    state: Mutex<State>,
    // Serialises status updates so that they reach the reporter in order.
    publish: tokio::sync::Mutex<()>,
}

impl Readiness {
    /// Not ready (starting), alive.
    pub(crate) async fn new() -> Arc<Self> {
        let me = Arc::new(Self {
            reporter: HealthReporter::new(),
            state: Mutex::new(State {
                started: false,
                draining: false,
                backend: false,
                replay: false,
            }),
            publish: tokio::sync::Mutex::new(()),
        });
        me.reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        me.publish().await;
        me
    }

    /// A `grpc.health.v1` service reporting these statuses.
    pub(crate) fn health_service(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService::from_health_reporter(self.reporter.clone()))
    }

    /// Is the server ready for traffic?
    #[cfg(test)]
    pub(crate) fn ready(&self) -> bool {
        self.state.lock().ready()
    }

    async fn update(&self, f: impl FnOnce(&mut State)) {
        let changed = {
            let mut st = self.state.lock();
            let before = *st;
            f(&mut st);
            *st != before
        };
        // Health watchers are told of changes only.
        if changed {
            self.publish().await;
        }
    }

    async fn publish(&self) {
        let _g = self.publish.lock().await;
        let state = *self.state.lock();
        for (svc, up) in state.statuses() {
            let status = if up {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            self.reporter.set_service_status(svc, status).await;
        }
        crate::telemetry::metrics::get().set_ready(state.ready());
    }

    /// The listener is up and the services are built.
    pub(crate) async fn set_started(&self) {
        self.update(|s| s.started = true).await;
    }

    /// Shutting down: no longer ready, still alive.
    pub(crate) async fn set_draining(&self) {
        self.update(|s| s.draining = true).await;
    }

    /// The backend's and the replay store's health.
    pub(crate) async fn set_dependencies(&self, backend: bool, replay: bool) {
        self.update(|s| {
            s.backend = backend;
            s.replay = replay;
        })
        .await;
    }

    /// The process is about to exit: liveness goes too.
    pub(crate) async fn set_stopped(&self) {
        self.update(|s| s.draining = true).await;
        self.reporter
            .set_service_status(LIVENESS, ServingStatus::NotServing)
            .await;
    }
}

async fn metrics() -> ([(http::header::HeaderName, &'static str); 1], String) {
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::metrics::render(),
    )
}

/// Serves health and `/metrics` on `listener` until `shutdown` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    readiness: Arc<Readiness>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), crate::error::StartupError> {
    use crate::error::StartupError;
    let local = listener
        .local_addr()
        .map_err(|e| StartupError::failed("admin listener address", e))?;
    let router = tonic::service::Routes::new(readiness.health_service())
        .prepare()
        .into_axum_router()
        .route("/metrics", axum::routing::get(metrics));
    tracing::info!(address = %local, "admin port listening (health, /metrics)");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| StartupError::failed("admin port", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_health::pb::health_server::Health;
    use tonic_health::pb::HealthCheckRequest;

    async fn status(l: &Readiness, service: &str) -> i32 {
        HealthService::from_health_reporter(l.reporter.clone())
            .check(tonic::Request::new(HealthCheckRequest {
                service: service.into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .status
    }

    const SERVING: i32 = ServingStatus::Serving as i32;
    const NOT_SERVING: i32 = ServingStatus::NotServing as i32;

    #[tokio::test]
    async fn readiness_follows_start_up_dependencies_and_draining() {
        let l = Readiness::new().await;
        // Starting: alive, not ready.
        assert_eq!(status(&l, LIVENESS).await, SERVING);
        assert_eq!(status(&l, "").await, NOT_SERVING);
        l.set_dependencies(true, true).await;
        assert_eq!(status(&l, "").await, NOT_SERVING, "not started yet");
        l.set_started().await;
        for svc in ["", "signet.v1.Signer", "signet.v1.KeyAdmin"] {
            assert_eq!(status(&l, svc).await, SERVING, "{svc:?}");
        }
        // The replay store fails: only the Signer (webhook verification).
        l.set_dependencies(true, false).await;
        assert_eq!(status(&l, "").await, SERVING);
        assert_eq!(status(&l, "signet.v1.KeyAdmin").await, SERVING);
        assert_eq!(status(&l, "signet.v1.Signer").await, NOT_SERVING);
        // The backend fails: nothing is ready.
        l.set_dependencies(false, true).await;
        assert_eq!(status(&l, "").await, NOT_SERVING);
        assert!(!l.ready());
        l.set_dependencies(true, true).await;
        assert!(l.ready());
        // Draining: not ready, still alive; stopped: not alive either.
        l.set_draining().await;
        assert_eq!(status(&l, "").await, NOT_SERVING);
        assert_eq!(status(&l, LIVENESS).await, SERVING);
        l.set_stopped().await;
        assert_eq!(status(&l, LIVENESS).await, NOT_SERVING);
    }
}
