//! GraphQL over websocket. The token goes in the `connection_init` payload:
//! `{"Authorization": "Bearer <token>"}` — or, from a page of this server, an empty one:
//! the console's session cookie then stands for the token (see `cookie.rs`).
//!
//! A socket is held to what HTTP requests are held to:
//! - `connection_init` must arrive within [`INIT_TIMEOUT`], else the socket closes with
//!   4408 (as graphql-transport-ws specifies);
//! - every operation checks its caller again (see `graphql::guard`);
//! - the socket closes (4403) when its token expires (with the clock skew HTTP allows);
//! - messages are capped at the HTTP body size (set on the upgrade).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_graphql::{Data, http::WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};

use crate::{auth, graphql::guard::SessionToken, state::HttpState};

/// How long a socket may stay open without `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// When the token of a session expires (epoch seconds), once `connection_init` was accepted.
type Expiry = Arc<Mutex<Option<i64>>>;

/// Serves one websocket until the client leaves, the token expires or init times out.
pub async fn serve(
    socket: WebSocket,
    state: HttpState,
    protocol: async_graphql::http::WebSocketProtocols,
    cookie_token: Option<String>,
) {
    let (mut sink, stream) = socket.split();
    let input = stream
        .take_while(|message| futures::future::ready(message.is_ok()))
        .filter_map(|message| {
            futures::future::ready(match message {
                Ok(Message::Text(text)) => Some(text.as_bytes().to_vec()),
                Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
                _ => None,
            })
        });
    let expires: Expiry = Arc::default();
    let (init_state, init_expires) = (state.clone(), expires.clone());
    let output = async_graphql::http::WebSocket::new(state.schema.clone(), input, protocol)
        .on_connection_init(move |payload| {
            connection_init(init_state, init_expires, payload, cookie_token)
        });
    futures::pin_mut!(output);
    let opened = tokio::time::Instant::now();
    loop {
        let (at, code, reason) = deadline(&expires, opened);
        tokio::select! {
            message = output.next() => {
                let Some(message) = message else { break };
                let message = match message {
                    WsMessage::Text(text) => Message::Text(text.into()),
                    WsMessage::Close(code, reason) => Message::Close(Some(CloseFrame { code, reason: reason.into() })),
                };
                if sink.send(message).await.is_err() {
                    break;
                }
            }
            _ = tokio::time::sleep_until(at) => {
                let frame = CloseFrame { code, reason: reason.into() };
                let _ = sink.send(Message::Close(Some(frame))).await;
                break;
            }
        }
    }
}

/// Authenticates `connection_init`: the session's data (the caller and its token) and the
/// time its token expires.
async fn connection_init(
    state: HttpState,
    expires: Expiry,
    payload: serde_json::Value,
    cookie_token: Option<String>,
) -> async_graphql::Result<Data> {
    let header = ["Authorization", "authorization", "token"]
        .iter()
        .find_map(|key| payload.get(*key).and_then(|v| v.as_str()))
        .map(|v| {
            if v.contains(' ') {
                v.to_owned()
            } else {
                format!("Bearer {v}")
            }
        })
        .or_else(|| cookie_token.map(|token| format!("Bearer {token}")));
    let refused = |err: auth::AuthError| async_graphql::Error::new(err.to_string());
    let token = auth::bearer(header.as_deref()).map_err(refused)?;
    let claims = state.tokens.verify(token).map_err(refused)?;
    let caller = auth::caller_of(&state.app.db, &claims)
        .await
        .map_err(refused)?;
    *expires.lock().expect("expiry lock") = Some(claims.exp);
    let mut data = Data::default();
    data.insert(caller);
    data.insert(SessionToken(token.to_owned()));
    data.insert(crate::graphql::guard::SocketSubscriptions::default());
    Ok(data)
}

/// When the socket must close, with the close code and reason: at its token's expiry
/// (with the clock skew HTTP allows), or — before `connection_init` — after
/// [`INIT_TIMEOUT`].
fn deadline(
    expires: &Expiry,
    opened: tokio::time::Instant,
) -> (tokio::time::Instant, u16, &'static str) {
    match *expires.lock().expect("expiry lock") {
        Some(exp) => {
            let end = exp + auth::LEEWAY_SECS as i64;
            let left = (end - chrono::Utc::now().timestamp()).max(0) as u64;
            let at = tokio::time::Instant::now() + Duration::from_secs(left);
            (at, 4403, "token expired")
        }
        None => (
            opened + INIT_TIMEOUT,
            4408,
            "Connection initialisation timeout",
        ),
    }
}
