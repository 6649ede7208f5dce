//! Version stamps of data that processes keep in memory. A change bumps its stamp (one
//! row per kind of data in `change_stamps`); a process compares the stamp with the one it
//! loaded its copy under, and drops the copy when they differ. One cheap read tells a
//! process whether anything changed, whichever process made the change.

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::DomainResult;

/// Webhook routes: integrations (status, URL token, events, settings) and their products.
pub const ROUTES: &str = "routes";

/// Bumps this process made, of any name: the process's own caches compare it without a
/// read, so its own changes hold from the next request.
static BUMPED_HERE: AtomicU64 = AtomicU64::new(0);

/// How many bumps this process has made so far.
pub fn bumped_here() -> u64 {
    BUMPED_HERE.load(Ordering::SeqCst)
}

/// Records a change of `name`.
pub async fn bump(db: &impl ConnectionTrait, name: &str) -> DomainResult<()> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO change_stamps (name, version) VALUES ($1, 1) \
             ON CONFLICT (name) DO UPDATE SET version = change_stamps.version + 1"
        }
        _ => {
            "INSERT INTO change_stamps (name, version) VALUES (?, 1) \
             ON CONFLICT (name) DO UPDATE SET version = change_stamps.version + 1"
        }
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [name.into()]))
        .await?;
    BUMPED_HERE.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// The current version of `name` (0 before its first change).
pub async fn read(db: &impl ConnectionTrait, name: &str) -> DomainResult<i64> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT version FROM change_stamps WHERE name = $1",
        _ => "SELECT version FROM change_stamps WHERE name = ?",
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [name.into()]))
        .await?;
    Ok(match row {
        Some(row) => row.try_get_by_index::<i64>(0)?,
        None => 0,
    })
}
