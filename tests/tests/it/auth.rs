//! Bearer-token authentication: absent, malformed, forged, expired and stale tokens are
//! all `UNAUTHENTICATED`; the role comes from the database, not from the token.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tests::{Backend, JWT_SECRET, TestApp, on_both_backends, tokens};

fn sign(claims: Value, algorithm: Algorithm, secret: &str) -> String {
    encode(
        &Header::new(algorithm),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn assert_unauthenticated(app: &TestApp, token: Option<&str>, case: &str) {
    let (status, body) = app.post_graphql(token, "{ me { id } }", json!({})).await;
    assert_eq!(status, 401, "{case}: {body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{case}: {body}"
    );
    assert!(body["data"].is_null(), "{case}: {body}");
}

async fn bad_tokens_are_unauthenticated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let good = json!({"sub": app.admin_id, "account": app.account_id, "role": "ADMIN", "iss": "checkout-crm", "iat": now(), "exp": now() + 600});
    // The well-formed token works, so every failure below is down to what was changed.
    let (status, _) = app
        .post_graphql(
            Some(&sign(good.clone(), Algorithm::HS256, JWT_SECRET)),
            "{ me { id } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200);

    assert_unauthenticated(&app, None, "absent").await;
    assert_unauthenticated(&app, Some("not-a-jwt"), "garbage").await;
    assert_unauthenticated(
        &app,
        Some(&sign(
            good.clone(),
            Algorithm::HS256,
            "another-secret-another-secret-xx",
        )),
        "forged",
    )
    .await;
    assert_unauthenticated(
        &app,
        Some(&sign(good.clone(), Algorithm::HS512, JWT_SECRET)),
        "other algorithm",
    )
    .await;

    let mut expired = good.clone();
    expired["exp"] = json!(now() - 3600);
    assert_unauthenticated(
        &app,
        Some(&sign(expired, Algorithm::HS256, JWT_SECRET)),
        "expired",
    )
    .await;

    let mut wrong_issuer = good.clone();
    wrong_issuer["iss"] = json!("someone-else");
    assert_unauthenticated(
        &app,
        Some(&sign(wrong_issuer, Algorithm::HS256, JWT_SECRET)),
        "issuer",
    )
    .await;

    for claim in ["exp", "iss", "sub", "account"] {
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove(claim);
        assert_unauthenticated(
            &app,
            Some(&sign(missing, Algorithm::HS256, JWT_SECRET)),
            claim,
        )
        .await;
    }

    // `alg: none` with the signature stripped.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let unsigned = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(good.to_string())
    );
    assert_unauthenticated(&app, Some(&unsigned), "alg none").await;

    // A signed token for a user that does not exist, or in another account.
    let mut ghost = good.clone();
    ghost["sub"] = json!("01a00000-0000-7000-8000-000000000000");
    assert_unauthenticated(
        &app,
        Some(&sign(ghost, Algorithm::HS256, JWT_SECRET)),
        "unknown user",
    )
    .await;
    let mut crossed = good.clone();
    crossed["account"] = json!("01a00000-0000-7000-8000-000000000001");
    assert_unauthenticated(
        &app,
        Some(&sign(crossed, Algorithm::HS256, JWT_SECRET)),
        "other account",
    )
    .await;

    // A non-bearer scheme.
    let response = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("authorization", format!("Basic {}", app.admin))
        .json(&json!({"query": "{ me { id } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn the_role_comes_from_the_database_not_the_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (member_id, _) = app.user("member@acme.test", "MEMBER").await;
    let claims_admin = tokens().mint(
        &member_id,
        &app.account_id,
        entity::Role::Admin,
        Duration::from_secs(60),
    );
    let (code, _) = app
        .err(
            &claims_admin,
            "mutation { createLabel(input: {name: \"x\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let me = app.ok(&claims_admin, "{ me { role } }", json!({})).await;
    assert_eq!(me["me"]["role"], "MEMBER");
}

on_both_backends!(
    bad_tokens_are_unauthenticated,
    the_role_comes_from_the_database_not_the_token
);
