//! The inbox writer: authentic deliveries are stored by one task per process, which
//! commits whatever arrived meanwhile as one group (group commit). Every delivery of a
//! group, and the jobs that process the accepted ones, commit in one transaction; each
//! request is answered only after that commit.
//!
//! One commit per group instead of two per delivery is what lets a burst of deliveries
//! be acknowledged at the speed the disk syncs, not at one fsync-bound commit per request.

use entity::{
    DomainError, DomainResult,
    database::Database,
    deliveries::{self, Intake, Submission},
};
use tokio::sync::{mpsc, oneshot};

use jobs::queue::enqueue_deliveries_in;

/// Most deliveries committed in one group.
pub const MAX_GROUP: usize = 256;

/// Accepted deliveries per processing job: they are processed together, in one
/// transaction, by one worker (the group's size, one constant for both sides).
pub const DELIVERIES_PER_JOB: usize = entity::deliveries::GROUP_LIMIT;

/// Deliveries waiting for the writer; beyond this, requests wait to be queued.
const QUEUE: usize = 4 * MAX_GROUP;

struct Entry {
    submission: Submission,
    reply: oneshot::Sender<DomainResult<Intake>>,
}

/// Handle to the writer task.
#[derive(Clone)]
pub struct Inbox {
    sender: mpsc::Sender<Entry>,
    db: Database,
}

impl Inbox {
    /// Starts the writer task on `db`.
    pub fn start(db: Database) -> Inbox {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_forever(db.clone(), receiver));
        Inbox { sender, db }
    }

    /// Stores a delivery; returns once it is committed.
    pub async fn submit(&self, submission: Submission) -> DomainResult<Intake> {
        let _waiting = self.db.intake_ticket();
        let (reply, answer) = oneshot::channel();
        let gone = || DomainError::Internal("the inbox writer stopped".into());
        self.sender
            .send(Entry { submission, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn write_forever(db: Database, mut receiver: mpsc::Receiver<Entry>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        let submissions: Vec<&Submission> = group.iter().map(|e| &e.submission).collect();
        match commit_group(&db, &submissions).await {
            Ok(intakes) => {
                for (entry, intake) in group.drain(..).zip(intakes) {
                    let _ = entry.reply.send(Ok(intake));
                }
            }
            // One bad delivery must not fail the others: store them one by one.
            Err(_) if group.len() > 1 => {
                for entry in group.drain(..) {
                    let result = commit_group(&db, &[&entry.submission])
                        .await
                        .map(|mut intakes| intakes.remove(0));
                    let _ = entry.reply.send(result);
                }
            }
            Err(err) => {
                for entry in group.drain(..) {
                    let _ = entry.reply.send(Err(err.clone()));
                }
            }
        }
    }
}

async fn commit_group(db: &Database, group: &[&Submission]) -> DomainResult<Vec<Intake>> {
    let txn = db.begin_urgent_write().await?;
    let outcomes = deliveries::intake_many(&*txn, group).await?;
    // The jobs, in the same transaction: one per run of accepted deliveries.
    let accepted: Vec<String> = outcomes
        .iter()
        .filter_map(|intake| match intake {
            Intake::Accepted { delivery_id } => Some(delivery_id.clone()),
            _ => None,
        })
        .collect();
    for delivery_ids in accepted.chunks(DELIVERIES_PER_JOB) {
        enqueue_deliveries_in(&*txn, delivery_ids).await?;
    }
    txn.commit().await?;
    Ok(outcomes)
}
