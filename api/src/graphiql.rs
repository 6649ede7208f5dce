//! GraphiQL at `GET /graphql`, served by the binary itself: its scripts and styles are
//! vendored in `api/assets/graphiql` (GraphiQL 4.1.2 and React 18.3.1, MIT-licensed, the
//! licences beside them), so it works without internet access.

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>checkout-crm · GraphiQL</title>
    <style>
      body { height: 100%; margin: 0; width: 100%; overflow: hidden; }
      #graphiql { height: 100vh; }
    </style>
    <link rel="stylesheet" href="/assets/graphiql/graphiql.min.css">
    <script src="/assets/graphiql/react.production.min.js"></script>
    <script src="/assets/graphiql/react-dom.production.min.js"></script>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script src="/assets/graphiql/graphiql.min.js"></script>
    <script nonce="{nonce}">
      const url = new URL('/graphql', window.location.origin);
      const ws = new URL('/graphql/ws', window.location.origin);
      ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
      ReactDOM.createRoot(document.getElementById('graphiql')).render(
        React.createElement(GraphiQL, {
          fetcher: GraphiQL.createFetcher({ url: url.toString(), subscriptionUrl: ws.toString() }),
          defaultHeaders: '{"Authorization": "Bearer <token from login or data/admin.jwt>"}',
          defaultEditorToolsVisibility: true,
        })
      );
    </script>
  </body>
</html>
"#;

/// The GraphiQL page, with the console's headers: scripts only from this origin and the
/// page's one inline script (by a nonce of this response), no framing, no sniffing.
pub async fn page() -> Response {
    use base64::Engine;
    let nonce = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let mut response = Html(PAGE.replace("{nonce}", &nonce)).into_response();
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&policy).expect("a header value"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// One of GraphiQL's vendored files.
pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type): (&'static [u8], &str) = match name.as_str() {
        "graphiql.min.js" => (
            include_bytes!("../assets/graphiql/graphiql.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "graphiql.min.css" => (
            include_bytes!("../assets/graphiql/graphiql.min.css"),
            "text/css; charset=utf-8",
        ),
        "react.production.min.js" => (
            include_bytes!("../assets/graphiql/react.production.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "react-dom.production.min.js" => (
            include_bytes!("../assets/graphiql/react-dom.production.min.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap(),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The files change only with the binary.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}
