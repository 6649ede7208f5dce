//! Accounts: creating a tenant with its first admin, and finding users for operators.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
    TransactionSession, TransactionTrait,
};

use crate::{
    DomainError, DomainResult, Role, new_id, now_ms,
    tables::{account, user},
    values,
};

/// A new account and its admin user.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub account: account::Model,
    pub admin: user::Model,
}

pub async fn create_account<C: TransactionTrait>(
    db: &C,
    name: &str,
    admin_email: &str,
    admin_name: Option<&str>,
) -> DomainResult<NewTenant> {
    let name = values::name("name", name)?;
    let email = values::email("adminEmail", admin_email)?;
    let admin_name = match admin_name {
        Some(n) => values::name("adminName", n)?,
        None => email.split('@').next().unwrap_or("Admin").to_owned(),
    };
    let txn = crate::database::begin_immediate(db).await?;
    let now = now_ms();
    let account = account::ActiveModel {
        id: Set(new_id()),
        name: Set(name),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let admin = user::ActiveModel {
        id: Set(new_id()),
        account_id: Set(account.id.clone()),
        name: Set(admin_name),
        email: Set(email),
        role: Set(Role::Admin),
        password_hash: Set(None),
        created_at: Set(now),
        tokens_revoked_at: Set(None),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(NewTenant { account, admin })
}

pub async fn account_count(db: &impl ConnectionTrait) -> DomainResult<u64> {
    Ok(account::Entity::find().count(db).await?)
}

/// The user an operator means by an e-mail (and optionally an account id).
/// An e-mail present in several accounts needs the account to be named.
pub async fn find_user_by_email(
    db: &impl ConnectionTrait,
    email: &str,
    account_id: Option<&str>,
) -> DomainResult<user::Model> {
    let email = values::email("email", email)?;
    let mut query = user::Entity::find().filter(user::Column::Email.eq(email.as_str()));
    if let Some(account_id) = account_id {
        query = query.filter(user::Column::AccountId.eq(account_id));
    }
    let mut users = query.all(db).await?;
    match users.len() {
        0 => Err(DomainError::NotFound("user")),
        1 => Ok(users.remove(0)),
        _ => Err(DomainError::bad_input(
            "account",
            format!("{email} exists in several accounts; name the account id"),
        )),
    }
}

/// The user a verified token names, if it still exists in that account.
pub async fn find_user(
    db: &impl ConnectionTrait,
    account_id: &str,
    user_id: &str,
) -> DomainResult<Option<user::Model>> {
    Ok(user::Entity::find_by_id(user_id.to_owned())
        .filter(user::Column::AccountId.eq(account_id))
        .one(db)
        .await?)
}
