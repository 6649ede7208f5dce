//! Attacks on signing in, each reproduced: e-mails that fill the disk, invisible-character
//! variants, parallel and aliased guesses, `changePassword` guessing, locking the owner
//! out from another address, and the work that would tell which e-mails exist.

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{Backend, TestApp, on_both_backends};

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

/// `login` from `forwarded_for` (an `X-Forwarded-For` header), without a token.
async fn login_from(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Value {
    let mut request = app
        .http
        .post(format!("{}/graphql", app.base))
        .json(&json!({"query": LOGIN, "variables": {"e": email, "p": password}}));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap().json().await.unwrap()
}

async fn login(app: &TestApp, email: &str, password: &str) -> Value {
    login_from(app, email, password, None).await
}

fn message(answer: &Value) -> String {
    answer["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn signed_in(answer: &Value) -> bool {
    answer["data"]["login"]["token"].is_string()
}

fn held(answer: &Value) -> bool {
    message(answer).contains("too many failed sign-ins")
}

async fn failure_rows(app: &TestApp) -> i64 {
    let backend = app.db.conn.get_database_backend();
    let row = app
        .db
        .conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) FROM login_failures".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

async fn with_user(app: &TestApp, email: &str, password: &str) {
    app.ok(
        &app.admin,
        "mutation($e: String!, $p: String!) { createUser(input: {name: \"Lia\", email: $e, role: MEMBER, password: $p}) { id } }",
        json!({"e": email, "p": password}),
    )
    .await;
}

async fn bad_e_mails_are_refused_before_anything_is_written(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let long_local = format!("{}@acme.test", "a".repeat(300));
    let huge = "x".repeat(200 * 1024);
    for email in [
        long_local.as_str(),
        huge.as_str(),
        "two@@acme.test",
        "a@b@acme.test",
        "",
        "\u{200b}",
        "no-at-sign",
    ] {
        let answer = login(&app, email, "some-password-1").await;
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{email:.40}: {answer:.300}"
        );
        assert!(!signed_in(&answer));
    }
    assert_eq!(failure_rows(&app).await, 0, "nothing was written");
    // A password longer than any stored one is refused without hashing.
    let answer = login(&app, "lia@acme.test", &"p".repeat(5000)).await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

async fn invisible_variants_and_parallel_guesses_count_as_one(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    with_user(&app, "lia@acme.test", "lia-password-01").await;
    // Forty guesses at once, spread over variants of the e-mail the lookup treats as one.
    let variants = [
        "lia@acme.test",
        "LIA@acme.test",
        " lia@acme.test ",
        "li\u{200b}a@acme.test",
        "l\u{2060}ia@acme.test",
        "\u{feff}lia@ACME.test",
    ];
    let guesses: Vec<_> = (0..40)
        .map(|n| login(&app, variants[n % variants.len()], "wrong-guess-000"))
        .collect();
    let answers = futures::future::join_all(guesses).await;
    let checked = answers
        .iter()
        .filter(|a| message(a) == "wrong e-mail or password")
        .count();
    let refused = answers.iter().filter(|a| held(a)).count();
    assert_eq!(checked, 10, "ten passwords checked, the rest held back");
    assert_eq!(refused, 30);
    // Even the right password waits now, from this address.
    let right = login(&app, "li\u{200b}a@acme.test", "lia-password-01").await;
    assert!(held(&right), "{right}");
    assert!(message(&right).contains("try again in"), "{right}");
}

async fn aliased_logins_and_password_changes_are_refused(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    with_user(&app, "lia@acme.test", "lia-password-01").await;
    let aliases: String = (0..100)
        .map(|n| {
            format!(
                "l{n}: login(email: \"lia@acme.test\", password: \"guess-{n:05}\") {{ token }} "
            )
        })
        .collect();
    let answer: Value = app
        .http
        .post(format!("{}/graphql", app.base))
        .json(&json!({"query": format!("mutation {{ {aliases} }}")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{answer:.300}"
    );
    assert_eq!(message(&answer), "one login per request");
    assert_eq!(failure_rows(&app).await, 0, "no password was checked");
    let token = login(&app, "lia@acme.test", "lia-password-01").await["data"]["login"]["token"]
        .as_str()
        .expect("signed in")
        .to_owned();
    let two = "mutation { a: changePassword(currentPassword: \"guess-000001\", newPassword: \"new-password-01\") b: changePassword(currentPassword: \"guess-000002\", newPassword: \"new-password-01\") }";
    let (code, text) = app.err(&token, two, json!({})).await;
    assert_eq!(
        (code.as_str(), text.as_str()),
        ("BAD_USER_INPUT", "one changePassword per request")
    );
    // One at a time: five wrong guesses, then even the right one waits.
    let change = "mutation($c: String!) { changePassword(currentPassword: $c, newPassword: \"new-password-01\") }";
    for n in 0..5 {
        let (_, text) = app
            .err(&token, change, json!({"c": format!("guess-{n:06}")}))
            .await;
        assert!(text.contains("is not the current password"), "{text}");
    }
    let (_, text) = app
        .err(&token, change, json!({"c": "lia-password-01"}))
        .await;
    assert!(text.contains("too many wrong attempts"), "{text}");
}

async fn a_guesser_elsewhere_cannot_lock_the_owner_out(backend: Backend) {
    let app = TestApp::spawn_configured(backend, |config| {
        config.trusted_proxies =
            checkout_crm::client::TrustedProxies::parse("127.0.0.1, ::1").unwrap();
    })
    .await;
    with_user(&app, "ada@acme.test", "ada-password-01").await;
    let attacker = Some("203.0.113.9");
    let guesses: Vec<_> = (0..12)
        .map(|n| {
            let app = &app;
            async move { login_from(app, "ada@acme.test", &format!("guess-{n:06}"), attacker).await }
        })
        .collect();
    let answers = futures::future::join_all(guesses).await;
    assert_eq!(answers.iter().filter(|a| held(a)).count(), 2);
    assert!(held(
        &login_from(&app, "ada@acme.test", "ada-password-01", attacker).await
    ));
    // The owner, from her own address, signs in; the proxy's own hop is skipped.
    let owner = login_from(
        &app,
        "ada@acme.test",
        "ada-password-01",
        Some("198.51.100.4, 127.0.0.1"),
    )
    .await;
    assert!(signed_in(&owner), "{owner}");
    // The hold ends: one more attempt, then a hold twice as long.
    let backend = app.db.conn.get_database_backend();
    app.db
        .conn
        .execute_raw(Statement::from_string(
            backend,
            "UPDATE login_failures SET locked_until = 1 WHERE email LIKE 'e:%203.0.113.9'"
                .to_owned(),
        ))
        .await
        .unwrap();
    let after = login_from(&app, "ada@acme.test", "guess-again-01", attacker).await;
    assert_eq!(message(&after), "wrong e-mail or password");
    let again = login_from(&app, "ada@acme.test", "guess-again-02", attacker).await;
    assert!(
        message(&again).contains("try again in 2 minutes"),
        "{again}"
    );
    // Each hold that started is in the audit log, by the system, once.
    let log = app
        .ok(
            &app.admin,
            "query { auditLog(filter: {action: \"user.locked_out\"}) { nodes { actor { id } details } } }",
            json!({}),
        )
        .await;
    let holds: Vec<Value> = log["auditLog"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["actor"].is_null(), "{e}");
            serde_json::from_str::<Value>(e["details"].as_str().unwrap()).unwrap()["holdSeconds"]
                .clone()
        })
        .collect();
    assert_eq!(holds, [json!(120), json!(60)], "newest first");
}

async fn a_forwarded_header_from_anyone_else_is_ignored(backend: Backend) {
    // No trusted proxies: each guess claims another address, all count as the peer's.
    let app = TestApp::spawn_without_workers(backend).await;
    with_user(&app, "ada@acme.test", "ada-password-01").await;
    let guesses: Vec<_> = (0..12)
        .map(|n| {
            let claimed = format!("198.51.100.{n}");
            let app = &app;
            async move {
                login_from(
                    app,
                    "ada@acme.test",
                    &format!("guess-{n:06}"),
                    Some(&claimed),
                )
                .await
            }
        })
        .collect();
    let answers = futures::future::join_all(guesses).await;
    assert_eq!(answers.iter().filter(|a| held(a)).count(), 2);
}

async fn one_address_writes_a_bounded_number_of_rows(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let guesses: Vec<_> = (0..80)
        .map(|n| {
            let app = &app;
            async move { login(app, &format!("target-{n}@acme.test"), "guess-000001").await }
        })
        .collect();
    let answers = futures::future::join_all(guesses).await;
    // Eight in flight and 64 in line per address; the rest are told the server is busy.
    let busy = answers
        .iter()
        .filter(|a| a["error"] == "server busy, retry shortly")
        .count();
    let checked = answers
        .iter()
        .filter(|a| message(a) == "wrong e-mail or password")
        .count();
    assert!(busy <= 80 - 72, "{busy} turned away");
    assert_eq!(checked, 50, "fifty per address");
    assert_eq!(answers.iter().filter(|a| held(a)).count() + busy, 30);
    assert!(
        failure_rows(&app).await <= 51,
        "one row per e-mail tried, and the address's"
    );
}

#[test]
fn a_known_and_an_unknown_e_mail_cost_one_check_each() {
    let hash = entity::sign_in::hash("the-right-password").unwrap();
    assert_eq!(
        entity::sign_in::check_hashes(&[], "a-guess-00001"),
        (None, 1)
    );
    assert_eq!(
        entity::sign_in::check_hashes(&[&hash], "a-guess-00001"),
        (None, 1)
    );
    assert_eq!(
        entity::sign_in::check_hashes(&[&hash], "the-right-password"),
        (Some(0), 1)
    );
}

#[test]
fn holds_double_up_to_an_hour() {
    use entity::throttle::{PER_EMAIL_AND_ADDRESS as LIMIT, hold_ms};
    let holds: Vec<i64> = (0..8).map(|n| hold_ms(LIMIT, n) / 60_000).collect();
    assert_eq!(holds, [1, 2, 4, 8, 16, 32, 60, 60]);
}

#[test]
fn trusted_proxies_are_parsed_and_matched() {
    use checkout_crm::client::{TrustedProxies, address};
    let trusted = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7, fd00::/8").unwrap();
    assert!(trusted.contains("10.20.30.40".parse().unwrap()));
    assert!(trusted.contains("::ffff:10.1.1.1".parse().unwrap()));
    assert!(trusted.contains("fd12::1".parse().unwrap()));
    assert!(!trusted.contains("11.0.0.1".parse().unwrap()));
    for bad in ["10.0.0.0/33", "not-an-address", "10.0.0.1/x"] {
        assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
    }
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        "1.2.3.4, 5.6.7.8, 10.0.0.2".parse().unwrap(),
    );
    let peer = Some("10.0.0.1:443".parse().unwrap());
    assert_eq!(address(peer, &headers, &trusted), "5.6.7.8");
    let stranger = Some("8.8.8.8:443".parse().unwrap());
    assert_eq!(address(stranger, &headers, &trusted), "8.8.8.8");
    headers.insert("x-forwarded-for", "garbage, 10.0.0.3".parse().unwrap());
    assert_eq!(address(peer, &headers, &trusted), "10.0.0.3");
}

on_both_backends!(
    bad_e_mails_are_refused_before_anything_is_written,
    invisible_variants_and_parallel_guesses_count_as_one,
    aliased_logins_and_password_changes_are_refused,
    a_guesser_elsewhere_cannot_lock_the_owner_out,
    a_forwarded_header_from_anyone_else_is_ignored,
    one_address_writes_a_bounded_number_of_rows,
);
