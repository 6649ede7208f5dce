//! The real webhook route on arbitrary bodies and hottok headers: never panics, and the
//! answer is always one of the documented status codes.
#![no_main]

use std::sync::OnceLock;

use axum::{Router, body::Body, http::Request};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Target {
    runtime: tokio::runtime::Runtime,
    router: Router,
    path: String,
    _app: tests::TestApp,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (app, url) = runtime.block_on(async {
            let app = tests::TestApp::spawn_without_workers(tests::Backend::Sqlite).await;
            let (_, url) = app.active_integration(&["PURCHASE_APPROVED"], serde_json::json!({})).await;
            (app, url)
        });
        let router = checkout_crm::http::router(checkout_crm::app::http_state(&app.config, app.db.clone()));
        let path = url.trim_start_matches("https://crm.example.com").to_owned();
        Target { runtime, router, path, _app: app }
    })
}

fuzz_target!(|data: &[u8]| {
    let target = target();
    // The first byte picks whether the right hottok is sent.
    let (with_hottok, body) = match data.split_first() {
        Some((flag, rest)) => (flag % 2 == 0, rest.to_vec()),
        None => (false, Vec::new()),
    };
    let mut request = Request::post(&target.path).header("content-type", "application/json");
    if with_hottok {
        request = request.header("X-HOTMART-HOTTOK", "hottok-secret-0001");
    }
    let request = request.body(Body::from(body)).unwrap();
    let status = target.runtime.block_on(target.router.clone().oneshot(request)).unwrap().status().as_u16();
    assert!([200, 400, 401, 413, 415, 503].contains(&status), "undocumented status {status}");
});
