//! Sellers working the pipeline (`docs/pipeline.md`), through the GraphQL API and real
//! webhooks: stages, actions and their conflicts, the rules that join people's actions with
//! checkout events, who sees what, search, the WhatsApp link, activities, bulk edits, the
//! report and the live board.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tests::{
    Backend, TestApp,
    hotmart::{cart, purchase},
    on_both_backends,
};

const HOTTOK: &str = "hottok-secret-0001";
const EVENTS: [&str; 5] = [
    "PURCHASE_OUT_OF_SHOPPING_CART",
    "PURCHASE_BILLET_PRINTED",
    "PURCHASE_EXPIRED",
    "PURCHASE_APPROVED",
    "PURCHASE_REFUNDED",
];
const MINUTE: i64 = 60_000;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const DEAL: &str = "id status version lostReason closedAt origin { name } stage { id name } \
                    owner { id } timeline { event source effect description author { id } }";

struct Board {
    app: TestApp,
    url: String,
    group: String,
}

impl Board {
    async fn new(backend: Backend) -> Board {
        let app = TestApp::spawn(backend).await;
        let (id, url) = app.active_integration(&EVENTS, json!({})).await;
        let group = app
            .ok(
                &app.admin,
                "query($id: ID!) { integration(id: $id) { group { id } } }",
                json!({"id": id}),
            )
            .await["integration"]["group"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        Board { app, url, group }
    }

    async fn post(&self, body: Value) {
        let (status, reply) = self
            .app
            .post_webhook(&self.url, Some(HOTTOK), body.to_string())
            .await;
        assert_eq!(status, 200, "{reply}");
        self.app.wait_until_processed().await;
    }

    /// The deals of a contact, oldest first.
    async fn deals_of(&self, email: &str) -> Vec<Value> {
        let data = self
            .app
            .ok(
                &self.app.admin,
                &format!("query($e: String) {{ deals(filter: {{contactEmail: $e}}) {{ nodes {{ {DEAL} }} }} }}"),
                json!({"e": email}),
            )
            .await;
        let mut nodes = data["deals"]["nodes"].as_array().unwrap().clone();
        nodes.reverse();
        nodes
    }

    async fn only_deal(&self, email: &str) -> Value {
        let deals = self.deals_of(email).await;
        assert_eq!(deals.len(), 1, "{deals:#?}");
        deals[0].clone()
    }

    /// Origins of the group by name: `(id, [(stage name, stage id)], [lost reason ids])`.
    async fn origin(&self, name: &str) -> (String, Vec<(String, String)>, Vec<String>) {
        let data = self
            .app
            .ok(
                &self.app.admin,
                "query { groups { id origins { id name stages { id name } lostReasons { id name } } } }",
                json!({}),
            )
            .await;
        let group = data["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == self.group.as_str())
            .unwrap();
        let origin = group["origins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("no origin {name}: {group}"));
        let s = |v: &Value| v.as_str().unwrap().to_owned();
        let stages = origin["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|st| (s(&st["name"]), s(&st["id"])))
            .collect();
        let reasons = origin["lostReasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| s(&r["id"]))
            .collect();
        (s(&origin["id"]), stages, reasons)
    }

    async fn stage(&self, origin: &str, stage: &str) -> String {
        let (_, stages, _) = self.origin(origin).await;
        stages
            .into_iter()
            .find(|(name, _)| name == stage)
            .unwrap()
            .1
    }

    async fn act(&self, token: &str, mutation: &str, vars: Value) -> Value {
        let head = declarations(&vars);
        let query = format!("mutation({head}) {{ {mutation} {{ {DEAL} }} }}");
        let data = self.app.ok(token, &query, vars).await;
        data.as_object().unwrap().values().next().unwrap().clone()
    }

    async fn act_err(&self, token: &str, mutation: &str, vars: Value) -> (String, String) {
        let head = declarations(&vars);
        let query = format!("mutation({head}) {{ {mutation} {{ id }} }}");
        self.app.err(token, &query, vars).await
    }
}

/// `$d: ID!, $s: ID!, …` for the variables given: `d` a deal, `s` a stage, `r` a lost
/// reason.
fn declarations(vars: &Value) -> String {
    vars.as_object()
        .unwrap()
        .keys()
        .map(|k| match k.as_str() {
            "d" | "s" => format!("${k}: ID!"),
            _ => format!("${k}: ID"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn effects(deal: &Value) -> Vec<String> {
    deal["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["effect"].as_str().unwrap().to_owned())
        .collect()
}

async fn stages_and_origins_are_managed_by_admins(backend: Backend) {
    let board = Board::new(backend).await;
    let app = &board.app;
    let (origin, stages, reasons) = board.origin("Carrinho abandonado").await;
    let names: Vec<&str> = stages.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Novo", "Em contato", "Negociação"]);
    assert_eq!(reasons.len(), 4);
    let created = app
        .ok(&app.admin, "mutation($o: ID!) { createStage(originId: $o, input: {name: \"Proposta\", position: 1}) { id position } }", json!({"o": origin}))
        .await["createStage"]
        .clone();
    assert_eq!(created["position"], 1);
    let (_, stages, _) = board.origin("Carrinho abandonado").await;
    let names: Vec<&str> = stages.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Novo", "Proposta", "Em contato", "Negociação"]);
    app.ok(&app.admin, "mutation($s: ID!) { updateStage(stageId: $s, input: {name: \"Proposta enviada\", position: 9}) { id } }", json!({"s": created["id"]}))
        .await;
    let (_, stages, _) = board.origin("Carrinho abandonado").await;
    let names: Vec<&str> = stages.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["Novo", "Em contato", "Negociação", "Proposta enviada"]
    );
    let (code, _) = app
        .err(
            &app.admin,
            "mutation($o: ID!) { createStage(originId: $o, input: {name: \"novo\"}) { id } }",
            json!({"o": origin}),
        )
        .await;
    assert_eq!(
        code, "BAD_USER_INPUT",
        "stage names are unique in an origin"
    );

    // A new cart enters the first stage; deleting that stage needs a target.
    board
        .post(cart("c-1", now() - MINUTE, "ana@x.test", 1_234_567))
        .await;
    let deal = board.only_deal("ana@x.test").await;
    assert_eq!(deal["stage"]["name"], "Novo");
    assert_eq!(deal["version"], 1);
    let novo = &stages[0].1;
    let (code, message) = app
        .err(
            &app.admin,
            "mutation($s: ID!) { deleteStage(stageId: $s) }",
            json!({"s": novo}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "{message}");
    let other = board.stage("Boleto/Pix pendente", "Novo").await;
    let (code, _) = app
        .err(
            &app.admin,
            "mutation($s: ID!, $t: ID) { deleteStage(stageId: $s, moveDealsTo: $t) }",
            json!({"s": novo, "t": other}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "the target is in the same origin");
    app.ok(
        &app.admin,
        "mutation($s: ID!, $t: ID) { deleteStage(stageId: $s, moveDealsTo: $t) }",
        json!({"s": novo, "t": stages[1].1}),
    )
    .await;
    let deal = board.only_deal("ana@x.test").await;
    assert_eq!(deal["stage"]["name"], "Em contato");
    assert_eq!(deal["version"], 2);
    // A later event of the deal keeps the stage an admin moved it to.
    board
        .post(cart("c-2", now(), "ana@x.test", 1_234_567))
        .await;
    let deal = board.only_deal("ana@x.test").await;
    assert_eq!(deal["stage"]["name"], "Em contato");
    // An origin keeps one stage.
    let (_, stages, _) = board.origin("Compra aprovada").await;
    for (_, id) in &stages[..2] {
        app.ok(
            &app.admin,
            "mutation($s: ID!) { deleteStage(stageId: $s) }",
            json!({"s": id}),
        )
        .await;
    }
    let (code, _) = app
        .err(
            &app.admin,
            "mutation($s: ID!) { deleteStage(stageId: $s) }",
            json!({"s": stages[2].1}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");

    // Hand-made origins: no event, the default stages, no lost reasons.
    let made = app
        .ok(&app.admin, "mutation($g: ID!) { createOrigin(groupId: $g, input: {name: \"Super interessados\"}) { id event checkoutEvent entryStatus stages { name } lostReasons { id } messageTemplate } }", json!({"g": board.group}))
        .await["createOrigin"]
        .clone();
    assert_eq!(made["event"], Value::Null);
    assert_eq!(made["checkoutEvent"], Value::Null);
    assert_eq!(made["stages"].as_array().unwrap().len(), 3);
    assert_eq!(made["lostReasons"], json!([]));
    assert!(
        made["messageTemplate"]
            .as_str()
            .unwrap()
            .contains("{primeiro_nome}")
    );
}

async fn a_seller_works_a_deal(backend: Backend) {
    let board = Board::new(backend).await;
    let app = &board.app;
    let (seller, sara) = app.user("sara@acme.test", "MEMBER").await;
    let (_, other) = app.user("otto@acme.test", "MEMBER").await;
    board
        .post(cart("c-1", now() - MINUTE, "ana@x.test", 1_234_567))
        .await;
    let deal = board.only_deal("ana@x.test").await;
    let id = deal["id"].as_str().unwrap().to_owned();
    let contato = board.stage("Carrinho abandonado", "Em contato").await;

    let (code, _) = board
        .act_err(
            &sara,
            "moveDeal(dealId: $d, input: {stageId: $s})",
            json!({"d": id, "s": contato}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN", "an unowned deal is claimed first");
    let claimed = board
        .act(&sara, "claimDeal(dealId: $d)", json!({"d": id}))
        .await;
    assert_eq!(claimed["owner"]["id"], seller.as_str());
    assert_eq!(claimed["version"], 2);
    let (code, _) = board
        .act_err(&other, "claimDeal(dealId: $d)", json!({"d": id}))
        .await;
    assert_eq!(code, "CONFLICT");

    let moved = board
        .act(
            &sara,
            "moveDeal(dealId: $d, input: {stageId: $s, expectedVersion: 2})",
            json!({"d": id, "s": contato}),
        )
        .await;
    assert_eq!(moved["stage"]["name"], "Em contato");
    assert_eq!(moved["version"], 3);
    let negociacao = board.stage("Carrinho abandonado", "Negociação").await;
    let (code, _) = board
        .act_err(
            &sara,
            "moveDeal(dealId: $d, input: {stageId: $s, expectedVersion: 2})",
            json!({"d": id, "s": negociacao}),
        )
        .await;
    assert_eq!(code, "CONFLICT", "a stale edit changes nothing");
    assert_eq!(
        board.only_deal("ana@x.test").await["stage"]["name"],
        "Em contato"
    );

    let note = app
        .ok(&sara, "mutation($d: ID!) { addDealNote(dealId: $d, text: \"Ligar amanhã às 10h\") { effect source description author { id } } }", json!({"d": id}))
        .await["addDealNote"]
        .clone();
    assert_eq!(
        note,
        json!({"effect": "NOTE", "source": "USER", "description": "Ligar amanhã às 10h", "author": {"id": seller}})
    );

    let (code, _) = board
        .act_err(&sara, "loseDeal(dealId: $d, input: {})", json!({"d": id}))
        .await;
    assert_eq!(
        code, "BAD_USER_INPUT",
        "the origin has reasons: one is required"
    );
    let reasons = app
        .ok(
            &sara,
            "query($d: ID!) { deal(id: $d) { origin { lostReasons { id name } } } }",
            json!({"d": id}),
        )
        .await["deal"]["origin"]["lostReasons"]
        .clone();
    let reason = reasons
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Não responde")
        .unwrap()["id"]
        .clone();
    let lost = board
        .act(
            &sara,
            "loseDeal(dealId: $d, input: {lostReasonId: $r, note: \"sumiu\"})",
            json!({"d": id, "r": reason}),
        )
        .await;
    assert_eq!(lost["status"], "LOST");
    assert_eq!(lost["lostReason"], "Não responde");
    assert!(!lost["closedAt"].is_null());
    let (code, _) = board
        .act_err(
            &sara,
            "moveDeal(dealId: $d, input: {stageId: $s})",
            json!({"d": id, "s": contato}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "only an open deal moves");

    let reopened = board
        .act(&sara, "reopenDeal(dealId: $d)", json!({"d": id}))
        .await;
    assert_eq!(reopened["status"], "OPEN");
    assert_eq!(reopened["stage"]["name"], "Novo");
    assert_eq!(reopened["lostReason"], Value::Null);
    let won = board
        .act(
            &sara,
            "winDeal(dealId: $d, note: \"fechou no Pix\")",
            json!({"d": id}),
        )
        .await;
    assert_eq!(won["status"], "WON");
    let user_entries: Vec<&Value> = won["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "USER")
        .collect();
    let kinds: Vec<&str> = user_entries
        .iter()
        .map(|e| e["effect"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "OWNER_CHANGED",
            "STAGE_MOVED",
            "NOTE",
            "LOST",
            "REOPENED",
            "WON"
        ]
    );
    assert!(
        user_entries
            .iter()
            .all(|e| e["author"]["id"] == seller.as_str())
    );
    assert!(
        user_entries[5]["description"]
            .as_str()
            .unwrap()
            .contains("fechou no Pix")
    );
}

async fn actions_and_checkout_events_fold_together(backend: Backend) {
    let board = Board::new(backend).await;
    let app = &board.app;
    let t = now();
    // Rule 1, money is the truth: a deal lost by hand that is then paid is won.
    board
        .post(purchase(
            "a-1",
            "PURCHASE_BILLET_PRINTED",
            t - 60 * MINUTE,
            "a@x.test",
            "TA",
        ))
        .await;
    let a = board.only_deal("a@x.test").await;
    let reason = board.origin("Boleto/Pix pendente").await.2[0].clone();
    board
        .act(
            &app.admin,
            "loseDeal(dealId: $d, input: {lostReasonId: $r})",
            json!({"d": a["id"], "r": reason}),
        )
        .await;
    board
        .post(purchase(
            "a-2",
            "PURCHASE_APPROVED",
            t + MINUTE,
            "a@x.test",
            "TA",
        ))
        .await;
    let a2 = board.only_deal("a@x.test").await;
    assert_eq!(
        (a2["id"].clone(), a2["status"].clone()),
        (a["id"].clone(), json!("WON"))
    );
    assert_eq!(a2["origin"]["name"], "Compra aprovada");

    // Rule 2: a seller's move stands against pre-sale noise.
    board
        .post(purchase(
            "b-1",
            "PURCHASE_BILLET_PRINTED",
            t - 60 * MINUTE,
            "b@x.test",
            "TB",
        ))
        .await;
    let b = board.only_deal("b@x.test").await;
    let stage = board.stage("Boleto/Pix pendente", "Negociação").await;
    board
        .act(
            &app.admin,
            "moveDeal(dealId: $d, input: {stageId: $s})",
            json!({"d": b["id"], "s": stage}),
        )
        .await;
    board
        .post(purchase(
            "b-2",
            "PURCHASE_EXPIRED",
            t + MINUTE,
            "b@x.test",
            "TB",
        ))
        .await;
    let b2 = board.only_deal("b@x.test").await;
    assert_eq!(b2["status"], "OPEN");
    assert_eq!(b2["origin"]["name"], "Boleto/Pix pendente");
    assert_eq!(b2["stage"]["name"], "Negociação");
    assert_eq!(effects(&b2).last().unwrap(), "TIMELINE_ONLY");

    // A webhook that arrives late folds before the action, as if it had come in time.
    board
        .post(cart("c-1", t - 60 * MINUTE, "c@x.test", 1_234_567))
        .await;
    let c = board.only_deal("c@x.test").await;
    let stage = board.stage("Carrinho abandonado", "Negociação").await;
    board
        .act(
            &app.admin,
            "moveDeal(dealId: $d, input: {stageId: $s})",
            json!({"d": c["id"], "s": stage}),
        )
        .await;
    board
        .post(purchase(
            "c-2",
            "PURCHASE_BILLET_PRINTED",
            t - 30 * MINUTE,
            "c@x.test",
            "TC",
        ))
        .await;
    let c2 = board.only_deal("c@x.test").await;
    assert_eq!(c2["id"], c["id"]);
    assert_eq!(effects(&c2), ["CREATED", "MOVED", "STAGE_MOVED"]);
    assert_eq!(c2["origin"]["name"], "Carrinho abandonado");
    assert_eq!(c2["stage"]["name"], "Negociação");

    // Rule 3: a closed deal stays closed; the buyer coming back is a new deal.
    board
        .post(cart("d-1", t - 60 * MINUTE, "d@x.test", 1_234_567))
        .await;
    let d = board.only_deal("d@x.test").await;
    let reason = board.origin("Carrinho abandonado").await.2[0].clone();
    board
        .act(
            &app.admin,
            "loseDeal(dealId: $d, input: {lostReasonId: $r})",
            json!({"d": d["id"], "r": reason}),
        )
        .await;
    board
        .post(cart("d-2", t + MINUTE, "d@x.test", 1_234_567))
        .await;
    let ds = board.deals_of("d@x.test").await;
    assert_eq!(ds.len(), 2);
    assert_eq!(
        (ds[0]["status"].clone(), ds[1]["status"].clone()),
        (json!("LOST"), json!("OPEN"))
    );

    // Rule 4: won by hand, then paid: the same deal, in the paid origin, still won.
    board
        .post(cart("e-1", t - 60 * MINUTE, "e@x.test", 1_234_567))
        .await;
    let e = board.only_deal("e@x.test").await;
    board
        .act(&app.admin, "winDeal(dealId: $d)", json!({"d": e["id"]}))
        .await;
    board
        .post(purchase(
            "e-2",
            "PURCHASE_APPROVED",
            t + MINUTE,
            "e@x.test",
            "TE",
        ))
        .await;
    let e2 = board.only_deal("e@x.test").await;
    assert_eq!(e2["id"], e["id"]);
    assert_eq!(e2["status"], "WON");
    assert_eq!(e2["origin"]["name"], "Compra aprovada");
    // And a refund still moves it.
    board
        .post(purchase(
            "e-3",
            "PURCHASE_REFUNDED",
            t + 2 * MINUTE,
            "e@x.test",
            "TE",
        ))
        .await;
    assert_eq!(board.only_deal("e@x.test").await["status"], "LOST");
}

async fn members_see_what_the_group_scope_allows(backend: Backend) {
    let board = Board::new(backend).await;
    let app = &board.app;
    let (sara_id, sara) = app.user("sara@acme.test", "MEMBER").await;
    for (i, email) in ["one@x.test", "two@x.test", "three@x.test"]
        .iter()
        .enumerate()
    {
        board
            .post(cart(&format!("c-{i}"), now() - MINUTE, email, 1_234_567))
            .await;
    }
    let one = board.only_deal("one@x.test").await;
    let two = board.only_deal("two@x.test").await;
    app.ok(
        &app.admin,
        "mutation($d: ID!, $u: ID) { assignDeal(dealId: $d, userId: $u) { id } }",
        json!({"d": one["id"], "u": sara_id}),
    )
    .await;
    let (otto_id, _) = app.user("otto@acme.test", "MEMBER").await;
    app.ok(
        &app.admin,
        "mutation($d: ID!, $u: ID) { assignDeal(dealId: $d, userId: $u) { id } }",
        json!({"d": two["id"], "u": otto_id}),
    )
    .await;
    let visible = |token: String| {
        let app = &board.app;
        async move {
            let data = app
                .ok(
                    &token,
                    "query { deals { totalCount nodes { contact { email } } } }",
                    json!({}),
                )
                .await;
            let mut emails: Vec<String> = data["deals"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["contact"]["email"].as_str().unwrap().to_owned())
                .collect();
            emails.sort();
            assert_eq!(data["deals"]["totalCount"], emails.len());
            emails
        }
    };
    assert_eq!(visible(sara.clone()).await.len(), 3, "ALL by default");
    let set_scope = |scope: &'static str| {
        let app = &board.app;
        let group = board.group.clone();
        async move {
            let data = app
                .ok(&app.admin, "mutation($g: ID!, $s: DealScope) { setGroupVisibility(groupId: $g, input: {everyone: true, memberScope: $s}) { visibility { memberScope } } }", json!({"g": group, "s": scope}))
                .await;
            assert_eq!(
                data["setGroupVisibility"]["visibility"]["memberScope"],
                scope
            );
        }
    };
    set_scope("OWN").await;
    assert_eq!(visible(sara.clone()).await, ["one@x.test"]);
    let (code, _) = app
        .err(
            &sara,
            "query($d: ID!) { deal(id: $d) { id } }",
            json!({"d": two["id"]}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let contacts = app
        .ok(&sara, "query { contacts { nodes { email } } }", json!({}))
        .await;
    assert_eq!(
        contacts["contacts"]["nodes"],
        json!([{"email": "one@x.test"}]),
        "contacts follow the scope too"
    );
    let count = app
        .ok(
            &sara,
            "query { groups { origins { name dealCount stages { name dealCount } } } }",
            json!({}),
        )
        .await;
    let cart_origin = count["groups"][0]["origins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Carrinho abandonado")
        .unwrap()
        .clone();
    assert_eq!(
        cart_origin["dealCount"], 1,
        "counts follow the scope: {cart_origin}"
    );
    set_scope("OWN_AND_UNOWNED").await;
    assert_eq!(visible(sara.clone()).await, ["one@x.test", "three@x.test"]);
    let three = board.only_deal("three@x.test").await;
    board
        .act(&sara, "claimDeal(dealId: $d)", json!({"d": three["id"]}))
        .await;
    let (code, _) = board
        .act_err(&sara, "claimDeal(dealId: $d)", json!({"d": two["id"]}))
        .await;
    assert_eq!(
        code, "NOT_FOUND",
        "another seller's deal is not even visible"
    );
    // Admins see everything whatever the scope.
    assert_eq!(visible(app.admin.clone()).await.len(), 3);
}

async fn search_whatsapp_and_activities(backend: Backend) {
    let board = Board::new(backend).await;
    let app = &board.app;
    board
        .post(cart("c-1", now() - MINUTE, "ana.souza@x.test", 1_234_567))
        .await;
    for search in [
        "(11) 99999-0000",
        "5511999990000",
        "11 9999-0000",
        "SOUZA",
        "ana.souza@",
    ] {
        let found = app
            .ok(
                &app.admin,
                "query($s: String) { deals(filter: {search: $s}) { totalCount } }",
                json!({"s": search}),
            )
            .await;
        assert_eq!(found["deals"]["totalCount"], 1, "{search}");
    }
    let none = app
        .ok(
            &app.admin,
            "query { deals(filter: {search: \"%\"}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(none["deals"]["totalCount"], 0, "wildcards are literal");
    let (code, _) = app
        .err(
            &app.admin,
            "query($s: String) { deals(filter: {search: $s}) { totalCount } }",
            json!({"s": "x".repeat(101)}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");

    let deal = board.only_deal("ana.souza@x.test").await;
    let url = app
        .ok(
            &app.admin,
            "query($d: ID!) { deal(id: $d) { whatsappUrl } }",
            json!({"d": deal["id"]}),
        )
        .await["deal"]["whatsappUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.starts_with("https://wa.me/5511999990000?text=Oi%20Ana%2C"),
        "{url}"
    );
    let (origin, _, _) = board.origin("Carrinho abandonado").await;
    app.ok(&app.admin, "mutation($o: ID!) { updateOrigin(originId: $o, input: {messageTemplate: \"Olá {nome}, e o {produto}?\"}) { id } }", json!({"o": origin})).await;
    let url = app
        .ok(
            &app.admin,
            "query($d: ID!) { deal(id: $d) { whatsappUrl } }",
            json!({"d": deal["id"]}),
        )
        .await["deal"]["whatsappUrl"]
        .clone();
    assert_eq!(
        url,
        "https://wa.me/5511999990000?text=Ol%C3%A1%20Ana%20Souza%2C%20e%20o%20Curso%201234567%3F"
    );

    // Activities: soonest first, done with a note onto the timeline, canceled away.
    let (sara_id, sara) = app.user("sara@acme.test", "MEMBER").await;
    board
        .act(&sara, "claimDeal(dealId: $d)", json!({"d": deal["id"]}))
        .await;
    let schedule = |title: &'static str, due: &'static str| {
        let app = &board.app;
        let (token, d) = (sara.clone(), deal["id"].clone());
        async move {
            app.ok(&token, "mutation($d: ID!, $t: String!, $at: DateTime!) { scheduleActivity(dealId: $d, input: {kind: CALL, title: $t, dueAt: $at}) { id assignee { id } } }", json!({"d": d, "t": title, "at": due}))
                .await["scheduleActivity"]
                .clone()
        }
    };
    let later = schedule("Ligar de novo", "2031-01-02T12:00:00Z").await;
    let sooner = schedule("Ligar", "2031-01-01T12:00:00Z").await;
    assert_eq!(sooner["assignee"]["id"], sara_id.as_str());
    let mine = app
        .ok(&sara, "query($u: ID) { activities(filter: {assigneeId: $u, done: false}) { totalCount nodes { title deal { id } } } }", json!({"u": sara_id}))
        .await;
    let titles: Vec<&str> = mine["activities"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Ligar", "Ligar de novo"]);
    let done = app
        .ok(
            &sara,
            "mutation($a: ID!) { completeActivity(id: $a, note: \"atendeu\") { doneAt note } }",
            json!({"a": sooner["id"]}),
        )
        .await;
    assert!(!done["completeActivity"]["doneAt"].is_null());
    let (code, _) = app
        .err(
            &sara,
            "mutation($a: ID!) { completeActivity(id: $a) { id } }",
            json!({"a": sooner["id"]}),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    let deal_now = board.only_deal("ana.souza@x.test").await;
    assert_eq!(effects(&deal_now).last().unwrap(), "ACTIVITY_DONE");
    app.ok(
        &sara,
        "mutation($a: ID!) { cancelActivity(id: $a) }",
        json!({"a": later["id"]}),
    )
    .await;
    let open = app
        .ok(
            &sara,
            "query { activities(filter: {done: false}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(open["activities"]["totalCount"], 0);
    // Members schedule for themselves; titles are bounded.
    let (otto, _) = app.user("otto@acme.test", "MEMBER").await;
    let (code, _) = app
        .err(&sara, "mutation($d: ID!, $u: ID) { scheduleActivity(dealId: $d, input: {kind: TASK, title: \"x\", dueAt: \"2031-01-01T00:00:00Z\", assigneeId: $u}) { id } }", json!({"d": deal["id"], "u": otto}))
        .await;
    assert_eq!(code, "FORBIDDEN");
    let (code, _) = app
        .err(&sara, "mutation($d: ID!, $t: String!) { scheduleActivity(dealId: $d, input: {kind: TASK, title: $t, dueAt: \"2031-01-01T00:00:00Z\"}) { id } }", json!({"d": deal["id"], "t": "x".repeat(201)}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

async fn bad_input_loses_nothing(backend: Backend) {
    let board = Board::new(backend).await;
    let app = &board.app;
    board
        .post(cart("c-1", now() - MINUTE, "ana@x.test", 1_234_567))
        .await;
    let deal = board.only_deal("ana@x.test").await;
    let before = effects(&deal).len();
    for text in ["", "   ", "bad\u{0}byte"] {
        let (code, _) = app
            .err(
                &app.admin,
                "mutation($d: ID!, $t: String!) { addDealNote(dealId: $d, text: $t) { effect } }",
                json!({"d": deal["id"], "t": text}),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{text:?}");
    }
    let (code, _) = app
        .err(
            &app.admin,
            "mutation($d: ID!, $t: String!) { addDealNote(dealId: $d, text: $t) { effect } }",
            json!({"d": deal["id"], "t": "é".repeat(5_001)}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    app.ok(
        &app.admin,
        "mutation($d: ID!, $t: String!) { addDealNote(dealId: $d, text: $t) { effect } }",
        json!({"d": deal["id"], "t": "é".repeat(5_000)}),
    )
    .await;
    let (code, _) = board
        .act_err(
            &app.admin,
            "moveDeal(dealId: $d, input: {stageId: \"not-a-stage\"})",
            json!({"d": deal["id"]}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let (code, _) = board
        .act_err(
            &app.admin,
            "reopenDeal(dealId: $d)",
            json!({"d": deal["id"]}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "an open deal does not reopen");
    let after = board.only_deal("ana@x.test").await;
    assert_eq!(
        effects(&after).len(),
        before + 1,
        "only the valid note was written"
    );
    assert_eq!(after["version"], 2);

    // Bulk edits: at most 500, all or nothing.
    board
        .post(cart("c-2", now() - MINUTE, "bia@x.test", 1_234_567))
        .await;
    let bia = board.only_deal("bia@x.test").await;
    let stage = board.stage("Carrinho abandonado", "Negociação").await;
    let many: Vec<Value> = (0..501).map(|_| deal["id"].clone()).collect();
    let (code, _) = app
        .err(
            &app.admin,
            "mutation($d: [ID!]!, $s: ID!) { moveDeals(dealIds: $d, stageId: $s) { id } }",
            json!({"d": many, "s": stage}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let (code, _) = app
        .err(
            &app.admin,
            "mutation($d: [ID!]!, $s: ID!) { moveDeals(dealIds: $d, stageId: $s) { id } }",
            json!({"d": [deal["id"], bia["id"], "missing"], "s": stage}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    assert_eq!(
        board.only_deal("bia@x.test").await["stage"]["name"],
        "Novo",
        "nothing moved"
    );
    let moved = app
        .ok(&app.admin, "mutation($d: [ID!]!, $s: ID!) { moveDeals(dealIds: $d, stageId: $s) { stage { name } } }", json!({"d": [deal["id"], bia["id"]], "s": stage}))
        .await;
    assert_eq!(
        moved["moveDeals"],
        json!([{"stage": {"name": "Negociação"}}, {"stage": {"name": "Negociação"}}])
    );
    let (sara, _) = app.user("sara@acme.test", "MEMBER").await;
    let assigned = app
        .ok(&app.admin, "mutation($d: [ID!]!, $u: ID) { assignDeals(dealIds: $d, userId: $u) { owner { id } } }", json!({"d": [deal["id"], bia["id"]], "u": sara}))
        .await;
    assert_eq!(assigned["assignDeals"][1]["owner"]["id"], sara.as_str());
}

async fn the_report_counts_recovered_sales(backend: Backend) {
    let board = Board::new(backend).await;
    let app = &board.app;
    let t = now();
    // Worked by the team before the payment.
    board
        .post(cart("a-1", t - 60 * MINUTE, "a@x.test", 1_234_567))
        .await;
    let a = board.only_deal("a@x.test").await;
    let stage = board.stage("Carrinho abandonado", "Em contato").await;
    board
        .act(
            &app.admin,
            "moveDeal(dealId: $d, input: {stageId: $s})",
            json!({"d": a["id"], "s": stage}),
        )
        .await;
    board
        .post(purchase(
            "a-2",
            "PURCHASE_APPROVED",
            t + MINUTE,
            "a@x.test",
            "TA",
        ))
        .await;
    // Paid on its own.
    board
        .post(cart("b-1", t - 60 * MINUTE, "b@x.test", 1_234_567))
        .await;
    board
        .post(purchase(
            "b-2",
            "PURCHASE_APPROVED",
            t - 30 * MINUTE,
            "b@x.test",
            "TB",
        ))
        .await;
    // Bought straight away: not a recovery.
    board
        .post(purchase(
            "c-1",
            "PURCHASE_APPROVED",
            t - 30 * MINUTE,
            "c@x.test",
            "TC",
        ))
        .await;
    let from = chrono::DateTime::from_timestamp_millis(t - 24 * 60 * MINUTE)
        .unwrap()
        .to_rfc3339();
    let to = chrono::DateTime::from_timestamp_millis(t + 24 * 60 * MINUTE)
        .unwrap()
        .to_rfc3339();
    let report = app
        .ok(&app.admin, "query($g: ID!, $f: DateTime!, $t: DateTime!) { pipelineReport(groupId: $g, from: $f, to: $t) { currency recoveredDeals recoveredValue recoveredByTeam origins { origin { name } entered won wonValue } sellers { user { id } won lost activitiesDone medianFirstActionMinutes } } }", json!({"g": board.group, "f": from, "t": to}))
        .await["pipelineReport"]
        .clone();
    // The same deals in a window that starts inside a day (on SQLite whole days come
    // from the daily totals, the partial one from the deals): the same report.
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339()
    };
    let other = app
        .ok(&app.admin, "query($g: ID!, $f: DateTime!, $t: DateTime!) { pipelineReport(groupId: $g, from: $f, to: $t) { currency recoveredDeals recoveredValue recoveredByTeam origins { origin { name } entered won wonValue } sellers { user { id } won lost activitiesDone medianFirstActionMinutes } } }", json!({"g": board.group, "f": iso(t - 120 * MINUTE), "t": iso(t + 48 * 60 * MINUTE)}))
        .await["pipelineReport"]
        .clone();
    assert_eq!(other, report);
    assert_eq!(report["recoveredDeals"], 2, "{report}");
    assert_eq!(report["recoveredValue"], 194.0);
    assert_eq!(report["recoveredByTeam"], 1);
    assert_eq!(report["currency"], "BRL");
    // Per seller: the deals have no owner; one was worked an hour after it came in.
    let sellers = report["sellers"].as_array().unwrap();
    assert_eq!(sellers.len(), 1, "{report}");
    let nobody = &sellers[0];
    assert_eq!(nobody["user"], Value::Null);
    assert_eq!(
        (nobody["won"].clone(), nobody["lost"].clone()),
        (json!(3), json!(0))
    );
    assert_eq!(nobody["activitiesDone"], 0);
    let minutes = nobody["medianFirstActionMinutes"].as_f64().unwrap();
    assert!((59.0..62.0).contains(&minutes), "{minutes}");
    let approved = report["origins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["origin"]["name"] == "Compra aprovada")
        .unwrap();
    assert_eq!(
        (approved["won"].clone(), approved["wonValue"].clone()),
        (json!(3), json!(291.0))
    );
    let (code, _) = app
        .err(&app.admin, "query($g: ID!, $f: DateTime!) { pipelineReport(groupId: $g, from: $f, to: $f) { recoveredDeals } }", json!({"g": board.group, "f": from}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

async fn the_board_is_live(backend: Backend) {
    let board = Board::new(backend).await;
    let app = &board.app;
    let (_, sara) = app.user("sara@acme.test", "MEMBER").await;
    let ws_url = format!("{}/graphql/ws", app.base.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url)
            .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    use tokio_tungstenite::tungstenite::Message;
    socket
        .send(Message::text(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {sara}")}}).to_string()))
        .await
        .unwrap();
    socket
        .send(Message::text(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription($g: ID!) { dealsChanged(groupId: $g) { id version stage { name } contact { email } } }", "variables": {"g": board.group}}}).to_string()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A new lead from a webhook, then a colleague's move.
    board
        .post(cart("c-1", now() - MINUTE, "ana@x.test", 1_234_567))
        .await;
    let mut seen = next_changes(&mut socket, |d| d["version"] == 1).await;
    assert_eq!(seen[0]["contact"]["email"], "ana@x.test");
    assert_eq!(seen[0]["stage"]["name"], "Novo");
    let deal = board.only_deal("ana@x.test").await;
    let stage = board.stage("Carrinho abandonado", "Em contato").await;
    board
        .act(
            &app.admin,
            "moveDeal(dealId: $d, input: {stageId: $s})",
            json!({"d": deal["id"], "s": stage}),
        )
        .await;
    seen.extend(next_changes(&mut socket, |d| d["version"] == 2).await);
    assert_eq!(seen.last().unwrap()["stage"]["name"], "Em contato");
    let versions: Vec<i64> = seen
        .iter()
        .map(|d| d["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2], "each change once");
    // Another account's group is not found.
    let rival = app.other_account().await;
    let (code, _) = app
        .err(
            &rival,
            "subscription($g: ID!) { dealsChanged(groupId: $g) { id } }",
            json!({"g": board.group}),
        )
        .await;
    assert_ne!(code, "<none>");
}

const BOARD_FEED: &str =
    "subscription($g: ID!) { dealsChanged(groupId: $g) { id version contact { email } } }";

/// The e-mails a board subscription has emitted so far.
fn emitted(running: &mut tests::counted::Running, into: &mut Vec<String>) {
    while let Ok(data) = running.answers.try_recv() {
        into.push(
            data["dealsChanged"]["contact"]["email"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
}

/// However many subscriptions watch a board, one poll reads it (one statement a look
/// while nothing changes), each subscriber is sent only the deals it may see, and the
/// poll ends with its last subscriber.
async fn one_poll_serves_every_subscriber_of_a_board(backend: Backend) {
    use tests::counted::CountedSchema;
    let board = Board::new(backend).await;
    let app = &board.app;
    let (sara_id, _) = app.user("sara@acme.test", "MEMBER").await;
    app.ok(&app.admin, "mutation($g: ID!) { setGroupVisibility(groupId: $g, input: {everyone: true, memberScope: OWN}) { id } }", json!({"g": board.group}))
        .await;
    let admin = app.admin_caller();
    let sara = entity::Caller {
        user_id: sara_id.clone(),
        account_id: admin.account_id.clone(),
        role: entity::Role::Member,
    };
    let schema = CountedSchema::new(app);
    let vars = json!({"g": board.group});
    let mut admins = vec![schema.subscribe(&admin, BOARD_FEED, vars.clone())];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let one = schema.statements_during(Duration::from_secs(2)).await;
    // 32 subscriptions (the most one process lets a user run): 22 of the admin's and 10
    // of Sara's.
    for _ in 0..21 {
        admins.push(schema.subscribe(&admin, BOARD_FEED, vars.clone()));
    }
    let mut sellers: Vec<_> = (0..10)
        .map(|_| schema.subscribe(&sara, BOARD_FEED, vars.clone()))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let many = schema.statements_during(Duration::from_secs(2)).await;
    assert!(one >= 2, "the board is polled: {one} statements in 2 s");
    assert!(
        many <= one + 2,
        "32 subscriptions cost {many} statements in 2 s, one cost {one}"
    );
    assert_eq!(schema.state.app.live.boards_polled(), 1);
    // Two new leads; one goes to Sara. The group shows members their own deals only.
    board
        .post(cart("c-1", now() - MINUTE, "ana@x.test", 1_234_567))
        .await;
    board
        .post(cart("c-2", now() - MINUTE, "bia@x.test", 1_234_567))
        .await;
    let ana = board.only_deal("ana@x.test").await;
    app.ok(
        &app.admin,
        "mutation($d: ID!, $u: ID) { assignDeal(dealId: $d, userId: $u) { id } }",
        json!({"d": ana["id"], "u": sara_id}),
    )
    .await;
    let mut seen_by_admins = vec![Vec::new(); admins.len()];
    let mut seen_by_sara = vec![Vec::new(); sellers.len()];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        admins
            .iter_mut()
            .zip(&mut seen_by_admins)
            .for_each(|(r, s)| emitted(r, s));
        sellers
            .iter_mut()
            .zip(&mut seen_by_sara)
            .for_each(|(r, s)| emitted(r, s));
        let done = seen_by_admins
            .iter()
            .all(|s| s.contains(&"ana@x.test".into()) && s.contains(&"bia@x.test".into()))
            && seen_by_sara
                .iter()
                .all(|s| s.contains(&"ana@x.test".into()));
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{seen_by_admins:?} {seen_by_sara:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    sellers
        .iter_mut()
        .zip(&mut seen_by_sara)
        .for_each(|(r, s)| emitted(r, s));
    for seen in &seen_by_sara {
        assert!(
            seen.iter().all(|e| e == "ana@x.test"),
            "a member saw another's deal: {seen:?}"
        );
    }
    drop(admins);
    drop(sellers);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        schema.state.app.live.boards_polled(),
        0,
        "the poll ends with its subscribers"
    );
    assert_eq!(schema.statements_during(Duration::from_secs(1)).await, 0);
}

/// The in-memory rule shared board feeds filter with says what the SQL rule says, for
/// every scope, visibility and owner, for admins and members.
async fn the_feed_filter_matches_the_query_rule(backend: Backend) {
    let board = Board::new(backend).await;
    let app = &board.app;
    let (sara_id, _) = app.user("sara@acme.test", "MEMBER").await;
    let (otto_id, _) = app.user("otto@acme.test", "MEMBER").await;
    let emails = ["a@x.test", "b@x.test", "c@x.test"];
    for (i, email) in emails.iter().enumerate() {
        board
            .post(cart(&format!("c-{i}"), now() - MINUTE, email, 1_234_567))
            .await;
    }
    for (email, owner) in [("a@x.test", &sara_id), ("b@x.test", &otto_id)] {
        let deal = board.only_deal(email).await;
        app.ok(
            &app.admin,
            "mutation($d: ID!, $u: ID) { assignDeal(dealId: $d, userId: $u) { id } }",
            json!({"d": deal["id"], "u": owner}),
        )
        .await;
    }
    let admin = app.admin_caller();
    let member = |user_id: &str| entity::Caller {
        user_id: user_id.to_owned(),
        account_id: admin.account_id.clone(),
        role: entity::Role::Member,
    };
    let callers = [admin.clone(), member(&sara_id), member(&otto_id)];
    let db = &app.db.conn;
    let mut cases = 0;
    for scope in ["ALL", "OWN", "OWN_AND_UNOWNED"] {
        for (everyone, viewers) in [
            (true, vec![]),
            (false, vec![sara_id.clone()]),
            (false, vec![]),
        ] {
            app.ok(&app.admin, "mutation($g: ID!, $e: Boolean!, $u: [ID!], $s: DealScope) { setGroupVisibility(groupId: $g, input: {everyone: $e, userIds: $u, memberScope: $s}) { id } }", json!({"g": board.group, "e": everyone, "u": viewers, "s": scope}))
                .await;
            let access = entity::groups::access(db, &admin.account_id, &board.group)
                .await
                .unwrap()
                .unwrap();
            let all = entity::deals::changed_since(db, &admin, &board.group, 0, 100)
                .await
                .unwrap();
            assert_eq!(all.len(), 3);
            for caller in &callers {
                let by_query: Vec<String> =
                    entity::deals::changed_since(db, caller, &board.group, 0, 100)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|d| d.id)
                        .collect();
                let in_memory: Vec<String> = all
                    .iter()
                    .filter(|d| access.may_see(caller, d))
                    .map(|d| d.id.clone())
                    .collect();
                assert_eq!(
                    by_query, in_memory,
                    "{scope} everyone={everyone} viewers={viewers:?} {caller:?}"
                );
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 27);
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The deals the board emits until one matches `last` (panics after 20 s).
async fn next_changes(socket: &mut Socket, last: impl Fn(&Value) -> bool) -> Vec<Value> {
    use tokio_tungstenite::tungstenite::Message;
    let mut seen: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.last().is_some_and(&last) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(message))) = tokio::time::timeout(left, socket.next()).await else {
            panic!("the board saw only {seen:?}");
        };
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        match value["type"].as_str() {
            Some("next") => seen.push(value["payload"]["data"]["dealsChanged"].clone()),
            Some("error") => panic!("subscription error: {value}"),
            _ => {}
        }
    }
    seen
}

/// The search index follows the contacts: new data is found and replaced data is not,
/// an erased buyer is not found, short terms still search, and a term that only spans
/// two fields (the index's text joins them) finds nothing.
async fn search_follows_the_contacts(backend: Backend) {
    let board = Board::new(backend).await;
    let app = &board.app;
    let count = |search: &'static str| async move {
        app.ok(
            &app.admin,
            "query($s: String) { deals(filter: {search: $s}) { totalCount } }",
            json!({"s": search}),
        )
        .await["deals"]["totalCount"]
            .as_u64()
            .unwrap()
    };
    board
        .post(cart(
            "c-1",
            now() - 2 * MINUTE,
            "ana.souza@x.test",
            1_234_567,
        ))
        .await;
    let mut newer = cart("c-2", now() - MINUTE, "ana.souza@x.test", 1_234_567);
    newer["data"]["buyer"]["name"] = json!("Ana Beatriz Lima");
    newer["data"]["buyer"]["phone"] = json!("+55 21 98888-7777");
    board.post(newer).await;
    assert!(count("beatriz").await >= 1, "the new name is found");
    assert!(
        count("(21) 98888-7777").await >= 1,
        "the new phone is found"
    );
    assert_eq!(count("souza ana").await, 0, "no match across fields");
    assert_eq!(count("99999-0000").await, 0, "the replaced phone is gone");
    assert!(count("li").await >= 1, "two letters still search");
    let contact = app
        .ok(
            &app.admin,
            "{ contacts(filter: {search: \"beatriz\"}) { nodes { id } } }",
            json!({}),
        )
        .await["contacts"]["nodes"][0]["id"]
        .clone();
    app.ok(
        &app.admin,
        "mutation($c: ID!) { eraseContact(contactId: $c, reason: \"pedido do titular\") { contactId } }",
        json!({"c": contact}),
    )
    .await;
    for search in ["beatriz", "ana.souza", "98888-7777"] {
        assert_eq!(count(search).await, 0, "{search} after erasure");
    }
}

/// A term most contacts share reads deals in list order and checks each one's contact
/// (the index finds more than `entity::contacts::FEW`); the answer is the same as
/// through the index.
async fn a_common_search_term_reads_deals_in_order(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let board = Board::new(backend).await;
    let app = &board.app;
    board
        .post(cart("c-1", now() - MINUTE, "ana.souza@x.test", 1_234_567))
        .await;
    let many = entity::contacts::FEW + 10;
    let rows = match backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE m(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM m WHERE n < {many}) \
             SELECT 'bulk-' || n, '{account}', 'bulk' || n || '@x.test', 'Bia Souza ' || n, 0, n, n FROM m",
            account = app.account_id
        ),
        Backend::Postgres => format!(
            "SELECT 'bulk-' || n, '{account}', 'bulk' || n || '@x.test', 'Bia Souza ' || n, 0, n, n \
             FROM generate_series(1, {many}) AS n",
            account = app.account_id
        ),
    };
    app.db
        .conn
        .execute_unprepared(&format!(
            "INSERT INTO contacts (id, account_id, email, name, data_at, created_at, updated_at) {rows}"
        ))
        .await
        .unwrap();
    let found = |query: &'static str, search: &'static str| async move {
        app.ok(&app.admin, query, json!({"s": search})).await
    };
    let deals = "query($s: String) { deals(filter: {search: $s}) { totalCount nodes { contact { email } } } }";
    for search in ["souza", "ana souza", "SOUZA"] {
        let data = found(deals, search).await;
        assert_eq!(data["deals"]["totalCount"], 1, "{search}");
        assert_eq!(
            data["deals"]["nodes"][0]["contact"]["email"],
            "ana.souza@x.test"
        );
    }
    let contacts = "query($s: String) { contacts(filter: {search: $s}) { totalCount } }";
    assert_eq!(
        found(contacts, "souza").await["contacts"]["totalCount"],
        many + 1
    );
    let fives = (1..=many)
        .filter(|n| n.to_string().starts_with('5'))
        .count();
    assert_eq!(
        found(contacts, "bia souza 5").await["contacts"]["totalCount"],
        fives
    );
}

on_both_backends!(
    stages_and_origins_are_managed_by_admins,
    a_seller_works_a_deal,
    actions_and_checkout_events_fold_together,
    members_see_what_the_group_scope_allows,
    search_whatsapp_and_activities,
    search_follows_the_contacts,
    a_common_search_term_reads_deals_in_order,
    bad_input_loses_nothing,
    the_report_counts_recovered_sales,
    the_board_is_live,
    one_poll_serves_every_subscriber_of_a_board,
    the_feed_filter_matches_the_query_rule
);
