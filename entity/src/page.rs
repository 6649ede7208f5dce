//! Keyset pagination: opaque cursors over `(time, id)`, newest first.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{DomainError, DomainResult};

/// Page sizes are capped.
pub const MAX_PAGE_SIZE: u64 = 200;

/// A requested page: how many rows, after which cursor.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub first: u64,
    pub after: Option<Cursor>,
    /// Whether to count the matching rows (`totalCount`); counting a long list costs
    /// more than fetching a page of it, so it is skipped when nobody asked.
    pub count: bool,
}

impl PageRequest {
    pub fn parse(first: Option<i32>, after: Option<&str>) -> DomainResult<Self> {
        let first = first.unwrap_or(50);
        if first < 0 || first as u64 > MAX_PAGE_SIZE {
            return Err(DomainError::bad_input(
                "first",
                format!("must be between 0 and {MAX_PAGE_SIZE}"),
            ));
        }
        let after = after.map(Cursor::decode).transpose()?;
        Ok(Self {
            first: first as u64,
            after,
            count: true,
        })
    }
}

/// Position of a row in a `(time desc, id desc)` ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.at, self.id))
    }

    pub fn decode(value: &str) -> DomainResult<Self> {
        let invalid = || DomainError::bad_input("after", "is not a cursor returned by this API");
        if value.len() > 256 {
            return Err(invalid());
        }
        let raw = URL_SAFE_NO_PAD.decode(value).map_err(|_| invalid())?;
        let text = String::from_utf8(raw).map_err(|_| invalid())?;
        let (at, id) = text.split_once(':').ok_or_else(invalid)?;
        Ok(Self {
            at: at.parse().map_err(|_| invalid())?,
            id: id.to_owned(),
        })
    }
}

/// One page of rows, with what a connection type needs.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub nodes: Vec<T>,
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
    pub total_count: u64,
}

impl<T> Page<T> {
    /// Builds a page from up to `first + 1` fetched rows.
    pub fn from_rows(
        mut rows: Vec<T>,
        first: u64,
        total_count: u64,
        cursor: impl Fn(&T) -> Cursor,
    ) -> Self {
        let has_next_page = rows.len() as u64 > first;
        rows.truncate(first as usize);
        let end_cursor = rows.last().map(|row| cursor(row).encode());
        Self {
            nodes: rows,
            has_next_page,
            end_cursor,
            total_count,
        }
    }
}

/// Counts the rows of `query` (when asked), then fetches the requested page of them in
/// `(time desc, id desc)` order, after the request's cursor.
pub async fn fetch<E, C>(
    db: &C,
    query: sea_orm::Select<E>,
    time: E::Column,
    id: E::Column,
    page: PageRequest,
    cursor: impl Fn(&E::Model) -> Cursor,
) -> DomainResult<Page<E::Model>>
where
    E: sea_orm::EntityTrait,
    E::Model: Send + Sync,
    C: sea_orm::ConnectionTrait,
{
    fetch_ordered(db, query, (time, id), false, page, cursor).await
}

/// As [`fetch`], soonest first (activities by due time).
pub async fn fetch_soonest<E, C>(
    db: &C,
    query: sea_orm::Select<E>,
    time: E::Column,
    id: E::Column,
    page: PageRequest,
    cursor: impl Fn(&E::Model) -> Cursor,
) -> DomainResult<Page<E::Model>>
where
    E: sea_orm::EntityTrait,
    E::Model: Send + Sync,
    C: sea_orm::ConnectionTrait,
{
    fetch_ordered(db, query, (time, id), true, page, cursor).await
}

async fn fetch_ordered<E, C>(
    db: &C,
    query: sea_orm::Select<E>,
    (time, id): (E::Column, E::Column),
    ascending: bool,
    page: PageRequest,
    cursor: impl Fn(&E::Model) -> Cursor,
) -> DomainResult<Page<E::Model>>
where
    E: sea_orm::EntityTrait,
    E::Model: Send + Sync,
    C: sea_orm::ConnectionTrait,
{
    use sea_orm::PaginatorTrait;
    let total = if page.count {
        query.clone().count(db).await?
    } else {
        0
    };
    let rows = keyset(
        query,
        (time, id),
        ascending,
        page.after.as_ref(),
        page.first + 1,
    )
    .all(db)
    .await?;
    Ok(Page::from_rows(rows, page.first, total, cursor))
}

/// `query`'s rows after `after` in `(time, id)` order (newest first unless `ascending`),
/// at most `limit` of them: the statement every page is read with.
pub fn keyset<E: sea_orm::EntityTrait>(
    query: sea_orm::Select<E>,
    (time, id): (E::Column, E::Column),
    ascending: bool,
    after: Option<&Cursor>,
    limit: u64,
) -> sea_orm::Select<E> {
    use sea_orm::{
        ColumnTrait, QueryFilter, QueryOrder, QuerySelect,
        sea_query::{Expr, ExprTrait},
    };
    let mut query = query;
    if let Some(after) = after {
        // A row-value comparison, `(time, id) < (at, id)`: both backends read it as one
        // range of the `(…, time, id)` index, so a page deep in a long list costs what
        // the first one does.
        let row = Expr::tuple([time.into_expr(), id.into_expr()]);
        let at = Expr::tuple([Expr::val(after.at), Expr::val(after.id.as_str())]);
        query = query.filter(if ascending { row.gt(at) } else { row.lt(at) });
    }
    let order = if ascending {
        sea_orm::Order::Asc
    } else {
        sea_orm::Order::Desc
    };
    query
        .order_by(time, order.clone())
        .order_by(id, order)
        .limit(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            at: 1_745_952_631_331,
            id: "0194-abc".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "!!", "bm90LWEtY3Vyc29y", &"A".repeat(300)] {
            assert_eq!(Cursor::decode(bad).unwrap_err().code(), "BAD_USER_INPUT");
        }
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert!(PageRequest::parse(Some(201), None).is_err());
        assert!(PageRequest::parse(Some(-1), None).is_err());
        assert_eq!(PageRequest::parse(None, None).unwrap().first, 50);
    }
}
