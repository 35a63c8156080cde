//! The replay store in PostgreSQL, for teams that run no Redis: one
//! insert that fails on a live duplicate, expired rows removed in the
//! background. Like Redis, it fails closed: no answer within
//! `postgres.statement_timeout` is `UNAVAILABLE`, never "new".

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Database;
use crate::error::Result;
use crate::httpsig::replay::{entry_id, BoxFuture, ReplayStore};

/// How often expired entries are removed, and how many at most per query.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
const SWEEP_BATCH: i64 = 10_000;

/// Seen nonces and digests in the schema's `replay` table.
#[derive(Debug)]
pub struct PgReplayStore {
    db: Arc<Database>,
    insert: String,
}

impl PgReplayStore {
    /// The store, and its background sweep of expired rows (which ends
    /// when the store is dropped).
    pub fn new(db: Arc<Database>) -> Arc<Self> {
        let t = db.table("replay");
        let store = Arc::new(Self {
            insert: format!(
                "INSERT INTO {t} (key, expires_at) VALUES ($1, now() + $2::float8 * interval '1 millisecond') \
                 ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at \
                 WHERE {t}.expires_at <= now() RETURNING 1"
            ),
            db,
        });
        tokio::spawn(sweep(Arc::downgrade(&store)));
        store
    }

    /// Removes expired rows; how many.
    pub async fn sweep_once(&self) -> Result<u64> {
        let t = self.db.table("replay");
        let sql = format!(
            "DELETE FROM {t} WHERE key IN \
             (SELECT key FROM {t} WHERE expires_at <= now() LIMIT {SWEEP_BATCH})"
        );
        self.db
            .with("removing expired replay entries", |client| async move {
                Ok(client.execute(&sql, &[]).await?)
            })
            .await
    }
}

async fn sweep(store: Weak<PgReplayStore>) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(s) = store.upgrade() else {
            return;
        };
        // A full batch means more are waiting: go on at once.
        while let Ok(n) = s.sweep_once().await {
            if n < SWEEP_BATCH as u64 {
                break;
            }
        }
    }
}

impl ReplayStore for PgReplayStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn health(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.db
                .with("replay store (PostgreSQL)", |client| async move {
                    client.execute("SELECT 1", &[]).await?;
                    Ok(())
                })
                .await
        })
    }

    fn insert<'a>(
        &'a self,
        scope: &'a str,
        key: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let id = entry_id(scope, key).to_vec();
            let ms = (ttl.as_millis() as f64).max(1.0);
            let sql = &self.insert;
            self.db
                .with("replay store (PostgreSQL)", |client| async move {
                    Ok(client.query_opt(sql, &[&id, &ms]).await?.is_some())
                })
                .await
        })
    }
}
