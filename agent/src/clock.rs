//! Wall-clock time behind a trait, so that the capture loop can run a simulated day in
//! milliseconds in a test (as moonfire-nvr's `Clocks` and `SimulatedClocks` do).
//!
//! Only the schedule's instants use this clock. Timeouts and backoff (a stalled stream, a
//! retried upload) are monotonic durations and use tokio's timer.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// Where the agent reads the time of day and waits for an instant.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Completes at `at` (at once when `at` has passed).
    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// The system's clock. A wait is re-checked against the wall clock when it ends, so a clock
/// stepped backwards (NTP) does not make a frame early.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            loop {
                let left = at - Utc::now();
                let Ok(left) = left.to_std() else {
                    return;
                };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left).await;
            }
        })
    }
}

/// A clock that only moves when something sleeps on it: `sleep_until` jumps to the instant
/// and returns at once. A single capture loop on it runs through a day as fast as it can
/// capture, and sees every instant it would have seen in real time.
#[derive(Clone, Debug)]
pub struct SimulatedClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl SimulatedClock {
    /// A clock reading `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward to `at` (never backwards).
    pub fn advance_to(&self, at: DateTime<Utc>) {
        let mut now = self.now.lock().expect("clock lock");
        if at > *now {
            *now = at;
        }
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        self.advance_to(at);
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_simulated_sleep_moves_the_clock_and_never_back() {
        let start = DateTime::from_timestamp(1_000, 0).unwrap();
        let clock = SimulatedClock::new(start);
        clock.sleep_until(start + chrono::Duration::hours(5)).await;
        assert_eq!(clock.now(), start + chrono::Duration::hours(5));
        clock.sleep_until(start).await;
        assert_eq!(clock.now(), start + chrono::Duration::hours(5));
    }

    #[tokio::test]
    async fn a_system_sleep_until_the_past_returns_at_once() {
        let clock = SystemClock;
        let past = clock.now() - chrono::Duration::seconds(10);
        tokio::time::timeout(std::time::Duration::from_secs(1), clock.sleep_until(past))
            .await
            .expect("returns at once");
    }
}
