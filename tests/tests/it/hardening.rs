//! Defects an outside test of the server found, each shown fixed through the real server:
//! websocket sessions, slow anonymous webhook bodies, hidden timelines, search wildcards,
//! file modes and token errors.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tests::{Backend, JWT_SECRET, TestApp, on_both_backends};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn token(app: &TestApp, user: &str, exp: i64, extra: Value) -> String {
    let mut claims = json!({"sub": user, "account": app.account_id, "role": "ADMIN",
        "iss": "checkout-crm", "iat": now(), "exp": exp});
    claims
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn open_socket(app: &TestApp) -> Socket {
    let url = format!("{}/graphql/ws", app.base.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// A socket past `connection_ack`.
async fn session(app: &TestApp, token: &str) -> Socket {
    let mut socket = open_socket(app).await;
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    socket.send(Message::text(init.to_string())).await.unwrap();
    match next_message(&mut socket).await {
        Some(Message::Text(text)) if text.contains("connection_ack") => socket,
        other => panic!("no ack: {other:?}"),
    }
}

async fn next_message(socket: &mut Socket) -> Option<Message> {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), socket.next()).await {
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(message))) => return Some(message),
            _ => return None,
        }
    }
}

/// Runs one operation on the socket: its first `next` or `error` payload, or how the
/// socket closed.
async fn operation(socket: &mut Socket, id: &str, query: &str, variables: Value) -> Value {
    let subscribe =
        json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}});
    if socket
        .send(Message::text(subscribe.to_string()))
        .await
        .is_err()
    {
        return json!({"closed": "on send"});
    }
    loop {
        match next_message(socket).await {
            Some(Message::Text(text)) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["id"] == id && matches!(value["type"].as_str(), Some("next" | "error")) {
                    return value["payload"].clone();
                }
            }
            Some(Message::Close(frame)) => {
                return json!({"closed": frame.map(|f| u16::from(f.code)).unwrap_or(0)});
            }
            Some(_) => continue,
            None => return json!({"closed": "no answer"}),
        }
    }
}

async fn sql(app: &TestApp, statement: &str) {
    use sea_orm::ConnectionTrait;
    app.db.conn.execute_unprepared(statement).await.unwrap();
}

fn refused(payload: &Value) -> bool {
    let text = payload.to_string();
    payload.get("closed").is_some() || text.contains("UNAUTHENTICATED")
}

/// The caller is checked on every operation of a socket: a deleted user and a demoted
/// admin lose what they lost on HTTP at once, and the socket closes when its token expires.
async fn websocket_sessions_end_when_they_should(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user_id, user_token) = app.user("temp@example.com", "ADMIN").await;
    let mut socket = session(&app, &user_token).await;
    let me = operation(&mut socket, "1", "{ me { role } }", json!({})).await;
    assert_eq!(me["data"]["me"]["role"], "ADMIN", "{me}");

    // Demoted: admin-only operations are refused on the same socket.
    sql(
        &app,
        &format!("UPDATE users SET role = 'MEMBER' WHERE id = '{user_id}'"),
    )
    .await;
    let me = operation(&mut socket, "2", "{ me { role } }", json!({})).await;
    assert_eq!(me["data"]["me"]["role"], "MEMBER", "{me}");
    let created = operation(
        &mut socket,
        "3",
        "mutation { createUser(input: {name: \"Sneaky\", email: \"sneaky@x.test\", role: ADMIN}) { id } }",
        json!({}),
    )
    .await;
    assert!(created.to_string().contains("FORBIDDEN"), "{created}");

    // Deleted: nothing more runs.
    sql(&app, &format!("DELETE FROM users WHERE id = '{user_id}'")).await;
    let me = operation(&mut socket, "4", "{ me { id } }", json!({})).await;
    assert!(refused(&me), "a deleted user's socket runs nothing: {me}");

    // Expiry: a token valid for three more seconds (the check allows 30 s of clock skew,
    // so it is minted already past its `exp`).
    let short = token(&app, &app.admin_id, now() - 27, json!({}));
    let mut socket = session(&app, &short).await;
    let me = operation(&mut socket, "1", "{ me { id } }", json!({})).await;
    assert_eq!(me["data"]["me"]["id"], app.admin_id, "{me}");
    let started = Instant::now();
    let closed = loop {
        match next_message(&mut socket).await {
            Some(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Some(_) => continue,
            None => break None,
        }
    };
    assert_eq!(closed, Some(4403), "closed when the token expired");
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// Sends a `dealsChanged` subscription; nothing is answered until a deal changes.
async fn subscribe_board(socket: &mut Socket, id: &str, group: &Value) {
    let query = "subscription($g: ID!) { dealsChanged(groupId: $g) { id } }";
    let message = json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": {"g": group}}});
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// Subscriptions are bounded per socket and per user, and end when their session does.
async fn subscriptions_are_bounded_and_end_at_logout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let group = app.ok(&app.admin, "{ groups { id } }", json!({})).await["groups"][0]["id"].clone();
    app.ok(
        &app.admin,
        "mutation { createUser(input: {name: \"Rita\", email: \"rita@x.test\", role: ADMIN, password: \"rita-password-01\"}) { id } }",
        json!({}),
    )
    .await;
    let login =
        "mutation { login(email: \"rita@x.test\", password: \"rita-password-01\") { token } }";
    let token = app.post_graphql(None, login, json!({})).await.1["data"]["login"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut first = session(&app, &token).await;
    for n in 0..8 {
        subscribe_board(&mut first, &format!("s{n}"), &group).await;
    }
    let ninth = operation(
        &mut first,
        "s8",
        "subscription($g: ID!) { dealsChanged(groupId: $g) { id } }",
        json!({"g": group}),
    )
    .await;
    assert!(
        ninth
            .to_string()
            .contains("too many subscriptions on this connection"),
        "{ninth}"
    );
    // Three more sockets of eight reach the user's 32; one more anywhere is refused.
    let mut others = Vec::new();
    for s in 0..3 {
        let mut socket = session(&app, &token).await;
        for n in 0..8 {
            subscribe_board(&mut socket, &format!("o{s}-{n}"), &group).await;
        }
        others.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut last = session(&app, &token).await;
    let refused = operation(
        &mut last,
        "x",
        "subscription($g: ID!) { dealsChanged(groupId: $g) { id } }",
        json!({"g": group}),
    )
    .await;
    assert!(
        refused
            .to_string()
            .contains("too many subscriptions for this user"),
        "{refused}"
    );
    // Logging out ends the running subscriptions within a poll.
    let (status, _) = app
        .post_graphql(Some(&token), "mutation { logout }", json!({}))
        .await;
    assert_eq!(status, 200);
    let mut completed = std::collections::HashSet::new();
    while completed.len() < 8 {
        match next_message(&mut first).await {
            Some(Message::Text(text)) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "complete" {
                    completed.insert(value["id"].as_str().unwrap().to_owned());
                }
            }
            other => panic!("the subscriptions went on after logout: {other:?} ({completed:?})"),
        }
    }
}

/// A socket that never sends `connection_init` is closed with 4408; messages above the
/// HTTP body cap are not read, `connection_init` included.
async fn websocket_init_and_size_are_bounded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut idle = open_socket(&app).await;
    let started = Instant::now();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(30), idle.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            _ => break None,
        }
    };
    assert_eq!(closed, Some(4408));
    assert!(started.elapsed() < Duration::from_secs(20));

    let mut huge_init = open_socket(&app).await;
    let padding = "x".repeat(3 * 1024 * 1024);
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", app.admin), "pad": padding}});
    let _ = huge_init.send(Message::text(init.to_string())).await;
    let answer = next_message(&mut huge_init).await;
    assert!(
        !matches!(&answer, Some(Message::Text(t)) if t.contains("connection_ack")),
        "a 3 MiB connection_init is not accepted: {answer:?}"
    );

    let mut socket = session(&app, &app.admin).await;
    let query = format!("{{ me {{ id }} }} # {}", "x".repeat(3 * 1024 * 1024));
    let answer = operation(&mut socket, "1", &query, json!({})).await;
    assert!(
        answer.get("closed").is_some(),
        "a 3 MiB query is not run: {answer}"
    );
}

/// A route mutation over the websocket records the change like one over HTTP: the
/// rotated URL stops working at once.
async fn a_rotation_over_the_websocket_takes_effect_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (integration, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let body = tests::hotmart::purchase(
        "e1",
        "PURCHASE_APPROVED",
        1_745_000_000_000,
        "a@x.test",
        "HP1",
    );
    let (status, _) = app
        .post_webhook(&url, Some("hottok-secret-0001"), body.to_string())
        .await;
    assert_eq!(status, 200, "the route is cached now");
    let mut socket = session(&app, &app.admin).await;
    let rotated = operation(
        &mut socket,
        "1",
        "mutation($id: ID!) { rotateWebhookToken(id: $id) { webhookUrl } }",
        json!({"id": integration}),
    )
    .await;
    assert!(
        rotated["data"]["rotateWebhookToken"]["webhookUrl"].is_string(),
        "{rotated}"
    );
    let (status, _) = app
        .post_webhook(&url, Some("hottok-secret-0001"), body.to_string())
        .await;
    assert_eq!(status, 404, "the old URL is gone at once");
}

/// Hundreds of anonymous webhook requests trickling their bodies do not take the slots
/// of GraphQL or of authentic deliveries.
async fn slow_anonymous_webhook_bodies_do_not_starve_the_api(backend: Backend) {
    let app = TestApp::spawn_configured(backend, |config| {
        config.http_max_concurrency = 64;
    })
    .await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let path = url
        .split_once("/webhooks/")
        .map(|(_, p)| format!("/webhooks/{p}"))
        .unwrap();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await else {
            continue;
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{{"
        );
        if stream.write_all(head.as_bytes()).await.is_ok() {
            slow.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = app
        .post_graphql(Some(&app.admin), "{ me { id } }", json!({}))
        .await;
    assert_eq!(status, 200, "GraphQL still answers: {body}");
    let delivery = tests::hotmart::purchase(
        "e1",
        "PURCHASE_APPROVED",
        1_745_000_000_000,
        "a@x.test",
        "HP1",
    );
    let (status, body) = app
        .post_webhook(&url, Some("hottok-secret-0001"), delivery.to_string())
        .await;
    assert_eq!(status, 200, "an authentic delivery is stored: {body}");
    drop(slow);
}

/// Connects to `address` from `local` (another loopback address is another client).
async fn connect_from(local: &str, address: &str) -> Option<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(format!("{local}:0").parse().ok()?).ok()?;
    socket.connect(address.parse().ok()?).await.ok()
}

/// Hundreds of anonymous GraphQL requests trickling their bodies from one address take
/// neither the API, nor the console, nor signing in from another address; they are cut
/// off after the body timeout.
async fn slow_anonymous_graphql_bodies_do_not_starve_the_api(backend: Backend) {
    use tokio::io::AsyncReadExt;
    let app = TestApp::spawn_configured(backend, |config| {
        config.http_max_concurrency = 64;
    })
    .await;
    let (user, _) = app.user("vera@acme.test", "MEMBER").await;
    app.ok(
        &app.admin,
        "mutation($id: ID!) { setUserPassword(userId: $id, password: \"vera-password-01\") { id } }",
        json!({"id": user}),
    )
    .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let Some(mut stream) = connect_from("127.0.0.3", &address).await else {
            continue;
        };
        let head = "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{";
        if stream.write_all(head.as_bytes()).await.is_ok() {
            slow.push(stream);
        }
    }
    assert!(slow.len() >= 250, "{} slow requests", slow.len());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = app
        .post_graphql(Some(&app.admin), "{ me { id } }", json!({}))
        .await;
    assert_eq!(status, 200, "GraphQL with a token answers: {body}");
    let console = app.http.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(console.status(), 200, "the console is served");
    let elsewhere = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let login =
        "mutation { login(email: \"vera@acme.test\", password: \"vera-password-01\") { token } }";
    let signed_in: Value = elsewhere
        .post(format!("{}/graphql", app.base))
        .json(&json!({"query": login}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        signed_in["data"]["login"]["token"].is_string(),
        "{signed_in}"
    );
    // The slow ones in flight are answered 408 after the body timeout (1 s here).
    let mut timed_out = 0;
    for stream in slow.iter_mut().take(40) {
        let mut answer = vec![0u8; 256];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer)).await
        {
            let text = String::from_utf8_lossy(&answer[..n]);
            if text.starts_with("HTTP/1.1 408") {
                timed_out += 1;
            } else {
                assert!(text.starts_with("HTTP/1.1 503") || n == 0, "{text}");
            }
        }
    }
    assert!(timed_out >= 1, "the admitted ones time out");
}

/// The served binary closes an address's connections beyond its share at once, while
/// another address is served.
#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    use tests::process::{crm, free_port, wait_healthy};
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let url = format!("sqlite://{}", dir.path().join("data/crm.db").display());
    let _server = crm(
        dir.path(),
        &url,
        "http://127.0.0.1:9",
        &[("HTTP_MAX_CONNECTIONS_PER_ADDRESS", "20")],
        &["serve", "--bind", &bind, "--no-workers"],
    );
    let base = format!("http://{bind}");
    wait_healthy(&base).await;
    let mut held = Vec::new();
    for _ in 0..30 {
        let mut stream = connect_from("127.0.0.2", &bind).await.expect("connects");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut closed = 0;
    for stream in &mut held {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut byte)).await;
        // Closed: the end of the stream, or a reset (the request head was unread).
        if matches!(read, Ok(Ok(0)) | Ok(Err(_))) {
            closed += 1;
        }
    }
    assert_eq!(closed, 10, "the ten beyond the share are closed");
    let healthy = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(healthy.status(), 200, "another address is served");
}

/// `/metrics` beside the API: local unproxied requests only, or the token's bearer.
async fn metrics_are_not_public(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let get = |app: &TestApp, header: Option<(&'static str, String)>| {
        let mut request = app.http.get(format!("{}/metrics", app.base));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(&app, None).await, 200, "a local scrape");
    let proxied = Some(("x-forwarded-for", "203.0.113.7".to_owned()));
    assert_eq!(get(&app, proxied).await, 404, "through a proxy");
    let token = "metrics-token-0123456789abcdef";
    let guarded = TestApp::spawn_configured(backend, |config| {
        config.metrics_token = Some(token.to_owned());
    })
    .await;
    assert_eq!(get(&guarded, None).await, 404, "no token");
    let wrong = Some((
        "authorization",
        "Bearer metrics-token-0000000000000000".to_owned(),
    ));
    assert_eq!(get(&guarded, wrong).await, 404, "a wrong token");
    let right = Some(("authorization", format!("Bearer {token}")));
    assert_eq!(get(&guarded, right).await, 200);
}

/// An answer over 8 MiB is replaced by an error that says so (here: 40 stored deliveries
/// of 250 kB each, asked for at once).
async fn answers_are_bounded_in_size(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let (integration, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    for n in 0..40 {
        let mut body = tests::hotmart::purchase(
            &format!("big-{n}"),
            "PURCHASE_APPROVED",
            1_745_000_000_000 + n,
            "big@x.test",
            &format!("HPBIG{n}"),
        );
        body["padding"] = json!("x".repeat(250_000));
        let (status, _) = app
            .post_webhook(&url, Some("hottok-secret-0001"), body.to_string())
            .await;
        assert_eq!(status, 200);
    }
    let query =
        "query($id: ID!) { integration(id: $id) { deliveries(first: 40) { nodes { payload } } } }";
    let (status, body) = app
        .post_graphql(Some(&app.admin), query, json!({"id": integration}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["message"],
        "the answer is larger than 8 MiB: ask for fewer items"
    );
    assert!(body["data"].is_null());
    let few =
        "query($id: ID!) { integration(id: $id) { deliveries(first: 5) { nodes { payload } } } }";
    let (_, body) = app
        .post_graphql(Some(&app.admin), few, json!({"id": integration}))
        .await;
    assert_eq!(
        body["data"]["integration"]["deliveries"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
}

/// A client that asks and never reads is disconnected once a write has waited past the
/// deadline (the request timeout): twenty pipelined requests for a 1 MB file, unread.
#[tokio::test]
async fn answers_nobody_reads_are_dropped() {
    use tests::process::{crm, free_port, wait_healthy};
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let url = format!("sqlite://{}", dir.path().join("data/crm.db").display());
    let _server = crm(
        dir.path(),
        &url,
        "http://127.0.0.1:9",
        &[("HTTP_REQUEST_TIMEOUT_SECS", "1")],
        &["serve", "--bind", &bind, "--no-workers"],
    );
    wait_healthy(&format!("http://{bind}")).await;
    let size = reqwest::get(format!("http://{bind}/assets/graphiql/graphiql.min.js"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    let mut stream = tokio::net::TcpStream::connect(&bind).await.unwrap();
    let request = "GET /assets/graphiql/graphiql.min.js HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20);
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut received = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received += n,
            Err(_) => panic!("the connection was kept open ({received} bytes so far)"),
        }
    }
    assert!(received < 20 * size, "{received} of {} bytes", 20 * size);
}

/// Members see only the timeline entries of groups visible to them.
async fn timelines_follow_group_visibility(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, url) = app
        .active_integration(&["CLUB_FIRST_ACCESS"], json!({}))
        .await;
    let access = json!({"id": "club-1", "creation_date": 1_745_000_000_000i64, "event": "CLUB_FIRST_ACCESS",
        "version": "2.0.0", "data": {"product": {"id": 1_234_567}, "user": {"email": "hidden@x.test", "name": "Hidden"}}});
    app.post_webhook(&url, Some("hottok-secret-0001"), access.to_string())
        .await;
    app.wait_until_processed().await;
    let contact = app
        .ok(
            &app.admin,
            "{ contacts(filter: {search: \"hidden@x.test\"}) { nodes { id timeline { event } } } }",
            json!({}),
        )
        .await["contacts"]["nodes"][0]
        .clone();
    assert_eq!(
        contact["timeline"][0]["event"], "CLUB_FIRST_ACCESS",
        "{contact}"
    );
    // The integration's group is visible to everyone by default: hide it.
    let groups = app.ok(&app.admin, "{ groups { id } }", json!({})).await;
    for group in groups["groups"].as_array().unwrap() {
        app.ok(
            &app.admin,
            "mutation($id: ID!) { setGroupVisibility(groupId: $id, input: {everyone: false}) { id } }",
            json!({"id": group["id"]}),
        )
        .await;
    }
    let (_, member) = app.user("member@example.com", "MEMBER").await;
    let (status, body) = app
        .post_graphql(
            Some(&member),
            "query($id: ID!) { contact(id: $id) { timeline { event description } } }",
            json!({"id": contact["id"]}),
        )
        .await;
    assert_eq!(status, 200);
    let timeline = &body["data"]["contact"]["timeline"];
    assert!(
        timeline.is_null() || timeline.as_array().is_some_and(Vec::is_empty),
        "nothing of a hidden group: {body}"
    );
}

/// `%` and `_` in a search are text, for the phone too.
async fn search_wildcards_are_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let body = tests::hotmart::purchase(
        "e1",
        "PURCHASE_APPROVED",
        1_745_000_000_000,
        "a@x.test",
        "HP1",
    );
    app.post_webhook(&url, Some("hottok-secret-0001"), body.to_string())
        .await;
    app.wait_until_processed().await;
    let count = |search: &'static str| {
        let app = &app;
        async move {
            app.ok(
                &app.admin,
                "query($s: String) { contacts(filter: {search: $s}) { totalCount } }",
                json!({"s": search}),
            )
            .await["contacts"]["totalCount"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(count("99999").await, 1, "the phone matches by its digits");
    assert_eq!(count("%").await, 0);
    assert_eq!(count("_").await, 0);
    assert_eq!(count("9%9").await, 0);
}

/// Token errors are short and plain; a token not valid yet is refused.
async fn token_errors_are_plain_and_nbf_holds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let future = token(
        &app,
        &app.admin_id,
        now() + 600,
        json!({"nbf": now() + 300}),
    );
    let (status, body) = app
        .post_graphql(Some(&future), "{ me { id } }", json!({}))
        .await;
    assert_eq!(status, 401, "{body}");
    let no_exp = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": app.admin_id, "account": app.account_id, "iss": "checkout-crm"}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    for bad in [no_exp.as_str(), "a.b.c", "not-a-token"] {
        let (status, body) = app
            .post_graphql(Some(bad), "{ me { id } }", json!({}))
            .await;
        assert_eq!(status, 401);
        let message = body["errors"][0]["message"].as_str().unwrap();
        for internal in ["JSON", "line", "column", "base64", "Base64"] {
            assert!(!message.contains(internal), "{message}");
        }
    }
}

/// The data folder and the SQLite files are the owner's only.
#[cfg(unix)]
#[tokio::test]
async fn the_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let nested = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/new/data/crm.db", nested.path().display());
    let app = TestApp::spawn_configured(Backend::Sqlite, |config| {
        config.database_url = url.clone();
    })
    .await;
    let path = app
        .config
        .database_url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let mode = |p: &str| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode(&path).unwrap(), 0o600, "{path}");
    for suffix in ["-wal", "-shm"] {
        if let Ok(m) = mode(&format!("{path}{suffix}")) {
            assert_eq!(m, 0o600, "{path}{suffix}");
        }
    }
    let dir = std::path::Path::new(&path).parent().unwrap();
    assert_eq!(
        mode(dir.to_str().unwrap()).unwrap(),
        0o700,
        "{}",
        dir.display()
    );
}

/// The cost of a request grows with its page sizes and nested lists multiply: the
/// amplifying query is refused before it runs, while the console's own queries pass.
async fn query_cost_counts_page_sizes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, member) = app.user("member@example.com", "MEMBER").await;
    let nested =
        "deals(first:200){nodes{contact{deals{timeline{at} contact{timeline{at} labels{id}}}}}}";
    let aliases: String = (0..25).map(|i| format!("a{i}: {nested} ")).collect();
    for (query, case) in [
        (format!("{{ {aliases} }}"), "25 aliases"),
        (format!("{{ {nested} }}"), "one alias"),
        (
            "{ deals(first: 200) { nodes { contact { deals { timeline { at } } } } } }".to_owned(),
            "three nested lists",
        ),
    ] {
        let started = Instant::now();
        let (status, body) = app.post_graphql(Some(&member), &query, json!({})).await;
        assert!(
            body["errors"][0]["message"].as_str().is_some_and(
                |m| m.starts_with("custo ") && m.ends_with(", limite 10.000: peça menos itens")
            ),
            "{case}: {status} {body}"
        );
        assert!(body["data"].is_null(), "{case}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{case}: refused before running"
        );
    }
    for query in [
        "{ deals(first: 200) { totalCount pageInfo { hasNextPage endCursor } nodes { id status value currency createdAt origin { name } owner { name } contact { email name phone labels { name } } } } }",
        "{ deals(first: 50) { nodes { id timeline { at event effect description } } } }",
        "{ contacts(first: 200) { nodes { id email name phone deals { id status } } } }",
    ] {
        let (status, body) = app.post_graphql(Some(&member), query, json!({})).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert!(body.get("errors").is_none(), "{query}: {body}");
    }
}

/// Lists without paging are costed too, `dealCount`s are batched, and one introspection
/// tree per request: the amplifying queries of an outside attack are refused with their
/// cost, while a board page with contacts, labels, timelines and counts passes.
async fn unpaged_lists_and_introspection_are_bounded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.integration_with_product(&["PURCHASE_APPROVED", "PURCHASE_OUT_OF_SHOPPING_CART"])
        .await;
    let (_, member) = app.user("member@example.com", "MEMBER").await;
    // 6 aliases × 200 deals × the group's origins × 4 counts.
    let counts = "a: dealCount b: dealCount(status: OPEN) c: dealCount(status: WON) d: dealCount(status: LOST)";
    let per_deal =
        format!("deals(first: 200) {{ nodes {{ group {{ origins {{ {counts} }} }} }} }}");
    let aliased: String = (0..6).map(|i| format!("x{i}: {per_deal} ")).collect();
    let integrations: String = (0..300)
        .map(|i| format!("i{i}: integrations {{ products {{ variations {{ code }} }} group {{ origins {{ id }} }} }} "))
        .collect();
    let schemas: String = (0..400)
        .map(|i| format!("s{i}: __schema {{ types {{ name }} }} "))
        .collect();
    for (token, query, expected) in [
        (&member, format!("{{ {aliased} }}"), "custo "),
        (&app.admin, format!("{{ {integrations} }}"), "custo "),
        (
            &app.admin,
            format!("{{ {schemas} }}"),
            "one introspection field",
        ),
        (
            &app.admin,
            "{ __schema { queryType { name } } __type(name: \"Deal\") { name } }".to_owned(),
            "one introspection field",
        ),
    ] {
        let (_, body) = app.post_graphql(Some(token), &query, json!({})).await;
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(expected), "{query:.80}: {body:.300}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert!(body["data"].is_null());
    }
    // The board: a page of 50 deals with contacts, labels, timelines, and counts.
    let board = "{ groups { id name origins { id name dealCount stages { id name dealCount(status: OPEN) } } } deals(first: 50) { totalCount pageInfo { hasNextPage endCursor } nodes { id version status value currency createdAt whatsappUrl stage { id name } origin { id name } owner { id name } product { name } contact { id name email phone labels { id name color } } timeline { at event effect description author { name } } } } }";
    let (status, body) = app.post_graphql(Some(&member), board, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let one = app
        .post_graphql(
            Some(&app.admin),
            "{ __schema { types { name } } }",
            json!({}),
        )
        .await;
    assert!(
        one.1.get("errors").is_none(),
        "one introspection tree passes"
    );
}

/// The served binary's HTTP layer: a connection that sends nothing, or half a request
/// line, is closed after the header timeout; `/metrics` can live on a listener of its own.
async fn silent_connections_time_out_and_metrics_can_move(backend: Backend) {
    use tokio::io::AsyncReadExt;
    let app = TestApp::spawn_without_workers(backend).await;
    let mut config = app.config.clone();
    config.http_header_timeout = Duration::from_secs(1);
    let metrics_port = tests::process::free_port();
    config.metrics_bind = Some(format!("127.0.0.1:{metrics_port}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served_config = config.clone();
    let db = app.db.clone();
    let server = tokio::spawn(async move {
        tests::checkout_crm::app::serve(&served_config, db, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    for (case, sent) in [
        ("nothing", ""),
        ("half a request line", "POST /webhooks/hot"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(sent.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut buffer = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await;
        assert!(
            matches!(read, Ok(Ok(_)) | Ok(Err(_))),
            "{case}: the server closed the connection"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{case}");
    }

    let http = reqwest::Client::new();
    let on_main = http
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_main.status(), 404, "not beside the public routes");
    let apart = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(apart.status(), 200);
    assert!(apart.text().await.unwrap().contains("# TYPE"));
    let healthz = http
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(40), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}

on_both_backends!(
    silent_connections_time_out_and_metrics_can_move,
    query_cost_counts_page_sizes,
    unpaged_lists_and_introspection_are_bounded,
    websocket_sessions_end_when_they_should,
    websocket_init_and_size_are_bounded,
    a_rotation_over_the_websocket_takes_effect_at_once,
    slow_anonymous_webhook_bodies_do_not_starve_the_api,
    slow_anonymous_graphql_bodies_do_not_starve_the_api,
    metrics_are_not_public,
    subscriptions_are_bounded_and_end_at_logout,
    answers_are_bounded_in_size,
    timelines_follow_group_visibility,
    search_wildcards_are_text,
    token_errors_are_plain_and_nbf_holds,
);
