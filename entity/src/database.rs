//! Opening the database. One sqlx pool per process is shared by sea-orm and the job queue.
//!
//! SQLite gets WAL, `synchronous=NORMAL`, a busy timeout and foreign keys on **every**
//! connection (set through the connect options, so no pooled connection is left with
//! another setting), and an explicit pool size.

use std::{str::FromStr, sync::Arc, time::Duration};

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbErr, SqliteTransactionMode, SqlxPostgresConnector,
    SqlxSqliteConnector, TransactionOptions, TransactionTrait,
    sqlx::{
        self,
        postgres::{PgConnectOptions, PgPoolOptions},
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    },
};

/// How long a SQLite connection waits for a lock before reporting "database is locked".
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Page cache of the SQLite writer connection (negative: KiB), 32 MiB.
const WRITER_CACHE_SIZE: &str = "-32768";

#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

#[derive(Debug, Clone)]
pub struct Database {
    pub conn: DatabaseConnection,
    pub pool: Pool,
    /// SQLite has one writer at a time, and a connection that finds the lock taken
    /// sleeps in growing steps. Within a process, the busy write paths (inbox, delivery
    /// processing, imports) queue here instead; see [`WriteGate`].
    write_gate: Arc<WriteGate>,
    /// SQLite: one long-lived connection for the write transactions. A connection's
    /// page cache is dropped whenever another connection wrote, so writes that always
    /// use the same connection find their pages cached instead of reading them again.
    writer: Option<DatabaseConnection>,
}

/// Background writers give way to webhook intake for at most this long per write, so
/// processing always moves on during a long burst of deliveries.
pub const INTAKE_GIVE_WAY: Duration = Duration::from_secs(1);

/// The one mechanism that puts acknowledging deliveries before processing them, for the
/// whole process (every clone of a [`Database`] shares it): the inbox holds an
/// [`IntakeTicket`] for each delivery from its arrival until its answer, and background
/// write transactions (delivery processing, imports, sweeps) wait while any is held — at
/// most [`INTAKE_GIVE_WAY`]. On SQLite it is also the write gate: writers take turns in
/// order, the inbox's writes before every background writer still waiting, so a sender
/// waits for at most the transaction in progress, not for a queue of processing groups.
#[derive(Debug, Default)]
pub struct WriteGate {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Deliveries arrived and not answered yet.
    intake: std::sync::atomic::AtomicUsize,
    intake_done: tokio::sync::Notify,
}

/// A delivery waiting for its answer, counted while it lives (see [`WriteGate`]).
#[derive(Debug)]
pub struct IntakeTicket(Arc<WriteGate>);

impl Drop for IntakeTicket {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::SeqCst;
        if self.0.intake.fetch_sub(1, SeqCst) == 1 {
            self.0.intake_done.notify_waiters();
        }
    }
}

impl WriteGate {
    fn ticket(self: &Arc<Self>) -> IntakeTicket {
        self.intake
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        IntakeTicket(self.clone())
    }

    fn intake_waiting(&self) -> bool {
        self.intake.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// Waits while deliveries wait for their answer, until `until`.
    async fn give_way(&self, until: tokio::time::Instant) {
        loop {
            // Registered before the check, so a notification in between is not lost.
            let done = self.intake_done.notified();
            if !self.intake_waiting() {
                return;
            }
            if tokio::time::timeout_at(until, done).await.is_err() {
                return;
            }
        }
    }

    /// The SQLite write lock: at once for intake (`urgent`), else after the intake waiting.
    async fn enter(&self, urgent: bool) -> tokio::sync::OwnedMutexGuard<()> {
        if urgent {
            return self.lock.clone().lock_owned().await;
        }
        let until = tokio::time::Instant::now() + INTAKE_GIVE_WAY;
        loop {
            self.give_way(until).await;
            let guard = self.lock.clone().lock_owned().await;
            if !self.intake_waiting() || tokio::time::Instant::now() >= until {
                return guard;
            }
            // A delivery arrived while this writer queued: let its write in first.
            drop(guard);
        }
    }
}

/// A write transaction: on SQLite it holds the process's write gate and began
/// `IMMEDIATE` (the write lock is taken at once, so it cannot fail half-way on a lock
/// upgrade); on PostgreSQL it is a plain transaction.
pub struct WriteTxn {
    pub txn: DatabaseTransaction,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl Database {
    fn new(conn: DatabaseConnection, pool: Pool, writer: Option<DatabaseConnection>) -> Self {
        Self {
            conn,
            pool,
            write_gate: Default::default(),
            writer,
        }
    }

    /// Begins a write transaction (see [`WriteTxn`]).
    pub async fn begin_write(&self) -> Result<WriteTxn, DbErr> {
        self.begin_write_as(false).await
    }

    /// Begins a write transaction that someone is waiting for (a webhook's answer): on
    /// SQLite it enters the write gate before the background writers still waiting.
    pub async fn begin_urgent_write(&self) -> Result<WriteTxn, DbErr> {
        self.begin_write_as(true).await
    }

    /// Counts a delivery waiting for its answer until the ticket is dropped: background
    /// writes give way meanwhile (see [`WriteGate`]).
    pub fn intake_ticket(&self) -> IntakeTicket {
        self.write_gate.ticket()
    }

    async fn begin_write_as(&self, urgent: bool) -> Result<WriteTxn, DbErr> {
        if !self.is_sqlite() {
            if !urgent {
                let until = tokio::time::Instant::now() + INTAKE_GIVE_WAY;
                self.write_gate.give_way(until).await;
            }
            return Ok(WriteTxn {
                txn: self.conn.begin().await?,
                _gate: None,
            });
        }
        let gate = self.write_gate.enter(urgent).await;
        let txn = self
            .writer
            .as_ref()
            .unwrap_or(&self.conn)
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        Ok(WriteTxn {
            txn,
            _gate: Some(gate),
        })
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self.pool, Pool::Sqlite(_))
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }

    pub async fn close(self) {
        if let Some(writer) = self.writer {
            let _ = writer.close().await;
        }
        match self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// The tables the deal engine reads by key on every group.
pub const ENGINE_TABLES: &[&str] = &["deal_events", "deals", "deal_refs", "contacts"];

/// PostgreSQL: `ANALYZE` each of [`ENGINE_TABLES`] whose rows changed by more than a fifth
/// (and at least 500) since its last analysis; returns the tables analysed. SQLite: nothing.
///
/// The engine reads `deal_key IN (…)` for a whole group. On a table that grew from empty
/// (a new installation's first launch burst) the planner has no statistics, estimates a
/// third of the table per group and scans all of it instead of using the index; autovacuum
/// analyses only after a minute and 10 % of changes (what that cost on the bench is in
/// `docs/performance.md`).
pub async fn refresh_statistics(db: &Database) -> Result<Vec<String>, DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    if db.is_sqlite() {
        return Ok(Vec::new());
    }
    // The names are this module's constants, never input.
    let names = ENGINE_TABLES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT relname::text AS name FROM pg_stat_user_tables \
         WHERE schemaname = current_schema() AND relname IN ({names}) \
         AND n_mod_since_analyze > GREATEST(500, n_live_tup / 5)"
    );
    let rows = db
        .conn
        .query_all_raw(Statement::from_string(db.conn.get_database_backend(), sql))
        .await?;
    let mut analysed = Vec::new();
    for row in rows {
        let name: String = row.try_get("", "name")?;
        if let Some(table) = ENGINE_TABLES.iter().find(|t| **t == name) {
            db.conn
                .execute_unprepared(&format!("ANALYZE {table}"))
                .await?;
            analysed.push(name);
        }
    }
    Ok(analysed)
}

/// Begins a transaction that takes SQLite's write lock at once (`BEGIN IMMEDIATE`; a
/// plain transaction elsewhere). A deferred SQLite transaction that reads and then
/// writes fails at once with "database is locked" when another connection wrote in
/// between; an immediate one waits for the lock (up to the busy timeout) instead.
pub async fn begin_immediate<C: TransactionTrait>(db: &C) -> Result<C::Transaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Creates a folder (and its parents) readable only by its owner (0700 on Unix).
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The SQLite database holds buyers' personal data and webhook URL tokens: its folder is
/// created 0700, and the database with its `-wal` and `-shm` files are 0600 (SQLite gives
/// the files it creates the mode of the database file, so the database is created first).
fn private_database_files(path: &std::path::Path) -> Result<(), DbErr> {
    let failed = |what: &std::path::Path, err: std::io::Error| {
        DbErr::Custom(format!("cannot prepare {}: {err}", what.display()))
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        create_private_dir(dir).map_err(|err| failed(dir, err))?;
    }
    if path.as_os_str().is_empty() || path.to_str() == Some(":memory:") {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|err| failed(path, err))?;
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if file.exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(|err| failed(&file, err))?;
            }
        }
    }
    Ok(())
}

/// How long PostgreSQL keeps a session that sits idle inside an open transaction. None of
/// ours waits on anything but the database inside a transaction, so only a frozen process
/// (SIGSTOP, a stalled VM) does: the server then ends its session, and the row locks it held
/// (a batch of job acknowledgements, say) no longer keep other processes from taking over
/// its claims once its lease lapses.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "10s";

/// The PostgreSQL connection options of `url`, with the session settings of every connection.
fn postgres_options(url: &str) -> Result<PgConnectOptions, DbErr> {
    Ok(PgConnectOptions::from_str(url)
        .map_err(|err| DbErr::Custom(format!("invalid DATABASE_URL: {err}")))?
        .options([(
            "idle_in_transaction_session_timeout",
            IDLE_IN_TRANSACTION_TIMEOUT,
        )]))
}

/// Connects to `url` (`sqlite://path` or `postgres://…`) with at most `max_connections`.
pub async fn connect(url: &str, max_connections: u32) -> Result<Database, DbErr> {
    let max_connections = max_connections.max(1);
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|err| DbErr::Custom(format!("invalid DATABASE_URL: {err}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        private_database_files(options.get_filename())?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| Box::pin(busy::retry_often(conn)))
            .connect_with(options.clone())
            .await
            .map_err(|err| DbErr::Custom(format!("cannot open {url}: {err}")))?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| Box::pin(busy::retry_often(conn)))
            .connect_with(options.pragma("cache_size", WRITER_CACHE_SIZE))
            .await
            .map_err(|err| DbErr::Custom(format!("cannot open {url}: {err}")))?;
        Ok(Database::new(
            SqlxSqliteConnector::from_sqlx_sqlite_pool(pool.clone()),
            Pool::Sqlite(pool),
            Some(SqlxSqliteConnector::from_sqlx_sqlite_pool(writer)),
        ))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let options = postgres_options(url)?;
        let port = options.get_port();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |_, _| {
                Box::pin(async move {
                    nodelay::set_on_sockets_to(port);
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|err| DbErr::Custom(format!("cannot connect to PostgreSQL: {err}")))?;
        Ok(Database::new(
            SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone()),
            Pool::Postgres(pool),
            None,
        ))
    } else {
        Err(DbErr::Custom(
            "DATABASE_URL must start with sqlite:// or postgres://".into(),
        ))
    }
}

/// How a SQLite connection waits for a lock another connection holds.
///
/// SQLite's own busy handler (what `busy_timeout` installs) sleeps in growing steps, up to
/// 100 ms between two tries. Against this process's writer, which hands the lock from one
/// transaction to the next with gaps of a millisecond or two, a connection trying only
/// every 100 ms can miss every gap for the whole timeout and fail with "database is
/// locked": the job queue's polls and acknowledgements (apalis' statements, on pool
/// connections outside the write gate) did exactly that under a backlog, and a failed
/// poll can leave a worker idle until the watchdog restarts it. This handler tries again
/// every millisecond, for the same [`SQLITE_BUSY_TIMEOUT`] in all.
mod busy {
    use std::{ffi::c_void, os::raw::c_int, time::Duration};

    use sea_orm::sqlx::{self, SqliteConnection};

    /// Pause between two tries.
    const STEP: Duration = Duration::from_millis(1);

    /// Tries before giving up: [`super::SQLITE_BUSY_TIMEOUT`] of [`STEP`]s (at least; a
    /// sleep may last longer than asked).
    const TRIES: c_int = (super::SQLITE_BUSY_TIMEOUT.as_millis() / STEP.as_millis()) as c_int;

    /// Called by SQLite on the connection's own thread while a lock is taken; `tries` is
    /// how many times it was called for this lock. Non-zero: try again.
    extern "C" fn wait(_: *mut c_void, tries: c_int) -> c_int {
        if tries >= TRIES {
            return 0;
        }
        std::thread::sleep(STEP);
        1
    }

    /// Installs [`wait`] as the connection's busy handler (it replaces `busy_timeout`).
    pub(super) async fn retry_often(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        let mut handle = conn.lock_handle().await?;
        // SAFETY: the handle is locked, so no statement runs on the connection meanwhile;
        // `wait` is a plain function without state (its context pointer is null).
        let code = unsafe {
            libsqlite3_sys::sqlite3_busy_handler(
                handle.as_raw_handle().as_ptr(),
                Some(wait),
                std::ptr::null_mut(),
            )
        };
        if code != libsqlite3_sys::SQLITE_OK {
            return Err(sqlx::Error::Configuration(
                format!("cannot set SQLite's busy handler (code {code})").into(),
            ));
        }
        Ok(())
    }
}

/// TCP_NODELAY for PostgreSQL connections over TCP.
///
/// sqlx-core 0.9.0 connects without it (sqlx issue 4335; the fix, pull request 4336, is
/// merged but not released), so a statement larger than one segment waits for the
/// server's delayed ACK: about 40 ms each on Linux. sqlx does not expose a connection's
/// socket, so right after each new connection every TCP socket of the process whose peer
/// is the database port gets the option (also harmless for any other). Remove this module
/// once `Cargo.lock` holds an sqlx-core release with the fix; `tests/tests/it/postgres_tcp.rs`
/// shows whether it is still needed.
mod nodelay {
    /// Sets TCP_NODELAY on this process's TCP sockets connected to `port`.
    #[cfg(target_os = "linux")]
    pub fn set_on_sockets_to(port: u16) {
        use std::os::fd::{BorrowedFd, RawFd};
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
            else {
                continue;
            };
            // SAFETY: the descriptor is only borrowed for the calls below. One closed (or
            // reused for something that is not a socket) meanwhile makes them fail, and it
            // is skipped.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let socket = socket2::SockRef::from(&fd);
            let peer = socket.peer_addr().ok().and_then(|a| a.as_socket());
            if peer.is_some_and(|a| a.port() == port) && socket.tcp_nodelay().is_ok_and(|on| !on) {
                let _ = socket.set_tcp_nodelay(true);
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn set_on_sockets_to(_port: u16) {}
}

#[cfg(test)]
mod gate_tests {
    use std::sync::{Arc, Mutex};

    use super::WriteGate;

    #[tokio::test]
    async fn an_urgent_writer_goes_before_the_background_writers_waiting() {
        let gate = Arc::new(WriteGate::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let running = gate.enter(false).await;
        let mut writers = Vec::new();
        for n in 0..3 {
            let (gate, order) = (gate.clone(), order.clone());
            writers.push(tokio::spawn(async move {
                let _turn = gate.enter(false).await;
                order.lock().unwrap().push(format!("background {n}"));
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let (urgent_gate, urgent_order) = (gate.clone(), order.clone());
        // A delivery arrives: counted from its arrival until its answer.
        let ticket = gate.ticket();
        writers.push(tokio::spawn(async move {
            let turn = urgent_gate.enter(true).await;
            urgent_order.lock().unwrap().push("urgent".to_owned());
            drop(turn);
            drop(ticket);
        }));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(
            order.lock().unwrap().is_empty(),
            "nobody enters while one writes"
        );
        drop(running);
        for writer in writers {
            writer.await.unwrap();
        }
        let order = order.lock().unwrap();
        assert_eq!(order.len(), 4, "every writer had its turn: {order:?}");
        assert_eq!(order[0], "urgent", "{order:?}");
        // The background writers keep their order among themselves.
        assert_eq!(order[1..], ["background 0", "background 1", "background 2"]);
    }

    #[tokio::test]
    async fn background_writers_give_way_to_intake_for_a_bounded_time() {
        let gate = Arc::new(WriteGate::default());
        let ticket = gate.ticket();
        let started = tokio::time::Instant::now();
        let (waiting, waited) = (gate.clone(), Arc::new(Mutex::new(None)));
        let seen = waited.clone();
        let writer = tokio::spawn(async move {
            let _turn = waiting.enter(false).await;
            *seen.lock().unwrap() = Some(started.elapsed());
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(
            waited.lock().unwrap().is_none(),
            "it waits while a delivery waits"
        );
        drop(ticket);
        writer.await.unwrap();
        let after = waited.lock().unwrap().unwrap();
        assert!(
            after < super::INTAKE_GIVE_WAY,
            "it went once the answer was sent: {after:?}"
        );
        // A delivery never answered holds a writer back for the bound only.
        let _stuck = gate.ticket();
        let started = tokio::time::Instant::now();
        drop(gate.enter(false).await);
        assert!(started.elapsed() >= super::INTAKE_GIVE_WAY);
    }
}
