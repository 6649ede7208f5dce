//! The real binary as child processes: start them, signal them, talk to them over HTTP,
//! and read the database they share.

use std::{
    collections::BTreeSet,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use entity::database;
use futures::StreamExt;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::{Backend, TestDatabase, binary};

/// The database a process-level test runs on: the default SQLite file under the test's
/// directory, or a fresh PostgreSQL database.
pub struct Store {
    pub url: String,
    _postgres: Option<TestDatabase>,
}

impl Store {
    pub async fn new(backend: Backend, dir: &Path) -> Store {
        match backend {
            Backend::Sqlite => Store {
                url: format!("sqlite://{}", dir.join("data/checkout-crm.db").display()),
                _postgres: None,
            },
            Backend::Postgres => {
                let database = TestDatabase::create(Backend::Postgres).await;
                Store {
                    url: database.url.clone(),
                    _postgres: Some(database),
                }
            }
        }
    }

    /// `SELECT count(*)`-like query returning one integer; `{jobs}` names the queue table.
    pub async fn count(&self, db: &database::Database, sql: &str) -> i64 {
        let jobs = if db.is_sqlite() {
            "Jobs"
        } else {
            "apalis.jobs"
        };
        let sql = sql.replace("{jobs}", jobs);
        let row = db
            .conn
            .query_one_raw(Statement::from_string(db.conn.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    /// Unfinished jobs (waiting or claimed) in the queue.
    pub async fn unfinished_jobs(&self, db: &database::Database) -> i64 {
        self.count(
            db,
            "SELECT count(*) FROM {jobs} WHERE status IN ('Running', 'Queued', 'Pending')",
        )
        .await
    }

    /// Jobs claimed (taken and not finished) by any worker of process `pid`.
    pub async fn claims_of(&self, db: &database::Database, pid: u32) -> i64 {
        self.count(
            db,
            &format!(
                "SELECT count(*) FROM {{jobs}} WHERE status IN ('Running', 'Queued') \
                 AND (lock_by LIKE 'deliveries-{pid}-%' OR lock_by LIKE 'imports-{pid}-%')"
            ),
        )
        .await
    }

    /// Jobs claimed by any process.
    pub async fn claims(&self, db: &database::Database) -> i64 {
        self.count(
            db,
            "SELECT count(*) FROM {jobs} WHERE status IN ('Running', 'Queued')",
        )
        .await
    }

    pub async fn deliveries(&self, db: &database::Database, status: &str) -> i64 {
        self.count(
            db,
            &format!("SELECT count(*) FROM webhook_deliveries WHERE status = '{status}'"),
        )
        .await
    }
}

/// A child process, killed when dropped.
pub struct Process(pub Child);

impl Process {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends `signal` (`TERM`, `KILL`, `STOP`, `CONT`, …).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} {}", self.pid());
    }

    /// Waits for the process to exit, at most `within`; its exit status.
    pub async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `checkout-crm` with `args`, in `dir`, on `database_url`, its Hotmart API at `hotmart`
/// and `env` on top; development secrets from `dir/data`.
pub fn crm(
    dir: &Path,
    database_url: &str,
    hotmart: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> Process {
    let mut command = Command::new(binary());
    command.current_dir(dir).env("DATABASE_URL", database_url);
    for var in [
        "JWT_SECRET",
        "CRM_SECRET_KEY",
        "CHECKOUT_CRM_ENV",
        "CHECKOUT_CRM_DATA_DIR",
    ] {
        command.env_remove(var);
    }
    command
        .env("HOTMART_API_URL", hotmart)
        .env("HOTMART_AUTH_URL", hotmart)
        .env("RUST_LOG", "error")
        .env("WORKER_POLL_MS", "20");
    for (key, value) in env {
        command.env(key, value);
    }
    // `CRM_TEST_LOG=<filter>` keeps each process's log in `dir/crm-<pid>.log`.
    let log = std::env::var("CRM_TEST_LOG").ok();
    if let Some(filter) = &log {
        command.env("RUST_LOG", filter);
    }
    let stderr = match &log {
        Some(_) => Stdio::piped(),
        None => Stdio::null(),
    };
    let mut child = command
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start checkout-crm");
    if let Some(mut stderr) = child.stderr.take() {
        let path = dir.join(format!("crm-{}.log", child.id()));
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(path).unwrap();
            let _ = std::io::copy(&mut stderr, &mut file);
        });
    }
    Process(child)
}

/// An HTTP-only server (it creates the database and the first admin) and, once it is up,
/// two worker processes, all with `env`: the server's base URL, the server, the workers.
pub async fn cluster(
    dir: &Path,
    database_url: &str,
    hotmart: &str,
    env: &[(&str, &str)],
) -> (String, Process, [Process; 2]) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let server = crm(
        dir,
        database_url,
        hotmart,
        env,
        &["serve", "--no-workers", "--bind", &bind],
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    let workers = [
        crm(dir, database_url, hotmart, env, &["worker"]),
        crm(dir, database_url, hotmart, env, &["worker"]),
    ];
    (base, server, workers)
}

/// Where [`free_port`] looks: below Linux's ephemeral range (32768–60999), so no outgoing
/// connection and no `bind(…:0)` of another program takes a port between the moment it is
/// handed out and the moment the server binds it.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port free on 127.0.0.1 that no other caller in this process has been given: parallel
/// tests never start two servers on one port (a health check would then answer for the
/// wrong server).
pub fn free_port() -> u16 {
    use std::sync::{Mutex, OnceLock};
    static NEXT: OnceLock<Mutex<u16>> = OnceLock::new();
    let span = TEST_PORTS.end - TEST_PORTS.start;
    let next = NEXT.get_or_init(|| {
        // Each test process starts somewhere else in the range.
        let seed = std::process::id() as u64
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() as u64)
                .unwrap_or(0);
        Mutex::new((seed % span as u64) as u16)
    });
    let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..span {
        let port = TEST_PORTS.start + *next;
        *next = (*next + 1) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {TEST_PORTS:?}")
}

pub async fn wait_healthy(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/healthz"))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "{base} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GraphQL over HTTP as the first admin (token from `dir/data/admin.jwt`).
#[derive(Clone)]
pub struct Gql {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Gql {
    pub fn new(base: &str, dir: &Path) -> Gql {
        let path = dir.join("data/admin.jwt");
        let token = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (did {base} answer for another server?)",
                path.display()
            )
        });
        Gql {
            http: reqwest::Client::new(),
            url: format!("{base}/graphql"),
            token: token.trim().to_owned(),
        }
    }

    pub async fn call(&self, query: &str, variables: Value) -> Value {
        self.http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    }

    /// An active integration for product 1234567 (hottok `hottok-secret-0001`) with carts,
    /// approvals and refunds, with the fake Hotmart's credentials; its id and webhook URL.
    pub async fn integration(&self) -> (String, String) {
        use crate::fake_hotmart::{CLIENT_ID, CLIENT_SECRET};
        let created = self.call("mutation { createHotmartIntegration(input: {name: \"Drain\", events: [PURCHASE_APPROVED, PURCHASE_OUT_OF_SHOPPING_CART, PURCHASE_REFUNDED]}) { id } }", json!({})).await;
        let id = created["data"]["createHotmartIntegration"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{created}"))
            .to_owned();
        self.call("mutation($id: ID!) { addHotmartProduct(integrationId: $id, input: {hotmartProductId: \"1234567\", hottok: \"hottok-secret-0001\"}) { id } }", json!({"id": id})).await;
        self.call("mutation($id: ID!, $c: String!, $s: String!) { setHotmartCredentials(integrationId: $id, input: {clientId: $c, clientSecret: $s}) { id } }", json!({"id": id, "c": CLIENT_ID, "s": CLIENT_SECRET})).await;
        let active = self
            .call(
                "mutation($id: ID!) { activateIntegration(id: $id) { webhookUrl } }",
                json!({"id": id}),
            )
            .await;
        let webhook = active["data"]["activateIntegration"]["webhookUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("{active}"))
            .to_owned();
        (id, webhook)
    }

    /// Starts an import of January 2025 (approvals and refunds); the run's id.
    pub async fn import_january(&self, integration: &str) -> String {
        let run = self.call("mutation($id: ID!) { startHotmartImport(integrationId: $id, input: {from: \"2025-01-01T00:00:00Z\", to: \"2025-02-01T00:00:00Z\", events: [PURCHASE_APPROVED, PURCHASE_REFUNDED]}) { id } }", json!({"id": integration})).await;
        run["data"]["startHotmartImport"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{run}"))
            .to_owned()
    }

    /// An import run's progress.
    pub async fn import_run(&self, run: &str) -> Value {
        let query = "query($id: ID!) { importRun(id: $id) { status salesSeen dealsCreated skipped windowsDone windowsTotal } }";
        self.call(query, json!({"id": run})).await["data"]["importRun"].clone()
    }
}

/// `total` sales of product 1234567 spread over January 2025 for the fake Hotmart, one
/// buyer each (`k{n}@x.test`), every third refunded.
pub fn january_sales(total: usize) -> Vec<Value> {
    let from = 1_735_689_600_000i64;
    let step = 31 * 86_400_000 / total.max(1) as i64;
    (0..total)
        .map(|n| {
            crate::fake_hotmart::sale(
                &format!("HPK{n}"),
                if n % 3 == 0 { "REFUNDED" } else { "APPROVED" },
                1_234_567,
                &format!("k{n}@x.test"),
                from + n as i64 * step,
                10.0,
            )
        })
        .collect()
}

/// A burst of `total` deliveries: for every contact a cart, then an approval; about 10 %
/// are sent twice (Hotmart repeats deliveries). The bodies, and the distinct event ids.
pub fn burst(total: usize) -> (Vec<Value>, BTreeSet<String>) {
    let mut bodies = Vec::new();
    for n in 0..total {
        let email = format!("c{}@x.test", n / 2);
        let at = 1_745_952_631_331 + n as i64;
        bodies.push(if n % 2 == 0 {
            crate::hotmart::cart(&format!("e{n}"), at, &email, 1_234_567)
        } else {
            crate::hotmart::purchase(
                &format!("e{n}"),
                "PURCHASE_APPROVED",
                at,
                &email,
                &format!("HP{n}"),
            )
        });
        if n % 10 == 3 {
            bodies.push(bodies.last().unwrap().clone());
        }
    }
    let unique = bodies
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    (bodies, unique)
}

/// Hotmart's side of a burst: `concurrency` senders post `bodies` in order, each one
/// again until it is acknowledged (2xx), whatever happens to the server meanwhile.
/// `acked` counts acknowledged deliveries; the task ends when all are.
pub fn post_until_acknowledged(
    webhook: String,
    bodies: Vec<Value>,
    concurrency: usize,
    acked: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        futures::stream::iter(bodies)
            .for_each_concurrent(concurrency, |body| {
                let (http, webhook, acked) = (http.clone(), webhook.clone(), acked.clone());
                async move {
                    loop {
                        let sent = http
                            .post(&webhook)
                            .header("X-HOTMART-HOTTOK", "hottok-secret-0001")
                            .header("content-type", "application/json")
                            .body(body.to_string())
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await;
                        if sent.is_ok_and(|r| r.status().is_success()) {
                            acked.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                }
            })
            .await
    })
}

/// Every event of the burst applied exactly once: each distinct event id processed, one
/// deal-log row per event, one deal per contact, every approved contact won.
pub async fn assert_burst_applied_once(
    store: &Store,
    db: &database::Database,
    total: usize,
    unique: &BTreeSet<String>,
) {
    let processed = store.deliveries(db, "PROCESSED").await;
    let failed = store
        .count(
            db,
            "SELECT count(*) FROM webhook_deliveries WHERE status IN ('FAILED', 'REJECTED', 'IGNORED')",
        )
        .await;
    let events = store
        .count(
            db,
            "SELECT count(*) FROM deal_events WHERE source = 'WEBHOOK'",
        )
        .await;
    let distinct = store
        .count(
            db,
            "SELECT count(DISTINCT dedup_id) FROM deal_events WHERE source = 'WEBHOOK'",
        )
        .await;
    let deals = store
        .count(
            db,
            "SELECT count(*) FROM deals d JOIN contacts c ON c.id = d.contact_id \
             WHERE c.email LIKE 'c%@x.test'",
        )
        .await;
    let won = store
        .count(
            db,
            "SELECT count(*) FROM deals d JOIN contacts c ON c.id = d.contact_id \
             WHERE c.email LIKE 'c%@x.test' AND d.status = 'WON'",
        )
        .await;
    assert_eq!(processed as usize, unique.len(), "every event id processed");
    assert_eq!(failed, 0, "no delivery failed");
    assert_eq!(
        (events as usize, distinct as usize),
        (unique.len(), unique.len()),
        "each event applied exactly once"
    );
    assert_eq!(deals as usize, total.div_ceil(2), "one deal per contact");
    assert_eq!(won as usize, total / 2, "every approved contact is won");
}

/// Waits until nothing is pending or queued and the import run (if any) ended; how long
/// it took. Panics after `within`.
pub async fn wait_all_done(
    store: &Store,
    db: &database::Database,
    gql: &Gql,
    run: Option<&str>,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let pending = store.deliveries(db, "PENDING").await;
        let unfinished = store.unfinished_jobs(db).await;
        let run_state = match run {
            Some(run) => gql.import_run(run).await,
            None => json!({"status": "SUCCEEDED"}),
        };
        let run_done = matches!(run_state["status"].as_str(), Some("SUCCEEDED" | "FAILED"));
        if pending == 0 && unfinished == 0 && run_done {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "not done after {within:?}: {pending} pending deliveries, {unfinished} unfinished jobs, run {run_state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
