//! Webhook workloads shaped like the real deliveries, and the load generators.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tests::hotmart::{Purchase, cart};

/// A small deterministic generator (xorshift64*), so runs are repeatable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One delivery to post: the body and the header hottok of its product (Hotmart), or the
/// `?signature=` of its body (Kiwify).
#[derive(Clone)]
pub struct Delivery {
    pub body: bytes::Bytes,
    pub hottok: &'static str,
    pub signature: Option<String>,
}

pub const PRODUCTS: [(&str, &str); 2] = [
    ("4100001", "hottok-bench-launch-0001"),
    ("4100002", "hottok-bench-mentoring-0002"),
];

/// `unique` deliveries over many buyers, as buyer journeys (abandoned carts, boletos that
/// are paid or expire, refused cards retried, approvals, refunds), roughly in time order
/// with local reordering, plus `duplicate_ratio` exact re-sends of earlier deliveries.
pub fn workload(unique: usize, duplicate_ratio: f64, seed: u64) -> Vec<Delivery> {
    let mut rng = Rng::new(seed);
    let start = 1_767_225_600_000i64; // 2026-01-01
    let mut events: Vec<(i64, Delivery)> = Vec::with_capacity(unique);
    let mut buyer = 0u64;
    while events.len() < unique {
        buyer += 1;
        let email = format!("comprador{buyer}@exemplo.com.br");
        let (product, hottok) = PRODUCTS[buyer.is_multiple_of(5) as usize];
        let product: u64 = product.parse().unwrap();
        let mut at = start + (buyer as i64) * 7_000 + rng.below(5_000) as i64;
        let transaction = format!("HP{:011}", buyer);
        let journey: &[&str] = match rng.below(100) {
            0..40 => &["PURCHASE_OUT_OF_SHOPPING_CART"],
            40..55 => &[
                "PURCHASE_OUT_OF_SHOPPING_CART",
                "PURCHASE_BILLET_PRINTED",
                "PURCHASE_APPROVED",
                "PURCHASE_COMPLETE",
            ],
            55..62 => &["PURCHASE_BILLET_PRINTED", "PURCHASE_EXPIRED"],
            62..85 => &["PURCHASE_APPROVED", "PURCHASE_COMPLETE"],
            85..93 => &["PURCHASE_CANCELED", "PURCHASE_APPROVED"],
            _ => &["PURCHASE_APPROVED", "PURCHASE_REFUNDED"],
        };
        for event in journey {
            if events.len() == unique {
                break;
            }
            at += 60_000 + rng.below(600_000) as i64;
            let id = format!("bench-{buyer}-{}", events.len());
            let body = if *event == "PURCHASE_OUT_OF_SHOPPING_CART" {
                cart(&id, at, &email, product)
            } else {
                Purchase {
                    id: &id,
                    event,
                    at,
                    email: &email,
                    product,
                    transaction: &transaction,
                    price: if product == 4_100_001 { 497.0 } else { 1997.0 },
                    subscriber: None,
                }
                .body()
            };
            events.push((
                at,
                Delivery {
                    body: serde_json::to_vec(&body).unwrap().into(),
                    hottok,
                    signature: None,
                },
            ));
        }
    }
    // Deliveries arrive roughly in time order, not exactly.
    events.sort_by_key(|(at, _)| *at);
    let mut deliveries: Vec<Delivery> = events.into_iter().map(|(_, d)| d).collect();
    for i in 0..deliveries.len() {
        let j = (i + rng.below(64) as usize).min(deliveries.len() - 1);
        deliveries.swap(i, j);
    }
    // Re-sends: a copy of an earlier delivery, later in the stream.
    let duplicates = (unique as f64 * duplicate_ratio).round() as usize;
    for _ in 0..duplicates {
        let len = deliveries.len();
        let original = rng.below(len as u64) as usize;
        let at = (original + 1 + rng.below(2_000) as usize).min(len);
        let copy = deliveries[original].clone();
        deliveries.insert(at, copy);
    }
    deliveries
}

/// The Kiwify products of [`kiwify_workload`].
pub const KIWIFY_PRODUCTS: [&str; 2] = [
    "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
    "8d2e3f4a-5b6c-4d7e-9f0a-1b2c3d4e5f6a",
];

/// The webhook token the Kiwify bench integration signs with.
pub const KIWIFY_TOKEN: &str = "bench-kiwify-token";

/// The journeys of [`workload`] as Kiwify sends them (signed): the same buyers, times and
/// events where Kiwify has them (it sends no "complete" and no "expired").
pub fn kiwify_workload(unique: usize, duplicate_ratio: f64, seed: u64) -> Vec<Delivery> {
    workload(unique, duplicate_ratio, seed)
        .into_iter()
        .filter_map(|d| {
            let hotmart: serde_json::Value = serde_json::from_slice(&d.body).ok()?;
            let body = kiwify_body(&hotmart)?;
            let bytes = serde_json::to_vec(&body).unwrap();
            let signature = entity::kiwify::webhook::sign(KIWIFY_TOKEN.as_bytes(), &bytes);
            Some(Delivery {
                body: bytes.into(),
                hottok: "",
                signature: Some(signature),
            })
        })
        .collect()
}

fn kiwify_body(hotmart: &serde_json::Value) -> Option<serde_json::Value> {
    let data = &hotmart["data"];
    let email = data["buyer"]["email"].as_str()?;
    let product = KIWIFY_PRODUCTS[usize::from(data["product"]["id"] == 4_100_002)];
    let at = hotmart["creation_date"].as_i64()? - 3 * 3_600_000;
    let when = chrono::DateTime::from_timestamp_millis(at)?
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string();
    let id = hotmart["id"].as_str()?;
    let event = match hotmart["event"].as_str()? {
        "PURCHASE_OUT_OF_SHOPPING_CART" => {
            return Some(
                serde_json::json!({"id": id, "status": "abandoned", "email": email,
                "name": data["buyer"]["name"], "product_id": product, "created_at": when,
                "checkout_link": "https://pay.kiwify.com.br/bench"}),
            );
        }
        "PURCHASE_BILLET_PRINTED" => "billet_created",
        "PURCHASE_CANCELED" => "order_rejected",
        "PURCHASE_APPROVED" => "order_approved",
        "PURCHASE_REFUNDED" => "order_refunded",
        _ => return None,
    };
    let cents = (data["purchase"]["price"]["value"].as_f64()? * 100.0).round() as i64;
    Some(serde_json::json!({
        "order_id": data["purchase"]["transaction"], "webhook_event_type": event,
        "updated_at": when, "created_at": when, "payment_method": "credit_card",
        "Product": {"product_id": product, "product_name": "Produto"},
        "Customer": {"email": email, "full_name": data["buyer"]["name"], "mobile": "+5511987654321"},
        "Commissions": {"charge_amount": cents, "currency": "BRL"},
    }))
}

/// Latencies and outcome counts of one load run.
#[derive(Default)]
pub struct Outcome {
    pub latencies: Vec<Duration>,
    pub ok: usize,
    pub errors: usize,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        percentile_ms(&mut self.latencies, p)
    }
}

pub fn percentile_ms(latencies: &mut [Duration], p: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort_unstable();
    let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
    latencies[rank.clamp(1, latencies.len()) - 1].as_secs_f64() * 1000.0
}

pub fn client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .build()
        .unwrap()
}

async fn post(client: &reqwest::Client, url: &str, delivery: &Delivery) -> bool {
    let url = match &delivery.signature {
        Some(signature) => format!("{url}?signature={signature}"),
        None => url.to_owned(),
    };
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-hotmart-hottok", delivery.hottok)
        .body(delivery.body.clone())
        .send()
        .await;
    match response {
        Ok(response) => {
            let ok = response.status().is_success();
            let _ = response.bytes().await;
            ok
        }
        Err(_) => false,
    }
}

/// Posts every delivery with `concurrency` requests in flight (closed model: each
/// connection sends its next request when the previous one is answered).
pub async fn closed_loop(url: &str, deliveries: Arc<Vec<Delivery>>, concurrency: usize) -> Outcome {
    let client = client(concurrency);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, deliveries, url) = (
            client.clone(),
            next.clone(),
            deliveries.clone(),
            url.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(delivery) = deliveries.get(i) else {
                    break;
                };
                let sent = Instant::now();
                if post(&client, &url, delivery).await {
                    outcome.ok += 1;
                } else {
                    outcome.errors += 1;
                }
                outcome.latencies.push(sent.elapsed());
            }
            outcome
        }));
    }
    let mut total = Outcome::default();
    for task in tasks {
        let outcome = task.await.unwrap();
        total.ok += outcome.ok;
        total.errors += outcome.errors;
        total.latencies.extend(outcome.latencies);
    }
    total.elapsed = started.elapsed();
    total
}

/// Offers `rate` requests per second for `duration` regardless of how fast they are
/// answered (open model). Latency counts from the moment a request was due, so a server
/// that falls behind shows it.
pub async fn open_loop(
    url: &str,
    deliveries: Arc<Vec<Delivery>>,
    rate: f64,
    duration: Duration,
) -> Outcome {
    let client = client(256);
    let total = ((rate * duration.as_secs_f64()) as usize).min(deliveries.len());
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let (client, deliveries, url) = (client.clone(), deliveries.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let ok = post(&client, &url, &deliveries[i]).await;
            (ok, due.elapsed())
        }));
    }
    let mut outcome = Outcome::default();
    for task in tasks {
        let (ok, latency) = task.await.unwrap();
        if ok {
            outcome.ok += 1;
        } else {
            outcome.errors += 1;
        }
        outcome.latencies.push(latency);
    }
    outcome.elapsed = started.elapsed();
    outcome
}
