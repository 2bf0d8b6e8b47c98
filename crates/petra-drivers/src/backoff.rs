//! Reconnect delays: exponential from `min`, capped at `max`, with "equal jitter" — each delay is
//! half the exponential step plus a random part of the other half. The fixed half keeps a
//! flapping device from being hammered; the random half spreads the reconnects of many drivers
//! that lost their devices at the same moment (a switch reboot).

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// `min` is the first step; `max` caps every delay (and is raised to `min` if lower).
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// A backoff with a fixed seed, for tests.
    pub fn with_seed(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            rng: fastrand::Rng::with_seed(seed),
            ..Backoff::new(min, max)
        }
    }

    /// The delay before the next attempt; each call doubles the step up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let step = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        let jitter_ns = self
            .rng
            .u64(0..=half.as_nanos().min(u64::MAX as u128) as u64);
        half + Duration::from_nanos(jitter_ns)
    }

    /// Attempts since the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// After a success: the next failure starts again from `min`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_the_cap_with_half_fixed() {
        let mut b = Backoff::with_seed(100 * MS, 1000 * MS, 7);
        let steps = [100, 200, 400, 800, 1000, 1000, 1000];
        for step in steps {
            let d = b.next_delay();
            assert!(
                d >= step * MS / 2 && d <= step * MS,
                "{d:?} for step {step} ms"
            );
        }
        assert_eq!(b.attempts(), 7);
    }

    #[test]
    fn reset_starts_from_min() {
        let mut b = Backoff::with_seed(100 * MS, 10_000 * MS, 1);
        for _ in 0..10 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= 100 * MS);
    }

    #[test]
    fn jitter_spreads_delays() {
        let delays: std::collections::HashSet<Duration> = (0..20)
            .map(|seed| Backoff::with_seed(100 * MS, 100 * MS, seed).next_delay())
            .collect();
        assert!(delays.len() > 10, "only {} distinct delays", delays.len());
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(3600), Duration::MAX);
        for _ in 0..100 {
            b.next_delay();
        }
        assert!(b.next_delay() <= Duration::MAX);
    }
}
