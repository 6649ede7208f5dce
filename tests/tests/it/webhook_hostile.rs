//! Hostile webhook input: every case gets one of the documented answers (`docs/webhooks.md`),
//! nothing panics, and the server keeps serving.

use std::time::Duration;

use entity::platform::Platform;
use proptest::prelude::*;
use serde_json::{Value, json};
use tests::{Backend, TestApp, hotmart::purchase, on_both_backends};

const HOTTOK: &str = "hottok-secret-0001";
const T0: i64 = 1_745_952_631_331;

async fn post_raw(
    app: &TestApp,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Value) {
    let path = url.trim_start_matches("https://crm.example.com");
    let mut request = app.http.post(format!("{}{path}", app.base)).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn hostile_bodies_get_documented_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let json_headers = [
        ("content-type", "application/json"),
        ("X-HOTMART-HOTTOK", HOTTOK),
    ];
    let valid = purchase("ok-1", "PURCHASE_APPROVED", T0, "ana@x.test", "HP1").to_string();
    let deep = format!(
        "{{\"id\":\"d\",\"event\":\"PURCHASE_APPROVED\",\"data\":{}1{}}}",
        "{\"a\":".repeat(200),
        "}".repeat(200)
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed", b"{\"id\": \"x\", \"event\": }".to_vec(), 400),
        ("truncated", valid.as_bytes()[..valid.len() / 2].to_vec(), 400),
        ("empty", Vec::new(), 400),
        ("trailing garbage", format!("{valid} garbage").into_bytes(), 400),
        ("top-level array", format!("[{valid}]").into_bytes(), 400),
        ("deep nesting", deep.into_bytes(), 400),
        ("invalid UTF-8", [b"{\"id\":\"\xff\xfe\",\"event\":\"PURCHASE_APPROVED\"}".as_slice()].concat(), 400),
        ("lone surrogate", br#"{"id":"\ud800","event":"PURCHASE_APPROVED"}"#.to_vec(), 400),
        ("NaN", br#"{"id":"n","event":"PURCHASE_APPROVED","data":{"purchase":{"price":{"value":NaN}}}}"#.to_vec(), 400),
        ("number out of range", br#"{"id":"r","event":"PURCHASE_APPROVED","x":1e400}"#.to_vec(), 400),
        ("id over 128 characters", json!({"id": "i".repeat(129), "event": "PURCHASE_APPROVED"}).to_string().into_bytes(), 400),
        ("event not a string", br#"{"id":"e","event":{"a":1}}"#.to_vec(), 400),
        // Well-formed JSON is accepted even when odd.
        ("byte-order mark", [b"\xEF\xBB\xBF".as_slice(), purchase("bom", "PURCHASE_APPROVED", T0, "bom@x.test", "HPB").to_string().as_bytes()].concat(), 200),
        ("duplicate keys (last wins)", br#"{"id":"dup","id":"dup-2","event":"PURCHASE_APPROVED","data":{"product":{"id":1234567},"buyer":{"email":"dup@x.test"}}}"#.to_vec(), 200),
        ("huge string", json!({"id": "big", "event": "PURCHASE_APPROVED", "data": {"product": {"id": 1234567}, "buyer": {"email": "big@x.test", "name": "n".repeat(200_000)}}}).to_string().into_bytes(), 200),
        ("huge array", json!({"id": "arr", "event": "PURCHASE_APPROVED", "data": {"product": {"id": 1234567}, "buyer": {"email": "arr@x.test"}, "affiliates": vec![0; 50_000]}}).to_string().into_bytes(), 200),
        ("many keys", {
            let mut value = json!({"id": "keys", "event": "PURCHASE_APPROVED", "data": {"product": {"id": 1234567}, "buyer": {"email": "keys@x.test"}}});
            for i in 0..10_000 { value[format!("k{i}")] = json!(i); }
            value.to_string().into_bytes()
        }, 200),
        ("very old creation_date", purchase("old", "PURCHASE_APPROVED", 978_307_200_000, "old@x.test", "HPO").to_string().into_bytes(), 200),
        ("huge numeric id", br#"{"id":123456789012345678901234567890,"event":"PURCHASE_APPROVED","data":{"product":{"id":1234567},"buyer":{"email":"num@x.test"}}}"#.to_vec(), 200),
    ];
    for (name, body, expected) in cases {
        let (status, reply) = post_raw(&app, &url, &json_headers, body).await;
        assert_eq!(status, expected, "{name}: {reply}");
        if status == 400 {
            assert!(reply["error"].is_string(), "{name}: a JSON error: {reply}");
        }
    }
    // Transport-level oddities.
    let (status, _) = post_raw(
        &app,
        &url,
        &[("content-type", "text/plain"), ("X-HOTMART-HOTTOK", HOTTOK)],
        purchase("tp", "PURCHASE_APPROVED", T0, "tp@x.test", "HPT")
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(
        status, 200,
        "a JSON body with a wrong content type is still JSON"
    );
    let (status, reply) = post_raw(
        &app,
        &url,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("X-HOTMART-HOTTOK", HOTTOK),
        ],
        valid.clone().into_bytes(),
    )
    .await;
    assert_eq!(status, 415, "{reply}");
    let path = url.trim_start_matches("https://crm.example.com");
    let response = app
        .http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let response = app
        .http
        .put(format!("{}{path}", app.base))
        .body(valid.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    // A body that never finishes arriving is abandoned (408), not waited on forever.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    sender.send(Ok(b"{\"id\":".to_vec())).await.unwrap();
    let stream = futures::stream::unfold(receiver, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let slow = app
        .http
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/json")
        .header("X-HOTMART-HOTTOK", HOTTOK)
        .body(reqwest::Body::wrap_stream(stream))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 408);
    drop(sender);
    // Same event id with a different body: kept and flagged.
    let (_, first) = post_raw(&app, &url, &json_headers, valid.clone().into_bytes()).await;
    assert_eq!(first["status"], "accepted");
    let changed = purchase("ok-1", "PURCHASE_APPROVED", T0, "eve@x.test", "HP-EVIL").to_string();
    let (status, second) = post_raw(&app, &url, &json_headers, changed.into_bytes()).await;
    assert_eq!(
        (status, second["status"].as_str()),
        (200, Some("duplicate"))
    );
    app.wait_until_processed().await;
    let flagged = app
        .ok(
            &app.admin,
            "{ integrations { deliveries(status: DUPLICATE) { nodes { reason } } } }",
            json!({}),
        )
        .await;
    assert!(flagged.to_string().contains("different body"), "{flagged}");
    // Still serving, and nothing was processed twice.
    let deals = app
        .ok(
            &app.admin,
            "{ deals(filter: {contactEmail: \"ana@x.test\"}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(deals["deals"]["totalCount"], 1);
    let response = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

on_both_backends!(hostile_bodies_get_documented_answers);

/// Arbitrary bytes (and arbitrary mutations of a real delivery) through the real router:
/// the answer is always one of the documented codes, and the server survives.
#[test]
fn arbitrary_bodies_always_get_a_documented_status() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, url) = runtime.block_on(async {
        let app = TestApp::spawn_without_workers(Backend::Sqlite).await;
        let (_, url) = app
            .active_integration(&["PURCHASE_APPROVED"], json!({}))
            .await;
        (app, url)
    });
    let real = purchase("seed", "PURCHASE_APPROVED", T0, "ana@x.test", "HP1")
        .to_string()
        .into_bytes();
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(noise in prop::collection::vec(any::<u8>(), 0..2048), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), with_hottok in any::<bool>(), mutate in any::<bool>())| {
        let body = if mutate {
            let mut body = real.clone();
            for (at, byte) in &flips { let i = at % body.len(); body[i] = *byte; }
            body
        } else {
            noise.clone()
        };
        let headers: Vec<(&str, &str)> = if with_hottok { vec![("X-HOTMART-HOTTOK", HOTTOK)] } else { vec![] };
        let (status, _) = runtime.block_on(post_raw(&app, &url, &headers, body));
        prop_assert!([200, 400, 401, 413, 415].contains(&status), "status {}", status);
    });
    let alive = runtime.block_on(async {
        app.http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(alive, 200);
}

/// The payload parser on arbitrary bytes: never panics.
#[test]
fn the_parser_never_panics() {
    proptest!(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() }, |(bytes in prop::collection::vec(any::<u8>(), 0..4096))| {
        for platform in Platform::ALL {
            if let Ok((value, _)) = platform.parse_body(&bytes) {
                let _ = platform.sale_events(&value);
            }
        }
    });
    // Arbitrary JSON shapes too (wrong types everywhere).
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::from)
    ];
    let tree = leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("data".to_owned()),
                    Just("buyer".to_owned()),
                    Just("product".to_owned()),
                    Just("purchase".to_owned()),
                    Just("id".to_owned()),
                    Just("email".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    proptest!(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() }, |(data in tree)| {
        let value = json!({"id": "x", "event": "PURCHASE_APPROVED", "data": data});
        let _ = Platform::Hotmart.sale_events(&value);
        let eduzz = json!({"id": "x", "event": "myeduzz.invoice_paid", "data": data.clone()});
        let _ = Platform::Eduzz.sale_events(&eduzz);
        let kiwify = json!({"order_id": "x", "webhook_event_type": "order_approved", "Customer": data.clone(), "Product": data.clone(), "Commissions": data.clone()});
        let _ = Platform::Kiwify.sale_events(&kiwify);
        let _ = Platform::Kiwify.sale_events(&json!({"order": data}));
    });
}
