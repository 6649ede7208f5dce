//! Acknowledging deliveries comes before processing them: the HTTP side counts the
//! deliveries it is storing, and workers of the same process give way while there are any.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

/// Deliveries submitted in this process and not answered yet.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Acknowledging deliveries comes before processing them: workers of this process call
/// this before a write transaction, and wait while deliveries are waiting to be stored —
/// at most `limit`, so processing always moves on during a long burst.
pub async fn yield_to_intake(limit: Duration) {
    let until = Instant::now() + limit;
    while IN_FLIGHT.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A delivery submitted and not answered yet, while it lives.
pub struct InFlight(());

impl InFlight {
    pub fn enter() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}
