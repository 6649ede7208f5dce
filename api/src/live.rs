//! Live feeds shared by subscriptions: one database poll per board (the changed deals of
//! a group) and one per import run, however many subscriptions watch it; and one session
//! check per session, however many of its subscriptions run. Each subscriber filters a
//! shared board batch by its own rights ([`GroupAccess::may_see`]). A feed's poller ends
//! when its last subscriber leaves.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use entity::{
    Caller, deals,
    groups::{self, GroupAccess},
    imports,
    tables::{deal, import_run},
};
use sea_orm::DatabaseConnection;
use tokio::sync::{Semaphore, broadcast, watch};

/// How often a board looks for changed deals.
pub const BOARD_POLL: Duration = Duration::from_millis(500);
/// How far back each look reaches past the newest change seen: a transaction that
/// commits late with an older `updated_at` is still caught.
const BOARD_LAG_MS: i64 = 5_000;
/// Most deals one look reads.
const BOARD_BATCH: u64 = 500;
/// Batches a slow subscriber may fall behind before it skips some.
const BOARD_BACKLOG: usize = 64;
/// How often an import run is read while it runs.
pub const RUN_POLL: Duration = Duration::from_millis(250);
/// How long a session check is trusted before the database is asked again.
pub const SESSION_CHECK: Duration = Duration::from_secs(1);

/// The deals of one group that changed since the last look, with who may see them.
#[derive(Debug)]
pub struct BoardBatch {
    pub deals: Vec<deal::Model>,
    pub access: GroupAccess,
}

impl BoardBatch {
    /// The deals of this batch `caller` may see.
    pub fn visible_to<'a>(&'a self, caller: &'a Caller) -> impl Iterator<Item = &'a deal::Model> {
        self.deals
            .iter()
            .filter(move |d| self.access.may_see(caller, d))
    }
}

type Key = (String, String);
type Session = Arc<tokio::sync::Mutex<Option<(Instant, bool)>>>;

/// The shared feeds of one server process.
pub struct Live {
    db: DatabaseConnection,
    /// Bounds the database reads of every feed and session check at once.
    polls: Arc<Semaphore>,
    boards: Mutex<HashMap<Key, broadcast::Sender<Arc<BoardBatch>>>>,
    runs: Mutex<HashMap<Key, Arc<watch::Sender<import_run::Model>>>>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl Live {
    pub fn new(db: DatabaseConnection, polls: Arc<Semaphore>) -> Arc<Live> {
        Arc::new(Live {
            db,
            polls,
            boards: Mutex::default(),
            runs: Mutex::default(),
            sessions: Mutex::default(),
        })
    }

    /// The feed of the board of `group_id` in `account_id`, started when nobody watched it.
    pub fn board(
        self: &Arc<Self>,
        account_id: &str,
        group_id: &str,
    ) -> broadcast::Receiver<Arc<BoardBatch>> {
        let key = (account_id.to_owned(), group_id.to_owned());
        let mut boards = self.boards.lock().unwrap();
        if let Some(sender) = boards.get(&key) {
            return sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(BOARD_BACKLOG);
        boards.insert(key.clone(), sender.clone());
        tokio::spawn(self.clone().poll_board(key, sender));
        receiver
    }

    /// Boards being polled (one per watched group).
    pub fn boards_polled(&self) -> usize {
        self.boards.lock().unwrap().len()
    }

    /// Import runs being polled (one per watched run).
    pub fn runs_polled(&self) -> usize {
        self.runs.lock().unwrap().len()
    }

    async fn poll_board(self: Arc<Self>, key: Key, sender: broadcast::Sender<Arc<BoardBatch>>) {
        let reader = Caller::account_reader(&key.0);
        let mut since = entity::now_ms();
        // Versions already sent, of deals changed within the lag window.
        let mut seen: HashMap<String, (i64, i64)> = HashMap::new();
        loop {
            tokio::time::sleep(BOARD_POLL).await;
            if self.left_alone(&self.boards, &key, || sender.receiver_count() == 0) {
                return;
            }
            let Ok(_poll) = self.polls.acquire().await else {
                return;
            };
            let from = since - BOARD_LAG_MS;
            let changed =
                match deals::changed_since(&self.db, &reader, &key.1, from, BOARD_BATCH).await {
                    Ok(changed) => changed,
                    Err(err) => {
                        tracing::warn!(error = %err, "a board's poll failed; trying again");
                        continue;
                    }
                };
            let mut fresh = Vec::new();
            for d in changed {
                since = since.max(d.updated_at);
                if seen.get(&d.id).map(|(v, _)| *v) != Some(d.version) {
                    seen.insert(d.id.clone(), (d.version, d.updated_at));
                    fresh.push(d);
                }
            }
            seen.retain(|_, (_, at)| *at >= since - BOARD_LAG_MS);
            if fresh.is_empty() {
                continue;
            }
            match groups::access(&self.db, &key.0, &key.1).await {
                Ok(Some(access)) => {
                    let _ = sender.send(Arc::new(BoardBatch {
                        deals: fresh,
                        access,
                    }));
                }
                // The group is gone: its subscriptions end.
                Ok(None) => {
                    self.boards.lock().unwrap().remove(&key);
                    return;
                }
                Err(err) => tracing::warn!(error = %err, "a board's access could not be read"),
            }
        }
    }

    /// Removes `key` from `feeds` when `alone` says nobody listens any more (checked under
    /// the lock new subscribers take, so none joins a feed that is ending).
    fn left_alone<T>(
        &self,
        feeds: &Mutex<HashMap<Key, T>>,
        key: &Key,
        alone: impl Fn() -> bool,
    ) -> bool {
        let mut feeds = feeds.lock().unwrap();
        if alone() {
            feeds.remove(key);
            return true;
        }
        false
    }

    /// The feed of import run `first` (as its subscriber just read it), started when nobody
    /// watched it. The run's last state is sent before the feed closes.
    pub fn run(self: &Arc<Self>, first: &import_run::Model) -> watch::Receiver<import_run::Model> {
        let key = (first.account_id.clone(), first.id.clone());
        let mut runs = self.runs.lock().unwrap();
        if let Some(sender) = runs.get(&key) {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(first.clone());
        let sender = Arc::new(sender);
        runs.insert(key.clone(), sender.clone());
        tokio::spawn(self.clone().poll_run(key, sender));
        receiver
    }

    async fn poll_run(self: Arc<Self>, key: Key, sender: Arc<watch::Sender<import_run::Model>>) {
        let reader = Caller::account_reader(&key.0);
        loop {
            tokio::time::sleep(RUN_POLL).await;
            if self.left_alone(&self.runs, &key, || sender.receiver_count() == 0) {
                return;
            }
            let Ok(poll) = self.polls.acquire().await else {
                return;
            };
            let current = imports::get(&self.db, &reader, &key.1).await;
            drop(poll);
            match current {
                Ok(current) => {
                    let done = current.status.is_final();
                    sender.send_if_modified(|last| {
                        let changed = *last != current;
                        *last = current;
                        changed
                    });
                    if done {
                        self.runs.lock().unwrap().remove(&key);
                        return;
                    }
                }
                Err(entity::DomainError::NotFound(_)) => {
                    self.runs.lock().unwrap().remove(&key);
                    return;
                }
                Err(err) => tracing::warn!(error = %err, "an import run's poll failed"),
            }
        }
    }

    /// Whether `session` of `user_id` is still signed in: read from the database at most
    /// once per [`SESSION_CHECK`] for all the subscriptions of that session.
    pub async fn session_live(&self, session: &str, user_id: &str) -> bool {
        let entry = {
            let mut sessions = self.sessions.lock().unwrap();
            if sessions.len() > 4_096 {
                sessions.retain(|_, entry| Arc::strong_count(entry) > 1);
            }
            sessions.entry(session.to_owned()).or_default().clone()
        };
        let mut checked = entry.lock().await;
        if let Some((at, live)) = *checked
            && (at.elapsed() < SESSION_CHECK || !live)
        {
            return live;
        }
        let live = match self.polls.acquire().await {
            Ok(_poll) => entity::sign_in::session_is_live(&self.db, session, user_id)
                .await
                .unwrap_or(false),
            Err(_) => false,
        };
        *checked = Some((Instant::now(), live));
        live
    }

    /// Marks `session` as ended at once (a logout in this process); other processes see it
    /// within [`SESSION_CHECK`].
    pub async fn session_ended(&self, session: &str) {
        let entry = self.sessions.lock().unwrap().get(session).cloned();
        if let Some(entry) = entry {
            *entry.lock().await = Some((Instant::now(), false));
        }
    }
}
