//! Users of an account.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};

use crate::{
    Caller, DomainError, DomainResult, Role,
    error::is_unique_violation,
    new_id, now_ms,
    scope::{find_scoped, scoped},
    tables::user,
    values,
};

pub struct NewUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub role: Role,
}

pub async fn me(db: &impl ConnectionTrait, caller: &Caller) -> DomainResult<user::Model> {
    find_scoped::<user::Entity>(db, caller, &caller.user_id).await
}

pub async fn list(db: &impl ConnectionTrait, caller: &Caller) -> DomainResult<Vec<user::Model>> {
    Ok(scoped::<user::Entity>(caller)
        .order_by_asc(user::Column::CreatedAt)
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?)
}

pub async fn create(
    db: &impl ConnectionTrait,
    caller: &Caller,
    input: NewUser<'_>,
) -> DomainResult<user::Model> {
    caller.require_admin()?;
    let name = values::name("name", input.name)?;
    let email = values::email("email", input.email)?;
    let taken = scoped::<user::Entity>(caller)
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db)
        .await?
        .is_some();
    let duplicate =
        || DomainError::bad_input("email", format!("a user with {email} already exists"));
    if taken {
        return Err(duplicate());
    }
    user::ActiveModel {
        id: Set(new_id()),
        account_id: Set(caller.account_id.clone()),
        name: Set(name),
        email: Set(email.clone()),
        role: Set(input.role),
        password_hash: Set(None),
        created_at: Set(now_ms()),
        tokens_revoked_at: Set(None),
    }
    .insert(db)
    .await
    .map_err(|err| {
        if is_unique_violation(&err) {
            duplicate()
        } else {
            err.into()
        }
    })
}

/// Resolves user ids given as input; ids that are unknown in the caller's account are
/// reported under `field` without telling whether they exist elsewhere.
pub async fn resolve_ids(
    db: &impl ConnectionTrait,
    caller: &Caller,
    field: &str,
    ids: &[String],
) -> DomainResult<Vec<user::Model>> {
    let mut unique: Vec<&String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    if unique.len() > 500 {
        return Err(DomainError::bad_input(field, "at most 500 users"));
    }
    let found = scoped::<user::Entity>(caller)
        .filter(user::Column::Id.is_in(unique.iter().map(|s| s.as_str())))
        .all(db)
        .await?;
    let mut ordered = Vec::with_capacity(unique.len());
    for id in unique {
        match found.iter().find(|u| &u.id == id) {
            Some(user) => ordered.push(user.clone()),
            None => {
                return Err(DomainError::bad_input(
                    field,
                    format!("unknown user id {id:?}"),
                ));
            }
        }
    }
    Ok(ordered)
}

/// Changes a user's role (admins). The account keeps an admin: the last one cannot become
/// a member. The new role holds from the user's next request (roles are read from the
/// database, never from tokens).
pub async fn set_role(
    db: &impl ConnectionTrait,
    caller: &Caller,
    user_id: &str,
    role: Role,
) -> DomainResult<user::Model> {
    caller.require_admin()?;
    let user = find_scoped::<user::Entity>(db, caller, user_id).await?;
    if user.role == role {
        return Ok(user);
    }
    if role == Role::Member {
        let admins = scoped::<user::Entity>(caller)
            .filter(user::Column::Role.eq(Role::Admin))
            .count(db)
            .await?;
        if admins <= 1 {
            return Err(DomainError::bad_input(
                "role",
                "the account's last admin cannot become a member",
            ));
        }
    }
    let mut model = user.into_active_model();
    model.role = Set(role);
    Ok(model.update(db).await?)
}

pub fn role_of(user: &user::Model) -> Role {
    user.role
}

/// Ends every token made by the CLI for `user` until now (signed-in sessions stay).
pub async fn revoke_cli_tokens(
    db: &impl ConnectionTrait,
    user: user::Model,
) -> DomainResult<user::Model> {
    let mut model = user.into_active_model();
    // Tokens carry their time in whole seconds: those of this second end too.
    model.tokens_revoked_at = Set(Some((now_ms() / 1000 + 1) * 1000));
    Ok(model.update(db).await?)
}
