//! Exponential backoff with jitter, for reconnecting to a camera and retrying the origin.

use std::time::Duration;

use rand::Rng;

/// Waits that double from `initial` up to `max`; each is drawn from its upper half, so that
/// many agents (or cameras) that failed together do not retry together.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// From `initial`, doubling, at most `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(max);
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let full = self.next;
        self.next = (self.next * 2).min(self.max);
        full.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// An attempt succeeded: the next failure waits `initial` again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_bound_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let delays: Vec<Duration> = (0..6).map(|_| backoff.next_delay()).collect();
        for (delay, full) in delays.iter().zip([1, 2, 4, 8, 8, 8]) {
            let full = Duration::from_secs(full);
            assert!(
                *delay <= full && *delay >= full / 2,
                "{delay:?} for {full:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
    }
}
