//! The schema, created and migrated by signet at start-up from the
//! versioned migrations embedded in the binary (`migrations/*.sql`).
//!
//! Several replicas may start at once: each takes a transaction-level
//! advisory lock first, so one migrates and the others then find the
//! schema current. A database migrated by a newer signet (a version this
//! binary does not know) is refused, not guessed at.

use super::{Database, DbError};
use crate::error::{Error, Result};

/// (version, what it does, SQL with `{schema}` for the schema).
const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "key registry, audit trail and replay store",
    include_str!("migrations/0001_registry.sql"),
)];

/// The newest schema version this binary knows.
pub(crate) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// An advisory lock id for `purpose` in `schema`: the first 8 bytes of a
/// SHA-256, so that two schemas in one database do not share locks.
pub(crate) fn lock_id(schema: &str, purpose: &str) -> i64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("signet:{purpose}:{schema}").as_bytes());
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// Brings the schema to [`latest`], or refuses a newer one.
pub(crate) async fn run(db: &Database) -> Result<()> {
    let schema = db.schema().to_string();
    let applied = db
        .with("schema migration", |mut client| async move {
            let tx = client.transaction().await?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&lock_id(&schema, "migrate")],
            )
            .await?;
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                     version     integer PRIMARY KEY,
                     description text NOT NULL,
                     applied_at  timestamptz NOT NULL DEFAULT now()
                 );"
            ))
            .await?;
            let current: i32 = tx
                .query_one(
                    &format!("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations"),
                    &[],
                )
                .await?
                .get(0);
            if current > latest() {
                return Err(DbError::Refused(Error::unavailable(format!(
                    "the database schema {schema} is at version {current}, newer than this \
                     signet knows (version {}): run a signet at least as new as the one that \
                     migrated it",
                    latest()
                ))));
            }
            let mut applied = Vec::new();
            for (version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
                tx.batch_execute(&sql.replace("{schema}", &schema)).await?;
                tx.execute(
                    &format!(
                        "INSERT INTO {schema}.schema_migrations (version, description) VALUES ($1, $2)"
                    ),
                    &[version, description],
                )
                .await?;
                applied.push(*version);
            }
            tx.commit().await?;
            Ok(applied)
        })
        .await?;
    for v in applied {
        tracing::info!(
            schema = db.schema(),
            version = v,
            "database schema migrated"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_name_the_schema() {
        for (i, (v, _, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v, i as i32 + 1);
            assert!(sql.contains("{schema}."));
        }
        assert_ne!(lock_id("a", "migrate"), lock_id("b", "migrate"));
        assert_ne!(lock_id("a", "migrate"), lock_id("a", "scheduler"));
    }
}
