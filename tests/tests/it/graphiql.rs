//! GraphiQL works offline: the page at `GET /graphql` loads only files the binary serves.

use tests::{Backend, TestApp};

#[tokio::test]
async fn graphiql_is_served_without_a_cdn() {
    let app = TestApp::spawn_without_workers(Backend::Sqlite).await;
    let page = app
        .http
        .get(format!("{}/graphql", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let policy = header("content-security-policy");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let scripts = policy
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap();
    assert!(
        scripts.contains("'nonce-") && !scripts.contains("unsafe"),
        "{policy}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-frame-options"), "DENY");
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a script nonce")
        .to_owned();
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("<script nonce=\"{nonce}\">")),
        "the inline script carries it"
    );
    let again = app
        .http
        .get(format!("{}/graphql", app.base))
        .send()
        .await
        .unwrap();
    let again = again.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!again.contains(&nonce), "a nonce per response");
    assert!(html.contains("GraphiQL"));
    assert!(
        !html.contains("https://"),
        "nothing from the internet: {html}"
    );
    let assets: Vec<&str> = html
        .split('"')
        .filter(|part| part.starts_with("/assets/"))
        .collect();
    assert_eq!(assets.len(), 4, "{assets:?}");
    for asset in assets {
        let response = app
            .http
            .get(format!("{}{asset}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            kind.starts_with(if asset.ends_with(".css") {
                "text/css"
            } else {
                "text/javascript"
            }),
            "{asset}: {kind}"
        );
        assert!(response.bytes().await.unwrap().len() > 10_000, "{asset}");
    }
    for missing in [
        "/assets/graphiql/nope.js",
        "/assets/graphiql/..%2Fsrc%2Flib.rs",
    ] {
        let response = app
            .http
            .get(format!("{}{missing}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{missing}");
    }
}
