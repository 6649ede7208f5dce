//! The one error type of the domain. The API maps it once to GraphQL `extensions.code`
//! and once to HTTP statuses.

use sea_orm::DbErr;

#[derive(Debug, Clone, thiserror::Error)]
pub enum DomainError {
    /// Missing, or belonging to another account: callers cannot tell the two apart.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    /// Input that breaks a rule; `field` names the offending input field.
    #[error("{field}: {message}")]
    BadInput { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    /// The database could not be reached or refused the operation; the database's own
    /// error is kept as the source, for the log (clients see only "internal error").
    #[error("database error: {0}")]
    Database(#[source] std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>),
    #[error("{0}")]
    Internal(String),
}

pub type DomainResult<T> = Result<T, DomainError>;

impl DomainError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A database error, its cause kept.
    pub fn database(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Database(std::sync::Arc::new(err))
    }

    /// The error and each of its causes, joined (for logs).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(err) = cause {
            let next = err.to_string();
            if !text.contains(&next) {
                text.push_str(": ");
                text.push_str(&next);
            }
            cause = err.source();
        }
        text
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    /// The code the API reports in `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "NOT_FOUND",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::BadInput { .. } => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::Database(_) | Self::Internal(_) => "INTERNAL",
        }
    }
}

impl From<DbErr> for DomainError {
    fn from(err: DbErr) -> Self {
        Self::database(err)
    }
}

/// True when a database error is a unique-constraint violation (both backends).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
