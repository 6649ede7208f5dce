//! Exports: the deals or contacts a person may see, as a CSV file a spreadsheet in Brazil
//! opens as is ([`csv`]). Asking starts a background job ([`run`]) that pages through the
//! same scoped queries the API lists with — group visibility and member scope included,
//! as they are when it runs — and writes the file in chunks to the database, so memory
//! stays flat however many rows and any server process can stream it back. An export and
//! its file are kept for a day ([`prune`]).

pub mod csv;
mod rows;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use crate::{
    Caller, DomainError, DomainResult,
    contacts::ContactFilter,
    database::Database,
    deals::DealFilter,
    new_id, now_ms,
    scope::find_scoped,
    tables::{enums::DealStatus, export, export_chunk, user},
};

/// How long an export and its file are kept.
pub const KEPT_FOR_MS: i64 = 24 * 3_600_000;

/// A chunk of the file is written once this many bytes are ready.
const CHUNK_BYTES: usize = 256 * 1024;

/// The filter an export was asked with, as stored on its row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredFilter {
    pub group_id: Option<String>,
    pub origin_id: Option<String>,
    pub stage_id: Option<String>,
    pub search: Option<String>,
    pub status: Option<String>,
    pub owner_id: Option<String>,
    pub product_id: Option<String>,
    pub email: Option<String>,
    pub label_id: Option<String>,
}

impl From<&DealFilter> for StoredFilter {
    fn from(f: &DealFilter) -> Self {
        StoredFilter {
            group_id: f.group_id.clone(),
            origin_id: f.origin_id.clone(),
            stage_id: f.stage_id.clone(),
            search: f.search.clone(),
            status: f.status.map(|s| s.as_str().to_owned()),
            owner_id: f.owner_id.clone(),
            product_id: f.product_id.clone(),
            email: f.contact_email.clone(),
            label_id: f.label_id.clone(),
        }
    }
}

impl From<&ContactFilter> for StoredFilter {
    fn from(f: &ContactFilter) -> Self {
        StoredFilter {
            email: f.email.clone(),
            label_id: f.label_id.clone(),
            search: f.search.clone(),
            ..StoredFilter::default()
        }
    }
}

impl StoredFilter {
    fn deals(self) -> DealFilter {
        DealFilter {
            group_id: self.group_id,
            origin_id: self.origin_id,
            stage_id: self.stage_id,
            search: self.search,
            status: self.status.as_deref().and_then(DealStatus::parse),
            owner_id: self.owner_id,
            product_id: self.product_id,
            contact_email: self.email,
            label_id: self.label_id,
        }
    }

    fn contacts(self) -> ContactFilter {
        ContactFilter {
            email: self.email,
            label_id: self.label_id,
            search: self.search,
        }
    }
}

/// Starts an export of what `caller` may see: `kind` is `DEALS` or `CONTACTS`. The caller
/// enqueues the job that runs it.
pub async fn start(
    db: &impl ConnectionTrait,
    caller: &Caller,
    kind: &str,
    filter: StoredFilter,
) -> DomainResult<export::Model> {
    if !matches!(kind, "DEALS" | "CONTACTS") {
        return Err(DomainError::bad_input("kind", "must be DEALS or CONTACTS"));
    }
    let now = now_ms();
    let filter = serde_json::to_string(&filter)
        .map_err(|err| DomainError::Internal(format!("cannot store the filter: {err}")))?;
    Ok(export::ActiveModel {
        id: Set(new_id()),
        account_id: Set(caller.account_id.clone()),
        user_id: Set(caller.user_id.clone()),
        kind: Set(kind.to_owned()),
        filter: Set(filter),
        status: Set("QUEUED".into()),
        rows: Set(0),
        error: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
        expires_at: Set(now + KEPT_FOR_MS),
    }
    .insert(db)
    .await?)
}

/// An export of the caller's (admins see every export of the account).
pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<export::Model> {
    let found = find_scoped::<export::Entity>(db, caller, id).await?;
    if !caller.is_admin() && found.user_id != caller.user_id {
        return Err(DomainError::NotFound("export"));
    }
    Ok(found)
}

/// A finished export of the caller's, ready to download.
pub async fn ready(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<export::Model> {
    let found = get(db, caller, id).await?;
    if found.status != "SUCCEEDED" {
        return Err(DomainError::Conflict(format!(
            "the export is {}",
            found.status.to_lowercase()
        )));
    }
    Ok(found)
}

/// Piece `seq` of an export's file, `None` past the last one.
pub async fn chunk(
    db: &impl ConnectionTrait,
    export_id: &str,
    seq: i32,
) -> DomainResult<Option<Vec<u8>>> {
    Ok(
        export_chunk::Entity::find_by_id((export_id.to_owned(), seq))
            .one(db)
            .await?
            .map(|c| c.data),
    )
}

/// Runs export `id` once: a queued or interrupted export starts over, a finished one is
/// left alone.
pub async fn run(database: &Database, id: &str) -> DomainResult<()> {
    let db = &database.conn;
    let Some(found) = export::Entity::find_by_id(id).one(db).await? else {
        return Ok(());
    };
    if !matches!(found.status.as_str(), "QUEUED" | "RUNNING") {
        return Ok(());
    }
    export_chunk::Entity::delete_many()
        .filter(export_chunk::Column::ExportId.eq(id))
        .exec(db)
        .await?;
    set_status(db, &found.id, "RUNNING", 0, None).await?;
    match write(database, &found).await {
        Ok(rows) => set_status(db, &found.id, "SUCCEEDED", rows, None).await,
        Err(err) => {
            tracing::warn!(export = id, error = %err.chain(), "export failed");
            set_status(db, &found.id, "FAILED", 0, Some(err.to_string())).await
        }
    }
}

/// Writes the file of `found`, as its user may see the rows now; returns the row count.
async fn write(database: &Database, found: &export::Model) -> DomainResult<i64> {
    let db = &database.conn;
    let person = user::Entity::find_by_id(found.user_id.as_str())
        .filter(user::Column::AccountId.eq(found.account_id.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| DomainError::forbidden("the person who asked no longer exists"))?;
    let caller = Caller {
        user_id: person.id,
        account_id: person.account_id,
        role: person.role,
    };
    let filter: StoredFilter = serde_json::from_str(&found.filter)
        .map_err(|err| DomainError::Internal(format!("unreadable filter: {err}")))?;
    let mut file = ChunkWriter::new(&found.id, database.clone());
    if found.kind == "CONTACTS" {
        rows::contacts(db, &caller, filter.contacts(), &mut file).await?;
    } else {
        rows::deals(db, &caller, filter.deals(), &mut file).await?;
    }
    file.finish().await
}

async fn set_status(
    db: &impl ConnectionTrait,
    id: &str,
    status: &str,
    rows: i64,
    error: Option<String>,
) -> DomainResult<()> {
    let finished = matches!(status, "SUCCEEDED" | "FAILED");
    export::ActiveModel {
        id: Set(id.to_owned()),
        status: Set(status.to_owned()),
        rows: Set(rows),
        error: Set(error),
        finished_at: Set(finished.then(now_ms)),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

/// Marks an export failed before it ran (its job could not be enqueued).
pub async fn fail(db: &impl ConnectionTrait, id: &str, error: &str) -> DomainResult<()> {
    set_status(db, id, "FAILED", 0, Some(error.to_owned())).await
}

/// Exports past their day, and their files, removed; returns how many.
pub async fn prune(db: &impl ConnectionTrait, now: i64) -> DomainResult<u64> {
    let expired: Vec<String> = export::Entity::find()
        .select_only()
        .column(export::Column::Id)
        .filter(export::Column::ExpiresAt.lt(now))
        .order_by_asc(export::Column::ExpiresAt)
        .limit(500)
        .into_tuple()
        .all(db)
        .await?;
    if expired.is_empty() {
        return Ok(0);
    }
    export_chunk::Entity::delete_many()
        .filter(export_chunk::Column::ExportId.is_in(expired.clone()))
        .exec(db)
        .await?;
    Ok(export::Entity::delete_many()
        .filter(export::Column::Id.is_in(expired))
        .exec(db)
        .await?
        .rows_affected)
}

/// The file being written: rows gather in memory up to [`CHUNK_BYTES`], then go to the
/// database as one chunk.
pub(crate) struct ChunkWriter {
    /// Chunks are written through the process's write path (on SQLite its one writer,
    /// which gives way to webhook intake), never beside it.
    database: Database,
    export_id: String,
    seq: i32,
    rows: i64,
    buffer: String,
}

impl ChunkWriter {
    fn new(export_id: &str, database: Database) -> Self {
        ChunkWriter {
            database,
            export_id: export_id.to_owned(),
            seq: 0,
            rows: -1, // the header row is not counted
            buffer: csv::BOM.to_owned(),
        }
    }

    /// Adds a row; writes a chunk when enough is ready.
    pub(crate) async fn row(&mut self, cells: &[csv::Cell<'_>]) -> DomainResult<()> {
        csv::row(&mut self.buffer, cells);
        self.rows += 1;
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> DomainResult<()> {
        let data = std::mem::take(&mut self.buffer).into_bytes();
        let txn = self.database.begin_write().await?;
        export_chunk::Entity::insert(export_chunk::ActiveModel {
            export_id: Set(self.export_id.clone()),
            seq: Set(self.seq),
            data: Set(data),
        })
        .exec_without_returning(&*txn)
        .await?;
        txn.commit().await?;
        self.seq += 1;
        Ok(())
    }

    async fn finish(mut self) -> DomainResult<i64> {
        if !self.buffer.is_empty() {
            self.flush().await?;
        }
        Ok(self.rows.max(0))
    }
}
