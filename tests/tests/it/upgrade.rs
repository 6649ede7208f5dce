//! Upgrading a part-one database: the "working the pipeline" migration runs over rows
//! written before it (origins keyed by Hotmart events, deals, a log with a manual owner
//! change) and leaves what the new code expects, on both backends.

use std::collections::BTreeMap;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use tests::{Backend, TestDatabase, on_both_backends};

/// Inserts a row giving `values`; every other required column without a default gets a
/// placeholder of its type (the test knows the columns it cares about, not every one).
async fn insert(db: &DatabaseConnection, table: &str, values: &[(&str, Value)]) {
    let backend = db.get_database_backend();
    let columns: Vec<(String, String, bool)> = match backend {
        DbBackend::Sqlite => db
            .query_all_raw(Statement::from_string(backend, format!("PRAGMA table_info({table})")))
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let name: String = r.try_get("", "name").unwrap();
                let ty: String = r.try_get("", "type").unwrap();
                let notnull: i32 = r.try_get("", "notnull").unwrap();
                let default: Option<String> = r.try_get("", "dflt_value").unwrap();
                (name, ty.to_lowercase(), notnull == 1 && default.is_none())
            })
            .collect(),
        _ => db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns WHERE table_name = $1",
                [table.into()],
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let name: String = r.try_get("", "column_name").unwrap();
                let ty: String = r.try_get("", "data_type").unwrap();
                let nullable: String = r.try_get("", "is_nullable").unwrap();
                let default: Option<String> = r.try_get("", "column_default").unwrap();
                (name, ty.to_lowercase(), nullable == "NO" && default.is_none())
            })
            .collect(),
    };
    let mut row: BTreeMap<String, Value> = values
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    for (name, ty, required) in columns {
        if required && !row.contains_key(&name) {
            let placeholder: Value = if ty.contains("bool") {
                false.into()
            } else if ty.contains("int") {
                0i64.into()
            } else {
                format!("{table}-{name}").into()
            };
            row.insert(name, placeholder);
        }
    }
    let names: Vec<&String> = row.keys().collect();
    let marks: Vec<String> = (1..=row.len())
        .map(|i| match backend {
            DbBackend::Postgres => format!("${i}"),
            _ => "?".to_owned(),
        })
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        marks.join(", ")
    );
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        row.into_values(),
    ))
    .await
    .unwrap_or_else(|err| panic!("insert into {table}: {err}"));
}

async fn one(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .unwrap()
}

async fn a_part_one_database_upgrades(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = entity::database::connect(&database.url, 2)
        .await
        .unwrap()
        .conn;
    // Part one ends before the "working the pipeline" migration.
    let part_one = Migrator::migrations()
        .iter()
        .position(|m| m.name().contains("working_the_pipeline"))
        .expect("the migration exists") as u32;
    Migrator::up(&db, Some(part_one)).await.unwrap();
    let s = |v: &str| Value::from(v.to_owned());
    insert(&db, "accounts", &[("id", s("acc"))]).await;
    insert(
        &db,
        "users",
        &[
            ("id", s("u1")),
            ("account_id", s("acc")),
            ("email", s("u@x.test")),
            ("role", s("ADMIN")),
        ],
    )
    .await;
    insert(
        &db,
        "integrations",
        &[
            ("id", s("int")),
            ("account_id", s("acc")),
            ("platform", s("HOTMART")),
            ("status", s("ACTIVE")),
            ("events", s("[]")),
        ],
    )
    .await;
    insert(
        &db,
        "groups",
        &[
            ("id", s("grp")),
            ("account_id", s("acc")),
            ("integration_id", s("int")),
        ],
    )
    .await;
    for (id, event, status) in [
        ("o-cart", "PURCHASE_OUT_OF_SHOPPING_CART", "OPEN"),
        ("o-paid", "PURCHASE_APPROVED", "WON"),
    ] {
        insert(
            &db,
            "origins",
            &[
                ("id", s(id)),
                ("account_id", s("acc")),
                ("group_id", s("grp")),
                ("event", s(event)),
                ("name", s(id)),
                ("entry_status", s(status)),
                ("created_at", 5i64.into()),
            ],
        )
        .await;
    }
    insert(
        &db,
        "origin_assignees",
        &[
            ("origin_id", s("o-cart")),
            ("user_id", s("u1")),
            ("account_id", s("acc")),
            ("position", 0i32.into()),
        ],
    )
    .await;
    insert(
        &db,
        "contacts",
        &[
            ("id", s("c1")),
            ("account_id", s("acc")),
            ("email", s("ana@x.test")),
        ],
    )
    .await;
    let deal = |id: &'static str, origin: &'static str, status: &'static str, paid: bool| {
        let s = |v: &str| Value::from(v.to_owned());
        vec![
            ("id", s(id)),
            ("account_id", s("acc")),
            ("group_id", s("grp")),
            ("origin_id", s(origin)),
            ("contact_id", s("c1")),
            ("deal_key", s(&format!("grp|c1|{id}"))),
            ("status", s(status)),
            ("paid", paid.into()),
            ("created_at", 100i64.into()),
            ("closed_at", Value::from(paid.then_some(200i64))),
            ("last_event_at", 200i64.into()),
            ("updated_at", 200i64.into()),
        ]
    };
    insert(&db, "deals", &deal("d-cart", "o-cart", "OPEN", false)).await;
    insert(&db, "deals", &deal("d-paid", "o-paid", "WON", true)).await;
    let event =
        |id: &'static str, key: &'static str, ev: &'static str, deal: &'static str, at: i64| {
            let s = |v: &str| Value::from(v.to_owned());
            vec![
                ("id", s(id)),
                ("account_id", s("acc")),
                ("group_id", s("grp")),
                ("contact_id", s("c1")),
                ("deal_key", s(key)),
                ("dedup_id", s(id)),
                ("event", s(ev)),
                ("source", s("WEBHOOK")),
                ("occurred_at", at.into()),
                ("data", s("{\"refs\":[]}")),
                ("deal_id", s(deal)),
                ("recorded_at", at.into()),
            ]
        };
    insert(
        &db,
        "deal_events",
        &event(
            "e1",
            "grp|c1|d-cart",
            "PURCHASE_OUT_OF_SHOPPING_CART",
            "d-cart",
            100,
        ),
    )
    .await;
    insert(
        &db,
        "deal_events",
        &event("e2", "grp|c1|d-paid", "PURCHASE_APPROVED", "d-paid", 100),
    )
    .await;
    insert(
        &db,
        "deal_events",
        &event("e3", "grp|c1|d-paid", "CLUB_FIRST_ACCESS", "d-paid", 150),
    )
    .await;
    insert(
        &db,
        "deal_events",
        &event("e4", "user:d-cart", "ASSIGNED", "d-cart", 160),
    )
    .await;

    Migrator::up(&db, None).await.unwrap();

    // Every checkout: each integration names the group it owns.
    let joined = one(
        &db,
        "SELECT i.id FROM integrations i JOIN groups g ON g.id = i.group_id AND g.integration_id = i.id",
    )
    .await;
    let integrations = one(&db, "SELECT id FROM integrations").await;
    assert_eq!(joined.len(), integrations.len());
    assert!(!integrations.is_empty());

    let origins = one(&db, "SELECT id, checkout_event FROM origins ORDER BY id").await;
    let got: Vec<(String, Option<String>)> = origins
        .iter()
        .map(|r| {
            (
                r.try_get("", "id").unwrap(),
                r.try_get("", "checkout_event").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("o-cart".into(), Some("CART_ABANDONED".into())),
            ("o-paid".into(), Some("PURCHASE_APPROVED".into()))
        ]
    );
    let stages = one(
        &db,
        "SELECT origin_id, name FROM stages ORDER BY origin_id, position",
    )
    .await;
    assert_eq!(stages.len(), 6);
    let reasons = one(&db, "SELECT id FROM lost_reasons").await;
    assert_eq!(reasons.len(), 8);
    let deals = one(
        &db,
        "SELECT id, stage_id, version, began_pre_sale, paid_at FROM deals ORDER BY id",
    )
    .await;
    let row = |i: usize| {
        let r = &deals[i];
        let id: String = r.try_get("", "id").unwrap();
        let stage: String = r.try_get("", "stage_id").unwrap();
        let version: i64 = r.try_get("", "version").unwrap();
        let began: bool = r.try_get("", "began_pre_sale").unwrap();
        let paid_at: Option<i64> = r.try_get("", "paid_at").unwrap();
        (id, stage, version, began, paid_at)
    };
    assert_eq!(row(0), ("d-cart".into(), "o-cart:s0".into(), 1, true, None));
    assert_eq!(
        row(1),
        ("d-paid".into(), "o-paid:s0".into(), 1, false, Some(200))
    );
    let events = one(
        &db,
        "SELECT id, kind, event, deal_key FROM deal_events ORDER BY id",
    )
    .await;
    let got: Vec<(String, String, String, String)> = events
        .iter()
        .map(|r| {
            (
                r.try_get("", "id").unwrap(),
                r.try_get("", "kind").unwrap(),
                r.try_get("", "event").unwrap(),
                r.try_get("", "deal_key").unwrap(),
            )
        })
        .collect();
    assert_eq!(got[0].1, "CART_ABANDONED");
    assert_eq!(got[1].1, "PURCHASE_APPROVED");
    assert_eq!(got[2].1, "INFO");
    assert_eq!(
        got[3],
        (
            "e4".into(),
            "OWNER_CHANGED".into(),
            "OWNER_CHANGED".into(),
            "grp|c1|d-cart".into()
        ),
        "a manual owner change joins its deal's log"
    );
    // The rotation of the rebuilt origins survived.
    assert_eq!(
        one(&db, "SELECT user_id FROM origin_assignees").await.len(),
        1
    );
}

on_both_backends!(a_part_one_database_upgrades);
