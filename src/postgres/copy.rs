//! `signet registry migrate --to postgres`: copies a token registry's
//! records into PostgreSQL, one transaction per key, each with its audit
//! row.
//!
//! Idempotent: a key already copied with the same record is left alone. A
//! row is replaced only when nothing but an earlier run of this copy wrote
//! it (its latest audit row is the copy's, at its generation) and the
//! token's record is newer; a row changed in PostgreSQL since is never
//! overwritten: that key is reported and the command fails.

use tokio_postgres::types::Json;

use super::{Database, DbError};
use crate::error::Result;
use crate::keys::record::KeyRecord;

/// The `rpc` of the audit rows the copy writes.
pub const MIGRATE_RPC: &str = "signet registry migrate";

/// What happened to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Copied {
    /// Not in the database before: inserted.
    Inserted,
    /// In the database with the same record.
    Unchanged,
    /// Replaced a row an earlier copy wrote, with the token's newer record.
    Updated,
    /// Left alone: the database's row is newer, or was changed there.
    Refused(String),
}

/// Copies `records` (with the token's generations) into `db`.
pub async fn copy(db: &Database, records: &[(KeyRecord, u64)]) -> Result<Vec<(String, Copied)>> {
    let mut out = Vec::with_capacity(records.len());
    for (record, generation) in records {
        let g = i64::try_from(*generation).unwrap_or(i64::MAX).max(1);
        let c = copy_one(db, record, g).await?;
        out.push((record.name.clone(), c));
    }
    Ok(out)
}

async fn copy_one(db: &Database, record: &KeyRecord, generation: i64) -> Result<Copied> {
    let (keys, audit) = (db.table("keys"), db.table("audit"));
    let channel = super::registry::channel(db.schema());
    let name = record.name.as_str();
    db.with("copying a key record", |mut client| async move {
        let tx = client.transaction().await?;
        // Serialises with a concurrent copy of the same key (the row lock
        // below cannot: the row may not exist yet).
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&super::migrations::lock_id(db.schema(), "copy")],
        )
        .await?;
        let row = tx
            .query_opt(
                &format!("SELECT generation, record FROM {keys} WHERE name = $1 FOR UPDATE"),
                &[&name],
            )
            .await?;
        let outcome = match row {
            None => {
                tx.execute(
                    &format!("INSERT INTO {keys} (name, generation, record) VALUES ($1, $2, $3)"),
                    &[&name, &generation, &Json(record)],
                )
                .await?;
                Copied::Inserted
            }
            Some(row) => {
                let stored_gen: i64 = row.get(0);
                let stored: Option<KeyRecord> =
                    serde_json::from_value(row.get::<_, serde_json::Value>(1)).ok();
                if stored.as_ref() == Some(record) {
                    return Ok(Copied::Unchanged);
                }
                let last: Option<(String, i64)> = tx
                    .query_opt(
                        &format!(
                            "SELECT rpc, generation FROM {audit} WHERE key = $1 \
                             ORDER BY id DESC LIMIT 1"
                        ),
                        &[&name],
                    )
                    .await?
                    .map(|r| (r.get(0), r.get(1)));
                let copied_only = last == Some((MIGRATE_RPC.to_string(), stored_gen));
                if !copied_only {
                    return Ok(Copied::Refused(format!(
                        "changed in PostgreSQL since it was copied (generation {stored_gen}); \
                         not overwritten"
                    )));
                }
                if stored_gen >= generation {
                    return Ok(Copied::Refused(format!(
                        "the database's row (generation {stored_gen}) is not older than the \
                         token's (generation {generation}); not overwritten"
                    )));
                }
                tx.execute(
                    &format!(
                        "UPDATE {keys} SET generation = $2, record = $3, updated_at = now() \
                         WHERE name = $1"
                    ),
                    &[&name, &generation, &Json(record)],
                )
                .await?;
                Copied::Updated
            }
        };
        tx.execute(
            &format!(
                "INSERT INTO {audit} (key, generation, rpc, operation, replica, record) \
                 VALUES ($1, $2, $3, 'migrate', $4, $5)"
            ),
            &[
                &name,
                &generation,
                &MIGRATE_RPC,
                &format!("pid {}", std::process::id()),
                &Json(record),
            ],
        )
        .await?;
        tx.execute("SELECT pg_notify($1, $2)", &[&channel, &name])
            .await?;
        tx.commit().await?;
        Ok::<_, DbError>(outcome)
    })
    .await
}
