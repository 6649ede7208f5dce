//! PostgreSQL connections: a session idle inside a transaction is ended by the server, and
//! over TCP the connections send each statement at once, without
//! Nagle's algorithm holding back the last segment of a statement until the server's
//! delayed ACK (about 40 ms on Linux). Other tests of the binary connect to the same
//! server, so only the pool's own sockets are inspected (found by the client ports the
//! server reports for them).

use std::{
    os::fd::{BorrowedFd, RawFd},
    time::{Duration, Instant},
};

use entity::database::{self, Pool};

/// TCP sockets of this process connected to `port` from one of `local_ports`, with their
/// TCP_NODELAY setting.
fn sockets_to(port: u16, local_ports: &[u16]) -> Vec<bool> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: only borrowed for the calls below; a descriptor closed meanwhile makes
        // them fail, which skips it.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let peer = socket.peer_addr().ok().and_then(|a| a.as_socket());
        let local = socket.local_addr().ok().and_then(|a| a.as_socket());
        if peer.is_some_and(|a| a.port() == port)
            && local.is_some_and(|a| local_ports.contains(&a.port()))
            && let Ok(nodelay) = socket.tcp_nodelay()
        {
            found.push(nodelay);
        }
    }
    found
}

#[tokio::test]
async fn statements_over_tcp_are_not_delayed_by_nagle() {
    let Some(url) = tests::postgres_url() else {
        tests::skip_notice("statements_over_tcp_are_not_delayed_by_nagle");
        return;
    };
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    if options.get_socket().is_some() || options.get_host().starts_with('/') {
        eprintln!("NOTICE: TEST_DATABASE_URL is not a TCP address; skipping");
        return;
    }
    let db = database::connect(&url, 2).await.unwrap();
    let Pool::Postgres(pool) = &db.pool else {
        unreachable!()
    };
    // Statements larger than one segment: each one's last segment is what Nagle holds.
    let parameter = "x".repeat(100_000);
    let rounds = 100u32;
    let started = Instant::now();
    for _ in 0..rounds {
        let length: i32 = sqlx::query_scalar("SELECT length($1)")
            .bind(&parameter)
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(length, 100_000);
    }
    let elapsed = started.elapsed();
    // The pool's two connections, held at once, each telling its client port.
    let mut held = Vec::new();
    let mut local_ports = Vec::new();
    for _ in 0..2 {
        let mut connection = pool.acquire().await.unwrap();
        let port: i32 = sqlx::query_scalar("SELECT inet_client_port()")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        local_ports.push(port as u16);
        held.push(connection);
    }
    let sockets = sockets_to(options.get_port(), &local_ports);
    drop(held);
    println!("{rounds} statements of 100 kB over TCP: {elapsed:?}; sockets: {sockets:?}");
    assert_eq!(
        sockets.len(),
        2,
        "the pool's two connections are found ({local_ports:?})"
    );
    assert!(
        sockets.iter().all(|nodelay| *nodelay),
        "every connection to the server has TCP_NODELAY"
    );
    // With Nagle, each statement waits for a delayed ACK: 100 × ~40 ms.
    assert!(
        elapsed < Duration::from_millis(40) * rounds / 2,
        "{rounds} statements took {elapsed:?}: Nagle's delay is back"
    );
}

/// A session left idle inside a transaction (a frozen process) is ended by the server, so
/// the row locks it holds do not block other processes for longer than that.
#[tokio::test]
async fn a_session_idle_in_a_transaction_is_ended_by_the_server() {
    let Some(url) = tests::postgres_url() else {
        tests::skip_notice("a_session_idle_in_a_transaction_is_ended_by_the_server");
        return;
    };
    let db = database::connect(&url, 1).await.unwrap();
    let Pool::Postgres(pool) = &db.pool else {
        unreachable!()
    };
    let setting: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(setting, "10s");
    db.close().await;
}
