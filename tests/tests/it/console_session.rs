//! The console's session in cookies: `login` sets an HttpOnly, SameSite=Strict session
//! cookie and a CSRF cookie; a request standing on the cookie must repeat the CSRF value;
//! a websocket stands on it only from the server's own origin; `logout` clears both.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tests::{Backend, TestApp, on_both_backends};
use tokio_tungstenite::tungstenite::Message;

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { user { email } } }";

/// Signs in and returns the `Set-Cookie` values.
async fn sign_in(app: &TestApp) -> Vec<String> {
    app.ok(
        &app.admin,
        "mutation { createUser(input: {name: \"Lia\", email: \"lia@acme.test\", role: MEMBER, password: \"lia-password-01\"}) { id } }",
        json!({}),
    )
    .await;
    let response = app
        .http
        .post(format!("{}/graphql", app.base))
        .json(&json!({"query": LOGIN, "variables": {"e": "lia@acme.test", "p": "lia-password-01"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn value_of(cookies: &[String], name: &str) -> String {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
        .to_owned()
}

/// `{ me }` with the given `Cookie` header and optional CSRF header.
async fn me(app: &TestApp, cookie: &str, csrf: Option<&str>) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("cookie", cookie)
        .json(&json!({"query": "{ me { email } }"}));
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn a_console_session_lives_in_cookies_guarded_by_csrf(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let cookies = sign_in(&app).await;
    let session_cookie = cookies
        .iter()
        .find(|c| c.starts_with("crm_session="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    assert_eq!(
        session_cookie.contains("; Secure"),
        app.config.public_url.starts_with("https://"),
        "Secure follows PUBLIC_URL: {session_cookie}"
    );
    let csrf_cookie = cookies.iter().find(|c| c.starts_with("crm_csrf=")).unwrap();
    assert!(
        !csrf_cookie.contains("HttpOnly"),
        "the console reads it: {csrf_cookie}"
    );
    let token = value_of(&cookies, "crm_session");
    let csrf = value_of(&cookies, "crm_csrf");
    let jar = format!("crm_session={token}; crm_csrf={csrf}");

    let (status, body) = me(&app, &jar, Some(&csrf)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["email"], "lia@acme.test");
    // A page of another site can make the browser send the cookies, not the header.
    for forged in [None, Some(""), Some("another-value"), Some(&token[..])] {
        let (status, body) = me(&app, &jar, forged).await;
        assert_eq!(status, 403, "{forged:?}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    }
    // Without its CSRF cookie the session cookie is refused too, but signing in again
    // over a stale session cookie (the console cannot delete it) works.
    let stale = format!("crm_session={token}");
    let (status, _) = me(&app, &stale, Some(&csrf)).await;
    assert_eq!(status, 403);
    let again = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("cookie", &stale)
        .json(&json!({"query": LOGIN, "variables": {"e": "lia@acme.test", "p": "lia-password-01"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers().get_all("set-cookie").iter().count(), 2);
    // A bearer token still works on its own, whatever the cookies say.
    let (status, _) = app
        .post_graphql(Some(&token), "{ me { email } }", json!({}))
        .await;
    assert_eq!(status, 200);

    // Logout over the cookie clears both cookies and ends the session.
    let response = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("cookie", &jar)
        .header("x-csrf-token", &csrf)
        .json(&json!({"query": "mutation { logout }"}))
        .send()
        .await
        .unwrap();
    let cleared: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cleared.len(), 2, "{cleared:?}");
    assert!(
        cleared.iter().all(|c| c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    let (status, _) = me(&app, &jar, Some(&csrf)).await;
    assert_eq!(status, 401, "the session ended");
}

/// Opens `/graphql/ws` with the cookie jar and `origin`, sends an empty
/// `connection_init`, and returns the first answer.
async fn init_with_cookie(app: &TestApp, jar: &str, origin: &str) -> String {
    let url = format!("{}/graphql/ws", app.base.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    headers.insert("cookie", jar.parse().unwrap());
    headers.insert("origin", origin.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({"type": "connection_init", "payload": {}});
    socket.send(Message::text(init.to_string())).await.unwrap();
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await;
    match answer {
        Ok(Some(Ok(message))) => message.to_string(),
        other => format!("{other:?}"),
    }
}

async fn a_websocket_stands_on_the_cookie_only_from_its_own_origin(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let cookies = sign_in(&app).await;
    let jar = format!(
        "crm_session={}; crm_csrf={}",
        value_of(&cookies, "crm_session"),
        value_of(&cookies, "crm_csrf")
    );
    let own = app.base.clone();
    let answer = init_with_cookie(&app, &jar, &own).await;
    assert!(answer.contains("connection_ack"), "{answer}");
    for foreign in [
        "http://evil.example",
        "null",
        &own.replace("http://", "http://x."),
    ] {
        let answer = init_with_cookie(&app, &jar, foreign).await;
        assert!(!answer.contains("connection_ack"), "{foreign}: {answer}");
    }
}

#[test]
fn cookies_are_secure_over_https_and_parsed_strictly() {
    use checkout_crm::cookie::{self, CookieSession};
    let [session, csrf] = cookie::set("tok", 60, "https://crm.example.com.br");
    assert!(session.ends_with("; Secure") && csrf.ends_with("; Secure"));
    let [session, _] = cookie::set("tok", 60, "http://127.0.0.1:8080");
    assert!(!session.contains("Secure"), "{session}");
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        "cookie",
        "other=1; crm_session=tok;crm_csrf=abc ; x="
            .parse()
            .unwrap(),
    );
    assert_eq!(cookie::get(&headers, "crm_session"), Some("tok"));
    assert_eq!(cookie::get(&headers, "x"), None, "an empty cookie is none");
    assert_eq!(cookie::session(&headers), CookieSession::CsrfMismatch);
    headers.insert("x-csrf-token", "abc".parse().unwrap());
    assert_eq!(cookie::session(&headers), CookieSession::Token("tok"));
    // A cookie named like a prefix of another does not match it.
    headers.insert(
        "cookie",
        "crm_session_old=tok; crm_csrf=abc".parse().unwrap(),
    );
    assert_eq!(cookie::session(&headers), CookieSession::None);
}

on_both_backends!(
    a_console_session_lives_in_cookies_guarded_by_csrf,
    a_websocket_stands_on_the_cookie_only_from_its_own_origin,
);
