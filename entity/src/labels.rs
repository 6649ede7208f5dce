//! Labels: tags with a colour, unique per account by case-insensitive name.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, ModelTrait, QueryFilter, QueryOrder, Set,
};

use crate::{
    Caller, DomainError, DomainResult,
    error::is_unique_violation,
    new_id, now_ms,
    scope::{find_scoped, scoped},
    tables::label,
    values,
};

pub const MAX_LABEL_LEN: usize = 64;

fn label_name(field: &str, name: &str) -> DomainResult<String> {
    let name = values::name(field, name)?;
    if name.chars().count() > MAX_LABEL_LEN {
        return Err(DomainError::bad_input(
            field,
            format!("must be at most {MAX_LABEL_LEN} characters"),
        ));
    }
    Ok(name)
}

pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// A tag the engine puts on contacts from outside text (a product's name from Hotmart):
/// control characters dropped, blanks trimmed, cut to [`MAX_LABEL_LEN`] characters.
/// `None` when nothing is left.
pub fn tag_name(text: &str) -> Option<String> {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    let cut: String = clean.trim().chars().take(MAX_LABEL_LEN).collect();
    let cut = cut.trim_end();
    (!cut.is_empty()).then(|| cut.to_owned())
}

pub async fn list(db: &impl ConnectionTrait, caller: &Caller) -> DomainResult<Vec<label::Model>> {
    Ok(scoped::<label::Entity>(caller)
        .order_by_asc(label::Column::NameKey)
        .all(db)
        .await?)
}

pub async fn create(
    db: &impl ConnectionTrait,
    caller: &Caller,
    name: &str,
    color: Option<&str>,
) -> DomainResult<label::Model> {
    caller.require_admin()?;
    let name = label_name("name", name)?;
    let color = values::color("color", color)?;
    let duplicate =
        || DomainError::bad_input("name", format!("a label named {name:?} already exists"));
    if find_by_name(db, caller, &name).await?.is_some() {
        return Err(duplicate());
    }
    insert(db, caller, &name, color).await.map_err(|err| {
        if is_unique_violation(&err) {
            duplicate()
        } else {
            err.into()
        }
    })
}

pub async fn delete(db: &impl ConnectionTrait, caller: &Caller, id: &str) -> DomainResult<bool> {
    caller.require_admin()?;
    let label = find_scoped::<label::Entity>(db, caller, id).await?;
    label.delete(db).await?;
    Ok(true)
}

pub async fn find_by_name(
    db: &impl ConnectionTrait,
    caller: &Caller,
    name: &str,
) -> DomainResult<Option<label::Model>> {
    Ok(scoped::<label::Entity>(caller)
        .filter(label::Column::NameKey.eq(name_key(name)))
        .one(db)
        .await?)
}

/// The label with this name, created when missing: the engine and the set-up flow name
/// labels by text (product label, import label) and expect them to exist.
pub async fn ensure(
    db: &impl ConnectionTrait,
    caller: &Caller,
    field: &str,
    name: &str,
) -> DomainResult<label::Model> {
    let name = label_name(field, name)?;
    if let Some(existing) = find_by_name(db, caller, &name).await? {
        return Ok(existing);
    }
    match insert(db, caller, &name, None).await {
        Ok(label) => Ok(label),
        // Another request created it in the meantime.
        Err(err) if is_unique_violation(&err) => find_by_name(db, caller, &name)
            .await?
            .ok_or(DomainError::NotFound("label")),
        Err(err) => Err(err.into()),
    }
}

/// Validates an optional label name from input; blank means "no label".
pub fn optional_label_name(field: &str, name: Option<&str>) -> DomainResult<Option<String>> {
    match name.map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) => label_name(field, n).map(Some),
    }
}

async fn insert(
    db: &impl ConnectionTrait,
    caller: &Caller,
    name: &str,
    color: Option<String>,
) -> Result<label::Model, sea_orm::DbErr> {
    label::ActiveModel {
        id: Set(new_id()),
        account_id: Set(caller.account_id.clone()),
        name: Set(name.to_owned()),
        name_key: Set(name_key(name)),
        color: Set(color),
        created_at: Set(now_ms()),
    }
    .insert(db)
    .await
}
