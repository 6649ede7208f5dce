//! Storage: connection settings on every pooled SQLite connection, the queue tables beside
//! the application's, and the unique indexes that enforce the product's invariants.

use entity::{
    database::Pool,
    deliveries::DeliveryStatus,
    new_id, now_ms,
    tables::enums::DealStatus,
    tables::{contact, deal, webhook_delivery},
};
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set, Statement};
use tests::{Backend, TestApp, on_both_backends};

#[tokio::test]
async fn every_sqlite_connection_uses_wal_normal_sync_and_a_busy_timeout() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let Pool::Sqlite(pool) = &app.db.pool else {
        unreachable!()
    };
    // Hold every connection the pool can give, so none is left unchecked.
    let mut connections = Vec::new();
    for _ in 0..app.config.max_connections {
        connections.push(pool.acquire().await.unwrap());
    }
    for conn in &mut connections {
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(synchronous, 1, "NORMAL");
        // The busy handler that replaces `busy_timeout` (it reads 0 then) is tested below.
        assert_eq!(busy, 0);
        assert_eq!(foreign_keys, 1);
    }
    assert_eq!(connections.len() as u32, app.config.max_connections);
}

/// A pool connection gets SQLite's lock between the writer's back-to-back transactions
/// (the job queue's statements run there, outside the write gate), and waits for it while
/// it is held: it tries again every millisecond, where SQLite's default handler tries
/// every 100 ms and misses gaps of a millisecond for its whole timeout.
#[tokio::test]
async fn pool_connections_find_the_gaps_between_back_to_back_writes() {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering::SeqCst},
    };
    let app = TestApp::spawn(Backend::Sqlite).await;
    let db = app.db.clone();
    for sql in [
        "CREATE TABLE busy_probe (n INTEGER NOT NULL)",
        "INSERT INTO busy_probe VALUES (0)",
    ] {
        db.conn.execute_unprepared(sql).await.unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (db, stop) = (db.clone(), stop.clone());
        async move {
            let mut written = 0u32;
            while !stop.load(SeqCst) {
                let txn = db.begin_write().await.unwrap();
                txn.execute_unprepared("UPDATE busy_probe SET n = n + 1")
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                txn.commit().await.unwrap();
                written += 1;
            }
            written
        }
    });
    let Pool::Sqlite(pool) = &db.pool else {
        unreachable!()
    };
    for i in 0..40 {
        if let Err(err) = sqlx::query("UPDATE busy_probe SET n = n + 1")
            .execute(pool)
            .await
        {
            panic!("statement {i} on a pool connection: {err}");
        }
    }
    stop.store(true, SeqCst);
    let written = writer.await.unwrap();
    // Each statement waited for a transaction in progress: the lock was contended.
    assert!(
        written >= 10,
        "the writer ran beside the statements ({written} transactions)"
    );
}

async fn queue_tables_live_in_the_application_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sql = match backend {
        Backend::Sqlite => "SELECT count(*) AS n FROM Jobs",
        Backend::Postgres => "SELECT count(*) AS n FROM apalis.jobs",
    };
    let row = app
        .db
        .conn
        .query_one_raw(Statement::from_string(
            app.db.conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0);
}

fn contact_row(account: &str, email: &str) -> contact::ActiveModel {
    contact::ActiveModel {
        id: Set(new_id()),
        account_id: Set(account.to_owned()),
        email: Set(email.to_owned()),
        name: Set(None),
        phone: Set(None),
        document: Set(None),
        data_at: Set(0),
        created_at: Set(now_ms()),
        updated_at: Set(now_ms()),
        erased_at: Set(None),
        email_hash: Set(None),
        phone_hash: Set(None),
    }
}

async fn unique_indexes_enforce_the_invariants(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.db.conn;
    // One contact per account and e-mail.
    let ana = contact_row(&app.account_id, "ana@example.com")
        .insert(db)
        .await
        .unwrap();
    assert!(
        contact_row(&app.account_id, "ana@example.com")
            .insert(db)
            .await
            .is_err()
    );

    // At most one open deal per key; closed deals of the same key are fine.
    let (integration, group) = app.integration_with_product(&["PURCHASE_APPROVED"]).await;
    let origin: String = {
        let data = app
            .ok(
                &app.admin,
                "query($id: ID!) { integration(id: $id) { group { origins { id } } } }",
                serde_json::json!({"id": integration}),
            )
            .await;
        data["integration"]["group"]["origins"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let deal_row = |open: bool| deal::ActiveModel {
        id: Set(new_id()),
        account_id: Set(app.account_id.clone()),
        group_id: Set(group.clone()),
        origin_id: Set(origin.clone()),
        stage_id: Set(format!("{origin}:s0")),
        contact_id: Set(ana.id.clone()),
        product_id: Set(None),
        deal_key: Set("key-1".into()),
        open_key: Set(open.then(|| "key-1".to_owned())),
        status: Set(if open {
            DealStatus::Open
        } else {
            DealStatus::Won
        }),
        paid: Set(false),
        owner_id: Set(None),
        value_cents: Set(None),
        details: Set(None),
        currency: Set(None),
        lost_reason: Set(None),
        created_at: Set(now_ms()),
        closed_at: Set(None),
        last_event_at: Set(now_ms()),
        updated_at: Set(now_ms()),
        version: Set(1),
        began_pre_sale: Set(false),
        paid_at: Set(None),
        first_action_at: Set(None),
    };
    deal_row(true).insert(db).await.unwrap();
    deal_row(false).insert(db).await.unwrap();
    deal_row(false).insert(db).await.unwrap();
    assert!(
        deal_row(true).insert(db).await.is_err(),
        "a second open deal for the key"
    );

    // One accepted delivery per integration and Hotmart event id.
    let delivery = |dedup: Option<&str>| webhook_delivery::ActiveModel {
        id: Set(new_id()),
        account_id: Set(app.account_id.clone()),
        integration_id: Set(integration.clone()),
        event_id: Set(Some("evt-1".into())),
        dedup_event_id: Set(dedup.map(str::to_owned)),
        event: Set(Some("PURCHASE_APPROVED".into())),
        status: Set(DeliveryStatus::Pending),
        reason: Set(None),
        attempts: Set(0),
        payload: Set("{}".into()),
        payload_sha256: Set("x".into()),
        body_differs: Set(false),
        via_previous_url: Set(false),
        received_at: Set(now_ms()),
        processed_at: Set(None),
        enqueued_at: Set(None),
    };
    delivery(Some("evt-1")).insert(db).await.unwrap();
    delivery(None).insert(db).await.unwrap();
    assert!(delivery(Some("evt-1")).insert(db).await.is_err());
}

on_both_backends!(
    queue_tables_live_in_the_application_database,
    unique_indexes_enforce_the_invariants
);

/// PostgreSQL: while the deal engine's tables grow from empty, the workers analyse them
/// (autovacuum would wait a minute): without statistics the planner scans whole tables
/// for every group instead of using the `deal_key` indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_engine_tables_get_fresh_statistics() {
    use std::time::{Duration, Instant};

    use sea_orm::{ConnectionTrait, Statement};
    use serde_json::json;
    use tests::hotmart::purchase;

    let sqlite = TestApp::spawn_without_workers(Backend::Sqlite).await;
    assert!(
        entity::database::refresh_statistics(&sqlite.db)
            .await
            .unwrap()
            .is_empty()
    );
    if tests::postgres_url().is_none() {
        tests::skip_notice("growing_engine_tables_get_fresh_statistics (PostgreSQL)");
        return;
    }
    let mut app = TestApp::spawn_without_workers(Backend::Postgres).await;
    // Nothing changed yet: nothing to analyse.
    assert!(
        entity::database::refresh_statistics(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
    // Only our refresh may analyse the log, so the test sees who did it.
    app.db
        .conn
        .execute_unprepared("ALTER TABLE deal_events SET (autovacuum_enabled = false)")
        .await
        .unwrap();
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    // 700 sales, 50 requests at a time.
    for start in (0..700).step_by(50) {
        let posts = (start..start + 50).map(|i| {
            let body = purchase(
                &format!("s{i}"),
                "PURCHASE_APPROVED",
                1_700_000_000_000,
                &format!("b{i}@x.test"),
                &format!("HPS{i}"),
            );
            let (app, url) = (&app, &url);
            async move {
                app.post_webhook(url, Some("hottok-secret-0001"), body.to_string())
                    .await
            }
        });
        futures::future::join_all(posts).await;
    }
    app.start_workers();
    app.wait_until_processed().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = app
            .db
            .conn
            .query_one_raw(Statement::from_string(
                app.db.conn.get_database_backend(),
                "SELECT (last_analyze IS NOT NULL) AS done, n_mod_since_analyze AS pending \
                 FROM pg_stat_user_tables WHERE relname = 'deal_events'",
            ))
            .await
            .unwrap()
            .unwrap();
        if row.try_get::<bool>("", "done").unwrap() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deal_events never analysed ({} changes since)",
            row.try_get::<i64>("", "pending").unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A database error keeps its cause for the log, while its text stays the same.
#[test]
fn database_errors_keep_their_source() {
    let err = entity::DomainError::from(sea_orm::DbErr::Custom("disk I/O error".to_owned()));
    let source = std::error::Error::source(&err).expect("the cause is kept");
    assert!(source.to_string().contains("disk I/O error"), "{source}");
    assert_eq!(err.code(), "INTERNAL");
    assert!(err.chain().contains("disk I/O error"), "{}", err.chain());
}
