//! What keeps a replica's view current, and elects the scheduler.
//!
//! One connection of its own per replica, outside the pool, plaintext or
//! TLS as the pool's are:
//!
//! * `LISTEN` on the schema's channel: each committed change names its
//!   key, and the replica re-reads that key alone;
//! * on every (re)connection, after `LISTEN` and before anything else, a
//!   full re-read, and another every `postgres.resync_interval`: a lost
//!   notification costs latency, never correctness;
//! * a heartbeat every `postgres.heartbeat`, which on a replica that is
//!   not the scheduler tries to take a session-level advisory lock: the
//!   replica holding it applies the time-driven transitions. The lock
//!   goes with the session, so when the scheduler dies or loses its
//!   connection another replica takes over at its next heartbeat.
//!
//! [`Contact`] records when this replica last knew its view was current:
//! the registry refuses to sign from a view older than
//! `registry.max_staleness`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls};

use super::migrations::lock_id;
use super::registry::channel;
use super::tls::Connector;
use super::Database;
use crate::keys::registry::Registry;

/// When the view was last known current, and whether this replica is the
/// scheduler.
#[derive(Debug)]
pub(crate) struct Contact {
    start: Instant,
    /// Milliseconds after `start` of the last contact.
    last_ms: AtomicU64,
    leader: AtomicBool,
}

impl Contact {
    /// Current as of now (the registry has just been read), not the scheduler.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            leader: AtomicBool::new(false),
        })
    }

    /// The view is current now.
    pub(crate) fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Since the last contact.
    pub(crate) fn elapsed(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    /// Whether this replica holds the scheduler's lock.
    pub(crate) fn leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    fn set_leader(&self, on: bool) {
        let was = self.leader.swap(on, Ordering::SeqCst);
        match (was, on) {
            (false, true) => tracing::info!("this replica now runs the key scheduler"),
            (true, false) => tracing::warn!(
                "this replica no longer runs the key scheduler (its database session ended)"
            ),
            _ => {}
        }
    }
}

/// Keeps `registry` current until it is dropped.
pub(crate) fn spawn(
    db: Arc<Database>,
    registry: Weak<Registry>,
    contact: Arc<Contact>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        let mut failing_since: Option<Instant> = None;
        loop {
            let started = Instant::now();
            let outcome = session(&db, &registry, &contact).await;
            contact.set_leader(false);
            let Some(reason) = outcome else {
                return; // the registry is gone
            };
            if started.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            }
            // Log the first failure and then about every minute, not every retry.
            let now = Instant::now();
            if failing_since.is_none_or(|t| now.duration_since(t) > Duration::from_secs(60)) {
                tracing::warn!(
                    database = db.target(), error = %reason,
                    "key registry listener lost its database session; reconnecting (signing \
                     goes on from the cached view until registry.max_staleness)"
                );
                failing_since = Some(now);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    })
}

/// One database session: connect, listen, resync, then follow
/// notifications and heartbeats until something fails. `None` when the
/// registry is gone, else why the session ended.
async fn session(db: &Database, registry: &Weak<Registry>, contact: &Contact) -> Option<String> {
    let t = db.timeout;
    // The connection's messages: notifications to us, the end to the loop.
    let (tx, mut notes) = mpsc::unbounded_channel::<Option<String>>();
    let connect = tokio::time::timeout(db.connect_timeout, connect(db, tx)).await;
    let (client, driver) = match connect {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Some(super::DbError::from(e).to_string()),
        Err(_) => return Some("connection timed out".into()),
    };
    let _abort = AbortOnDrop(driver);
    let listen = format!("LISTEN {}", channel(db.schema()));
    match tokio::time::timeout(t, client.batch_execute(&listen)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Some(super::DbError::from(e).to_string()),
        Err(_) => return Some("LISTEN timed out".into()),
    }
    // Everything committed before LISTEN is in this read; everything after
    // is notified.
    let reg = registry.upgrade()?;
    if let Err(e) = reg.refresh().await {
        return Some(format!("full re-read failed: {}", e.message()));
    }
    drop(reg);
    contact.touch();
    let lock = lock_id(db.schema(), "scheduler");
    let mut heartbeat = tokio::time::interval(db.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut resync = tokio::time::interval(db.resync_interval);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resync.tick().await; // the first tick is now: the re-read just ran
    loop {
        tokio::select! {
            note = notes.recv() => {
                let Some(Some(name)) = note else {
                    return Some("the connection closed".into());
                };
                let reg = registry.upgrade()?;
                if let Err(e) = reg.refresh_key(&name).await {
                    // The backstop re-read picks it up.
                    tracing::warn!(key = %name, error = %e.message(), "cannot re-read a changed key");
                }
            }
            _ = heartbeat.tick() => {
                registry.upgrade()?;
                let beat = async {
                    if contact.leader() {
                        client.execute("SELECT 1", &[]).await.map(|_| true)
                    } else {
                        client
                            .query_one("SELECT pg_try_advisory_lock($1)", &[&lock])
                            .await
                            .map(|r| r.get::<_, bool>(0))
                    }
                };
                match tokio::time::timeout(t, beat).await {
                    Ok(Ok(got)) => {
                        contact.touch();
                        if got && !contact.leader() {
                            contact.set_leader(true);
                        }
                    }
                    Ok(Err(e)) => return Some(super::DbError::from(e).to_string()),
                    Err(_) => return Some("heartbeat timed out".into()),
                }
            }
            _ = resync.tick() => {
                let reg = registry.upgrade()?;
                if let Err(e) = reg.refresh().await {
                    return Some(format!("periodic re-read failed: {}", e.message()));
                }
            }
        }
    }
}

/// A connection of the listener's own, with the task that drives it.
async fn connect(
    db: &Database,
    tx: mpsc::UnboundedSender<Option<String>>,
) -> Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
    match &db.connector {
        Connector::Plain => {
            let (client, connection) = db.config.connect(NoTls).await?;
            Ok((client, drive(connection, tx)))
        }
        Connector::Tls(tls) => {
            let (client, connection) = db.config.connect(tls.clone()).await?;
            Ok((client, drive(connection, tx)))
        }
    }
}

/// Drives `connection`, whatever its stream (plaintext or TLS), sending
/// each notification's payload to `tx`, and `None` when it ends.
fn drive<S, T>(
    mut connection: Connection<S, T>,
    tx: mpsc::UnboundedSender<Option<String>>,
) -> tokio::task::JoinHandle<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(Some(n.payload().to_string())).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    let _ = tx.send(None);
                    return;
                }
            }
        }
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
