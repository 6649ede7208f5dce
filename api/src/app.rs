//! Putting the application together: open and migrate the database, create the first
//! account on an empty installation, and serve HTTP.

use std::{path::PathBuf, time::Duration};

use entity::{
    database::{self, Database},
    tenants,
};
use migration::{Migrator, MigratorTrait};
use tokio::net::TcpListener;

use crate::{
    auth::TokenKeys,
    config::{Config, redact_url, write_private},
    graphql::{AppContext, build_schema},
    http::{HttpState, router},
};

/// Lifetime of the admin token written on first start.
pub const FIRST_ADMIN_TOKEN_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("database: {0}")]
    Database(String),
    #[error("{0}")]
    Queue(#[from] jobs::queue::QueueSetupError),
    #[error("{0}")]
    Domain(#[from] entity::DomainError),
    #[error("workers: {0}")]
    Worker(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// Connects and brings the schema (application tables and queue tables) up to date.
pub async fn open_database(config: &Config) -> Result<Database, AppError> {
    let db = database::connect(&config.database_url, config.max_connections)
        .await
        .map_err(|err| AppError::Database(err.to_string()))?;
    Migrator::up(&db.conn, None)
        .await
        .map_err(|err| AppError::Database(format!("migration failed: {err}")))?;
    jobs::queue::setup(&db).await?;
    Ok(db)
}

/// Everything request handlers need.
pub fn http_state(config: &Config, db: Database) -> HttpState {
    let app = AppContext {
        queue: jobs::queue::Queue::new(&db),
        inbox: jobs::inbox::Inbox::start(db.clone()),
        routes: Default::default(),
        db,
        keys: config.secret_keys(),
        public_url: config.public_url.clone(),
        webhook_body_timeout: config.webhook_body_timeout,
    };
    let tokens = TokenKeys::new(&config.jwt_secret);
    let guard = crate::graphql::guard::Guard::new(
        Some(tokens.clone()),
        config.http_max_concurrency,
        config.http_request_timeout,
    );
    HttpState {
        schema: build_schema(Some(app.clone()), config.graphql_introspection, guard),
        app,
        tokens,
        max_concurrency: config.http_max_concurrency,
        request_timeout: config.http_request_timeout,
    }
}

/// On an empty database: an account and its admin, with the admin's token written to
/// `data_dir/admin.jwt` (mode 0600). Returns where the token is, when one was written.
pub async fn first_start(config: &Config, db: &Database) -> Result<Option<PathBuf>, AppError> {
    if tenants::account_count(&db.conn).await? > 0 {
        return Ok(None);
    }
    let email = std::env::var("ADMIN_EMAIL").unwrap_or_else(|_| "admin@example.com".to_owned());
    let tenant = tenants::create_account(&db.conn, "My company", &email, Some("Admin")).await?;
    let token = TokenKeys::new(&config.jwt_secret).mint(
        &tenant.admin.id,
        &tenant.account.id,
        entity::Role::Admin,
        FIRST_ADMIN_TOKEN_TTL,
    );
    let path = config.data_dir.join("admin.jwt");
    let io = |source| AppError::Io {
        context: format!("cannot write {}", path.display()),
        source,
    };
    entity::database::create_private_dir(&config.data_dir).map_err(io)?;
    write_private(&path, token.as_bytes()).map_err(io)?;
    tracing::info!(admin = %tenant.admin.email, "created the first account and its admin");
    Ok(Some(path))
}

/// Serves HTTP on `listener` until `shutdown` completes.
pub async fn serve(
    config: &Config,
    db: Database,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(
        database = %redact_url(&config.database_url),
        address = %listener.local_addr()?,
        "serving"
    );
    let app = router(http_state(config, db));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
