//! A seller moving deals between stages while webhooks are processed (the `latency`
//! scenario runs it beside its offered load).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::server::Server;

/// Latencies of the moves that succeeded, and how many were refused (a deal the engine
/// closed meanwhile cannot be moved).
#[derive(Default)]
pub struct Moves {
    pub latencies: Vec<Duration>,
    pub refused: u64,
}

const OPEN: &str =
    "{ deals(filter: {status: OPEN}, first: 50) { nodes { id origin { stages { id } } } } }";

const MOVE: &str =
    "mutation($d: ID!, $s: ID!) { moveDeal(dealId: $d, input: {stageId: $s}) { id version } }";

/// Moves open deals (50 a second, one at a time, round the stages of their origin)
/// until `until`, once the engine has made a few.
pub async fn during(server: &Server, until: Instant) -> Moves {
    let mut moves = Moves::default();
    let deals = loop {
        if Instant::now() >= until {
            return moves;
        }
        let data = server.graphql(OPEN, json!({})).await;
        let nodes = data["deals"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if nodes.len() >= 10 {
            break nodes;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut i = 0usize;
    while Instant::now() < until {
        tick.tick().await;
        let deal = &deals[i % deals.len()];
        let stages = deal["origin"]["stages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let stage = &stages[(i / deals.len() + 1) % stages.len().max(1)]["id"];
        let started = Instant::now();
        let body = server
            .graphql_body(MOVE, json!({"d": deal["id"], "s": stage}))
            .await;
        let took = started.elapsed();
        if body["errors"].is_null() {
            moves.latencies.push(took);
        } else {
            moves.refused += 1;
        }
        i += 1;
    }
    moves
}
