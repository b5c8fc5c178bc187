//! How long to wait before trying again: exponential, capped, with full jitter.

use std::time::Duration;

/// Exponential backoff: the n-th retry waits up to `base * 2^(n-1)`, never more than `cap`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first retry's longest wait.
    pub base: Duration,
    /// No wait is longer, however many retries came before.
    pub cap: Duration,
}

impl Backoff {
    /// The longest wait before retry `retry` (1-based). Used as is for reconnects, where a
    /// single controller has nobody to desynchronise from.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }

    /// A wait drawn uniformly from `[0, ceiling(retry)]` ("full jitter"): tasks that failed
    /// together, because a runner went down, come back spread out instead of as one burst.
    pub fn jittered(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        self.ceiling(retry).mul_f64(rng.f64())
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(2),
    };

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let ceilings: Vec<u128> = (1..=7).map(|n| BACKOFF.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(BACKOFF.ceiling(0), Duration::from_millis(100));
        assert_eq!(BACKOFF.ceiling(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn jitter_stays_under_the_ceiling_and_spreads() {
        let mut rng = fastrand::Rng::with_seed(7);
        let waits: Vec<Duration> = (0..200).map(|_| BACKOFF.jittered(4, &mut rng)).collect();
        assert!(waits.iter().all(|wait| *wait <= Duration::from_millis(800)));
        let shortest = waits.iter().min().unwrap();
        let longest = waits.iter().max().unwrap();
        assert!(*shortest < Duration::from_millis(200), "{shortest:?}");
        assert!(*longest > Duration::from_millis(600), "{longest:?}");
    }
}
