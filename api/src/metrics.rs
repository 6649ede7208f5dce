//! `GET /metrics`: Prometheus text format. Installation-wide counts only (no tenant data);
//! expose it on a private network.

use std::fmt::Write;

use axum::{
    extract::State,
    http::{StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use entity::deliveries;

use crate::state::HttpState;

pub async fn metrics(State(state): State<HttpState>) -> Response {
    let db = &state.app.db;
    let (counts, queue, claims) = match (
        deliveries::count_by_status(&db.conn).await,
        jobs::queue::stats(db).await,
        jobs::queue::claim_stats(db, state.worker_lease).await,
    ) {
        (Ok(counts), Ok(queue), Ok(claims)) => (counts, queue, claims),
        (Err(err), _, _) => return unavailable(err.to_string()),
        (_, Err(err), _) | (_, _, Err(err)) => return unavailable(err.to_string()),
    };
    let mut out = String::new();
    out.push_str("# HELP checkout_crm_webhook_deliveries Webhook deliveries stored, by status.\n");
    out.push_str("# TYPE checkout_crm_webhook_deliveries gauge\n");
    for (status, n) in counts {
        let _ = writeln!(
            out,
            "checkout_crm_webhook_deliveries{{status=\"{}\"}} {n}",
            status.as_str()
        );
    }
    out.push_str("# HELP checkout_crm_queue_depth Jobs waiting in the queue.\n");
    out.push_str("# TYPE checkout_crm_queue_depth gauge\n");
    let _ = writeln!(out, "checkout_crm_queue_depth {}", queue.depth);
    out.push_str("# HELP checkout_crm_queue_oldest_pending_seconds Age of the oldest job that is due and not started.\n");
    out.push_str("# TYPE checkout_crm_queue_oldest_pending_seconds gauge\n");
    let _ = writeln!(
        out,
        "checkout_crm_queue_oldest_pending_seconds {}",
        queue.oldest_due_age_secs
    );
    out.push_str("# HELP checkout_crm_queue_claims_expired Jobs claimed by a process whose lease expired (killed or frozen), waiting to be taken over.\n");
    out.push_str("# TYPE checkout_crm_queue_claims_expired gauge\n");
    let _ = writeln!(out, "checkout_crm_queue_claims_expired {}", claims.expired);
    out.push_str("# HELP checkout_crm_queue_oldest_claim_seconds Age of the oldest claimed, unfinished job; growing without end means a stuck process.\n");
    out.push_str("# TYPE checkout_crm_queue_oldest_claim_seconds gauge\n");
    let _ = writeln!(
        out,
        "checkout_crm_queue_oldest_claim_seconds {}",
        claims.oldest_age_secs
    );
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

fn unavailable(error: String) -> Response {
    tracing::warn!(%error, "metrics: database unavailable");
    (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
}
