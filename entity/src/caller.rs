//! Who is asking: the authenticated user, their account and role.

use crate::error::{DomainError, DomainResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Member => "MEMBER",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "ADMIN" => Some(Role::Admin),
            "MEMBER" => Some(Role::Member),
            _ => None,
        }
    }
}

/// The identity every service call runs as: in the API, built by the authentication step
/// from a verified token and the user row it names (`api/src/auth.rs`); tests and the CLI
/// build one for a known user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    pub user_id: String,
    pub account_id: String,
    pub role: Role,
}

impl Caller {
    /// The whole of `account_id`, naming no user: what a task shared by several callers
    /// reads with (a subscription's shared poll), each caller's own rights being checked
    /// apart.
    pub fn account_reader(account_id: &str) -> Caller {
        Caller {
            user_id: String::new(),
            account_id: account_id.to_owned(),
            role: Role::Admin,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Members cannot manage integrations, users, credentials, labels or imports.
    pub fn require_admin(&self) -> DomainResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(DomainError::forbidden(
                "this operation needs the ADMIN role",
            ))
        }
    }
}
