//! The application's schema on a connection that counts its statements, for tests of
//! what a query or a running subscription costs the database. Only this schema's own
//! statements count: the test server beside it keeps its own connection.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_graphql::{Request, Variables};
use checkout_crm::state::HttpState;
use futures::StreamExt;
use serde_json::Value;
use tokio::{sync::mpsc, task::JoinHandle};

use crate::TestApp;

pub struct CountedSchema {
    pub state: HttpState,
    statements: Arc<AtomicUsize>,
}

/// A subscription running on a [`CountedSchema`]: its answers' data, in order; dropping
/// it ends the subscription.
pub struct Running {
    pub answers: mpsc::UnboundedReceiver<Value>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CountedSchema {
    pub fn new(app: &TestApp) -> CountedSchema {
        let statements = Arc::new(AtomicUsize::new(0));
        let mut db = app.db.clone();
        let seen = statements.clone();
        db.conn.set_metric_callback(move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        });
        CountedSchema {
            state: checkout_crm::app::http_state(&app.config, db),
            statements,
        }
    }

    /// Starts `query` (a subscription) as `caller`.
    pub fn subscribe(&self, caller: &entity::Caller, query: &str, variables: Value) -> Running {
        let mut stream = self.state.schema.execute_stream(
            Request::new(query)
                .variables(Variables::from_json(variables))
                .data(caller.clone()),
        );
        let (sender, answers) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(response) = stream.next().await {
                assert!(response.errors.is_empty(), "{:?}", response.errors);
                if sender.send(response.data.into_json().unwrap()).is_err() {
                    break;
                }
            }
        });
        Running { answers, task }
    }

    /// The statements run during the next `period`.
    pub async fn statements_during(&self, period: Duration) -> usize {
        let before = self.statements.load(Ordering::Relaxed);
        tokio::time::sleep(period).await;
        self.statements.load(Ordering::Relaxed) - before
    }
}
