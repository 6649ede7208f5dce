//! The console at `GET /`: a few static files (HTML, ES modules, CSS) in
//! `api/assets/console`, built into the binary, that use only the public GraphQL API.
//! No build step and nothing from the internet: see `docs/console.md`.

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// Scripts, styles and connections only from this origin; no inline script, no framing.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

const JS: &str = "text/javascript; charset=utf-8";

/// The console's files: name, body, content type.
const FILES: &[(&str, &[u8], &str)] = &[
    (
        "activities.js",
        include_bytes!("../assets/console/activities.js"),
        JS,
    ),
    ("app.js", include_bytes!("../assets/console/app.js"), JS),
    ("dom.js", include_bytes!("../assets/console/dom.js"), JS),
    ("drag.js", include_bytes!("../assets/console/drag.js"), JS),
    (
        "explain.js",
        include_bytes!("../assets/console/explain.js"),
        JS,
    ),
    (
        "exports.js",
        include_bytes!("../assets/console/exports.js"),
        JS,
    ),
    ("gql.js", include_bytes!("../assets/console/gql.js"), JS),
    ("i18n.js", include_bytes!("../assets/console/i18n.js"), JS),
    (
        "integrations.js",
        include_bytes!("../assets/console/integrations.js"),
        JS,
    ),
    (
        "outbound.js",
        include_bytes!("../assets/console/outbound.js"),
        JS,
    ),
    (
        "pipeline.js",
        include_bytes!("../assets/console/pipeline.js"),
        JS,
    ),
    (
        "platforms.js",
        include_bytes!("../assets/console/platforms.js"),
        JS,
    ),
    (
        "privacy.js",
        include_bytes!("../assets/console/privacy.js"),
        JS,
    ),
    (
        "report.js",
        include_bytes!("../assets/console/report.js"),
        JS,
    ),
    (
        "search.js",
        include_bytes!("../assets/console/search.js"),
        JS,
    ),
    ("setup.js", include_bytes!("../assets/console/setup.js"), JS),
    ("team.js", include_bytes!("../assets/console/team.js"), JS),
    (
        "wizard.js",
        include_bytes!("../assets/console/wizard.js"),
        JS,
    ),
    ("work.js", include_bytes!("../assets/console/work.js"), JS),
    (
        "style.css",
        include_bytes!("../assets/console/style.css"),
        "text/css; charset=utf-8",
    ),
];

/// The console's page.
pub async fn page() -> Response {
    serve(
        include_bytes!("../assets/console/index.html"),
        "text/html; charset=utf-8",
    )
}

/// One of the console's files.
pub async fn asset(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, body, content_type)) => serve(body, content_type),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn serve(body: &'static [u8], content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The files change with the binary: the browser asks again each time (they are small).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
