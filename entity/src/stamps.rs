//! Version stamps of data that processes keep in memory. A change bumps its stamp (one
//! row per kind of data in `change_stamps`); a process compares the stamp with the one it
//! loaded its copy under, and drops the copy when they differ. One cheap read tells a
//! process whether anything changed, whichever process made the change.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::DomainResult;

/// Webhook routes: integrations (status, URL token, events, settings) and their products.
pub const ROUTES: &str = "routes";

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
