//! Batched reads of the rows a page of results points at (a deal's contact, origin,
//! group, owner and product): one query per kind of row and page, not one per node.
//!
//! Each request gets its own loader (added by the guard), which remembers the rows it
//! read for the rest of the request. A list resolver loads the rows of its whole page
//! first ([`prefetch`]), so its nodes find them there: the statements of a page do not
//! depend on its size, nor on how the nodes' resolution happens to be scheduled. Every
//! key carries the caller's account, and every query filters by it.

use std::{collections::HashMap, hash::Hash, marker::PhantomData, sync::Arc};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{DomainError, scope::AccountScoped};
use sea_orm::{ColumnTrait, DatabaseConnection, ModelTrait, QueryFilter};

/// Loads account-scoped rows by id.
pub struct Rows {
    db: DatabaseConnection,
}

/// The loader of one request.
pub type RowLoader = DataLoader<Rows, HashMapCache>;

pub fn row_loader(db: DatabaseConnection) -> RowLoader {
    DataLoader::with_cache(Rows { db }, tokio::spawn, HashMapCache::default())
}

/// Loads the rows of `E` with `ids` in the caller's account in one batch, for the nodes
/// of a page to find (missing rows are simply not there).
pub async fn prefetch<E>(
    loader: &RowLoader,
    account: &str,
    ids: impl IntoIterator<Item = String>,
) -> Result<(), Arc<DomainError>>
where
    E: AccountScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
{
    let keys: std::collections::HashSet<Key<E>> =
        ids.into_iter().map(|id| Key::new(account, &id)).collect();
    if !keys.is_empty() {
        loader.load_many(keys).await?;
    }
    Ok(())
}

/// A row of `E` in an account.
pub struct Key<E> {
    account: Arc<str>,
    id: String,
    table: PhantomData<fn() -> E>,
}

impl<E> Key<E> {
    pub fn new(account: &str, id: &str) -> Self {
        Key {
            account: account.into(),
            id: id.to_owned(),
            table: PhantomData,
        }
    }
}

impl<E> Clone for Key<E> {
    fn clone(&self) -> Self {
        Key {
            account: self.account.clone(),
            id: self.id.clone(),
            table: PhantomData,
        }
    }
}

impl<E> PartialEq for Key<E> {
    fn eq(&self, other: &Self) -> bool {
        self.account == other.account && self.id == other.id
    }
}

impl<E> Eq for Key<E> {}

impl<E> Hash for Key<E> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.account.hash(state);
        self.id.hash(state);
    }
}

impl<E> Loader<Key<E>> for Rows
where
    E: AccountScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
{
    type Value = E::Model;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[Key<E>]) -> Result<HashMap<Key<E>, E::Model>, Self::Error> {
        let mut by_account: HashMap<Arc<str>, Vec<&str>> = HashMap::new();
        for key in keys {
            by_account
                .entry(key.account.clone())
                .or_default()
                .push(&key.id);
        }
        let mut found = HashMap::with_capacity(keys.len());
        for (account, ids) in by_account {
            let rows = E::find()
                .filter(E::account_column().eq(&*account))
                .filter(E::id_column().is_in(ids))
                .all(&self.db)
                .await
                .map_err(|err| Arc::new(DomainError::from(err)))?;
            for row in rows {
                let id =
                    <String as sea_orm::sea_query::ValueType>::try_from(row.get(E::id_column()))
                        .map_err(|_| {
                            Arc::new(DomainError::Internal("a row id is not text".into()))
                        })?;
                found.insert(
                    Key {
                        account: account.clone(),
                        id,
                        table: PhantomData,
                    },
                    row,
                );
            }
        }
        Ok(found)
    }
}

/// What a `dealCount` counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountBy {
    Origin,
    Stage,
}

/// One `dealCount`: the caller (counts are of what they see), origin or stage, its id,
/// and the status asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountKey {
    pub caller: entity::Caller,
    pub by: CountBy,
    pub id: String,
    pub status: Option<entity::tables::enums::DealStatus>,
}

/// Counts deals per origin or stage: one grouped query per (caller, kind, status) and
/// batch, however many `dealCount` fields a request holds.
pub struct DealCounts {
    db: DatabaseConnection,
}

/// The deal-count loader of one request.
pub type CountLoader = DataLoader<DealCounts, HashMapCache>;

pub fn count_loader(db: DatabaseConnection) -> CountLoader {
    // Siblings (the stages of each origin) resolve a little apart: wait a few ms for them.
    DataLoader::with_cache(DealCounts { db }, tokio::spawn, HashMapCache::default())
        .delay(std::time::Duration::from_millis(3))
}

impl Loader<CountKey> for DealCounts {
    type Value = u64;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[CountKey]) -> Result<HashMap<CountKey, u64>, Self::Error> {
        type Batch<'a> = (
            &'a entity::Caller,
            CountBy,
            Option<entity::tables::enums::DealStatus>,
        );
        let mut batches: HashMap<Batch<'_>, Vec<String>> = HashMap::new();
        for key in keys {
            batches
                .entry((&key.caller, key.by, key.status))
                .or_default()
                .push(key.id.clone());
        }
        let mut counts = HashMap::with_capacity(keys.len());
        for ((caller, by, status), ids) in batches {
            let column = match by {
                CountBy::Origin => entity::tables::deal::Column::OriginId,
                CountBy::Stage => entity::tables::deal::Column::StageId,
            };
            let found = entity::deals::count_by(&self.db, caller, column, &ids, status)
                .await
                .map_err(Arc::new)?;
            for id in ids {
                let n = found.get(&id).copied().unwrap_or(0);
                let key = CountKey {
                    caller: caller.clone(),
                    by,
                    id,
                    status,
                };
                counts.insert(key, n);
            }
        }
        Ok(counts)
    }
}
