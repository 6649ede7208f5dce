//! The `checkout-crm` binary as a separate process on a fresh database, and a GraphQL
//! client for it.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

/// A fresh database for one run: a SQLite file in the run's directory, or a new
/// PostgreSQL database on the given server (dropped afterwards).
pub struct FreshDatabase {
    pub url: String,
    drop_on: Option<(String, String)>,
}

impl FreshDatabase {
    pub async fn create(server_url: Option<&str>, dir: &Path) -> FreshDatabase {
        let Some(server_url) = server_url else {
            return FreshDatabase {
                url: format!("sqlite://{}?mode=rwc", dir.join("crm.db").display()),
                drop_on: None,
            };
        };
        let name = format!(
            "bench_{}",
            ulid::Ulid::generate().to_string().to_lowercase()
        );
        let pool = sqlx::PgPool::connect(server_url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .expect("create the bench database");
        pool.close().await;
        let (base, _) = server_url
            .rsplit_once('/')
            .expect("a PostgreSQL URL ends with /database");
        FreshDatabase {
            url: format!("{base}/{name}"),
            drop_on: Some((server_url.to_owned(), name)),
        }
    }

    pub async fn drop_database(self) {
        if let Some((server, name)) = self.drop_on
            && let Ok(pool) = sqlx::PgPool::connect(&server).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&pool)
            .await;
        }
    }
}

/// A running server process; killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    pub admin: String,
    pub http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `checkout-crm serve` in `dir` on `database_url` with extra environment.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        database_url: &str,
        env: &[(&str, String)],
    ) -> Server {
        Self::start_with_args(binary, dir, database_url, env, &[]).await
    }

    /// Like [`Server::start`], with command-line arguments (e.g. `serve --no-workers`).
    pub async fn start_with_args(
        binary: &Path,
        dir: &Path,
        database_url: &str,
        env: &[(&str, String)],
        args: &[&str],
    ) -> Server {
        let port = tests::process::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(binary);
        command
            .args(args)
            .current_dir(dir)
            .env("DATABASE_URL", database_url)
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("PUBLIC_URL", &base)
            // `BENCH_SERVER_LOG` (a `RUST_LOG` filter) shows the server's logs, for example
            // `sqlx::query=debug` for every statement with its time.
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "error".to_owned()),
            )
            .env_remove("CHECKOUT_CRM_DATA_DIR")
            .env_remove("JWT_SECRET")
            .env_remove("CRM_SECRET_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start checkout-crm");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = http
                .get(format!("{base}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if up {
                break;
            }
            assert!(Instant::now() < deadline, "checkout-crm did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let admin = std::fs::read_to_string(dir.join("data/admin.jwt"))
            .expect("the first start writes data/admin.jwt")
            .trim()
            .to_owned();
        Server {
            child,
            base,
            admin,
            http,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size of the server so far, in MiB (Linux `VmHWM`).
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// A GraphQL operation that must succeed; returns `data`.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let body = self.graphql_body(query, variables).await;
        assert!(body["errors"].is_null(), "GraphQL error: {body}");
        body["data"].clone()
    }

    /// A GraphQL operation's whole answer (`data` and `errors`).
    pub async fn graphql_body(&self, query: &str, variables: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.admin)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .expect("GraphQL request");
        response.json().await.expect("GraphQL JSON")
    }

    /// The text of this server's `/metrics` (empty when unreadable).
    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap_or_default()
    }

    /// Deliveries by status, from `/metrics` of this single server process: its webhook
    /// counters by outcome (every stored delivery) and the `PENDING` and `FAILED` gauges;
    /// the accepted ones neither pending nor failed are processed.
    pub async fn delivery_counts(&self) -> Vec<(String, u64)> {
        let text = self.metrics().await;
        let value = |prefix: &str| -> u64 {
            text.lines()
                .find_map(|line| line.strip_prefix(prefix))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        };
        let outcome = |name: &str| {
            value(&format!(
                "checkout_crm_webhooks_total{{outcome=\"{name}\"}} "
            ))
        };
        let gauge = |status: &str| {
            value(&format!(
                "checkout_crm_webhook_deliveries{{status=\"{status}\"}} "
            ))
        };
        let (pending, failed) = (gauge("PENDING"), gauge("FAILED"));
        vec![
            ("PENDING".into(), pending),
            ("FAILED".into(), failed),
            (
                "PROCESSED".into(),
                outcome("accepted").saturating_sub(pending + failed),
            ),
            ("DUPLICATE".into(), outcome("duplicate")),
            ("IGNORED".into(), outcome("ignored")),
            ("TEST".into(), outcome("test")),
            ("REJECTED".into(), outcome("rejected")),
        ]
    }

    /// A histogram of this server's `/metrics`: its buckets (upper bound in seconds,
    /// cumulative count), `+Inf` last.
    pub async fn histogram(&self, name: &str) -> Histogram {
        let text = self.metrics().await;
        let prefix = format!("{name}_bucket{{le=\"");
        let buckets = text
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .filter_map(|rest| {
                let (bound, count) = rest.split_once("\"} ")?;
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    bound.parse().ok()?
                };
                Some((bound, count.trim().parse().ok()?))
            })
            .collect();
        Histogram { buckets }
    }

    /// An active integration for every event, with the given products (id, hottok);
    /// returns `(integration id, group id, webhook URL)`.
    pub async fn integration(&self, products: &[(&str, &str)]) -> (String, String, String) {
        let data = self
            .graphql(
                "mutation($i: CreateIntegrationInput!) { createHotmartIntegration(input: $i) { id group { id } } }",
                json!({"i": {"name": "Lançamento", "events": ALL_EVENTS}}),
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
        for (product, hottok) in products {
            self.graphql(
                "mutation($id: ID!, $i: AddProductInput!) { addHotmartProduct(integrationId: $id, input: $i) { id } }",
                json!({"id": id, "i": {"hotmartProductId": product, "hottok": hottok}}),
            )
            .await;
        }
        let url = self
            .graphql(
                "mutation($id: ID!) { activateIntegration(id: $id) { webhookUrl } }",
                json!({"id": id}),
            )
            .await["activateIntegration"]["webhookUrl"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, group, url)
    }
}

impl Server {
    /// An active Kiwify integration for `products`, signed with `token`; its webhook URL.
    pub async fn kiwify_integration(&self, products: &[&str], token: &str) -> String {
        let events = [
            "CART_ABANDONED",
            "PAYMENT_PENDING",
            "PAYMENT_REFUSED",
            "PURCHASE_APPROVED",
            "REFUNDED",
        ];
        let data = self
            .graphql(
                "mutation($i: CreateCheckoutIntegrationInput!) { createIntegration(input: $i) { id } }",
                json!({"i": {"platform": "KIWIFY", "name": "Loja", "events": events}}),
            )
            .await;
        let id = data["createIntegration"]["id"].as_str().unwrap().to_owned();
        for product in products {
            self.graphql(
                "mutation($id: ID!, $p: String!) { addProduct(integrationId: $id, input: {platformProductId: $p}) { id } }",
                json!({"id": id, "p": product}),
            )
            .await;
        }
        self.graphql(
            "mutation($id: ID!, $s: String!) { setWebhookSecret(integrationId: $id, secret: $s) { id } }",
            json!({"id": id, "s": token}),
        )
        .await;
        self.graphql(
            "mutation($id: ID!) { activateIntegration(id: $id) { webhookUrl } }",
            json!({"id": id}),
        )
        .await["activateIntegration"]["webhookUrl"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

pub const ALL_EVENTS: [&str; 13] = [
    "PURCHASE_OUT_OF_SHOPPING_CART",
    "PURCHASE_BILLET_PRINTED",
    "PURCHASE_CANCELED",
    "PURCHASE_EXPIRED",
    "PURCHASE_APPROVED",
    "PURCHASE_COMPLETE",
    "PURCHASE_DELAYED",
    "PURCHASE_PROTEST",
    "PURCHASE_REFUNDED",
    "PURCHASE_CHARGEBACK",
    "SUBSCRIPTION_CANCELLATION",
    "SWITCH_PLAN",
    "UPDATE_SUBSCRIPTION_CHARGE_DATE",
];

/// A Prometheus histogram read from `/metrics`.
pub struct Histogram {
    buckets: Vec<(f64, u64)>,
}

impl Histogram {
    pub fn count(&self) -> u64 {
        self.buckets.last().map_or(0, |b| b.1)
    }

    /// The upper bound (ms) of the bucket holding the `p`th percentile: the percentile is
    /// at most this.
    pub fn percentile_bound_ms(&self, p: f64) -> f64 {
        let wanted = (self.count() as f64 * p / 100.0).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, n)| *n >= wanted)
            .map_or(f64::NAN, |(bound, _)| bound * 1000.0)
    }

    /// The share (%) of observations of at most `ms` (a bucket bound).
    pub fn share_within_pct(&self, ms: f64) -> f64 {
        let within = self
            .buckets
            .iter()
            .find(|(bound, _)| (bound * 1000.0 - ms).abs() < 1e-9)
            .map_or(0, |b| b.1);
        100.0 * within as f64 / self.count().max(1) as f64
    }
}
