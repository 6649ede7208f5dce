//! Test support: the real application on a random port over a real database — a fresh
//! SQLite file, or a fresh PostgreSQL database when `TEST_DATABASE_URL` names a server.

use std::{path::PathBuf, sync::OnceLock, time::Duration};

use checkout_crm::{
    app::{self, http_state},
    auth::TokenKeys,
    config::Config,
    http::router,
};
use entity::{
    Role, database::Database, deliveries::DeliveryStatus, tables::webhook_delivery, tenants,
};
use jobs::deliveries::WorkerSettings;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

pub use checkout_crm;

pub mod browser;
pub mod counted;
pub mod fake_hotmart;
pub mod fake_kiwify;
pub mod hotmart;
pub mod process;
pub mod receiver;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789";
pub const SECRET_KEY: &str = "test-crm-secret-key-0123456789abcdef012345";

/// Runs `body` once per backend: `#[tokio::test]`s named `<name>_sqlite` and
/// `<name>_postgres` (the latter skips with a notice when `TEST_DATABASE_URL` is unset).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        pub mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        pub mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::postgres_url().is_none() {
                        $crate::skip_notice(stringify!($name));
                        return;
                    }
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}

pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

pub fn skip_notice(test: &str) {
    eprintln!("NOTICE: TEST_DATABASE_URL is not set; skipping PostgreSQL test {test}");
}

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: String,
    pub dir: tempfile::TempDir,
    pub postgres_admin: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> TestDatabase {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => TestDatabase {
                url: format!("sqlite://{}", dir.path().join("crm.db").display()),
                dir,
                postgres_admin: None,
            },
            Backend::Postgres => {
                let server = postgres_url().expect("TEST_DATABASE_URL");
                let name = format!("crm_test_{}", uuid::Uuid::now_v7().simple());
                let admin = Database::connect_admin(&server).await;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .expect("create test database");
                admin.close().await;
                TestDatabase {
                    url: replace_database(&server, &name),
                    dir,
                    postgres_admin: Some((server, name)),
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((server, name)) = self.postgres_admin.take() {
            // Best effort, on a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(async {
                        let admin = Database::connect_admin(&server).await;
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&admin)
                        .await;
                        admin.close().await;
                    });
                }
            })
            .join();
        }
    }
}

trait ConnectAdmin {
    async fn connect_admin(url: &str) -> sqlx::PgPool;
}

impl ConnectAdmin for Database {
    async fn connect_admin(url: &str) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .expect("connect to TEST_DATABASE_URL")
    }
}

/// `postgres://u@h:p/db?x` with the database name replaced.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A configuration for tests: fixed secrets, the given database and data folder.
pub fn test_config(database_url: &str, data_dir: PathBuf) -> Config {
    Config {
        database_url: database_url.to_owned(),
        bind: "127.0.0.1:0".into(),
        public_url: "https://crm.example.com".into(),
        data_dir,
        production: false,
        max_connections: 8,
        hotmart_api_url: "http://127.0.0.1:9".into(),
        hotmart_auth_url: "http://127.0.0.1:9".into(),
        hotmart_requests_per_minute: 480,
        kiwify_api_url: "http://127.0.0.1:9".into(),
        jwt_secret: JWT_SECRET.as_bytes().to_vec(),
        secret_key: SECRET_KEY.as_bytes().to_vec(),
        workers: fast_workers(),
        webhook_body_timeout: Duration::from_secs(1),
        http_max_concurrency: 256,
        http_request_timeout: Duration::from_secs(30),
        http_header_timeout: Duration::from_secs(15),
        metrics_bind: None,
        trusted_proxies: Default::default(),
        http_max_connections_per_address: 256,
        metrics_token: None,
        graphql_introspection: true,
        telemetry: Default::default(),
    }
}

/// Worker settings with short intervals, so tests see retries and sweeps in seconds.
pub fn fast_workers() -> WorkerSettings {
    WorkerSettings {
        max_attempts: 3,
        backoff_base: Duration::from_secs(1),
        deadline: Duration::from_secs(30),
        poll_interval: Duration::from_millis(25),
        sweep_interval: Duration::from_millis(500),
        stale_after: Duration::from_secs(2),
        concurrency: 4,
        heartbeat: Duration::from_secs(5),
        lease: Duration::from_secs(15),
        shutdown_grace: Duration::from_secs(5),
        outbound: jobs::outbound::OutboundSettings {
            policy: std::sync::Arc::new(jobs::outbound_net::AddressPolicy {
                allow_http: true,
                allowed: jobs::outbound_net::AddressPolicy::parse_cidrs("127.0.0.0/8, ::1")
                    .unwrap(),
            }),
            retry: entity::outbound::delivery::RetryPolicy {
                schedule_ms: vec![300, 600, 900],
                ..Default::default()
            },
            poll_interval: Duration::from_millis(25),
            lease_ms: 3_000,
            timeout: Duration::from_secs(2),
            ..Default::default()
        },
    }
}

/// The application, served over HTTP on a random local port.
pub struct TestApp {
    pub base: String,
    pub db: Database,
    pub config: Config,
    pub http: reqwest::Client,
    /// Token of the admin of the first account.
    pub admin: String,
    pub account_id: String,
    pub admin_id: String,
    _database: TestDatabase,
    server: tokio::task::JoinHandle<()>,
    workers: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(workers) = self.workers.take() {
            workers.abort();
        }
    }
}

pub fn tokens() -> TokenKeys {
    TokenKeys::new(JWT_SECRET.as_bytes())
}

impl TestApp {
    /// The application with its background workers, as `serve` runs it.
    pub async fn spawn(backend: Backend) -> TestApp {
        let mut app = Self::spawn_without_workers(backend).await;
        app.start_workers();
        app
    }

    /// The application talking to a fake Hotmart API at `hotmart_base`.
    pub async fn spawn_with_hotmart(backend: Backend, hotmart_base: &str) -> TestApp {
        let mut app = Self::spawn_without_workers(backend).await;
        app.config.hotmart_api_url = hotmart_base.to_owned();
        app.config.hotmart_auth_url = hotmart_base.to_owned();
        app.start_workers();
        app
    }

    /// Starts the delivery workers in this process (again, after `stop_workers`).
    pub fn start_workers(&mut self) {
        let db = self.db.clone();
        let settings = self.config.workers.clone();
        let keys = self.config.secret_keys();
        let hotmart = self.config.hotmart_endpoints();
        let telemetry = self.config.telemetry.clone();
        self.workers = Some(tokio::spawn(async move {
            let pending = std::future::pending();
            let _ = jobs::workers::run(db, settings, keys, hotmart, telemetry, pending).await;
        }));
    }

    pub fn stop_workers(&mut self) {
        if let Some(workers) = self.workers.take() {
            workers.abort();
        }
    }

    /// The HTTP side only: deliveries stay `PENDING` until workers run.
    pub async fn spawn_without_workers(backend: Backend) -> TestApp {
        Self::spawn_configured(backend, |_| {}).await
    }

    /// Like `spawn_without_workers`, with the configuration adjusted first.
    pub async fn spawn_configured(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        // `RUST_LOG=…` shows the application's logs in failing tests.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "off".into()),
            )
            .with_test_writer()
            .try_init();
        let database = TestDatabase::create(backend).await;
        let mut config = test_config(&database.url, database.dir.path().join("data"));
        adjust(&mut config);
        let db = app::open_database(&config).await.expect("open database");
        let tenant =
            tenants::create_account(&db.conn, "Acme", "admin@acme.test", Some("Ada Admin"))
                .await
                .expect("first account");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = router(http_state(&config, db.clone()));
        let server = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let _ = axum::serve(listener, service).await;
        });
        TestApp {
            base,
            admin: tokens().mint(
                &tenant.admin.id,
                &tenant.account.id,
                Role::Admin,
                Duration::from_secs(3600),
            ),
            account_id: tenant.account.id,
            admin_id: tenant.admin.id,
            db,
            config,
            http: reqwest::Client::new(),
            _database: database,
            server,
            workers: None,
        }
    }

    /// The first admin as a domain caller, for calls that bypass the API.
    pub fn admin_caller(&self) -> entity::Caller {
        entity::Caller {
            user_id: self.admin_id.clone(),
            account_id: self.account_id.clone(),
            role: entity::Role::Admin,
        }
    }

    /// Waits for import run `id` to end (SUCCEEDED, FAILED or CANCELED) as seen by
    /// `token`, and returns it; panics after `limit`.
    pub async fn finished_import(&self, token: &str, id: &str, limit: Duration) -> Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let run = self
                .ok(
                    token,
                    "query($id: ID!) { importRun(id: $id) { id status salesSeen dealsCreated skipped failedSales error } }",
                    json!({"id": id}),
                )
                .await["importRun"]
                .clone();
            if matches!(
                run["status"].as_str(),
                Some("SUCCEEDED" | "FAILED" | "CANCELED")
            ) {
                return run;
            }
            assert!(std::time::Instant::now() < deadline, "import still {run}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A second, independent account on the same installation, with its admin's token.
    pub async fn other_account(&self) -> String {
        let tenant = tenants::create_account(&self.db.conn, "Rival", "admin@rival.test", None)
            .await
            .unwrap();
        tokens().mint(
            &tenant.admin.id,
            &tenant.account.id,
            Role::Admin,
            Duration::from_secs(3600),
        )
    }

    /// Creates a user through the API and returns `(id, token)`.
    pub async fn user(&self, email: &str, role: &str) -> (String, String) {
        let data = self
            .ok(
                &self.admin,
                "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
                json!({"i": {"name": email, "email": email, "role": role}}),
            )
            .await;
        let id = data["createUser"]["id"].as_str().unwrap().to_owned();
        let role = Role::parse(role).unwrap();
        let token = tokens().mint(&id, &self.account_id, role, Duration::from_secs(3600));
        (id, token)
    }

    /// Posts a GraphQL request; returns the HTTP status and the body.
    pub async fn post_graphql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// A GraphQL request that must succeed; returns `data`.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.post_graphql(Some(token), query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// A GraphQL request that must fail; returns the first error's `extensions.code`
    /// and message.
    pub async fn err(&self, token: &str, query: &str, variables: Value) -> (String, String) {
        let (_, body) = self.post_graphql(Some(token), query, variables).await;
        let error = &body["errors"][0];
        assert!(!error.is_null(), "expected an error: {body}");
        (
            error["extensions"]["code"]
                .as_str()
                .unwrap_or("<none>")
                .to_owned(),
            error["message"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// An integration with one product, ready to activate: `(integration id, group id)`.
    pub async fn integration_with_product(&self, events: &[&str]) -> (String, String) {
        let data = self
            .ok(
                &self.admin,
                "mutation($i: CreateIntegrationInput!) { createHotmartIntegration(input: $i) { id group { id } } }",
                json!({"i": {"name": "Curso X", "events": events}}),
            )
            .await;
        let id = data["createHotmartIntegration"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let group = data["createHotmartIntegration"]["group"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.ok(
            &self.admin,
            "mutation($id: ID!, $i: AddProductInput!) { addHotmartProduct(integrationId: $id, input: $i) { id } }",
            json!({"id": id, "i": {"hotmartProductId": "1234567", "hottok": "hottok-secret-0001"}}),
        )
        .await;
        (id, group)
    }
}

/// The hottok of every product of [`TestApp::fixture_integration`].
pub const FIXTURE_HOTTOK: &str = "fixture-hottok-0001";

impl TestApp {
    /// Makes every write to the deal log fail, as a real fault would (until healed).
    pub async fn break_processing(&self) {
        let statements: &[&str] = if self.db.is_sqlite() {
            &[
                "CREATE TRIGGER fail_events BEFORE INSERT ON deal_events BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            ]
        } else {
            &[
                "CREATE FUNCTION fail_events() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER fail_events BEFORE INSERT ON deal_events FOR EACH ROW EXECUTE FUNCTION fail_events()",
            ]
        };
        for sql in statements {
            sea_orm::ConnectionTrait::execute_unprepared(&self.db.conn, sql)
                .await
                .unwrap();
        }
    }

    /// Undoes [`TestApp::break_processing`].
    pub async fn heal_processing(&self) {
        let sql = if self.db.is_sqlite() {
            "DROP TRIGGER fail_events"
        } else {
            "DROP TRIGGER fail_events ON deal_events"
        };
        sea_orm::ConnectionTrait::execute_unprepared(&self.db.conn, sql)
            .await
            .unwrap();
    }

    /// An active integration for every event and every product of the real fixtures
    /// (hottok [`FIXTURE_HOTTOK`]): `(integration id, webhook URL)`.
    pub async fn fixture_integration(&self) -> (String, String) {
        let events: Vec<&str> = entity::hotmart_event::HotmartEvent::ALL
            .iter()
            .map(|event| event.as_str())
            .collect();
        let created = self
            .ok(
                &self.admin,
                "mutation($i: CreateIntegrationInput!) { createHotmartIntegration(input: $i) { id } }",
                json!({"i": {"name": "Fixtures", "events": events}}),
            )
            .await;
        let id = created["createHotmartIntegration"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let products: std::collections::BTreeSet<String> = fixtures()
            .iter()
            .filter_map(|(_, body)| {
                match &serde_json::from_str::<Value>(body).unwrap()["data"]["product"]["id"] {
                    Value::Number(n) => Some(n.to_string()),
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                }
            })
            .collect();
        for product in &products {
            self.ok(
                &self.admin,
                "mutation($id: ID!, $p: String!, $h: String!) { addHotmartProduct(integrationId: $id, input: {hotmartProductId: $p, hottok: $h}) { id } }",
                json!({"id": id, "p": product, "h": FIXTURE_HOTTOK}),
            )
            .await;
        }
        let url = self
            .ok(
                &self.admin,
                "mutation($id: ID!) { activateIntegration(id: $id) { webhookUrl } }",
                json!({"id": id}),
            )
            .await["activateIntegration"]["webhookUrl"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, url)
    }

    /// Posts a body to a webhook URL path (as returned in `webhookUrl`) with a hottok header.
    pub async fn post_webhook(
        &self,
        webhook_url: &str,
        hottok: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let path = webhook_url.trim_start_matches("https://crm.example.com");
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(hottok) = hottok {
            request = request.header("X-HOTMART-HOTTOK", hottok);
        }
        let response = request.send().await.expect("webhook request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until no delivery is `PENDING` (panics after 60 s).
    pub async fn wait_until_processed(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let pending = webhook_delivery::Entity::find()
                .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
                .count(&self.db.conn)
                .await
                .unwrap();
            if pending == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{pending} deliveries still pending"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The webhook URL of an integration.
    pub async fn webhook_url(&self, integration: &str) -> String {
        self.ok(
            &self.admin,
            "query($id: ID!) { integration(id: $id) { webhookUrl } }",
            json!({"id": integration}),
        )
        .await["integration"]["webhookUrl"]
            .as_str()
            .expect("an active integration has a webhook URL")
            .to_owned()
    }

    /// An active integration for the given events with product 1234567 (hottok
    /// `hottok-secret-0001`); returns `(integration id, webhook URL)`.
    pub async fn active_integration(&self, events: &[&str], settings: Value) -> (String, String) {
        let (id, _) = self.integration_with_product(events).await;
        if settings.as_object().is_some_and(|o| !o.is_empty()) {
            self.ok(
                &self.admin,
                "mutation($id: ID!, $i: UpdateIntegrationInput!) { updateIntegration(id: $id, input: $i) { id } }",
                json!({"id": id, "i": settings}),
            )
            .await;
        }
        let data = self
            .ok(
                &self.admin,
                "mutation($id: ID!) { activateIntegration(id: $id) { webhookUrl } }",
                json!({"id": id}),
            )
            .await;
        (
            id,
            data["activateIntegration"]["webhookUrl"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }
}

/// Makes the application's database refuse work until the returned guard is dropped:
/// SQLite is locked exclusively by another connection (writes fail after the busy
/// timeout); PostgreSQL stops accepting connections and drops the open ones.
pub struct DatabaseOutage {
    restore: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for DatabaseOutage {
    fn drop(&mut self) {
        if let Some(restore) = self.restore.take() {
            restore();
        }
    }
}

impl TestApp {
    pub async fn database_outage(&self) -> DatabaseOutage {
        let url = self._database.url.clone();
        match &self._database.postgres_admin {
            None => {
                use sqlx::Connection;
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let (release, wait) = std::sync::mpsc::channel::<()>();
                let holder = std::thread::spawn(move || {
                    let _ = wait.recv();
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(async move {
                        let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                        let _ = conn.close().await;
                    });
                });
                DatabaseOutage {
                    restore: Some(Box::new(move || {
                        let _ = release.send(());
                        let _ = holder.join();
                    })),
                }
            }
            Some((server, name)) => {
                let admin = Database::connect_admin(server).await;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER DATABASE {name} ALLOW_CONNECTIONS false"
                )))
                .execute(&admin)
                .await
                .unwrap();
                sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
                    .bind(name.as_str())
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let (server, name) = (server.clone(), name.clone());
                DatabaseOutage {
                    restore: Some(Box::new(move || {
                        let _ = std::thread::spawn(move || {
                            let runtime = tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                                .unwrap();
                            runtime.block_on(async move {
                                let admin = Database::connect_admin(&server).await;
                                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                                    "ALTER DATABASE {name} ALLOW_CONNECTIONS true"
                                )))
                                .execute(&admin)
                                .await;
                                admin.close().await;
                            });
                        })
                        .join();
                    })),
                }
            }
        }
    }
}

/// Posts `body` over a raw HTTP/1.1 connection (with Content-Length, or chunked) and
/// returns the status the server answered with — even when it answered before the whole
/// body was sent and closed the connection, which an ordinary client reports as a write
/// error instead of the response.
pub async fn raw_post_status(
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    chunked: bool,
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {address}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&if chunked {
        "Transfer-Encoding: chunked\r\n\r\n".to_owned()
    } else {
        format!("Content-Length: {}\r\n\r\n", body.len())
    });
    socket.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(16 * 1024) {
        let frame = if chunked {
            [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat()
        } else {
            chunk.to_vec()
        };
        if socket.write_all(&frame).await.is_err() {
            break;
        }
    }
    if chunked {
        let _ = socket.write_all(b"0\r\n\r\n").await;
    }
    let mut response = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut response)).await;
    let n = match read {
        Ok(Ok(n)) => n,
        _ => 0,
    };
    let text = String::from_utf8_lossy(&response[..n]);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The real Hotmart deliveries under `tests/fixtures/hotmart`, as `(relative path, body)`.
pub fn fixtures() -> Vec<(String, String)> {
    let root = workspace_root().join("tests/fixtures/hotmart");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = path.strip_prefix(&root).unwrap().display().to_string();
                files.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// Path to the `checkout-crm` binary, built once per test process (debug), unless
/// `CHECKOUT_CRM_BINARY` names one (for example a release build, to measure).
pub fn binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| match std::env::var_os("CHECKOUT_CRM_BINARY") {
            Some(path) => PathBuf::from(path),
            None => build_binary(false),
        })
        .clone()
}

/// Builds `checkout-crm` (debug, or `--release`) and returns the binary's path.
pub fn build_binary(release: bool) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        // The whole workspace is selected (only the binary is built) so that dependencies
        // get the same features as in `cargo test --workspace` and are not built again.
        .args(["build", "-q", "--workspace", "--bin", "checkout-crm"])
        .args(release.then_some("--release"))
        .current_dir(workspace_root());
    // The variables cargo sets for this test process (CARGO_MANIFEST_DIR, CARGO_PKG_…)
    // would look like a changed build environment and rebuild dependencies with build
    // scripts. Build settings (CARGO_INCREMENTAL, CARGO_PROFILE_…, CARGO_TARGET_DIR) stay:
    // without them the build would not match the one that made this test.
    const SET_FOR_TESTS: &[&str] = &[
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if SET_FOR_TESTS.iter().any(|prefix| key.starts_with(prefix)) {
            command.env_remove(&key);
        }
    }
    let status = command.status().expect("run cargo build");
    assert!(status.success(), "building checkout-crm failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    target
        .join(if release { "release" } else { "debug" })
        .join("checkout-crm")
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `extensions.code` of every error in a GraphQL response body.
pub fn error_codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    e["extensions"]["code"]
                        .as_str()
                        .unwrap_or("<none>")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The plan the database makes for `statement` (SQLite's `EXPLAIN QUERY PLAN` details, or
/// PostgreSQL's `EXPLAIN` lines), one step per line: to check that a query reads the index
/// meant for it.
pub async fn query_plan(
    db: &sea_orm::DatabaseConnection,
    mut statement: sea_orm::Statement,
) -> String {
    use sea_orm::ConnectionTrait;
    let sqlite = db.get_database_backend() == sea_orm::DbBackend::Sqlite;
    statement.sql = if sqlite {
        format!("EXPLAIN QUERY PLAN {}", statement.sql)
    } else {
        format!("EXPLAIN {}", statement.sql)
    };
    let rows = db.query_all_raw(statement).await.unwrap();
    let column = if sqlite { 3 } else { 0 };
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(column).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn database_names_are_replaced_in_urls() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://h/test?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://h", "x"), "postgres://h/x");
    }
}
