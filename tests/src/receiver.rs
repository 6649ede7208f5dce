//! A local receiver of outbound webhooks: a real HTTP server that records every request
//! (headers, exact body bytes, when) and answers as a test scripts it.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// Waits this long, then answers 200.
    Hang(Duration),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    always: Mutex<Option<Reply>>,
}

/// The receiver, listening on loopback.
#[derive(Clone)]
pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`
    pub url: String,
    pub port: u16,
    inner: Arc<Inner>,
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    inner.received.lock().unwrap().push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    let next = inner.script.lock().unwrap().pop_front();
    let reply = next
        .or_else(|| inner.always.lock().unwrap().clone())
        .unwrap_or(Reply::Status(200));
    match reply {
        Reply::Status(s) => StatusCode::from_u16(s).unwrap().into_response(),
        Reply::RetryAfter(s, secs) => (
            StatusCode::from_u16(s).unwrap(),
            [("retry-after", secs.to_string())],
        )
            .into_response(),
        Reply::Hang(d) => {
            tokio::time::sleep(d).await;
            (StatusCode::OK, "late").into_response()
        }
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            inner,
        }
    }

    /// The next requests get these answers, in order (then the default).
    pub fn answer_next(&self, replies: &[Reply]) {
        self.inner
            .script
            .lock()
            .unwrap()
            .extend(replies.iter().cloned());
    }

    /// Every request without a scripted answer gets `reply`.
    pub fn answer_always(&self, reply: Reply) {
        *self.inner.always.lock().unwrap() = Some(reply);
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.inner.received.lock().unwrap().len()
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived (panics after `limit`).
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests arrived: {:?}",
                got.len(),
                got.iter()
                    .map(|r| r.json()["type"].clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
