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
    entity::sign_in::warm_up();
    let tokens = TokenKeys::new(&config.jwt_secret);
    let polls = std::sync::Arc::new(tokio::sync::Semaphore::new(
        (config.http_max_concurrency / 8).max(4),
    ));
    let live_db = db.conn.clone();
    let app = AppContext {
        tokens: tokens.clone(),
        queue: jobs::queue::Queue::new(&db),
        inbox: crate::inbox::Inbox::start(db.clone()),
        routes: Default::default(),
        db,
        keys: config.secret_keys(),
        public_url: config.public_url.clone(),
        webhook_body_timeout: config.webhook_body_timeout,
        live: crate::live::Live::new(live_db, polls.clone()),
        polls,
        outbound_policy: config.workers.outbound.policy.clone(),
    };
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
        metrics_apart: config.metrics_bind.is_some(),
        trusted_proxies: config.trusted_proxies.clone(),
        metrics_token: config.metrics_token.clone(),
        health_cache: Default::default(),
        worker_lease: config.workers.lease,
        telemetry: config.telemetry.clone(),
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
    // A generated password, to sign in from a browser.
    let password = generated_password();
    entity::sign_in::set_password_of(&db.conn, tenant.admin.clone(), &password).await?;
    let password_path = config.data_dir.join("admin-password");
    let io = |source| AppError::Io {
        context: format!("cannot write {}", password_path.display()),
        source,
    };
    write_private(&password_path, password.as_bytes()).map_err(io)?;
    tracing::info!(admin = %tenant.admin.email, "created the first account and its admin");
    Ok(Some(path))
}

/// 20 random characters from an alphabet without look-alikes.
fn generated_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
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
    let state = http_state(config, db);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let metrics = match &config.metrics_bind {
        Some(address) => {
            let metrics_listener = TcpListener::bind(address).await?;
            tracing::info!(address = %metrics_listener.local_addr()?, "serving /metrics");
            let app = crate::http::metrics_router(state.clone());
            let stopped = stopped.clone();
            Some(tokio::spawn(serve_connections(
                metrics_listener,
                app,
                Listening::of(config),
                stopped,
            )))
        }
        None => None,
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let served = serve_connections(listener, router(state), Listening::of(config), stopped).await;
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    served
}

/// `/metrics` alone on `METRICS_BIND` (for a `worker` process, whose counters are its
/// own), until `shutdown` completes; nothing when it is not set.
pub async fn serve_metrics(
    config: &Config,
    db: Database,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(address) = &config.metrics_bind else {
        return Ok(());
    };
    let listener = TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics");
    let app = crate::http::metrics_router(http_state(config, db));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    serve_connections(listener, app, Listening::of(config), stopped).await
}

/// How a listener treats connections: the header timeout, and the connections one client
/// address may hold open (`HTTP_MAX_CONNECTIONS_PER_ADDRESS`; trusted proxies exempt).
struct Listening {
    header_timeout: std::time::Duration,
    /// A write pending this long closes the connection (the request timeout).
    write_deadline: std::time::Duration,
    connections: crate::client::ConnectionCounts,
}

impl Listening {
    fn of(config: &Config) -> Self {
        Listening {
            header_timeout: config.http_header_timeout,
            write_deadline: config.http_request_timeout,
            connections: crate::client::ConnectionCounts::new(
                config.http_max_connections_per_address,
                config.trusted_proxies.clone(),
            ),
        }
    }
}

/// The request with its connection's peer (for the client address).
fn with_peer<B>(
    mut request: axum::http::Request<B>,
    peer: Option<std::net::SocketAddr>,
) -> axum::http::Request<B> {
    if let Some(peer) = peer {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
    }
    request
}

/// The next connection; `None` once `stop` turns true.
async fn next_connection(
    listener: &TcpListener,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::net::TcpStream> {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => return None,
        };
        match accepted {
            Ok((stream, _)) => return Some(stream),
            Err(err) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!(error = %err, "cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Accepts connections until `stop` turns true, then lets open ones finish. A client must
/// send a request's line and headers within `header_timeout` (an idle keep-alive
/// connection is closed after as long); upgrades (websockets) are served.
async fn serve_connections(
    listener: TcpListener,
    app: axum::Router,
    listening: Listening,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let header_timeout = listening.header_timeout;
    let write_deadline = listening.write_deadline;
    use hyper_util::{
        rt::{TokioExecutor, TokioIo, TokioTimer},
        server::{conn::auto::Builder, graceful::GracefulShutdown},
        service::TowerToHyperService,
    };
    // HTTP/1.1 only: Hotmart and GraphQL clients speak it, and a connection that sends
    // nothing would otherwise wait in protocol detection, before any timeout applies.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    while let Some(stream) = next_connection(&listener, &mut stop).await {
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        // Beyond its share of connections, an address's new ones are closed at once.
        let Some(counted) = listening.connections.enter(peer) else {
            continue;
        };
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |request: axum::http::Request<_>| with_peer(request, peer),
        ));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _counted = counted;
            // hyper times the reading of a request head once bytes arrive; a connection
            // that sends nothing at all is timed here.
            let mut first = [0u8; 1];
            let first_byte = tokio::time::timeout(header_timeout, stream.peek(&mut first)).await;
            if !matches!(first_byte, Ok(Ok(1..))) {
                return;
            }
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(crate::client::WriteDeadline::new(stream, write_deadline)),
                    service,
                )
                .into_owned();
            let _ = watcher.watch(connection).await;
        });
    }
    // Open requests finish; a connection that does not is dropped after a while.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown()).await;
    Ok(())
}
