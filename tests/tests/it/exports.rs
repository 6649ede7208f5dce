//! Exports: a CSV file of what the person who asked may see, in the format a spreadsheet
//! in Brazil opens (BOM, `;`, decimal comma, São Paulo dates, Portuguese header), with
//! formulas defused, served only to that person (or an admin) and pruned after a day.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use tests::{Backend, TestApp, hotmart::purchase, on_both_backends};

/// Buyers whose names a spreadsheet would run as formulas, and one with separators.
/// (Intake trims a leading tab or carriage return from names; the CSV module's own tests
/// cover those two.)
const NAMES: [&str; 5] = [
    "=HYPERLINK(\"http://evil.test\")",
    "+5511999990000",
    "-2+3",
    "@SUM(A1:A9)",
    "Maria; \"Mãe\" da Silva",
];

/// Posts one pending-payment sale per name; returns the deal ids, in the order posted.
async fn sales(app: &TestApp) -> Vec<String> {
    let (_, url) = app
        .active_integration(&["PURCHASE_BILLET_PRINTED", "PURCHASE_APPROVED"], json!({}))
        .await;
    let now = Utc::now().timestamp_millis();
    for (n, name) in NAMES.iter().enumerate() {
        let mut body = purchase(
            &format!("x{n}"),
            "PURCHASE_BILLET_PRINTED",
            now - 60_000 + n as i64,
            &format!("buyer{n}@x.test"),
            &format!("HPX{n}"),
        );
        body["data"]["buyer"]["name"] = json!(name);
        let (status, _) = app
            .post_webhook(&url, Some("hottok-secret-0001"), body.to_string())
            .await;
        assert_eq!(status, 200);
    }
    app.wait_until_processed().await;
    let deals = app
        .ok(
            &app.admin,
            "{ deals(first: 50) { nodes { id } } }",
            json!({}),
        )
        .await;
    deals["deals"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Starts an export with `mutation` and waits until it has finished; returns it.
pub(crate) async fn export(app: &TestApp, token: &str, mutation: &str) -> Value {
    let started = app
        .ok(
            token,
            &format!("mutation {{ {mutation} {{ id status }} }}"),
            json!({}),
        )
        .await;
    let id = started.as_object().unwrap().values().next().unwrap()["id"].clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = app
            .ok(
                token,
                "query($id: ID!) { export(id: $id) { id kind status rows downloadPath error } }",
                json!({"id": id}),
            )
            .await["export"]
            .clone();
        if found["status"] == "SUCCEEDED" || found["status"] == "FAILED" {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "the export did not finish: {found}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GETs a download path with an optional token; returns the status and the bytes.
async fn download(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Vec<u8>, String) {
    let mut request = app.http.get(format!("{}{path}", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, response.bytes().await.unwrap().to_vec(), kind)
}

/// The file's rows, each split into cells as a spreadsheet reads them.
fn read_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    let text = text
        .strip_prefix('\u{feff}')
        .expect("a byte-order mark first");
    let mut rows = vec![vec![String::new()]];
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        let row = rows.last_mut().unwrap();
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                row.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (';', false) => row.push(String::new()),
            ('\r', false) if chars.peek() == Some(&'\n') => {
                chars.next();
                rows.push(vec![String::new()]);
            }
            (c, _) => row.last_mut().unwrap().push(c),
        }
    }
    assert_eq!(
        rows.pop(),
        Some(vec![String::new()]),
        "rows end with \\r\\n"
    );
    rows
}

async fn a_deal_export_is_a_spreadsheet_of_what_its_person_may_see(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let deals = sales(&app).await;
    assert_eq!(deals.len(), NAMES.len());
    let file = export(&app, &app.admin, "exportDeals").await;
    assert_eq!(file["status"], "SUCCEEDED", "{file}");
    assert_eq!(file["kind"], "DEALS");
    assert_eq!(file["rows"], NAMES.len());
    let path = file["downloadPath"].as_str().unwrap().to_owned();
    let (status, bytes, kind) = download(&app, &path, Some(&app.admin)).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/csv"), "{kind}");
    assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 with BOM");
    let rows = read_csv(&bytes);
    assert_eq!(rows[0][..4], ["Comprador", "E-mail", "Telefone", "Produto"]);
    assert_eq!(rows.len(), NAMES.len() + 1);
    let value = rows[0].iter().position(|h| h == "Valor").unwrap();
    let created = rows[0].iter().position(|h| h == "Criado em").unwrap();
    let status_column = rows[0].iter().position(|h| h == "Situação").unwrap();
    let date = |cell: &str| {
        cell.len() == "dd/mm/aaaa hh:mm".len()
            && chrono::NaiveDateTime::parse_from_str(cell, "%d/%m/%Y %H:%M").is_ok()
    };
    for row in &rows[1..] {
        assert_eq!(row.len(), rows[0].len(), "{row:?}");
        assert_eq!(row[value], "97,00", "decimal comma");
        assert!(date(&row[created]), "{}", row[created]);
        assert_eq!(row[status_column], "Aberto");
        let name = &row[0];
        assert!(
            !name.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a formula would run: {name:?}"
        );
    }
    // Every dangerous name is kept, behind a quote; the harmless one as it was.
    let names: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    for name in NAMES {
        let expected = if name.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{name}")
        } else {
            name.to_owned()
        };
        assert!(
            names.contains(&expected.as_str()),
            "{expected:?} in {names:?}"
        );
    }
    // Dates are São Paulo's: three hours behind UTC.
    let newest = Utc::now() - chrono::Duration::hours(3);
    assert!(
        rows[1][created].starts_with(&newest.format("%d/%m/%Y").to_string()),
        "{} vs {newest}",
        rows[1][created]
    );
}

async fn an_export_is_served_only_to_its_person(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let deals = sales(&app).await;
    let group = app.ok(&app.admin, "{ groups { id } }", json!({})).await["groups"][0]["id"].clone();
    app.ok(&app.admin, "mutation($g: ID!) { setGroupVisibility(groupId: $g, input: {everyone: true, memberScope: OWN}) { id } }", json!({"g": group}))
        .await;
    let (sara_id, sara) = app.user("sara@acme.test", "MEMBER").await;
    app.ok(
        &app.admin,
        "mutation($d: ID!, $u: ID) { assignDeal(dealId: $d, userId: $u) { id } }",
        json!({"d": deals[0], "u": sara_id}),
    )
    .await;
    // A member's export holds her own deals only, and its contacts only theirs.
    let hers = export(&app, &sara, "exportDeals").await;
    assert_eq!(hers["rows"], 1, "{hers}");
    let (status, bytes, _) =
        download(&app, hers["downloadPath"].as_str().unwrap(), Some(&sara)).await;
    assert_eq!(status, 200);
    assert_eq!(read_csv(&bytes).len(), 2);
    let contacts = export(&app, &sara, "exportContacts").await;
    assert_eq!(contacts["rows"], 1, "{contacts}");
    let all = export(&app, &app.admin, "exportContacts").await;
    assert_eq!(all["rows"], NAMES.len(), "{all}");
    let (_, bytes, _) = download(
        &app,
        all["downloadPath"].as_str().unwrap(),
        Some(&app.admin),
    )
    .await;
    assert_eq!(
        read_csv(&bytes)[0][..4],
        ["Nome", "E-mail", "Telefone", "CPF/CNPJ"]
    );
    // The admin's file is not hers, nor another account's; without a token, nobody's.
    let path = all["downloadPath"].as_str().unwrap();
    assert_eq!(download(&app, path, Some(&sara)).await.0, 404);
    let rival = app.other_account().await;
    assert_eq!(download(&app, path, Some(&rival)).await.0, 404);
    assert_eq!(download(&app, path, None).await.0, 401);
    assert_eq!(download(&app, path, Some("not-a-token")).await.0, 401);
    assert_eq!(
        download(&app, "/exports/no-such-export/download", Some(&app.admin))
            .await
            .0,
        404
    );
    let (code, _) = app
        .err(
            &rival,
            "query($id: ID!) { export(id: $id) { id } }",
            json!({"id": all["id"]}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    // The admin sees a member's export (to help her), a member never another's.
    app.ok(
        &app.admin,
        "query($id: ID!) { export(id: $id) { id } }",
        json!({"id": hers["id"]}),
    )
    .await;
}

async fn expired_exports_and_their_files_are_pruned(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let caller = app.admin_caller();
    let started = entity::exports::start(
        &app.db.conn,
        &caller,
        "CONTACTS",
        entity::exports::StoredFilter::default(),
    )
    .await
    .unwrap();
    // Not written yet (no workers here): its file is not there to take.
    let path = format!("/exports/{}/download", started.id);
    assert_eq!(download(&app, &path, Some(&app.admin)).await.0, 409);
    entity::exports::run(&app.db, &started.id).await.unwrap();
    assert_eq!(download(&app, &path, Some(&app.admin)).await.0, 200);
    assert!(
        entity::exports::chunk(&app.db.conn, &started.id, 0)
            .await
            .unwrap()
            .is_some()
    );
    let now = entity::now_ms();
    assert_eq!(
        entity::exports::prune(&app.db.conn, now).await.unwrap(),
        0,
        "a fresh export stays"
    );
    let later = now + entity::exports::KEPT_FOR_MS + 1;
    assert_eq!(
        entity::exports::prune(&app.db.conn, later).await.unwrap(),
        1
    );
    assert!(
        entity::exports::chunk(&app.db.conn, &started.id, 0)
            .await
            .unwrap()
            .is_none()
    );
    let (code, _) = app
        .err(
            &app.admin,
            "query($id: ID!) { export(id: $id) { id } }",
            json!({"id": started.id}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
}

on_both_backends!(
    a_deal_export_is_a_spreadsheet_of_what_its_person_may_see,
    an_export_is_served_only_to_its_person,
    expired_exports_and_their_files_are_pruned,
);
