//! The `checkout-crm` binary as an operator uses it: first start, tokens, accounts,
//! configuration errors and the production secret check.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tests::{binary, postgres_url, skip_notice};

/// A command with a clean environment for the configuration variables.
fn crm(dir: &std::path::Path) -> Command {
    let mut command = Command::new(binary());
    command.current_dir(dir);
    for var in [
        "DATABASE_URL",
        "BIND",
        "PUBLIC_URL",
        "JWT_SECRET",
        "CRM_SECRET_KEY",
        "CHECKOUT_CRM_ENV",
        "CHECKOUT_CRM_DATA_DIR",
        "ADMIN_EMAIL",
    ] {
        command.env_remove(var);
    }
    command.env("RUST_LOG", "warn");
    command
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on a free port and waits for its "GraphQL:" line.
fn serve(mut command: Command) -> (Server, String) {
    let port = tests::process::free_port();
    let mut child = command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start checkout-crm");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "server did not start");
        match lines.next() {
            Some(Ok(line)) if line.starts_with("GraphQL: ") => {
                let url = line.trim_start_matches("GraphQL: ").to_owned();
                std::thread::spawn(move || for _ in lines.by_ref() {});
                return (server, url);
            }
            Some(Ok(_)) => continue,
            _ => panic!("server exited before listening"),
        }
    }
}

async fn query(url: &str, token: &str, query: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token.trim())
        .json(&json!({"query": query}))
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn first_start_creates_the_admin_and_its_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = serve(crm(dir.path()));
    let token_path = dir.path().join("data/admin.jwt");
    let token = std::fs::read_to_string(&token_path).expect("admin.jwt written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        for secret in ["jwt_secret", "secret_key"] {
            let mode = std::fs::metadata(dir.path().join("data").join(secret))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{secret}");
        }
    }
    assert!(dir.path().join("data/checkout-crm.db").exists());
    assert_eq!(url, url.trim());
    let (status, body) = query(&url, &token, "{ me { email role } }").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["me"],
        json!({"email": "admin@example.com", "role": "ADMIN"})
    );
    drop(server);

    // A second start keeps the account, the secrets and so the token.
    let (_server, url) = serve(crm(dir.path()));
    assert_eq!(std::fs::read_to_string(&token_path).unwrap(), token);
    let (status, body) = query(&url, &token, "{ users { email } }").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["users"],
        json!([{"email": "admin@example.com"}])
    );
}

async fn login(url: &str, email: &str, password: &str) -> Value {
    reqwest::Client::new()
        .post(url)
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { email } } }",
            "variables": {"e": email, "p": password},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_first_admin_signs_in_with_the_generated_password_and_the_cli_sets_another() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = serve(crm(dir.path()));
    let path = dir.path().join("data/admin-password");
    let password = std::fs::read_to_string(&path).expect("admin-password written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(password.len() >= 16);
    let signed_in = login(&url, "admin@example.com", &password).await;
    let token = signed_in["data"]["login"]["token"]
        .as_str()
        .expect("a session token");
    let (status, me) = query(&url, token, "{ me { email } }").await;
    assert_eq!(
        (status, &me["data"]["me"]["email"]),
        (200, &json!("admin@example.com"))
    );

    // From the command line, the password comes from standard input, never argv.
    let mut child = crm(dir.path())
        .args(["user", "set-password", "--email", "admin@example.com"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a-new-password-from-stdin\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("a-new-password"));
    // The old session ended with the change; the new password signs in.
    let (status, _) = query(&url, token, "{ me { email } }").await;
    assert_eq!(status, 401);
    let again = login(&url, "admin@example.com", "a-new-password-from-stdin").await;
    assert!(again["data"]["login"]["token"].is_string(), "{again}");
    // The audit log says the command line set it (no user acted), without the password.
    let new_token = again["data"]["login"]["token"].as_str().unwrap();
    let (_, log) = query(
        &url,
        new_token,
        "{ auditLog { nodes { action actor { id } details } } }",
    )
    .await;
    let entries = log["data"]["auditLog"]["nodes"].as_array().unwrap();
    let set = entries
        .iter()
        .find(|e| e["action"] == "user.password_set")
        .expect("an entry");
    assert!(set["actor"].is_null(), "{set}");
    assert!(!log.to_string().contains("a-new-password"), "{log}");
    let old = login(&url, "admin@example.com", &password).await;
    assert_eq!(old["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    // Too short: refused, nothing changed.
    let short = crm(dir.path())
        .args(["user", "set-password", "--email", "admin@example.com"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = short.wait_with_output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 10 characters"));
}

#[test]
fn production_mode_requires_both_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let run = |jwt: Option<&str>, key: Option<&str>| {
        let mut command = crm(dir.path());
        command.env("CHECKOUT_CRM_ENV", "production").arg("migrate");
        if let Some(jwt) = jwt {
            command.env("JWT_SECRET", jwt);
        }
        if let Some(key) = key {
            command.env("CRM_SECRET_KEY", key);
        }
        command.output().unwrap()
    };
    let strong = "s".repeat(40);
    let missing_jwt = run(None, Some(&strong));
    assert_eq!(missing_jwt.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing_jwt.stderr);
    assert!(stderr.contains("JWT_SECRET is required"), "{stderr}");

    let missing_key = run(Some(&strong), None);
    assert_eq!(missing_key.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing_key.stderr).contains("CRM_SECRET_KEY is required"));

    let weak = run(Some("short"), Some(&strong));
    assert_eq!(weak.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 32 characters"));

    // Nothing was generated in production mode.
    assert!(!dir.path().join("data/jwt_secret").exists());
    assert!(!dir.path().join("data/checkout-crm.db").exists());

    let ok = run(Some(&strong), Some(&strong));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        !dir.path().join("data/jwt_secret").exists(),
        "given secrets are not written to disk"
    );
}

#[tokio::test]
async fn accounts_and_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let created = crm(dir.path())
        .args([
            "account",
            "create",
            "--name",
            "Loja B",
            "--admin-email",
            "Dono@LojaB.test",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let account_token = String::from_utf8(created.stdout).unwrap();

    let minted = crm(dir.path())
        .args(["token", "--email", "dono@lojab.test", "--days", "1"])
        .output()
        .unwrap();
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let user_token = String::from_utf8(minted.stdout).unwrap();

    let (_server, url) = serve(crm(dir.path()));
    for token in [&account_token, &user_token] {
        let (status, body) = query(&url, token, "{ me { email role } }").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"]["me"],
            json!({"email": "dono@lojab.test", "role": "ADMIN"})
        );
    }

    // Revoking ends both (the server reads it at the next request); a new token works.
    let revoked = crm(dir.path())
        .args(["token", "revoke", "--email", "dono@lojab.test"])
        .output()
        .unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    for token in [&account_token, &user_token] {
        assert_eq!(query(&url, token, "{ me { email } }").await.0, 401);
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let fresh = crm(dir.path())
        .args(["token", "--email", "dono@lojab.test"])
        .output()
        .unwrap();
    let fresh = String::from_utf8(fresh.stdout).unwrap();
    assert_eq!(query(&url, &fresh, "{ me { email } }").await.0, 200);
    let no_email = crm(dir.path()).args(["token"]).output().unwrap();
    assert_eq!(no_email.status.code(), Some(2), "--email is required");

    let unknown = crm(dir.path())
        .args(["token", "--email", "nobody@x.test"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("user not found"));
    let bad = crm(dir.path())
        .args([
            "account",
            "create",
            "--name",
            "",
            "--admin-email",
            "not-an-email",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("name: must not be empty"));
    let bad_days = crm(dir.path())
        .args(["token", "--email", "dono@lojab.test", "--days", "0"])
        .output()
        .unwrap();
    assert_eq!(bad_days.status.code(), Some(2));
}

#[test]
fn bad_configuration_is_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 9] = [
        (
            "OUTBOUND_RETRY_SCHEDULE",
            "5,soon",
            "OUTBOUND_RETRY_SCHEDULE must be 1 to 20 comma-separated seconds",
        ),
        (
            "OUTBOUND_ALLOWED_CIDRS",
            "10.0.0.0/99",
            "OUTBOUND_ALLOWED_CIDRS: \"10.0.0.0/99\" is not a network",
        ),
        ("OUTBOUND_ALLOW_HTTP", "maybe", "OUTBOUND_ALLOW_HTTP"),
        (
            "WORKER_LEASE_SECS",
            "9",
            "WORKER_LEASE_SECS (9) must be at least two heartbeats",
        ),
        (
            "SHUTDOWN_GRACE_SECS",
            "86400",
            "SHUTDOWN_GRACE_SECS must be at most 3600",
        ),
        (
            "DATABASE_URL",
            "mysql://x",
            "DATABASE_URL must start with sqlite:// or postgres://",
        ),
        (
            "PUBLIC_URL",
            "ftp://x",
            "PUBLIC_URL must start with http:// or https://",
        ),
        ("CHECKOUT_CRM_ENV", "staging", "CHECKOUT_CRM_ENV must be"),
        (
            "DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none",
            "cannot connect to PostgreSQL",
        ),
    ];
    for (var, value, expected) in cases {
        let output = crm(dir.path())
            .env(var, value)
            .arg("migrate")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{var}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{var}={value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let output = crm(dir.path()).arg("no-such-command").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_schema_command_prints_the_committed_sdl() {
    let output = crm(std::env::temp_dir().as_path())
        .arg("schema")
        .output()
        .unwrap();
    assert!(output.status.success());
    let sdl = String::from_utf8(output.stdout).unwrap();
    assert!(sdl.contains("createHotmartIntegration"));
    assert_eq!(sdl, checkout_crm::graphql::sdl());
}

#[tokio::test]
async fn serves_on_postgresql_when_database_url_says_so() {
    let Some(server_url) = postgres_url() else {
        skip_notice("serves_on_postgresql_when_database_url_says_so");
        return;
    };
    let database = tests::TestDatabase::create(tests::Backend::Postgres).await;
    let _ = server_url;
    let dir = tempfile::tempdir().unwrap();
    let mut command = crm(dir.path());
    command.env("DATABASE_URL", &database.url);
    let (_server, url) = serve(command);
    let token = std::fs::read_to_string(dir.path().join("data/admin.jwt")).unwrap();
    let (status, body) = query(&url, &token, "{ me { role } }").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["role"], "ADMIN");
    assert!(
        !dir.path().join("data/checkout-crm.db").exists(),
        "no SQLite file on PostgreSQL"
    );
}

#[tokio::test]
async fn secrets_never_appear_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let jwt_secret = "JWT-SECRET-that-must-not-leak-0123456789";
    let secret_key = "CRM-KEY-that-must-not-leak-0123456789abc";
    let mut command = crm(dir.path());
    command
        .env("JWT_SECRET", jwt_secret)
        .env("CRM_SECRET_KEY", secret_key)
        .env("RUST_LOG", "trace,hyper=debug,h2=debug,rustls=debug");
    let port = tests::process::free_port();
    let log = std::fs::File::create(&log_path).unwrap();
    let child = command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    let token_path = dir.path().join("data/admin.jwt");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !token_path.exists() || reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = std::fs::read_to_string(&token_path).unwrap();
    let url = format!("{base}/graphql");
    let hottok = "HOTTOK-must-not-leak-777";
    let client_secret = "CLIENT-SECRET-must-not-leak-888";
    let (_, created) = query(&url, &token, "mutation { createHotmartIntegration(input: {name: \"Curso\", events: [PURCHASE_APPROVED]}) { id } }").await;
    let id = created["data"]["createHotmartIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    query(&url, &token, &format!("mutation {{ addHotmartProduct(integrationId: \"{id}\", input: {{hotmartProductId: \"1234567\", hottok: \"{hottok}\"}}) {{ id }} }}")).await;
    query(&url, &token, &format!("mutation {{ setHotmartCredentials(integrationId: \"{id}\", input: {{clientId: \"client\", clientSecret: \"{client_secret}\"}}) {{ id }} }}")).await;
    let (_, active) = query(
        &url,
        &token,
        &format!("mutation {{ activateIntegration(id: \"{id}\") {{ webhookUrl }} }}"),
    )
    .await;
    let webhook = active["data"]["activateIntegration"]["webhookUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let body = tests::hotmart::purchase(
        "log-1",
        "PURCHASE_APPROVED",
        1_745_952_631_331,
        "ana@x.test",
        "HP1",
    )
    .to_string();
    for presented in [hottok, "WRONG-hottok-must-not-leak-999"] {
        http.post(&webhook)
            .header("X-HOTMART-HOTTOK", presented)
            .body(body.clone())
            .send()
            .await
            .unwrap();
    }
    http.post(&url)
        .bearer_auth("forged.token.must-not-leak")
        .json(&json!({"query": "{ me { id } }"}))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(server);
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.len() > 1000, "logging was on: {} bytes", logs.len());
    for secret in [
        jwt_secret,
        secret_key,
        hottok,
        "WRONG-hottok-must-not-leak-999",
        client_secret,
        token.trim(),
        "forged.token.must-not-leak",
    ] {
        assert!(!logs.contains(secret), "{secret:?} leaked into the logs");
    }
}

#[tokio::test]
async fn a_read_only_database_gives_clear_errors_and_stays_intact() {
    let dir = tempfile::tempdir().unwrap();
    // A working installation with data.
    let created = crm(dir.path())
        .args([
            "account",
            "create",
            "--name",
            "Loja",
            "--admin-email",
            "dono@loja.test",
        ])
        .output()
        .unwrap();
    assert!(created.status.success());
    let token = String::from_utf8(created.stdout).unwrap();
    let read_only = format!(
        "sqlite://{}?mode=ro",
        dir.path().join("data/checkout-crm.db").display()
    );
    // Serving from a read-only database: reads work, writes fail cleanly.
    let mut command = crm(dir.path());
    command.env("DATABASE_URL", &read_only);
    let (_server, url) = serve(command);
    let (status, body) = query(&url, &token, "{ me { email } }").await;
    assert_eq!(
        (status, body["data"]["me"]["email"].as_str()),
        (200, Some("dono@loja.test"))
    );
    let (status, body) = query(
        &url,
        &token,
        "mutation { createLabel(input: {name: \"X\"}) { id } }",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INTERNAL",
        "{body}"
    );
    assert!(
        !body.to_string().contains("readonly"),
        "no database internals in the answer: {body}"
    );
    drop(_server);
    // The first start on an empty read-only database is refused with the reason.
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(empty.path().join("data")).unwrap();
    let status = crm(empty.path()).arg("migrate").status().unwrap();
    assert!(status.success());
    let output = crm(empty.path())
        .env(
            "DATABASE_URL",
            format!(
                "sqlite://{}?mode=ro",
                empty.path().join("data/checkout-crm.db").display()
            ),
        )
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("readonly database"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Nothing was damaged.
    let db = entity::database::connect(
        &format!(
            "sqlite://{}",
            dir.path().join("data/checkout-crm.db").display()
        ),
        1,
    )
    .await
    .unwrap();
    let entity::database::Pool::Sqlite(pool) = &db.pool else {
        unreachable!()
    };
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let labels: i64 = sqlx::query_scalar("SELECT count(*) FROM labels")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(labels, 0);
}
