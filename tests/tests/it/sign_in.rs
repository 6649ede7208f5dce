//! People sign in: Argon2id passwords, sessions a token belongs to, logout and password
//! changes that end sessions, and failed sign-ins slowed down then locked.

use serde_json::{Value, json};
use tests::{Backend, TestApp, on_both_backends};

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token expiresAt user { email role } } }";

/// A GraphQL request without a token.
async fn anonymous(app: &TestApp, query: &str, variables: Value) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}/graphql", app.base))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn login(app: &TestApp, email: &str, password: &str) -> Value {
    anonymous(app, LOGIN, json!({"e": email, "p": password}))
        .await
        .1
}

async fn token_of(app: &TestApp, email: &str, password: &str) -> String {
    let body = login(app, email, password).await;
    body["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("signed in: {body}"))
        .to_owned()
}

/// The HTTP status of `{ me }` with `token`.
async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.post_graphql(Some(token), "{ me { email } }", json!({}))
        .await
        .0
}

async fn a_user_signs_in_and_out(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let created = app
        .ok(
            &app.admin,
            "mutation { createUser(input: {name: \"Vera\", email: \"vera@acme.test\", role: MEMBER, password: \"vera-password-1\"}) { id email } }",
            json!({}),
        )
        .await;
    assert_eq!(created["createUser"]["email"], "vera@acme.test");
    let body = login(&app, "Vera@Acme.test", "vera-password-1").await;
    assert_eq!(
        body["data"]["login"]["user"],
        json!({"email": "vera@acme.test", "role": "MEMBER"}),
        "{body}"
    );
    assert!(body["data"]["login"]["expiresAt"].is_string());
    let token = body["data"]["login"]["token"].as_str().unwrap().to_owned();
    assert_eq!(me_status(&app, &token).await, 200);

    // Wrong e-mail and wrong password: one answer.
    let wrong_email = login(&app, "nobody@acme.test", "vera-password-1").await;
    let wrong_password = login(&app, "vera@acme.test", "not-her-password").await;
    for refused in [&wrong_email, &wrong_password] {
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{refused}"
        );
        assert_eq!(refused["errors"][0]["message"], "wrong e-mail or password");
        assert!(refused["data"].is_null() || refused["data"]["login"].is_null());
    }

    // Without a token, only signing in is possible.
    let (status, _) = anonymous(&app, "{ me { email } }", json!({})).await;
    assert_eq!(status, 401);
    let (status, _) = anonymous(
        &app,
        "mutation { login(email: \"a@b.c\", password: \"x\") { token } logout }",
        json!({}),
    )
    .await;
    assert_eq!(status, 401, "login mixed with another field needs a token");

    // Logout ends this session only.
    let second = token_of(&app, "vera@acme.test", "vera-password-1").await;
    let out = app.ok(&token, "mutation { logout }", json!({})).await;
    assert_eq!(out["logout"], true);
    assert_eq!(me_status(&app, &token).await, 401);
    assert_eq!(me_status(&app, &second).await, 200);
    // A token made by the CLI belongs to no session: logout says so.
    assert_eq!(
        app.ok(&app.admin, "mutation { logout }", json!({})).await["logout"],
        false
    );
}

async fn changing_a_password_ends_the_other_sessions(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let (user_id, _) = app.user("rui@acme.test", "MEMBER").await;
    let set = "mutation($id: ID!, $p: String!) { setUserPassword(userId: $id, password: $p) { id email } }";
    let (code, message) = app
        .err(&app.admin, set, json!({"id": user_id, "p": "short"}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("at least 10 characters"), "{message}");
    let set_ok = app
        .ok(
            &app.admin,
            set,
            json!({"id": user_id, "p": "rui-password-01"}),
        )
        .await;
    assert_eq!(set_ok["setUserPassword"]["email"], "rui@acme.test");
    let a = token_of(&app, "rui@acme.test", "rui-password-01").await;
    let b = token_of(&app, "rui@acme.test", "rui-password-01").await;
    // Members cannot set passwords.
    let (code, _) = app
        .err(&a, set, json!({"id": user_id, "p": "something-long"}))
        .await;
    assert_eq!(code, "FORBIDDEN");

    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let (code, _) = app
        .err(
            &a,
            change,
            json!({"c": "not-the-current", "n": "rui-password-02"}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let (code, _) = app
        .err(&a, change, json!({"c": "rui-password-01", "n": "short"}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let changed = app
        .ok(
            &a,
            change,
            json!({"c": "rui-password-01", "n": "rui-password-02"}),
        )
        .await;
    assert_eq!(changed["changePassword"], true);
    assert_eq!(
        me_status(&app, &a).await,
        200,
        "the session that changed it stays"
    );
    assert_eq!(me_status(&app, &b).await, 401, "the other session ended");
    assert_eq!(
        login(&app, "rui@acme.test", "rui-password-01").await["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    token_of(&app, "rui@acme.test", "rui-password-02").await;
    // An admin setting the password ends every session of the user.
    app.ok(
        &app.admin,
        set,
        json!({"id": user_id, "p": "rui-password-03"}),
    )
    .await;
    assert_eq!(me_status(&app, &a).await, 401);
    // The hash never leaves the server.
    assert!(!checkout_crm::graphql::sdl().to_lowercase().contains("hash"));
}

async fn repeated_failures_are_slowed_then_locked(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    app.ok(
        &app.admin,
        "mutation { createUser(input: {name: \"Lia\", email: \"lia@acme.test\", role: MEMBER, password: \"lia-password-01\"}) { id } }",
        json!({}),
    )
    .await;
    // Ten wrong guesses at once (their waits overlap).
    let passwords: Vec<String> = (0..10).map(|n| format!("guess-number-{n}")).collect();
    let guesses: Vec<_> = passwords
        .iter()
        .map(|p| login(&app, "lia@acme.test", p))
        .collect();
    let started = std::time::Instant::now();
    let answers = futures::future::join_all(guesses).await;
    assert!(
        answers
            .iter()
            .all(|a| a["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED")
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "later failures wait"
    );
    // Locked: even the right password is refused for a while, with a clear reason.
    let locked = login(&app, "lia@acme.test", "lia-password-01").await;
    let message = locked["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("too many failed sign-ins"), "{locked}");
    // Another user is not affected.
    app.ok(
        &app.admin,
        "mutation { createUser(input: {name: \"Ana\", email: \"ana@acme.test\", role: MEMBER, password: \"ana-password-01\"}) { id } }",
        json!({}),
    )
    .await;
    token_of(&app, "ana@acme.test", "ana-password-01").await;
}

async fn ended_sessions_and_old_failures_are_pruned(backend: Backend) {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::spawn_without_workers(backend).await;
    app.ok(
        &app.admin,
        "mutation { createUser(input: {name: \"Edu\", email: \"edu@acme.test\", role: MEMBER, password: \"edu-password-01\"}) { id } }",
        json!({}),
    )
    .await;
    let live = token_of(&app, "edu@acme.test", "edu-password-01").await;
    login(&app, "guesser-target@acme.test", "some-guess-000").await;
    let run = |sql: &str| {
        let statement = Statement::from_string(app.db.conn.get_database_backend(), sql.to_owned());
        let conn = app.db.conn.clone();
        async move { conn.execute_raw(statement).await.unwrap() }
    };
    // An old failure, and a session that ended two days ago.
    run("UPDATE login_failures SET last_failed_at = 1").await;
    let ended = token_of(&app, "edu@acme.test", "edu-password-01").await;
    app.ok(&ended, "mutation { logout }", json!({})).await;
    run("UPDATE sessions SET revoked_at = 1 WHERE revoked_at IS NOT NULL").await;
    let pruned = entity::sign_in::prune(&app.db.conn).await.unwrap();
    assert_eq!(pruned, 2, "one session and one failure count");
    assert_eq!(me_status(&app, &live).await, 200, "live sessions stay");
}

/// Roles change at once (they are read from the database on every request) and the
/// account always keeps an admin.
async fn an_admin_changes_roles_and_the_last_admin_stays(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let (rui, rui_token) = app.user("rui@acme.test", "MEMBER").await;
    let admin = app.ok(&app.admin, "{ me { id } }", json!({})).await["me"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let set = "mutation($u: ID!, $r: Role!) { setUserRole(userId: $u, role: $r) { id role } }";
    let invite = |email: &str| json!({"i": {"name": email, "email": email, "role": "MEMBER"}});
    let create = "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }";
    let (code, _) = app
        .err(&rui_token, set, json!({"u": rui, "r": "ADMIN"}))
        .await;
    assert_eq!(code, "FORBIDDEN", "a member cannot promote anyone");
    let (code, message) = app
        .err(&app.admin, set, json!({"u": admin, "r": "MEMBER"}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("last admin"), "{message}");
    let (code, _) = app.err(&rui_token, create, invite("a@acme.test")).await;
    assert_eq!(code, "FORBIDDEN");
    let promoted = app
        .ok(&app.admin, set, json!({"u": rui, "r": "ADMIN"}))
        .await;
    assert_eq!(promoted["setUserRole"]["role"], "ADMIN");
    // The same token, minted while Rui was a member, now carries an admin's rights.
    app.ok(&rui_token, create, invite("b@acme.test")).await;
    app.ok(&rui_token, set, json!({"u": admin, "r": "MEMBER"}))
        .await;
    let (code, _) = app.err(&app.admin, create, invite("c@acme.test")).await;
    assert_eq!(
        code, "FORBIDDEN",
        "a demoted admin loses the rights at once"
    );
    let (code, _) = app
        .err(&rui_token, set, json!({"u": rui, "r": "MEMBER"}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "now Rui is the last admin");
    let (code, _) = app
        .err(&rui_token, set, json!({"u": "no-such-user", "r": "ADMIN"}))
        .await;
    assert_eq!(code, "NOT_FOUND");
    let roles = app
        .ok(&rui_token, "{ users { email role } }", json!({}))
        .await;
    let admins: Vec<&Value> = roles["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["role"] == "ADMIN")
        .map(|u| &u["email"])
        .collect();
    assert_eq!(admins, [&json!("rui@acme.test")]);
}

on_both_backends!(
    an_admin_changes_roles_and_the_last_admin_stays,
    ended_sessions_and_old_failures_are_pruned,
    a_user_signs_in_and_out,
    changing_a_password_ends_the_other_sessions,
    repeated_failures_are_slowed_then_locked,
);
