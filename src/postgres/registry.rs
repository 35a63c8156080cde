//! The key registry in PostgreSQL: one row per key, its record as JSON and
//! a generation. Every change is one transaction that compares and sets
//! the generation (of two writers exactly one commits, the other gets
//! `ABORTED`), writes the change's audit row, and notifies the other
//! replicas, which re-read that key alone (`super::listen`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::types::Json;

use super::listen::Contact;
use super::{Database, DbError};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::record::KeyRecord;
use crate::keys::store::{Change, PutError, RegistryStore, Sharing, StoreFuture};

/// The channel replicas listen on: one per schema.
pub(crate) fn channel(schema: &str) -> String {
    format!("signet_keys_{schema}")
}

/// The registry store in PostgreSQL.
#[derive(Debug)]
pub(crate) struct PgRegistryStore {
    db: Arc<Database>,
    /// The generation of every record this process last read or wrote.
    seen: parking_lot::Mutex<HashMap<String, i64>>,
    contact: Arc<Contact>,
    /// Written in each audit row: which process made the change.
    replica: String,
}

impl PgRegistryStore {
    /// The store on `db`; `contact` is kept by the listener.
    pub(crate) fn new(db: Arc<Database>, contact: Arc<Contact>) -> Self {
        Self {
            db,
            seen: Default::default(),
            contact,
            replica: replica_name(),
        }
    }
}

/// `host:pid`: tells the audit trail's readers which replica acted.
fn replica_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, and
    // gethostname NUL-terminates within it (or truncates: the last byte
    // is never written below).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    let host = if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(0);
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown".into()
    };
    format!("{host}:{}", std::process::id())
}

/// A stored record, or `None` (logged) when it does not parse.
fn parse(name: &str, value: serde_json::Value) -> Option<KeyRecord> {
    match serde_json::from_value::<KeyRecord>(value) {
        Ok(r) if r.name == name => Some(r),
        _ => {
            tracing::error!(key = %name, "unreadable key record in the database; ignored");
            None
        }
    }
}

impl RegistryStore for PgRegistryStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn load(&self) -> StoreFuture<'_, Result<Vec<KeyRecord>>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT name, generation, record FROM {} ORDER BY name",
                self.db.table("keys")
            );
            let rows = self
                .db
                .with("reading the key registry", |client| async move {
                    Ok(client.query(&sql, &[]).await?)
                })
                .await?;
            let mut records = Vec::with_capacity(rows.len());
            let mut seen = HashMap::with_capacity(rows.len());
            for row in rows {
                let name: String = row.get(0);
                let generation: i64 = row.get(1);
                seen.insert(name.clone(), generation);
                if let Some(r) = parse(&name, row.get(2)) {
                    records.push(r);
                }
            }
            *self.seen.lock() = seen;
            self.contact.touch();
            Ok(records)
        })
    }

    fn load_one<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Result<Option<KeyRecord>>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT generation, record FROM {} WHERE name = $1",
                self.db.table("keys")
            );
            let row = self
                .db
                .with("reading a key", |client| async move {
                    Ok(client.query_opt(&sql, &[&name]).await?)
                })
                .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let generation: i64 = row.get(0);
            self.seen.lock().insert(name.to_string(), generation);
            Ok(parse(name, row.get(1)))
        })
    }

    fn put<'a>(
        &'a self,
        record: &'a KeyRecord,
        change: &'a Change,
    ) -> StoreFuture<'a, std::result::Result<(), PutError>> {
        Box::pin(self.write(record, change))
    }

    fn sharing(&self) -> Sharing {
        Sharing::Notified
    }

    fn out_of_contact(&self) -> Option<Duration> {
        Some(self.contact.elapsed())
    }

    fn leads(&self) -> bool {
        self.contact.leader()
    }
}

impl PgRegistryStore {
    /// The compare-and-set transaction: the record, its audit row and the
    /// notification commit together or not at all.
    async fn write(
        &self,
        record: &KeyRecord,
        change: &Change,
    ) -> std::result::Result<(), PutError> {
        let name = record.name.as_str();
        let expected = self.seen.lock().get(name).copied();
        let (keys, audit) = (self.db.table("keys"), self.db.table("audit"));
        let channel = channel(self.db.schema());
        let committing = AtomicBool::new(false);
        let commit_sent = &committing;
        let version = change.version.map(|v| v as i32);
        let run = |mut client: deadpool_postgres::Object| async move {
            let tx = client.transaction().await?;
            let row = match expected {
                None => {
                    tx.query_opt(
                        &format!(
                            "INSERT INTO {keys} (name, generation, record) VALUES ($1, 1, $2) \
                             ON CONFLICT (name) DO NOTHING RETURNING generation"
                        ),
                        &[&name, &Json(record)],
                    )
                    .await?
                }
                Some(g) => {
                    tx.query_opt(
                        &format!(
                            "UPDATE {keys} SET generation = generation + 1, record = $2, \
                             updated_at = now() WHERE name = $1 AND generation = $3 \
                             RETURNING generation"
                        ),
                        &[&name, &Json(record), &g],
                    )
                    .await?
                }
            };
            let Some(row) = row else {
                return Err(DbError::Refused(match expected {
                    None => Error::exists(format!("key {name} already exists")),
                    Some(_) => Error::new(
                        ErrorKind::Aborted,
                        format!("key {name} was changed by another replica; retry"),
                    ),
                }));
            };
            let generation: i64 = row.get(0);
            tx.execute(
                &format!(
                    "INSERT INTO {audit} (key, generation, rpc, operation, request_id, identity, \
                     source, version, replica, record) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ),
                &[
                    &name,
                    &generation,
                    &change.rpc,
                    &change.operation,
                    &change.request_id,
                    &change.identity,
                    &change.source,
                    &version,
                    &self.replica,
                    &Json(record),
                ],
            )
            .await?;
            tx.execute("SELECT pg_notify($1, $2)", &[&channel, &name])
                .await?;
            commit_sent.store(true, Ordering::SeqCst);
            tx.commit().await?;
            Ok(generation)
        };
        match self.db.attempt(run).await {
            Ok(generation) => {
                self.seen.lock().insert(name.to_string(), generation);
                Ok(())
            }
            Err(DbError::Refused(error)) => Err(error.into()),
            Err(e) => Err(PutError {
                error: super::unavailable("storing a key change", &e),
                maybe_applied: committing.load(Ordering::SeqCst),
            }),
        }
    }
}
