//! The deal engine's consequences (`docs/deal-engine.md`), through real webhooks, each with
//! and without `mergeProducts`.

use serde_json::{Value, json};
use tests::{
    Backend, TestApp,
    hotmart::{Purchase, cart, purchase},
    on_both_backends,
};

const HOTTOK: &str = "hottok-secret-0001";
const DEAL_EVENTS: [&str; 11] = [
    "PURCHASE_OUT_OF_SHOPPING_CART",
    "PURCHASE_BILLET_PRINTED",
    "PURCHASE_CANCELED",
    "PURCHASE_EXPIRED",
    "PURCHASE_APPROVED",
    "PURCHASE_COMPLETE",
    "PURCHASE_DELAYED",
    "PURCHASE_PROTEST",
    "PURCHASE_REFUNDED",
    "PURCHASE_CHARGEBACK",
    "SUBSCRIPTION_CANCELLATION",
];
const DAY: i64 = 86_400_000;
const T0: i64 = 1_745_952_631_331;

struct Scenario {
    app: TestApp,
    url: String,
}

impl Scenario {
    async fn new(backend: Backend, merged: bool) -> Scenario {
        let app = TestApp::spawn(backend).await;
        let (id, url) = app
            .active_integration(&DEAL_EVENTS, json!({"mergeProducts": merged}))
            .await;
        app.ok(
            &app.admin,
            "mutation($id: ID!) { addHotmartProduct(integrationId: $id, input: {hotmartProductId: \"7654321\", hottok: \"hottok-secret-0001\", name: \"Curso B\"}) { id } }",
            json!({"id": id}),
        )
        .await;
        Scenario { app, url }
    }

    async fn post(&self, bodies: &[Value]) {
        for body in bodies {
            let (status, reply) = self
                .app
                .post_webhook(&self.url, Some(HOTTOK), body.to_string())
                .await;
            assert_eq!(status, 200, "{reply}");
        }
        self.app.wait_until_processed().await;
    }

    /// The contact's deals, oldest first: (origin, status, timeline length).
    async fn deals(&self, email: &str) -> Vec<(String, String, usize)> {
        let data = self
            .app
            .ok(
                &self.app.admin,
                "query($e: String) { deals(filter: {contactEmail: $e}, first: 200) { nodes { status origin { name } timeline { event } } } }",
                json!({"e": email}),
            )
            .await;
        let mut deals: Vec<(String, String, usize)> = data["deals"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["origin"]["name"].as_str().unwrap().to_owned(),
                    d["status"].as_str().unwrap().to_owned(),
                    d["timeline"].as_array().unwrap().len(),
                )
            })
            .collect();
        deals.reverse();
        deals
    }

    async fn full(&self, email: &str) -> Value {
        self.app
            .ok(
                &self.app.admin,
                "query($e: String) { deals(filter: {contactEmail: $e}) { nodes { id status value currency closedAt transactions lostReason origin { name } product { hotmartProductId } contact { email name phone labels { name } } timeline { event effect source description deliveryId } } } }",
                json!({"e": email}),
            )
            .await
    }
}

fn d(origin: &str, status: &str, events: usize) -> (String, String, usize) {
    (origin.to_owned(), status.to_owned(), events)
}

async fn cart_boleto_approved_is_one_won_deal_in_any_order(backend: Backend) {
    for merged in [false, true] {
        let s = Scenario::new(backend, merged).await;
        let journey = |email: &str, p: &str| {
            vec![
                cart(&format!("{p}-1"), T0, email, 1_234_567),
                purchase(
                    &format!("{p}-2"),
                    "PURCHASE_BILLET_PRINTED",
                    T0 + 1000,
                    email,
                    &format!("HP{p}"),
                ),
                purchase(
                    &format!("{p}-3"),
                    "PURCHASE_APPROVED",
                    T0 + 2000,
                    email,
                    &format!("HP{p}"),
                ),
            ]
        };
        let in_order = journey("ordered@x.test", "a");
        let mut reversed = journey("reversed@x.test", "b");
        reversed.reverse();
        let j = journey("shuffled@x.test", "c");
        let shuffled = vec![j[1].clone(), j[2].clone(), j[0].clone()];
        s.post(&in_order).await;
        s.post(&reversed).await;
        s.post(&shuffled).await;
        for email in ["ordered@x.test", "reversed@x.test", "shuffled@x.test"] {
            assert_eq!(
                s.deals(email).await,
                vec![d("Compra aprovada", "WON", 3)],
                "{email} merged={merged}"
            );
        }
        let full = s.full("ordered@x.test").await;
        let deal = &full["deals"]["nodes"][0];
        assert_eq!(deal["value"], 97.0);
        assert_eq!(deal["currency"], "BRL");
        assert_eq!(deal["transactions"], json!(["HPa"]));
        assert!(!deal["closedAt"].is_null());
        assert_eq!(deal["contact"]["phone"], "+5511999990000");
        let effects: Vec<&str> = deal["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["effect"].as_str().unwrap())
            .collect();
        assert_eq!(effects, vec!["CREATED", "MOVED", "MOVED"]);
        assert!(
            deal["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["source"] == "WEBHOOK" && !t["deliveryId"].is_null())
        );
    }
}

async fn refused_card_then_other_product_approved(backend: Backend) {
    for merged in [false, true] {
        let s = Scenario::new(backend, merged).await;
        let email = "refused@x.test";
        let refused = Purchase {
            id: "r1",
            event: "PURCHASE_CANCELED",
            at: T0,
            email,
            product: 1_234_567,
            transaction: "HPA",
            price: 97.0,
            subscriber: None,
        };
        let approved = Purchase {
            id: "r2",
            event: "PURCHASE_APPROVED",
            at: T0 + 1000,
            email,
            product: 7_654_321,
            transaction: "HPB",
            price: 197.0,
            subscriber: None,
        };
        s.post(&[refused.body(), approved.body()]).await;
        let deals = s.deals(email).await;
        if merged {
            assert_eq!(deals, vec![d("Compra aprovada", "WON", 2)]);
        } else {
            assert_eq!(
                deals,
                vec![
                    d("Cartão recusado", "OPEN", 1),
                    d("Compra aprovada", "WON", 1)
                ]
            );
        }
    }
}

async fn approved_then_refunded_is_lost(backend: Backend) {
    for merged in [false, true] {
        let s = Scenario::new(backend, merged).await;
        let email = "refund@x.test";
        s.post(&[
            purchase("f1", "PURCHASE_APPROVED", T0, email, "HP1"),
            purchase("f2", "PURCHASE_REFUNDED", T0 + DAY, email, "HP1"),
        ])
        .await;
        assert_eq!(s.deals(email).await, vec![d("Reembolsado", "LOST", 2)]);
    }
}

async fn boleto_expiring_after_card_payment_stays_on_the_timeline(backend: Backend) {
    for merged in [false, true] {
        let s = Scenario::new(backend, merged).await;
        let email = "expiry@x.test";
        s.post(&[
            purchase("e1", "PURCHASE_BILLET_PRINTED", T0, email, "HP1"),
            purchase("e2", "PURCHASE_APPROVED", T0 + 1000, email, "HP2"),
            purchase("e3", "PURCHASE_EXPIRED", T0 + 3 * DAY, email, "HP1"),
        ])
        .await;
        assert_eq!(s.deals(email).await, vec![d("Compra aprovada", "WON", 3)]);
        let full = s.full(email).await;
        let last = &full["deals"]["nodes"][0]["timeline"][2];
        assert_eq!(
            (last["event"].as_str(), last["effect"].as_str()),
            (Some("PURCHASE_EXPIRED"), Some("TIMELINE_ONLY"))
        );
    }
}

async fn new_cart_weeks_after_a_won_deal_opens_a_new_deal(backend: Backend) {
    for merged in [false, true] {
        let s = Scenario::new(backend, merged).await;
        let email = "again@x.test";
        s.post(&[
            purchase("w1", "PURCHASE_APPROVED", T0, email, "HP1"),
            cart("w2", T0 + 21 * DAY, email, 1_234_567),
        ])
        .await;
        assert_eq!(
            s.deals(email).await,
            vec![
                d("Compra aprovada", "WON", 1),
                d("Carrinho abandonado", "OPEN", 1)
            ]
        );
    }
}

async fn overdue_renewal_then_paid(backend: Backend) {
    for merged in [false, true] {
        let s = Scenario::new(backend, merged).await;
        let email = "renewal@x.test";
        let event = |id, event, at, tx| {
            Purchase {
                id,
                event,
                at,
                email,
                product: 1_234_567,
                transaction: tx,
                price: 97.0,
                subscriber: Some("SUB1"),
            }
            .body()
        };
        s.post(&[
            event("n1", "PURCHASE_APPROVED", T0, "HP1"),
            event("n2", "PURCHASE_DELAYED", T0 + 30 * DAY, "HP2"),
        ])
        .await;
        assert_eq!(
            s.deals(email).await,
            vec![d("Pagamento atrasado", "OPEN", 2)]
        );
        s.post(&[event("n3", "PURCHASE_APPROVED", T0 + 32 * DAY, "HP2")])
            .await;
        assert_eq!(s.deals(email).await, vec![d("Compra aprovada", "WON", 3)]);
    }
}

async fn the_same_event_twice_has_one_effect_and_late_events_keep_deal_ids(backend: Backend) {
    for merged in [false, true] {
        let s = Scenario::new(backend, merged).await;
        let email = "twice@x.test";
        let approved = purchase("t2", "PURCHASE_APPROVED", T0 + 1000, email, "HP1");
        s.post(std::slice::from_ref(&approved)).await;
        let first = s.full(email).await["deals"]["nodes"][0]["id"].clone();
        let (status, reply) = s
            .app
            .post_webhook(&s.url, Some(HOTTOK), approved.to_string())
            .await;
        assert_eq!((status, reply["status"].as_str()), (200, Some("duplicate")));
        // An older event arriving late joins the same deal, which keeps its id.
        s.post(&[cart("t1", T0, email, 1_234_567)]).await;
        assert_eq!(s.deals(email).await, vec![d("Compra aprovada", "WON", 2)]);
        assert_eq!(s.full(email).await["deals"]["nodes"][0]["id"], first);
    }
}

async fn owners_rotate_and_are_kept(backend: Backend) {
    let s = Scenario::new(backend, false).await;
    let app = &s.app;
    let (ana, _) = app.user("ana@acme.test", "MEMBER").await;
    let (bia, _) = app.user("bia@acme.test", "MEMBER").await;
    let origins = app
        .ok(&app.admin, "{ groups { origins { id event } } }", json!({}))
        .await;
    let origin_of = |event: &str| {
        origins["groups"][0]["origins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["event"] == event)
            .unwrap()["id"]
            .clone()
    };
    app.ok(
        &app.admin,
        "mutation($o: ID!, $u: [ID!]!) { setOriginAssignees(originId: $o, userIds: $u) { id } }",
        json!({"o": origin_of("PURCHASE_OUT_OF_SHOPPING_CART"), "u": [ana, bia]}),
    )
    .await;
    app.ok(
        &app.admin,
        "mutation($o: ID!, $u: [ID!]!) { setOriginAssignees(originId: $o, userIds: $u) { id } }",
        json!({"o": origin_of("PURCHASE_APPROVED"), "u": [bia]}),
    )
    .await;
    for (i, email) in ["c1@x.test", "c2@x.test", "c3@x.test"].iter().enumerate() {
        s.post(&[cart(&format!("o{i}"), T0 + i as i64, email, 1_234_567)])
            .await;
    }
    let owner = |data: &Value| {
        data["deals"]["nodes"][0]["owner"]["id"]
            .as_str()
            .map(str::to_owned)
    };
    let q = "query($e: String) { deals(filter: {contactEmail: $e}) { nodes { owner { id } } } }";
    let mut owners = Vec::new();
    for email in ["c1@x.test", "c2@x.test", "c3@x.test"] {
        owners.push(owner(&app.ok(&app.admin, q, json!({"e": email})).await).unwrap());
    }
    assert_eq!(
        owners,
        vec![ana.clone(), bia.clone(), ana.clone()],
        "round robin"
    );
    // keepDealOwner off: moving to an origin with assignees takes its rotation's owner.
    s.post(&[purchase(
        "o9",
        "PURCHASE_APPROVED",
        T0 + 10,
        "c1@x.test",
        "HPX",
    )])
    .await;
    assert_eq!(
        owner(&app.ok(&app.admin, q, json!({"e": "c1@x.test"})).await),
        Some(bia.clone())
    );
    // A manual assignment, then keepDealOwner on: a moved deal keeps it.
    let deal = app
        .ok(
            &app.admin,
            "query($e: String) { deals(filter: {contactEmail: $e}) { nodes { id } } }",
            json!({"e": "c3@x.test"}),
        )
        .await["deals"]["nodes"][0]["id"]
        .clone();
    let assigned = app.ok(&app.admin, "mutation($d: ID!, $u: ID) { assignDeal(dealId: $d, userId: $u) { owner { id } timeline { source description } } }", json!({"d": deal, "u": bia})).await;
    assert_eq!(assigned["assignDeal"]["owner"]["id"], bia.as_str());
    assert!(
        assigned["assignDeal"]["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["source"] == "USER")
    );
    let integration = app
        .ok(&app.admin, "{ integrations { id } }", json!({}))
        .await["integrations"][0]["id"]
        .clone();
    app.ok(
        &app.admin,
        "mutation($id: ID!) { updateIntegration(id: $id, input: {keepDealOwner: true}) { id } }",
        json!({"id": integration}),
    )
    .await;
    s.post(&[purchase(
        "o10",
        "PURCHASE_APPROVED",
        T0 + 20,
        "c3@x.test",
        "HPY",
    )])
    .await;
    assert_eq!(
        owner(&app.ok(&app.admin, q, json!({"e": "c3@x.test"})).await),
        Some(bia.clone())
    );
    // keepDealOwner on: the contact's next new deal gets the same owner.
    s.post(&[cart("o11", T0 + 40 * DAY, "c3@x.test", 1_234_567)])
        .await;
    let data = app.ok(&app.admin, "query($e: String) { deals(filter: {contactEmail: $e, status: OPEN}) { nodes { owner { id } } } }", json!({"e": "c3@x.test"})).await;
    assert_eq!(owner(&data), Some(bia));
}

async fn contacts_are_tagged_and_merged(backend: Backend) {
    let s = Scenario::new(backend, false).await;
    let app = &s.app;
    let integration = app
        .ok(
            &app.admin,
            "{ integrations { id products { id hotmartProductId } } }",
            json!({}),
        )
        .await;
    let id = integration["integrations"][0]["id"].clone();
    let product = integration["integrations"][0]["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["hotmartProductId"] == "1234567")
        .unwrap()["id"]
        .clone();
    app.ok(&app.admin, "mutation($id: ID!) { updateIntegration(id: $id, input: {tagContactsWithProductName: true}) { id } }", json!({"id": id})).await;
    app.ok(&app.admin, "mutation($p: ID!) { updateProduct(productId: $p, input: {name: \"Curso X\", label: \"Alunos\"}) { id } }", json!({"p": product})).await;
    // Newer non-empty data wins; an older event and empty values erase nothing.
    let mut first = cart("m1", T0, "Tag@X.test ", 1_234_567);
    first["data"]["buyer"]["name"] = json!("Old Name");
    let mut newer = purchase("m2", "PURCHASE_APPROVED", T0 + 1000, "tag@x.test", "HP1");
    newer["data"]["buyer"]["name"] = json!("New Name");
    let mut older = purchase(
        "m0",
        "PURCHASE_BILLET_PRINTED",
        T0 - 1000,
        "tag@x.test",
        "HP1",
    );
    older["data"]["buyer"]["name"] = json!("Oldest Name");
    older["data"]["buyer"]["checkout_phone"] = json!("");
    s.post(&[first, newer, older]).await;
    let contacts = app
        .ok(
            &app.admin,
            "{ contacts { totalCount nodes { email name phone labels { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(contacts["contacts"]["totalCount"], 1);
    let contact = &contacts["contacts"]["nodes"][0];
    assert_eq!(contact["email"], "tag@x.test");
    assert_eq!(contact["name"], "New Name");
    assert_eq!(contact["phone"], "+5511999990000");
    assert_eq!(
        contact["labels"],
        json!([{"name": "Alunos"}, {"name": "Curso X"}])
    );
    let search = app
        .ok(
            &app.admin,
            "{ contacts(filter: {search: \"new na\"}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(search["contacts"]["totalCount"], 1);
}

async fn deals_page_by_cursor_and_filter(backend: Backend) {
    let s = Scenario::new(backend, false).await;
    let mut bodies = Vec::new();
    for i in 0..7 {
        let email = format!("page{i}@x.test");
        bodies.push(if i % 2 == 0 {
            purchase(
                &format!("pg{i}"),
                "PURCHASE_APPROVED",
                T0 + i,
                &email,
                &format!("HP{i}"),
            )
        } else {
            cart(&format!("pg{i}"), T0 + i, &email, 1_234_567)
        });
    }
    s.post(&bodies).await;
    let app = &s.app;
    let q = "query($after: String, $f: DealFilter) { deals(first: 3, after: $after, filter: $f) { totalCount pageInfo { hasNextPage endCursor } nodes { id status } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app.ok(&app.admin, q, json!({"after": after})).await["deals"].clone();
        assert_eq!(page["totalCount"], 7);
        seen.extend(
            page["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (7, 7), "every deal once");
    let won = app.ok(&app.admin, q, json!({"f": {"status": "WON"}})).await;
    assert_eq!(won["deals"]["totalCount"], 4);
    let groups = app
        .ok(
            &app.admin,
            "{ groups { id origins { id event dealCount(status: OPEN) } } }",
            json!({}),
        )
        .await;
    let group = &groups["groups"][0];
    let cart_origin = group["origins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["event"] == "PURCHASE_OUT_OF_SHOPPING_CART")
        .unwrap();
    assert_eq!(cart_origin["dealCount"], 3);
    let by_origin = app
        .ok(
            &app.admin,
            q,
            json!({"f": {"originId": cart_origin["id"], "groupId": group["id"]}}),
        )
        .await;
    assert_eq!(by_origin["deals"]["totalCount"], 3);
}

/// The integration's label tags its contacts, and deals can be filtered by a label.
async fn the_integration_label_tags_contacts_and_filters_deals(backend: Backend) {
    let s = Scenario::new(backend, false).await;
    let app = &s.app;
    let id = app
        .ok(&app.admin, "{ integrations { id } }", json!({}))
        .await["integrations"][0]["id"]
        .clone();
    app.ok(
        &app.admin,
        "mutation($id: ID!) { updateIntegration(id: $id, input: {label: \"Lançamento\"}) { label } }",
        json!({"id": id}),
    )
    .await;
    s.post(&[purchase(
        "l1",
        "PURCHASE_APPROVED",
        T0,
        "label@x.test",
        "HPL",
    )])
    .await;
    let contact = app
        .ok(
            &app.admin,
            "{ contacts { nodes { id labels { id name } } } }",
            json!({}),
        )
        .await["contacts"]["nodes"][0]
        .clone();
    let label = contact["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "Lançamento")
        .unwrap_or_else(|| panic!("the integration's label: {contact}"))["id"]
        .clone();
    let count = |label: Value| async move {
        app.ok(
            &app.admin,
            "query($l: ID) { deals(filter: {labelId: $l}) { totalCount } }",
            json!({"l": label}),
        )
        .await["deals"]["totalCount"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count(label.clone()).await, 1);
    app.ok(
        &app.admin,
        "mutation($c: ID!, $l: ID!) { unlabelContact(contactId: $c, labelId: $l) { id } }",
        json!({"c": contact["id"], "l": label}),
    )
    .await;
    assert_eq!(count(label).await, 0, "only deals of labelled contacts");
    assert_eq!(count(Value::Null).await, 1);
}

on_both_backends!(
    the_integration_label_tags_contacts_and_filters_deals,
    deals_page_by_cursor_and_filter,
    cart_boleto_approved_is_one_won_deal_in_any_order,
    refused_card_then_other_product_approved,
    approved_then_refunded_is_lost,
    boleto_expiring_after_card_payment_stays_on_the_timeline,
    new_cart_weeks_after_a_won_deal_opens_a_new_deal,
    overdue_renewal_then_paid,
    the_same_event_twice_has_one_effect_and_late_events_keep_deal_ids,
    owners_rotate_and_are_kept,
    contacts_are_tagged_and_merged,
);
