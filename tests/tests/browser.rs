//! The console at `GET /`: its files and headers over HTTP, and the pages themselves in
//! headless Chromium (WebDriver) against the real server — sign-in, the wizard to an
//! ACTIVE integration, a sale arriving on the pipeline with its payment data, replaying a
//! failed delivery, a member who does not see a hidden group, an import's live progress.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use tests::{
    Backend, FIXTURE_HOTTOK, TestApp,
    browser::Browser,
    fake_hotmart::{CLIENT_ID, CLIENT_SECRET, FakeHotmart, sale},
    hotmart::purchase,
    workspace_root,
};

const PASSWORD: &str = "console-password-0001";

async fn set_password(app: &TestApp, user: &str) {
    app.ok(
        &app.admin,
        "mutation($id: ID!, $p: String!) { setUserPassword(userId: $id, password: $p) { id } }",
        json!({"id": user, "p": PASSWORD}),
    )
    .await;
}

fn fixture(name: &str) -> Value {
    let path = workspace_root().join("tests/fixtures/hotmart").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

// ---- over HTTP -------------------------------------------------------------------------

#[tokio::test]
async fn the_console_is_served_with_a_strict_content_policy() {
    let app = TestApp::spawn_without_workers(Backend::Sqlite).await;
    let page = app.http.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(
            policy.contains(directive),
            "{directive} missing from {policy}"
        );
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/console/app.js">"#));
    // Nothing comes from another origin: every script and stylesheet is ours.
    let elsewhere: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("http") || s.starts_with("//"))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "the page refers to other origins: {elsewhere:?}"
    );
    for (name, kind) in [("app.js", "text/javascript"), ("style.css", "text/css")] {
        let file = app
            .http
            .get(format!("{}/console/{name}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(file.status(), 200, "{name}");
        assert!(
            file.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        assert_eq!(file.headers()["x-content-type-options"], "nosniff");
    }
    for missing in [
        "nope.js",
        "..%2Fapp.rs",
        "%2e%2e%2fCargo.toml",
        "app.js.map",
    ] {
        let status = app
            .http
            .get(format!("{}/console/{missing}", app.base))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "{missing}");
    }
}

/// The console's modules import only each other, by relative path: no CDN, nothing to build.
#[test]
fn the_console_loads_nothing_from_elsewhere() {
    let dir = workspace_root().join("api/assets/console");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text
            .lines()
            .filter(|l| l.trim_start().starts_with("import "))
        {
            assert!(line.contains("from './"), "{}: {line}", path.display());
        }
        assert!(
            !text.contains("innerHTML"),
            "{}: text must never be parsed as HTML",
            path.display()
        );
        assert!(
            !text.contains("https://"),
            "{}: refers to another origin",
            path.display()
        );
    }
}

/// Every text the console shows exists in Portuguese and in English.
#[test]
fn both_languages_have_every_text() {
    let source =
        std::fs::read_to_string(workspace_root().join("api/assets/console/i18n.js")).unwrap();
    let block = |start: &str, end: &str| -> std::collections::BTreeSet<String> {
        let from = source.find(start).unwrap() + start.len();
        let to = from + source[from..].find(end).unwrap();
        source[from..to]
            .lines()
            .filter_map(|l| {
                l.trim()
                    .strip_prefix('\'')
                    .and_then(|l| l.split('\'').next())
            })
            .map(str::to_owned)
            .collect()
    };
    let portuguese = block("'pt-BR': {", "\n  },");
    let english = block("  en: {", "\n  },");
    assert!(portuguese.len() > 100, "parsed {} keys", portuguese.len());
    assert_eq!(
        portuguese
            .symmetric_difference(&english)
            .collect::<Vec<_>>(),
        Vec::<&String>::new()
    );
    // And every key the modules ask for exists.
    let dir = workspace_root().join("api/assets/console");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (at, _) in text.match_indices("t('") {
            if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue; // `Event('…')` and the like
            }
            let key = text[at + 3..].split('\'').next().unwrap();
            assert!(portuguese.contains(key), "missing text {key}");
        }
    }
}

// ---- in the browser --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_completes_the_wizard_and_sees_a_sale_on_the_pipeline() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    set_password(&app, &app.admin_id).await;
    let Some(browser) = Browser::start("wizard", &app.base).await else {
        return;
    };
    let b = &browser;
    let app = &app;
    browser
        .run(async move {
            b.sign_in("admin@acme.test", PASSWORD).await;
            // Portuguese first; English on demand.
            b.find_text("#nav", "Integrações").await;
            b.click("#language").await;
            b.find_text("#nav", "Integrations").await;
            b.click("#language").await;
            b.find_text("#nav", "Funil").await;

            // 1. Events.
            b.click("a[href='#/wizard']").await;
            b.type_into("#integration-name", "Curso X").await;
            let picked = b.find("#event-PURCHASE_BILLET_PRINTED").await;
            assert_eq!(
                picked.prop("checked").await.unwrap().as_deref(),
                Some("true")
            );
            b.shot("wizard-events").await;
            b.click("#next").await;
            // 2. Product.
            b.find("#product-id").await;
            assert!(
                !b.find("#next").await.is_enabled().await.unwrap(),
                "no product yet"
            );
            b.type_into("#product-id", "1355458").await;
            b.type_into("#product-hottok", FIXTURE_HOTTOK).await;
            b.type_into("#product-name", "Curso X").await;
            b.click("#add-product").await;
            b.find_text("#wizard-products", "1355458").await;
            b.shot("wizard-product").await;
            b.click("#next").await;
            // 3. Settings.
            b.type_into("#integration-label", "lead-hotmart").await;
            b.click("#tag-with-product").await;
            b.shot("wizard-settings").await;
            b.click("#next").await;
            // 4. The webhook URL, and the wait for Hotmart's test event.
            let url = b.value("#wizard-url").await;
            assert!(url.contains("/webhooks/hotmart/"), "{url}");
            b.find_text("#test-event", "Aguardando").await;
            assert!(!b.find("#finish").await.is_enabled().await.unwrap());
            b.shot("wizard-waiting").await;
            let mut test_event = fixture("purchase-billet-printed/1.json");
            test_event["id"] = json!("console-test-event");
            test_event["data"]["product"]["id"] = json!(0);
            let (status, _) = app
                .post_webhook(&url, Some(FIXTURE_HOTTOK), test_event.to_string())
                .await;
            assert_eq!(status, 200);
            b.find("#test-event.received").await;
            b.shot("wizard-received").await;
            b.click("#finish").await;
            b.find_text("h1", "Ativa").await;
            b.shot("integration").await;

            // A real sale: a Pix waiting for payment, on the pipeline with its payment data.
            let (status, _) = app
                .post_webhook(
                    &url,
                    Some(FIXTURE_HOTTOK),
                    fixture("purchase-billet-printed/1.json").to_string(),
                )
                .await;
            assert_eq!(status, 200);
            let mut hostile = fixture("purchase-billet-printed/5.json");
            hostile["data"]["buyer"]["name"] =
                json!("<img src=x onerror=\"document.title='pwned'\">");
            app.post_webhook(&url, Some(FIXTURE_HOTTOK), hostile.to_string())
                .await;
            app.wait_until_processed().await;
            b.click("a[href='#/pipeline']").await;
            let card = b.find_text(".deal-card", "Maria Rodrigues").await;
            let text = card.text().await.unwrap();
            assert!(text.contains("R$"), "value shown: {text}");
            card.find(fantoccini::Locator::Css(".pix"))
                .await
                .expect("a Pix code to copy");
            // Buyer-supplied text is shown as text, never run.
            b.find_text(".deal-card", "<img src=x").await;
            assert_eq!(
                b.script("return document.querySelectorAll('#board img').length")
                    .await,
                0
            );
            assert_ne!(b.script("return document.title").await, "pwned");
            b.shot("pipeline").await;

            // The deal's page and its timeline.
            card.find(fantoccini::Locator::Css("a.title"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            // In the console's words, not the platform's codes.
            b.find_text("#timeline", "Boleto/Pix gerado").await;
            b.find_text("#timeline", "Negócio criado").await;
            b.shot("deal").await;
            b.click("#sign-out").await;
            b.find("#login").await;
        })
        .await;
}

/// A sale whose processing fails until an operator fixes the cause, then is replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_inspected_and_replayed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    set_password(&app, &app.admin_id).await;
    let (integration, url) = app.fixture_integration().await;
    app.break_processing().await;
    let mut body = fixture("purchase-approved/1.json");
    body["hottok"] = json!(FIXTURE_HOTTOK);
    let (status, _) = app
        .post_webhook(&url, Some(FIXTURE_HOTTOK), body.to_string())
        .await;
    assert_eq!(status, 200);
    wait_for_status(&app, &integration, "FAILED").await;
    app.heal_processing().await;

    let Some(browser) = Browser::start("replay", &app.base).await else {
        return;
    };
    let b = &browser;
    let app = &app;
    let integration = &integration;
    browser
        .run(async move {
            b.sign_in("admin@acme.test", PASSWORD).await;
            b.open(&format!(
                "/#/integrations/{integration}/deliveries?status=FAILED"
            ))
            .await;
            let row = b.find("tr[data-status='FAILED']").await;
            assert!(row.text().await.unwrap().contains("injected failure"));
            row.find(fantoccini::Locator::Css("button.link"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            let payload = b.find_text("tr.payload pre", "PURCHASE_APPROVED").await;
            let shown = payload.text().await.unwrap();
            assert!(!shown.contains(FIXTURE_HOTTOK), "the hottok is masked");
            b.shot("failed-delivery").await;
            b.click("tr[data-status='FAILED'] button.replay").await;
            b.find_text("#toast", "reprocessamento").await;
            app.wait_until_processed().await;
            wait_for_status(app, integration, "PROCESSED").await;
            b.open(&format!(
                "/#/integrations/{integration}/deliveries?status=PROCESSED"
            ))
            .await;
            b.find("tr[data-status='PROCESSED']").await;
            b.shot("replayed").await;
        })
        .await;
}

async fn wait_for_status(app: &TestApp, integration: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let data = app
            .ok(
                &app.admin,
                "query($id: ID!) { integration(id: $id) { deliveries { nodes { status } } } }",
                json!({"id": integration}),
            )
            .await;
        if data["integration"]["deliveries"]["nodes"][0]["status"] == status {
            return;
        }
        assert!(Instant::now() < deadline, "no {status} delivery: {data}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_does_not_see_a_hidden_group() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (open, open_url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let (hidden, hidden_url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    for (id, name) in [(&open, "Aberto a todos"), (&hidden, "Diretoria")] {
        app.ok(
            &app.admin,
            "mutation($id: ID!, $n: String!) { updateIntegration(id: $id, input: {name: $n}) { id } }",
            json!({"id": id, "n": name}),
        )
        .await;
    }
    let hidden_group = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { group { id } } }",
            json!({"id": hidden}),
        )
        .await["integration"]["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        &app.admin,
        "mutation($g: ID!) { setGroupVisibility(groupId: $g, input: {everyone: false, userIds: []}) { id } }",
        json!({"g": hidden_group}),
    )
    .await;
    let now = Utc::now().timestamp_millis();
    app.post_webhook(
        &open_url,
        Some("hottok-secret-0001"),
        purchase("e1", "PURCHASE_APPROVED", now, "visivel@x.test", "HP1").to_string(),
    )
    .await;
    app.post_webhook(
        &hidden_url,
        Some("hottok-secret-0001"),
        purchase("e2", "PURCHASE_APPROVED", now, "secreto@x.test", "HP2").to_string(),
    )
    .await;
    app.wait_until_processed().await;
    let (member, _) = app.user("member@acme.test", "MEMBER").await;
    set_password(&app, &member).await;

    let Some(browser) = Browser::start("member", &app.base).await else {
        return;
    };
    let b = &browser;
    browser
        .run(async move {
            b.sign_in("member@acme.test", PASSWORD).await;
            assert_eq!(
                b.count("a[href='#/wizard']").await,
                0,
                "members create no integration"
            );
            b.find_text(".deal-card", "visivel@x.test").await;
            let groups = b.find("#filter-group").await.text().await.unwrap();
            assert!(
                groups.contains("Aberto a todos") && !groups.contains("Diretoria"),
                "{groups}"
            );
            // Asking for the hidden group by its id shows nothing of it.
            b.open(&format!("/#/pipeline?group={hidden_group}")).await;
            b.find_text(".deal-card", "visivel@x.test").await;
            let board = b.find("#board").await.text().await.unwrap();
            assert!(!board.contains("secreto@x.test"), "{board}");
            b.shot("member-pipeline").await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_shows_live_progress_until_it_succeeds() {
    let hotmart = FakeHotmart::start().await;
    let day = 86_400_000;
    let now = Utc::now().timestamp_millis();
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        for n in 0..120 {
            sales.push(sale(
                &format!("HPC{n:05}"),
                "APPROVED",
                1_234_567,
                &format!("buyer{n}@x.test"),
                now - (n % 25 + 1) * day,
                97.0,
            ));
        }
    }
    let app = TestApp::spawn_with_hotmart(Backend::Sqlite, &hotmart.base).await;
    set_password(&app, &app.admin_id).await;
    let (integration, _) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;

    let Some(browser) = Browser::start("import", &app.base).await else {
        return;
    };
    let b = &browser;
    let integration = &integration;
    browser
        .run(async move {
            b.sign_in("admin@acme.test", PASSWORD).await;
            b.open(&format!("/#/integrations/{integration}")).await;
            assert!(
                !b.find("#start-import").await.is_enabled().await.unwrap(),
                "no credentials yet"
            );
            b.type_into("#client-id", CLIENT_ID).await;
            b.type_into("#client-secret", CLIENT_SECRET).await;
            b.click("#save-credentials").await;
            b.find_text("#credentials-state", "não são exibidas").await;
            // The secret never comes back to the page.
            assert_eq!(b.value("#client-secret").await, "");
            b.click("#start-import").await;
            let done = b.find("#import-runs li[data-status='SUCCEEDED']").await;
            let text = done.text().await.unwrap();
            assert!(
                text.contains("120 vendas vistas") && text.contains("120 negócios criados"),
                "{text}"
            );
            let (value, max) = (
                done.find(fantoccini::Locator::Css("progress"))
                    .await
                    .unwrap()
                    .attr("value")
                    .await
                    .unwrap(),
                done.find(fantoccini::Locator::Css("progress"))
                    .await
                    .unwrap()
                    .attr("max")
                    .await
                    .unwrap(),
            );
            assert_eq!(value, max, "a finished run fills its bar");
            b.shot("import").await;
            // On a phone the page folds into one column: nothing wider than the screen.
            b.client.set_window_size(390, 844).await.unwrap();
            b.open(&format!("/#/integrations/{integration}")).await;
            b.find("#import-form").await;
            b.assert_fits("the integration page").await;
            b.shot("integration-phone").await;
        })
        .await;
}

/// What a newcomer does after `cargo run -p checkout-crm`: open `/`, sign in with
/// admin@example.com and the password the first start wrote, and find the way to the
/// wizard — against the real binary with no configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_signs_in_with_the_generated_password() {
    use tests::process::{Process, crm, free_port, wait_healthy};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let url = format!(
        "sqlite://{}",
        dir.path().join("data/checkout-crm.db").display()
    );
    let mut server: Process = crm(
        dir.path(),
        &url,
        "http://127.0.0.1:9",
        &[],
        &["serve", "--bind", &bind],
    );
    let base = format!("http://{bind}");
    wait_healthy(&base).await;
    let password = std::fs::read_to_string(dir.path().join("data/admin-password")).unwrap();

    if let Some(browser) = Browser::start("newcomer", &base).await {
        let b = &browser;
        let password = password.trim();
        browser
            .run(async move {
                // A wrong password first: a clear message, the form stays.
                b.open("/").await;
                b.type_into("#email", "admin@example.com").await;
                b.type_into("#password", "not-the-password").await;
                b.click("#login button[type=submit]").await;
                b.find_text("#login .error", "incorretos").await;
                b.sign_in("admin@example.com", password).await;
                b.find_text("main", "Nenhum funil").await;
                b.click("a[href='#/integrations']").await;
                b.click("#integrations-empty a").await;
                b.find("#integration-name").await;
                b.shot("newcomer-wizard").await;
            })
            .await;
    }
    server.signal("TERM");
    server.exited(Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_claims_moves_notes_and_wins_a_deal_from_its_page() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_BILLET_PRINTED", "PURCHASE_APPROVED"], json!({}))
        .await;
    let now = Utc::now().timestamp_millis();
    app.post_webhook(
        &url,
        Some("hottok-secret-0001"),
        purchase("e1", "PURCHASE_BILLET_PRINTED", now, "lead@x.test", "HP1").to_string(),
    )
    .await;
    app.wait_until_processed().await;
    let deal = app
        .ok(&app.admin, "query { deals { nodes { id } } }", json!({}))
        .await["deals"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let origin = app
        .ok(
            &app.admin,
            "query($d: ID!) { deal(id: $d) { origin { id } group { id } } }",
            json!({"d": deal}),
        )
        .await["deal"]
        .clone();
    let board_path = format!(
        "/#/pipeline?group={}&origin={}",
        origin["group"]["id"].as_str().unwrap(),
        origin["origin"]["id"].as_str().unwrap()
    );
    let (seller, _) = app.user("vendedora@acme.test", "MEMBER").await;
    set_password(&app, &seller).await;

    let Some(browser) = Browser::start("seller", &app.base).await else {
        return;
    };
    let b = &browser;
    let deal_path = format!("/#/deals/{deal}");
    browser
        .run(async move {
            b.sign_in("vendedora@acme.test", PASSWORD).await;
            b.open(&deal_path).await;
            let whatsapp = b
                .find("#whatsapp")
                .await
                .attr("href")
                .await
                .unwrap()
                .unwrap();
            assert!(
                whatsapp.starts_with("https://wa.me/5511999990000?text="),
                "{whatsapp}"
            );
            assert_eq!(
                b.script("return document.activeElement.tagName").await,
                "H1",
                "an opened deal puts the focus on its heading"
            );
            assert_eq!(
                b.count("#move").await,
                0,
                "an unowned deal is claimed first"
            );
            // A member sees no set-up page, in the menu or by address.
            for admin_page in ["#/team", "#/setup", "#/integrations", "#/wizard"] {
                let link = format!("a[href='{admin_page}']");
                assert_eq!(b.count(&link).await, 0, "{admin_page} in a member's menu");
            }
            b.open("/#/team").await;
            b.find_text("main", "Não encontrado").await;
            b.open(&deal_path).await;
            b.click("#claim").await;
            b.find("#move").await;
            // The board of the origin by stages: the card moves with its own control.
            b.open(&board_path).await;
            b.find_text(
                "section.column[data-origin='Novo'] .deal-card",
                "lead@x.test",
            )
            .await;
            b.script(
                "const s = document.querySelector('.deal-card .mover select'); \
                 s.value = [...s.options].find((o) => o.text === 'Em contato').value;",
            )
            .await;
            b.click(".deal-card .mover button").await;
            b.find_text(
                "section.column[data-origin='Em contato'] .deal-card",
                "lead@x.test",
            )
            .await;
            assert_eq!(
                b.script("return [...document.querySelectorAll('button.more')].filter((m) => m.offsetParent !== null).length").await,
                0,
                "no \"Carregar mais\" where there is no more"
            );
            // And by drag and drop, from its grip to the next column (on a board drawn
            // after the move, so no live redraw of it is still on its way).
            b.open(&board_path).await;
            b.find_text(
                "section.column[data-origin='Em contato'] .deal-card",
                "lead@x.test",
            )
            .await;
            b.drag(
                ".deal-card .grip",
                "section.column[data-origin='Negociação']",
            )
            .await;
            b.find_text(
                "section.column[data-origin='Negociação'] .deal-card",
                "lead@x.test",
            )
            .await;
            b.find_text("#toast", "Negociação").await;
            let age = b.find(".deal-card .age").await.text().await.unwrap();
            assert!(age.starts_with("há") || age.contains("agora"), "{age}");
            b.shot("seller-board").await;
            b.open(&deal_path).await;
            b.find("#move").await;
            b.script(
                "const s = document.querySelector('#move-stage'); \
                 s.value = [...s.options].find((o) => o.text.endsWith('Em contato')).value;",
            )
            .await;
            b.click("#move").await;
            b.find_text("dl", "Em contato").await;
            b.type_into("#note-text", "Cliente pediu o Pix de novo")
                .await;
            b.click("#add-note").await;
            b.find_text("#timeline", "Cliente pediu o Pix de novo")
                .await;
            b.click("#win").await;
            b.find("#reopen").await;
            b.find_text("h1", "Ganho").await;
            b.shot("seller-deal").await;
        })
        .await;
    let timeline = app
        .ok(
            &app.admin,
            "query($d: ID!) { deal(id: $d) { status stage { name } owner { id } timeline { effect author { id } } } }",
            json!({"d": deal}),
        )
        .await["deal"]
        .clone();
    assert_eq!(timeline["status"], "WON");
    assert_eq!(timeline["owner"]["id"], seller.as_str());
    let by_seller: Vec<&str> = timeline["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["author"]["id"] == seller.as_str())
        .map(|e| e["effect"].as_str().unwrap())
        .collect();
    assert_eq!(
        by_seller,
        [
            "OWNER_CHANGED",
            "STAGE_MOVED",
            "STAGE_MOVED",
            "STAGE_MOVED",
            "NOTE",
            "WON"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_sets_up_kiwify_with_its_token_and_sees_a_cart_on_the_pipeline() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    set_password(&app, &app.admin_id).await;
    let Some(browser) = Browser::start("wizard-kiwify", &app.base).await else {
        return;
    };
    let b = &browser;
    let app = &app;
    const TOKEN: &str = "w9i3pvutvxe-token";
    browser
        .run(async move {
            b.sign_in("admin@acme.test", PASSWORD).await;
            b.click("a[href='#/wizard']").await;
            // 1. Kiwify, and only the events Kiwify sends.
            b.script("const s = document.querySelector('#integration-platform'); s.value = 'KIWIFY'; s.dispatchEvent(new Event('change'));")
                .await;
            b.find_text("#platform-help", "token").await;
            b.find("#event-CART_ABANDONED").await;
            assert_eq!(b.count("#event-PURCHASE_COMPLETE").await, 0, "Kiwify never sends it");
            assert_eq!(b.count("#event-PURCHASE_OUT_OF_SHOPPING_CART").await, 0);
            b.type_into("#integration-name", "Loja Kiwify").await;
            b.shot("kiwify-events").await;
            b.click("#next").await;
            // 2. A product (no hottok) and the webhook token; next waits for both.
            b.find_text("h1", "Kiwify").await;
            assert_eq!(b.count("#product-hottok").await, 0);
            b.type_into("#product-id", "5f0c7b2e-8a4d-4c1e-9b3a-2d6f1e8c7a90").await;
            b.click("#add-product").await;
            b.find_text("#wizard-products", "5f0c7b2e").await;
            assert!(!b.find("#next").await.is_enabled().await.unwrap(), "no token yet");
            b.type_into("#webhook-secret", TOKEN).await;
            b.click("#save-secret").await;
            b.find("#secret-state.received").await;
            b.shot("kiwify-product").await;
            b.click("#next").await;
            b.click("#next").await;
            // 4. The Kiwify URL; a signed delivery proves the link.
            let url = b.value("#wizard-url").await;
            assert!(url.contains("/webhooks/kiwify/"), "{url}");
            b.find_text("#test-event", "Kiwify").await;
            let cart = std::fs::read_to_string(workspace_root().join("tests/fixtures/kiwify/abandoned-cart.json")).unwrap();
            let signature = entity::kiwify::webhook::sign(TOKEN.as_bytes(), cart.as_bytes());
            let path = url.trim_start_matches("https://crm.example.com");
            let response = app
                .http
                .post(format!("{}{path}?signature={signature}", app.base))
                .header("content-type", "application/json")
                .body(cart)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            b.find("#test-event.received").await;
            b.click("#finish").await;
            b.find_text("h1", "Ativa").await;
            // The draft did not process it; replaying the delivery does, once active.
            let id = app
                .ok(&app.admin, "{ integrations { id } }", json!({}))
                .await["integrations"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let deliveries = app
                .ok(&app.admin, "query($id: ID!) { integration(id: $id) { deliveries { nodes { id } } } }", json!({"id": id}))
                .await;
            let delivery = deliveries["integration"]["deliveries"]["nodes"][0]["id"].clone();
            app.ok(&app.admin, "mutation($id: ID!) { replayDelivery(id: $id) { id } }", json!({"id": delivery}))
                .await;
            app.wait_until_processed().await;
            b.click("a[href='#/pipeline']").await;
            b.find_text(".deal-card", "Luana Martins").await;
            b.shot("kiwify-pipeline").await;
            // The integration's page: Kiwify's credentials take the account id, the token
            // can be changed, and the import offers only what Kiwify's sales list reports.
            b.open(&format!("/#/integrations/{id}")).await;
            b.find("#account-id").await;
            b.find("#webhook-secret").await;
            b.find("#import-event-PURCHASE_APPROVED").await;
            assert_eq!(b.count("#import-event-CART_ABANDONED").await, 0);
            assert_eq!(b.count("#product-hottok").await, 0);
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_finds_a_buyer_schedules_and_completes_the_day_s_activities() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_BILLET_PRINTED", "PURCHASE_APPROVED"], json!({}))
        .await;
    let now = Utc::now().timestamp_millis();
    app.post_webhook(
        &url,
        Some("hottok-secret-0001"),
        purchase("e1", "PURCHASE_BILLET_PRINTED", now, "lead@x.test", "HP1").to_string(),
    )
    .await;
    app.wait_until_processed().await;
    let deal = app
        .ok(&app.admin, "query { deals { nodes { id } } }", json!({}))
        .await["deals"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (seller, token) = app.user("vendedora@acme.test", "MEMBER").await;
    set_password(&app, &seller).await;
    app.ok(
        &token,
        "mutation($d: ID!) { claimDeal(dealId: $d) { id } }",
        json!({"d": deal}),
    )
    .await;
    // A call that was due an hour ago: overdue in "Minhas atividades".
    let due = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    app.ok(
        &token,
        "mutation($d: ID!, $i: ScheduleActivityInput!) { scheduleActivity(dealId: $d, input: $i) { id } }",
        json!({"d": deal, "i": {"kind": "CALL", "title": "Ligar sobre o boleto", "dueAt": due, "assigneeId": seller}}),
    )
    .await;
    let place = app
        .ok(
            &app.admin,
            "query($d: ID!) { deal(id: $d) { group { id } origin { id stages { id name } } } }",
            json!({"d": deal}),
        )
        .await["deal"]
        .clone();
    let board_path = format!(
        "/#/pipeline?group={}&origin={}",
        place["group"]["id"].as_str().unwrap(),
        place["origin"]["id"].as_str().unwrap()
    );
    let in_contact = place["origin"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Em contato")
        .unwrap()["id"]
        .clone();
    let Some(browser) = Browser::start("activities", &app.base).await else {
        return;
    };
    let b = &browser;
    let (app_ref, deal_ref) = (&app, &deal);
    browser
        .run(async move {
            b.sign_in("vendedora@acme.test", PASSWORD).await;
            // A member sees no set-up pages in the menu.
            assert_eq!(b.count("#nav a[href='#/integrations']").await, 0);
            assert_eq!(b.count("#nav a[href='#/wizard']").await, 0);
            b.find_text("#activities-badge", "1").await;
            b.click("#nav-activities").await;
            b.find_text("#activities-overdue", "Ligar sobre o boleto")
                .await;
            b.shot("activities").await;
            b.click("#activities-overdue button[data-complete]").await;
            b.find_text("#activities-overdue", "Nenhuma atividade")
                .await;
            // The buyer calls in: found by the phone without the ninth digit.
            b.type_into("#search", "(11) 9999-0000\u{E007}").await;
            b.find_text("#search-results", "lead@x.test").await;
            b.click("#search-results a").await;
            // A follow-up for tomorrow, from the deal page.
            b.find("#activities").await;
            b.click("#activities summary").await;
            b.type_into("#activity-title", "Enviar o Pix de novo").await;
            b.click("#schedule").await;
            b.find_text("#deal-activities", "Enviar o Pix de novo")
                .await;
            b.shot("deal-activities").await;
            // The board stays current without a reload: a new lead from a webhook, and a
            // colleague moving the seller's deal.
            b.open(&board_path).await;
            b.find_text("section.column[data-origin='Novo'] .deal-card", "lead@x.test")
                .await;
            b.script("window.notReloaded = true;").await;
            app_ref
                .post_webhook(
                    &url,
                    Some("hottok-secret-0001"),
                    purchase("e2", "PURCHASE_BILLET_PRINTED", now, "novo@x.test", "HP2")
                        .to_string(),
                )
                .await;
            app_ref
                .ok(
                    &app_ref.admin,
                    "mutation($d: ID!, $s: ID!) { moveDeal(dealId: $d, input: {stageId: $s}) { id } }",
                    json!({"d": deal_ref, "s": in_contact}),
                )
                .await;
            b.find_text("section.column[data-origin='Novo'] .deal-card", "novo@x.test")
                .await;
            b.find_text("section.column[data-origin='Em contato'] .deal-card", "lead@x.test")
                .await;
            assert_eq!(b.script("return window.notReloaded === true").await, true);
            b.shot("live-board").await;
            // No sale after all: lost, with the reason from the origin's list.
            b.open(&format!("/#/deals/{deal_ref}")).await;
            b.find("#lose-reason").await;
            b.script(
                "const s = document.querySelector('#lose-reason'); \
                 s.value = [...s.options].find((o) => o.text === 'Sem dinheiro no momento').value;",
            )
            .await;
            b.type_into("#lose-note", "Volta a falar no mês que vem").await;
            b.click("#lose").await;
            b.find_text("h1", "Perdido").await;
            b.find_text("#timeline", "Sem dinheiro no momento").await;
        })
        .await;
    let lost = app
        .ok(
            &app.admin,
            "query($d: ID!) { deal(id: $d) { status lostReason } }",
            json!({"d": deal}),
        )
        .await;
    assert_eq!(lost["deal"]["status"], "LOST", "{lost}");
    assert_eq!(
        lost["deal"]["lostReason"], "Sem dinheiro no momento",
        "{lost}"
    );
    let open = app
        .ok(
            &app.admin,
            "query($d: ID!) { activities(filter: {dealId: $d}) { nodes { title doneAt } } }",
            json!({"d": deal}),
        )
        .await;
    let nodes = open["activities"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(
        nodes
            .iter()
            .any(|a| a["title"] == "Ligar sobre o boleto" && !a["doneAt"].is_null()),
        "the overdue call was completed: {nodes:?}"
    );
}

/// GraphiQL renders under its content policy (its inline script runs by its nonce) and
/// refuses to be framed by another page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_renders_under_its_policy_and_cannot_be_framed() {
    let app = TestApp::spawn_without_workers(Backend::Sqlite).await;
    if let Some(browser) = Browser::start("graphiql", &app.base).await {
        let b = &browser;
        browser
            .run(async move {
                b.open("/graphql").await;
                b.find(".graphiql-container").await;
                // A page that frames it: the frame stays empty.
                let framed = b
                    .script(
                        "const f = document.createElement('iframe'); f.src = '/graphql'; \
                         f.id = 'framed'; document.body.appendChild(f); return true;",
                    )
                    .await;
                assert_eq!(framed, json!(true));
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let inside = b
                    .script(
                        "try { const d = document.getElementById('framed').contentDocument; \
                         return d && d.querySelector('.graphiql-container') ? 'rendered' : 'empty'; } \
                         catch (e) { return 'blocked'; }",
                    )
                    .await;
                assert_ne!(inside, json!("rendered"), "framing is refused");
            })
            .await;
    }
}

/// Words and codes that must not show in the Portuguese console: raw enum names (a word in
/// capitals with an underscore) and English words of the console's own texts.
const ENGLISH: &[&str] = &[
    "Loading",
    "Save",
    "Delete",
    "Stage",
    "Owner",
    "Pipeline",
    "Deal",
    "Activities",
    "Search",
    "Sign out",
    "Settings",
    "Unassigned",
    "Report",
    "Team",
    "Password",
    "Role",
    "Won",
    "Lost",
    "Open",
    "Error",
    "Something went wrong",
    "Not found",
];

/// What of `text` is English or a raw code.
fn not_portuguese(text: &str) -> Vec<String> {
    let mut found: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| {
            w.contains('_') && w.len() > 3 && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .map(str::to_owned)
        .collect();
    let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).collect();
    for english in ENGLISH {
        let hit = if english.contains(' ') {
            text.contains(english)
        } else {
            words.contains(english)
        };
        if hit {
            found.push((*english).to_owned());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_runs_the_team_and_the_pipeline_and_reads_the_recovery_report() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    set_password(&app, &app.admin_id).await;
    let (integration, url) = app
        .active_integration(&["PURCHASE_BILLET_PRINTED", "PURCHASE_APPROVED"], json!({}))
        .await;
    // A boleto printed, then paid: a sale recovered from a pre-sale origin.
    let now = Utc::now().timestamp_millis();
    // And a refund nobody chose to receive: ignored, with a reason the deliveries page
    // shows in Portuguese.
    for (id, event, at) in [
        ("r1", "PURCHASE_BILLET_PRINTED", now - 3_600_000),
        ("r2", "PURCHASE_APPROVED", now - 60_000),
        ("r3", "PURCHASE_REFUNDED", now - 30_000),
    ] {
        app.post_webhook(
            &url,
            Some("hottok-secret-0001"),
            purchase(id, event, at, "paga@x.test", "HPR1").to_string(),
        )
        .await;
    }
    app.wait_until_processed().await;
    let setup = app
        .ok(
            &app.admin,
            "{ groups { origins { id name } } deals { nodes { id status } } }",
            json!({}),
        )
        .await;
    assert_eq!(setup["deals"]["nodes"][0]["status"], "WON");
    let deal = setup["deals"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pending = setup["groups"][0]["origins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Boleto/Pix pendente")
        .expect("the pending payment origin")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let Some(browser) = Browser::start("admin-setup", &app.base).await else {
        return;
    };
    let b = &browser;
    let paths = [
        "/#/pipeline".to_owned(),
        format!("/#/pipeline?origin={pending}"),
        format!("/#/deals/{deal}"),
        "/#/activities".to_owned(),
        "/#/search?q=paga".to_owned(),
        "/#/report".to_owned(),
        "/#/team".to_owned(),
        "/#/setup".to_owned(),
        "/#/account".to_owned(),
        "/#/integrations".to_owned(),
        format!("/#/integrations/{integration}"),
        format!("/#/integrations/{integration}/deliveries"),
        "/#/wizard".to_owned(),
    ];
    let template = "Oi {primeiro_nome}, seu {produto} te espera";
    browser
        .run(async move {
            b.sign_in("admin@acme.test", PASSWORD).await;
            // The team: invite a seller with a first password, then make her an admin.
            b.click("a[href='#/team']").await;
            b.type_into("#invite-name", "Vera Lúcia").await;
            b.type_into("#invite-email", "vera@acme.test").await;
            b.type_into("#invite-password", "vera-password-01").await;
            b.click("#invite").await;
            b.find_text("#team", "vera@acme.test").await;
            b.script(
                "const row = [...document.querySelectorAll('#team tr')].find((r) => r.textContent.includes('vera@')); \
                 row.querySelector('select').value = 'ADMIN'; row.querySelector('[data-role-form] button').click();",
            )
            .await;
            b.find_text("#toast", "Salvo").await;
            b.shot("team").await;
            // The pipeline's set-up: a new stage and the WhatsApp message, with its preview.
            b.click("a[href='#/setup']").await;
            b.type_into(&format!("#new-stage-{pending}"), "Proposta enviada")
                .await;
            b.click(&format!("#add-stage-{pending}")).await;
            let added = "section[data-origin-setup='Boleto/Pix pendente'] .stages li:nth-child(4) input";
            b.find(added).await;
            assert_eq!(b.value(added).await, "Proposta enviada");
            b.type_into(&format!("#template-{pending}"), template).await;
            b.find_text(&format!("#preview-{pending}"), "Oi Maria, seu Curso de Exemplo te espera")
                .await;
            b.click(&format!("#save-template-{pending}")).await;
            b.find_text("#toast", "Salvo").await;
            b.shot("setup").await;
            // The board of that origin has the new stage as a column.
            b.open(&format!("/#/pipeline?origin={pending}")).await;
            b.find("section.column[data-origin='Proposta enviada']").await;
            // The board's deals as a spreadsheet, downloaded with the session cookie.
            b.click("#export-deals").await;
            b.find_text("#export-deals-file", "Baixar CSV").await;
            let csv = b
                .client
                .execute_async(
                    "const done = arguments[arguments.length - 1]; \
                     fetch(document.querySelector('#export-deals-file').href) \
                       .then((r) => r.arrayBuffer().then((b) => done(r.status + ' ' + \
                         new TextDecoder('utf-8', { ignoreBOM: true }).decode(b))));",
                    vec![],
                )
                .await
                .unwrap();
            let csv = csv.as_str().unwrap();
            assert!(csv.starts_with("200 \u{feff}Comprador;E-mail;Telefone"), "{csv}");
            // The report: the recovered sale, in numbers and in the chart.
            b.click("a[href='#/report']").await;
            b.find_text("#recovered-deals", "1").await;
            b.find_text("#recovered-value", "R$").await;
            b.find_text("#report-origins", "Boleto/Pix pendente").await;
            assert!(b.count("#report-chart rect").await >= 1, "bars drawn");
            b.shot("report").await;
            // Every page on a 390 px phone: nothing wider than the screen, no English.
            b.resize(390, 844).await;
            for path in &paths {
                b.open(path).await;
                b.find("main h1").await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                b.assert_fits(path).await;
                let text = b
                    .script("return document.body.innerText")
                    .await
                    .as_str()
                    .unwrap()
                    .to_owned();
                let english = not_portuguese(&text);
                assert!(english.is_empty(), "{path} shows {english:?}:\n{text}");
                b.shot("phone").await;
            }
            b.open(&format!("/#/integrations/{integration}/deliveries")).await;
            b.find_text("td.reason", "O evento “Compra reembolsada” não foi escolhido")
                .await;
        })
        .await;
    let role = app
        .ok(&app.admin, "{ users { email role } }", json!({}))
        .await;
    assert!(
        role["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["email"] == "vera@acme.test" && u["role"] == "ADMIN"),
        "{role}"
    );
    let origin = app
        .ok(
            &app.admin,
            "{ groups { origins { name messageTemplate stages { name } } } }",
            json!({}),
        )
        .await;
    let pending = origin["groups"][0]["origins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Boleto/Pix pendente")
        .unwrap()
        .clone();
    assert_eq!(pending["messageTemplate"], template);
    assert_eq!(
        pending["stages"].as_array().unwrap().last().unwrap()["name"],
        "Proposta enviada"
    );
}

#[test]
fn the_portuguese_check_catches_codes_and_english() {
    assert_eq!(
        not_portuguese("Funil · PURCHASE_APPROVED · Salvar"),
        ["PURCHASE_APPROVED"]
    );
    assert_eq!(not_portuguese("Loading… Sign out"), ["Loading", "Sign out"]);
    assert!(not_portuguese("Funil Aberto Ganho Carrinho abandonado R$ 10,00").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_answers_a_buyer_s_data_request_and_reads_the_audit_log() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    set_password(&app, &app.admin_id).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_BILLET_PRINTED"], json!({}))
        .await;
    let mut body = purchase(
        "lgpd-1",
        "PURCHASE_BILLET_PRINTED",
        Utc::now().timestamp_millis(),
        "titular@x.test",
        "HPL1",
    );
    body["data"]["buyer"]["name"] = json!("Rosa Titular");
    app.post_webhook(&url, Some("hottok-secret-0001"), body.to_string())
        .await;
    app.wait_until_processed().await;
    let deal = app
        .ok(&app.admin, "query { deals { nodes { id } } }", json!({}))
        .await["deals"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_email = app.ok(&app.admin, "{ me { email } }", json!({})).await["me"]["email"]
        .as_str()
        .unwrap()
        .to_owned();
    let Some(browser) = Browser::start("data-rights", &app.base).await else {
        return;
    };
    let b = &browser;
    let deal_path = format!("/#/deals/{deal}");
    browser
        .run(async move {
            b.sign_in(&admin_email, PASSWORD).await;
            b.open(&deal_path).await;
            b.find_text("#data-rights h2", "Dados do comprador (LGPD)")
                .await;
            b.click("#data-report").await;
            b.find_text("#data-report-json", "titular@x.test").await;
            b.find_text("#data-report-json", "Rosa Titular").await;
            assert!(
                b.find("#data-report-file")
                    .await
                    .attr("href")
                    .await
                    .unwrap()
                    .unwrap()
                    .starts_with("blob:"),
                "the report can be saved as a file"
            );
            // Without the confirmation, nothing is erased.
            b.type_into("#erase-reason", "Pedido da titular por e-mail")
                .await;
            b.click("#erase").await;
            assert_eq!(b.count("#erased-note").await, 0);
            b.click("#erase-confirm").await;
            b.click("#erase").await;
            b.find_text("#erased-note", "foram apagados em").await;
            let heading = b.find("main h1").await.text().await.unwrap();
            assert!(!heading.contains("Rosa"), "{heading}");
            b.shot("erased").await;
            b.open("/#/audit").await;
            b.find_text(
                "#audit tr[data-action='contact.erased']",
                "Dados do comprador apagados",
            )
            .await;
            b.find_text(
                "#audit tr[data-action='contact.erased']",
                "Pedido da titular",
            )
            .await;
            b.find_text(
                "#audit tr[data-action='contact.data_reported']",
                "Relatório LGPD gerado",
            )
            .await;
            b.resize(390, 844).await;
            b.open("/#/audit").await;
            b.find("#audit").await;
            b.assert_fits("/#/audit").await;
        })
        .await;
    let left = app
        .ok(
            &app.admin,
            "query { contacts { nodes { email name } } }",
            json!({}),
        )
        .await;
    assert!(!left.to_string().contains("titular@x.test"), "{left}");
}

/// An admin adds an outbound webhook in the console, keeps the one-time secret, sees the
/// messages a sale sent with their attempts, and resends one; the receiver verifies both
/// requests with the secret the page showed.
#[tokio::test]
async fn an_admin_connects_an_outbound_webhook_and_resends_a_message() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    set_password(&app, &app.admin_id).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_BILLET_PRINTED"], json!({}))
        .await;
    let receiver = tests::receiver::Receiver::start().await;
    let admin_email = app.ok(&app.admin, "{ me { email } }", json!({})).await["me"]["email"]
        .as_str()
        .unwrap()
        .to_owned();
    let Some(browser) = Browser::start("outbound", &app.base).await else {
        return;
    };
    let b = &browser;
    let (app_ref, receiver_ref, url_ref) = (&app, &receiver, &url);
    let secret = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let kept = secret.clone();
    browser
        .run(async move {
            b.sign_in(&admin_email, PASSWORD).await;
            b.open("/#/webhooks").await;
            b.find_text("main h1", "Webhooks de saída").await;
            b.find("#no-endpoints").await;
            b.type_into("#endpoint-url", &receiver_ref.url).await;
            b.type_into("#endpoint-description", "n8n do time").await;
            b.click("input[data-type='deal.created']").await;
            b.click("#endpoint-create").await;
            let shown = b.find("#secret-value").await.text().await.unwrap();
            assert!(shown.starts_with("whsec_"), "{shown}");
            *kept.lock().unwrap() = shown.clone();
            b.find_text("#endpoints td", "deal.created").await;
            b.shot("outbound-endpoints").await;
            let body = purchase(
                "out-1",
                "PURCHASE_BILLET_PRINTED",
                Utc::now().timestamp_millis(),
                "hook@x.test",
                "HPO1",
            );
            app_ref
                .post_webhook(url_ref, Some("hottok-secret-0001"), body.to_string())
                .await;
            app_ref.wait_until_processed().await;
            receiver_ref.wait_for(1, Duration::from_secs(20)).await;
            b.click("#endpoints a").await;
            b.find_text("#messages tr[data-status='DELIVERED']", "deal.created")
                .await;
            b.find_text("#messages tr[data-status='DELIVERED']", "AUTO")
                .await;
            b.click("#messages button[data-resend]").await;
            receiver_ref.wait_for(2, Duration::from_secs(20)).await;
            b.find_text("#messages tr", "MANUAL").await;
            b.shot("outbound-messages").await;
            b.resize(390, 844).await;
            b.open("/#/webhooks").await;
            b.find("#endpoints").await;
            b.assert_fits("/#/webhooks").await;
        })
        .await;
    let secret = secret.lock().unwrap().clone();
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    for r in &got {
        let mut headers = reqwest::header::HeaderMap::new();
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            headers.insert(name, r.header(name).parse().unwrap());
        }
        standardwebhooks::Webhook::new(&secret)
            .unwrap()
            .verify(&r.body, &headers)
            .expect("the page's secret verifies the request");
    }
}
