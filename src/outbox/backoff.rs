//! Retry delays: exponential growth with a cap and "equal jitter".
//!
//! [`Backoff::delay`] is pure (the jitter is passed in) so it can be tested
//! exactly; [`Backoff::delay_random`] draws the jitter itself.

use std::time::Duration;

/// How long to wait before a retry: `base * 2^(attempt - 1)`, capped at
/// `max`, of which a random half is waived.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The delay before the first retry (before jitter).
    pub base: Duration,
    /// The longest delay, however many attempts have failed.
    pub max: Duration,
}

impl Default for Backoff {
    /// One second, doubling up to ten minutes.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10 * 60),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1 is the first retry; 0 is
    /// treated as 1), with `jitter` in `[0, 1]` (clamped; NaN counts as 0).
    ///
    /// With the capped exponential delay `d`, the result is
    /// `d/2 + d/2 * jitter`: never less than half of `d`, never more than `d`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let full = self.capped(attempt);
        let spread = full / 2;
        let fixed = full - spread;
        fixed.saturating_add(scale(spread, jitter))
    }

    /// [`Backoff::delay`] with a fresh random jitter.
    pub fn delay_random(&self, attempt: u32) -> Duration {
        self.delay(attempt, fastrand::f64())
    }

    /// `base * 2^(attempt - 1)`, at most `max`, without overflowing.
    fn capped(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1);
        let grown = 2u32
            .checked_pow(doublings)
            .and_then(|factor| self.base.checked_mul(factor));
        match grown {
            Some(delay) => delay.min(self.max),
            None if self.base.is_zero() => Duration::ZERO,
            None => self.max,
        }
    }
}

/// `duration * fraction` for a fraction clamped to `[0, 1]`, never more
/// than `duration` even after rounding.
fn scale(duration: Duration, fraction: f64) -> Duration {
    let fraction = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    Duration::try_from_secs_f64(duration.as_secs_f64() * fraction)
        .unwrap_or(duration)
        .min(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn backoff() -> Backoff {
        Backoff::default()
    }

    #[test]
    fn the_default_starts_at_one_second_and_stops_at_ten_minutes() {
        let b = backoff();
        assert_eq!(b.base, SECOND);
        assert_eq!(b.max, 600 * SECOND);
    }

    #[test]
    fn without_jitter_discount_the_delay_doubles_each_attempt() {
        let delays: Vec<u64> = (1..=6).map(|a| backoff().delay(a, 1.0).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32]);
    }

    #[test]
    fn the_delay_is_capped_at_max() {
        assert_eq!(backoff().delay(10, 1.0), 512 * SECOND);
        assert_eq!(backoff().delay(11, 1.0), 600 * SECOND);
        assert_eq!(backoff().delay(40, 1.0), 600 * SECOND);
    }

    #[test]
    fn jitter_waives_up_to_half_of_the_delay() {
        let b = backoff();
        assert_eq!(b.delay(5, 0.0), 8 * SECOND);
        assert_eq!(b.delay(5, 0.5), 12 * SECOND);
        assert_eq!(b.delay(5, 1.0), 16 * SECOND);
    }

    #[test]
    fn jitter_outside_zero_to_one_is_clamped() {
        let b = backoff();
        assert_eq!(b.delay(5, -3.0), 8 * SECOND);
        assert_eq!(b.delay(5, 7.0), 16 * SECOND);
        assert_eq!(b.delay(5, f64::NAN), 8 * SECOND);
        assert_eq!(b.delay(5, f64::INFINITY), 16 * SECOND);
    }

    #[test]
    fn attempt_zero_is_treated_as_the_first_retry() {
        assert_eq!(backoff().delay(0, 1.0), backoff().delay(1, 1.0));
    }

    #[test]
    fn huge_attempts_do_not_overflow() {
        assert_eq!(backoff().delay(u32::MAX, 1.0), 600 * SECOND);
        let unbounded = Backoff {
            base: Duration::MAX,
            max: Duration::MAX,
        };
        assert_eq!(unbounded.delay(u32::MAX, 1.0), Duration::MAX);
        assert!(unbounded.delay(u32::MAX, 0.0) >= Duration::MAX / 2);
    }

    #[test]
    fn a_zero_base_never_waits() {
        let b = Backoff {
            base: Duration::ZERO,
            ..backoff()
        };
        assert_eq!(b.delay(1, 1.0), Duration::ZERO);
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::ZERO);
    }

    #[test]
    fn a_base_above_max_is_capped_from_the_start() {
        let b = Backoff {
            base: 60 * SECOND,
            max: 10 * SECOND,
        };
        assert_eq!(b.delay(1, 1.0), 10 * SECOND);
    }

    #[test]
    fn random_delays_stay_between_half_and_full() {
        let b = backoff();
        for attempt in [0, 1, 3, 12, u32::MAX] {
            let full = b.delay(attempt, 1.0);
            for _ in 0..100 {
                let d = b.delay_random(attempt);
                assert!(
                    full / 2 <= d && d <= full,
                    "{d:?} outside [{full:?}/2, {full:?}]"
                );
            }
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn delays_never_shrink_as_attempts_grow(
                attempt in 0u32..100,
                jitter in 0.0f64..=1.0,
            ) {
                let b = backoff();
                prop_assert!(b.delay(attempt, jitter) <= b.delay(attempt + 1, jitter));
            }

            #[test]
            fn delays_never_exceed_max_nor_the_unjittered_half(
                attempt in any::<u32>(),
                jitter in any::<f64>(),
                base_ms in 0u64..100_000,
                max_ms in 0u64..10_000_000,
            ) {
                let b = Backoff {
                    base: Duration::from_millis(base_ms),
                    max: Duration::from_millis(max_ms),
                };
                let d = b.delay(attempt, jitter);
                prop_assert!(d <= b.max);
                prop_assert!(d >= b.delay(attempt, 0.0));
            }
        }
    }
}
