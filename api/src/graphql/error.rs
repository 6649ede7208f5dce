//! The one mapping from domain errors to GraphQL errors with `extensions.code`.

use async_graphql::ErrorExtensions;
use entity::DomainError;

/// A resolver error. It deliberately has no `Display`, so `?` can only reach
/// `async_graphql::Error` through this type and never drops the code.
#[derive(Clone, Debug)]
pub struct ApiError(async_graphql::Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self(async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code)))
    }

    pub fn bad_input(field: &str, message: &str) -> Self {
        Self::from(DomainError::bad_input(field, message))
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        let code = err.code();
        let message = match &err {
            // Never leak SQL or connection details to clients; the log has them.
            DomainError::Database(_) | DomainError::Internal(_) => {
                tracing::error!(error = %err.chain(), "request failed");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let field = match &err {
            DomainError::BadInput { field, .. } => Some(field.clone()),
            _ => None,
        };
        Self(async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = &field {
                ext.set("field", field.as_str());
            }
        }))
    }
}

impl From<async_graphql::Error> for ApiError {
    fn from(err: async_graphql::Error) -> Self {
        Self(err)
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        err.0
    }
}
