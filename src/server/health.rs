//! The dependency monitor: readiness follows the key backend and the
//! replay store.

use std::sync::Arc;
use std::time::Duration;

use super::probes::Readiness;
use crate::keys::registry::Registry;

/// Readiness follows the backend and the replay store: checked every 2 s
/// while they answer (a lost HSM token turns readiness off within about
/// that), every second while they do not.
pub(super) fn spawn_health_monitor(
    registry: Arc<Registry>,
    replay: Arc<dyn crate::httpsig::replay::ReplayStore>,
    readiness: Arc<Readiness>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let backend = registry.health().await;
            let store = tokio::time::timeout(Duration::from_secs(3), replay.health())
                .await
                .unwrap_or_else(|_| {
                    Err(crate::error::Error::unavailable("replay store timed out"))
                });
            let now = (backend.is_ok(), store.is_ok());
            readiness.set_dependencies(now.0, now.1).await;
            if last != Some(now) {
                match (&backend, &store) {
                    (Ok(()), Ok(())) => {
                        tracing::info!("backend and replay store healthy: SERVING")
                    }
                    (Err(b), _) => tracing::error!(
                        backend = %b,
                        replay_store = store.as_ref().err().map(|e| e.to_string()),
                        "backend unhealthy: NOT_SERVING"
                    ),
                    (Ok(()), Err(r)) => tracing::error!(
                        replay_store = %r,
                        "replay store unhealthy: signet.v1.Signer NOT_SERVING (webhook \
                         verification fails closed; signing goes on)"
                    ),
                }
                last = Some(now);
            }
            let ok = now.0 && now.1;
            tokio::time::sleep(Duration::from_secs(if ok { 2 } else { 1 })).await;
        }
    })
}
