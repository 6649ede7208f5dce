//! Tenant scoping in one place. Every read of a business row goes through [`scoped`] or
//! [`find_scoped`], which filter by the caller's account; a row of another account is
//! indistinguishable from a missing one (`NOT_FOUND`).

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Select};

use crate::{Caller, DomainError, DomainResult, tables::*};

/// A table whose rows belong to one account and are addressed by a string `id`.
pub trait AccountScoped: EntityTrait {
    /// What the API calls one row, for `NOT_FOUND` messages.
    const NAME: &'static str;
    fn account_column() -> Self::Column;
    fn id_column() -> Self::Column;
}

macro_rules! account_scoped {
    ($($module:ident => $name:literal),* $(,)?) => {$(
        impl AccountScoped for $module::Entity {
            const NAME: &'static str = $name;
            fn account_column() -> Self::Column {
                $module::Column::AccountId
            }
            fn id_column() -> Self::Column {
                $module::Column::Id
            }
        }
    )*};
}

account_scoped! {
    user => "user",
    label => "label",
    integration => "integration",
    group => "group",
    origin => "origin",
    product => "product",
    contact => "contact",
    deal => "deal",
    webhook_delivery => "delivery",
    import_run => "import run",
    deal_event => "timeline entry",
    stage => "stage",
    lost_reason => "lost reason",
    activity => "activity",
    export => "export",
    audit_entry => "audit entry",
    webhook_endpoint => "webhook endpoint",
    outbound_message => "outbound message",
}

/// All rows of `E` in the caller's account.
pub fn scoped<E: AccountScoped>(caller: &Caller) -> Select<E> {
    E::find().filter(E::account_column().eq(caller.account_id.as_str()))
}

/// One row of `E` by id in the caller's account, or `NOT_FOUND`.
pub async fn find_scoped<E: AccountScoped>(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<E::Model> {
    scoped::<E>(caller)
        .filter(E::id_column().eq(id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound(E::NAME))
}
