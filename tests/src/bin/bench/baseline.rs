//! The baseline: the least a durable webhook acknowledgement can cost on this machine.
//! A minimal axum endpoint checks a token and commits the body as one row per request to
//! a SQLite file opened with the server's pragmas (WAL, synchronous=NORMAL, busy
//! timeout, foreign keys), and answers only after the commit.

use std::{path::Path, str::FromStr, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

const TOKEN: &str = "baseline-token-0123456789";
const HOTTOK: &str = "baseline-hottok";

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn hook(
    State(pool): State<SqlitePool>,
    UrlPath(token): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let hottok = headers
        .get("x-hotmart-hottok")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !same(token.as_bytes(), TOKEN.as_bytes()) || hottok.is_empty() {
        return StatusCode::UNAUTHORIZED;
    }
    let _ = same(hottok, HOTTOK.as_bytes());
    let result = sqlx::query("INSERT INTO inbox (id, body, received_at) VALUES (?, ?, ?)")
        .bind(ulid::Ulid::generate().to_string())
        .bind(String::from_utf8_lossy(&body).into_owned())
        .bind(entity::now_ms())
        .execute(&pool)
        .await;
    match result {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A running baseline server: `(url to post to, rows stored)`.
pub struct Baseline {
    pub url: String,
    pool: SqlitePool,
    server: tokio::task::JoinHandle<()>,
}

impl Baseline {
    pub async fn start(dir: &Path, connections: u32) -> Baseline {
        let options = SqliteConnectOptions::from_str(&format!(
            "sqlite://{}?mode=rwc",
            dir.join("baseline.db").display()
        ))
        .unwrap()
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await
            .expect("open the baseline database");
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS inbox (id TEXT PRIMARY KEY, body TEXT NOT NULL, received_at INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let router = Router::new()
            .route("/hook/{token}", post(hook))
            .with_state(pool.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook/{TOKEN}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Baseline { url, pool, server }
    }

    pub async fn rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM inbox")
            .fetch_one(&self.pool)
            .await
            .unwrap_or(0)
    }

    pub async fn stop(self) {
        self.server.abort();
        self.pool.close().await;
    }
}
