//! The job queue lives in the application database (its own tables), on the same pool.

use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use entity::database::{Database, Pool};

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the job queue: {0}")]
pub struct QueueSetupError(String);

/// Creates or upgrades the queue tables.
///
/// On SQLite this runs apalis' migrations directly instead of `SqliteStorage::setup()`,
/// which would switch one pooled connection to `synchronous=OFF`: every connection keeps
/// the WAL + `synchronous=NORMAL` settings the pool was opened with.
pub async fn setup(db: &Database) -> Result<(), QueueSetupError> {
    match &db.pool {
        Pool::Sqlite(pool) => SqliteStorage::<()>::migrations()
            .run(pool)
            .await
            .map_err(|err| QueueSetupError(err.to_string())),
        Pool::Postgres(pool) => PostgresStorage::<()>::setup(pool)
            .await
            .map_err(|err| QueueSetupError(err.to_string())),
    }
}
