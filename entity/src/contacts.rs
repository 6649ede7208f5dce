//! Contacts: lists, search, labels.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::{Expr, Func, Query},
};

use crate::{
    Caller, DomainError, DomainResult, groups,
    page::{Cursor, Page, PageRequest},
    scope::{find_scoped, scoped},
    tables::{contact, contact_label, deal, label},
};

#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub email: Option<String>,
    pub label_id: Option<String>,
    pub search: Option<String>,
}

/// Members see a contact when they may see one of its deals (in a visible group, as the
/// group's member scope allows).
async fn visibility(_db: &impl ConnectionTrait, caller: &Caller) -> DomainResult<Condition> {
    if caller.is_admin() {
        return Ok(Condition::all());
    }
    Ok(Condition::all().add(
        contact::Column::Id.in_subquery(
            Query::select()
                .column(deal::Column::ContactId)
                .from(deal::Entity)
                .and_where(deal::Column::AccountId.eq(caller.account_id.as_str()))
                .cond_where(groups::deal_condition(caller))
                .to_owned(),
        ),
    ))
}

/// A search of contacts, ready to filter by.
pub struct ContactSearch {
    /// On `contacts`: the contacts that match.
    pub condition: Condition,
    /// The index found few contacts (at most [`FEW`]; its narrowing is then part of
    /// `condition`), so reading those first is cheapest. Otherwise many match, and rows
    /// read in list order are checked one by one until a page is full.
    pub few: bool,
}

/// At most this many contacts found by the index make a search "few".
pub const FEW: u64 = 5_000;

/// The search "the buyer's name, e-mail or phone contains it"; `None` for an empty one.
/// Where the search index can answer (terms of three characters or more) and finds few
/// contacts, it narrows them first and the columns are checked on those.
pub async fn search(
    db: &impl ConnectionTrait,
    search: Option<&str>,
) -> DomainResult<Option<ContactSearch>> {
    use contact::Column;
    let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if search.chars().count() > 100 {
        return Err(DomainError::bad_input(
            "search",
            "must be at most 100 characters",
        ));
    }
    let lowered = search.to_lowercase();
    let pattern = format!("%{}%", escape_like(&lowered));
    let mut any = Condition::any()
        .add(sea_orm::sea_query::ExprTrait::like(
            Expr::expr(Func::lower(Expr::col(Column::Name))),
            sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\'),
        ))
        .add(Column::Email.like(sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')));
    // Phones are stored as `+digits`: they match on the digits of the search (at least
    // three, a leading trunk `0` dropped), never on its punctuation or wildcards.
    let digits = phone_forms(search);
    for form in &digits {
        any = any.add(Column::Phone.contains(form));
    }
    // No index (PostgreSQL without pg_trgm), or more hits than a key list holds: the
    // contacts' columns alone.
    let found = match indexed(db.get_database_backend(), &lowered, &digits) {
        Some(index) => Some(found_by_index(db, &index).await?),
        None => None,
    };
    let Some(found) = found.filter(|keys| keys.len() as u64 <= FEW) else {
        return Ok(Some(ContactSearch {
            condition: any,
            few: false,
        }));
    };
    // The rows the index found, by key: the index is read once per search.
    let key = match db.get_database_backend() {
        DbBackend::Sqlite => Expr::cust("contacts.rowid"),
        _ => Expr::col((contact::Entity, Column::Id)),
    };
    Ok(Some(ContactSearch {
        condition: Condition::all()
            .add(sea_orm::sea_query::ExprTrait::is_in(key, found))
            .add(any),
        few: true,
    }))
}

/// The keys of the contacts the index finds (SQLite: rowids; PostgreSQL: ids), at most
/// `FEW + 1` (of every account: the columns are checked, and the account, afterwards).
async fn found_by_index(
    db: &impl ConnectionTrait,
    index: &Indexed,
) -> DomainResult<Vec<sea_orm::Value>> {
    let sql = format!("{} LIMIT {}", index.probe, FEW + 1);
    let statement = sea_orm::Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        index.values.clone(),
    );
    let rows = db.query_all_raw(statement).await?;
    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    rows.iter()
        .map(|row| {
            Ok(if sqlite {
                row.try_get::<i64>("", "id")?.into()
            } else {
                row.try_get::<String>("", "id")?.into()
            })
        })
        .collect()
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The text the search index holds for each contact, on PostgreSQL (its index is built
/// on exactly this expression): lower-case name, e-mail and phone.
const POSTGRES_SEARCH_TEXT: &str =
    "(lower(coalesce(name, '')) || ' ' || email || ' ' || coalesce(phone, ''))";

/// What the search index answers for a search.
struct Indexed {
    /// A query of the keys (`id`) of every contact whose name or e-mail contains the
    /// text or whose phone contains one of the digit forms, and more, with its `values`.
    probe: String,
    values: Vec<sea_orm::Value>,
}

/// The index's part of a search; `None` when it cannot narrow (a term under three
/// characters, which trigrams do not cover).
fn indexed(backend: DbBackend, text: &str, digits: &[String]) -> Option<Indexed> {
    if text.chars().count() < 3 {
        return None;
    }
    let terms = std::iter::once(text.to_owned()).chain(digits.iter().cloned());
    match backend {
        DbBackend::Sqlite => {
            // FTS5 phrases: a trigram phrase matches where the text contains it.
            let phrase = |t: String| format!("\"{}\"", t.replace('"', "\"\""));
            let query = terms.map(phrase).collect::<Vec<_>>().join(" OR ");
            Some(Indexed {
                probe: "SELECT rowid AS id FROM contact_search WHERE contact_search MATCH ?".into(),
                values: vec![query.into()],
            })
        }
        _ => {
            let patterns: Vec<String> = terms.map(|t| format!("%{}%", escape_like(&t))).collect();
            // PostgreSQL's custom expressions number their parameters.
            let sql = (1..=patterns.len())
                .map(|n| format!("{POSTGRES_SEARCH_TEXT} LIKE ${n}"))
                .collect::<Vec<_>>()
                .join(" OR ");
            Some(Indexed {
                probe: format!("SELECT id FROM contacts WHERE {sql}"),
                values: patterns.into_iter().map(Into::into).collect(),
            })
        }
    }
}

/// The digits a phone search matches: as typed, and — for a Brazilian mobile typed
/// without the ninth digit (`11 8765-4321`, `55 11 8765-4321`) — with it, as stored.
fn phone_forms(search: &str) -> Vec<String> {
    let digits: String = search.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_start_matches('0').to_owned();
    if digits.len() < 3 {
        return Vec::new();
    }
    let ninth = |at: usize| -> Option<String> {
        let first = digits[at..].chars().next()?;
        ('6'..='9')
            .contains(&first)
            .then(|| format!("{}9{}", &digits[..at], &digits[at..]))
    };
    let with_ninth = match digits.len() {
        10 => ninth(2),
        12 if digits.starts_with("55") => ninth(4),
        _ => None,
    };
    std::iter::once(digits.clone()).chain(with_ninth).collect()
}

pub async fn page(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: ContactFilter,
    page: PageRequest,
) -> DomainResult<Page<contact::Model>> {
    use contact::Column;
    let mut query = scoped::<contact::Entity>(caller).filter(visibility(db, caller).await?);
    if let Some(email) = &filter.email {
        query = query.filter(Column::Email.eq(email.trim().to_lowercase()));
    }
    if let Some(label_id) = &filter.label_id {
        query = query.filter(
            Column::Id.in_subquery(
                Query::select()
                    .column(contact_label::Column::ContactId)
                    .from(contact_label::Entity)
                    .and_where(contact_label::Column::LabelId.eq(label_id.as_str()))
                    .to_owned(),
            ),
        );
    }
    if let Some(found) = search(db, filter.search.as_deref()).await? {
        query = query.filter(found.condition);
    }
    crate::page::fetch(db, query, Column::CreatedAt, Column::Id, page, |c| Cursor {
        at: c.created_at,
        id: c.id.clone(),
    })
    .await
}

pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<contact::Model> {
    scoped::<contact::Entity>(caller)
        .filter(contact::Column::Id.eq(id))
        .filter(visibility(db, caller).await?)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("contact"))
}

pub async fn labels(
    db: &impl ConnectionTrait,
    contact_id: &str,
) -> DomainResult<Vec<label::Model>> {
    Ok(label::Entity::find()
        .filter(
            label::Column::Id.in_subquery(
                Query::select()
                    .column(contact_label::Column::LabelId)
                    .from(contact_label::Entity)
                    .and_where(contact_label::Column::ContactId.eq(contact_id))
                    .to_owned(),
            ),
        )
        .order_by_asc(label::Column::NameKey)
        .all(db)
        .await?)
}

pub async fn add_label(
    db: &impl ConnectionTrait,
    caller: &Caller,
    contact_id: &str,
    label_id: &str,
) -> DomainResult<contact::Model> {
    let contact = get(db, caller, contact_id).await?;
    let label = find_scoped::<label::Entity>(db, caller, label_id).await?;
    contact_label::Entity::insert(contact_label::ActiveModel {
        contact_id: Set(contact.id.clone()),
        label_id: Set(label.id),
        account_id: Set(caller.account_id.clone()),
        created_at: Set(crate::now_ms()),
    })
    .on_conflict_do_nothing_on([
        contact_label::Column::ContactId,
        contact_label::Column::LabelId,
    ])
    .exec_without_returning(db)
    .await?;
    Ok(contact)
}

pub async fn remove_label(
    db: &impl ConnectionTrait,
    caller: &Caller,
    contact_id: &str,
    label_id: &str,
) -> DomainResult<contact::Model> {
    let contact = get(db, caller, contact_id).await?;
    let label = find_scoped::<label::Entity>(db, caller, label_id).await?;
    contact_label::Entity::delete_many()
        .filter(contact_label::Column::ContactId.eq(contact.id.as_str()))
        .filter(contact_label::Column::LabelId.eq(label.id.as_str()))
        .exec(db)
        .await?;
    Ok(contact)
}

/// Timeline entries of a contact that are not on any deal (info events without a deal).
/// The contact's events that belong to no deal, from the groups the caller may see (an
/// event of a hidden group is as hidden as that group's deals).
pub async fn loose_events(
    db: &impl ConnectionTrait,
    caller: &Caller,
    contact_id: &str,
) -> DomainResult<Vec<crate::tables::deal_event::Model>> {
    use crate::tables::deal_event;
    let mut query = crate::scope::scoped::<deal_event::Entity>(caller)
        .filter(deal_event::Column::ContactId.eq(contact_id))
        .filter(deal_event::Column::DealId.is_null());
    if let Some(visible) = crate::groups::visible_ids(db, caller).await? {
        query = query.filter(deal_event::Column::GroupId.is_in(visible));
    }
    Ok(query
        .order_by_asc(deal_event::Column::OccurredAt)
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::phone_forms;

    #[test]
    fn phone_searches_match_with_or_without_the_ninth_digit() {
        assert_eq!(phone_forms("(11) 98765-4321"), ["11987654321"]);
        assert_eq!(phone_forms("(11) 8765-4321"), ["1187654321", "11987654321"]);
        assert_eq!(
            phone_forms("+55 11 8765-4321"),
            ["551187654321", "5511987654321"]
        );
        assert_eq!(
            phone_forms("011 3456-7890"),
            ["1134567890"],
            "landlines get no ninth digit"
        );
        assert!(phone_forms("12").is_empty());
        assert!(phone_forms("ana").is_empty());
    }
}
