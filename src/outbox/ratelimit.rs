//! Token-bucket rate limits for outgoing Telegram messages.
//!
//! One bucket for the whole bot and one per chat; group chats (negative ids)
//! get the stricter group rate. The limiter is pure: the caller passes the
//! current [`Instant`], and a refusal says how long to wait.
//!
//! Each bucket is kept as a "theoretical arrival time" (the GCRA form of a
//! token bucket): the instant at which the bucket would be full again. That
//! makes the arithmetic exact (no floating-point tokens) and makes an idle
//! bucket easy to spot, so it can be forgotten.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The rates to respect. A rate of 0 (or below, or NaN) means unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Messages per second across all chats.
    pub global_per_sec: f64,
    /// Messages per second to one chat, after a burst.
    pub per_chat_per_sec: f64,
    /// How many messages one chat may get at once before the rate applies.
    pub per_chat_burst: u32,
    /// Messages per minute to one group chat (negative chat id).
    pub group_per_min: f64,
}

impl Default for Limits {
    /// Telegram's published limits: 30 messages a second overall, one a
    /// second per chat (with a small burst), 20 a minute per group.
    fn default() -> Self {
        Limits {
            global_per_sec: 30.0,
            per_chat_per_sec: 1.0,
            per_chat_burst: 3,
            group_per_min: 20.0,
        }
    }
}

impl Limits {
    /// No limits at all.
    pub fn unlimited() -> Limits {
        Limits {
            global_per_sec: 0.0,
            per_chat_per_sec: 0.0,
            per_chat_burst: 0,
            group_per_min: 0.0,
        }
    }
}

/// The longest gap between two messages a rate can ask for; slower rates
/// are treated as this one (keeps instant arithmetic far from overflow).
const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Below this many tracked chats, idle ones are not pruned.
const MIN_PRUNE_THRESHOLD: usize = 1024;

/// One limited rate: a message every `interval`, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rule {
    interval: Duration,
    /// How far ahead of now a bucket's full-again instant may be and still
    /// admit one more message: `(burst - 1) * interval`.
    tolerance: Duration,
}

impl Rule {
    /// `None` when the rate is unlimited.
    fn new(per_sec: f64, burst: u32) -> Option<Rule> {
        let limited = per_sec > 0.0 && per_sec.is_finite();
        if !limited {
            return None;
        }
        let interval = Duration::try_from_secs_f64(1.0 / per_sec)
            .unwrap_or(MAX_INTERVAL)
            .min(MAX_INTERVAL);
        if interval.is_zero() {
            return None;
        }
        let tolerance = interval.saturating_mul(burst.max(1) - 1);
        Some(Rule {
            interval,
            tolerance,
        })
    }

    /// How long until a bucket full again at `full_at` admits a message
    /// (zero: right now). A bucket never seen is full.
    fn wait(&self, full_at: Option<Instant>, now: Instant) -> Duration {
        full_at.map_or(Duration::ZERO, |full_at| {
            full_at
                .saturating_duration_since(now)
                .saturating_sub(self.tolerance)
        })
    }

    /// The bucket's full-again instant after taking one message at `now`.
    fn take(&self, full_at: Option<Instant>, now: Instant) -> Instant {
        let start = full_at.map_or(now, |full_at| full_at.max(now));
        start.checked_add(self.interval).unwrap_or(start)
    }
}

/// Decides whether a message may go now, per [`Limits`].
#[derive(Debug, Clone)]
pub struct RateLimiter {
    global: Option<Rule>,
    private_chat: Option<Rule>,
    group_chat: Option<Rule>,
    global_full_at: Option<Instant>,
    /// Chats whose bucket was recently used; idle ones get pruned.
    chats_full_at: HashMap<i64, Instant>,
    prune_threshold: usize,
}

impl RateLimiter {
    pub fn new(limits: Limits) -> Self {
        let chat_burst = limits.per_chat_burst;
        RateLimiter {
            global: Rule::new(limits.global_per_sec, global_burst(limits.global_per_sec)),
            private_chat: Rule::new(limits.per_chat_per_sec, chat_burst),
            group_chat: Rule::new(group_per_sec(&limits), chat_burst),
            global_full_at: None,
            chats_full_at: HashMap::new(),
            prune_threshold: MIN_PRUNE_THRESHOLD,
        }
    }

    /// Takes one message's worth from the global bucket and, for a chat,
    /// from that chat's bucket. If either is empty, takes nothing and
    /// returns how long until both would admit the message.
    pub fn acquire(&mut self, chat: Option<i64>, now: Instant) -> Result<(), Duration> {
        let chat_rule = chat.and_then(|id| self.chat_rule(id).map(|rule| (id, rule)));
        let global_wait = self
            .global
            .map_or(Duration::ZERO, |rule| rule.wait(self.global_full_at, now));
        let chat_wait = chat_rule.map_or(Duration::ZERO, |(id, rule)| {
            rule.wait(self.chats_full_at.get(&id).copied(), now)
        });
        let wait = global_wait.max(chat_wait);
        if !wait.is_zero() {
            return Err(wait);
        }
        if let Some(rule) = self.global {
            self.global_full_at = Some(rule.take(self.global_full_at, now));
        }
        if let Some((id, rule)) = chat_rule {
            self.take_for_chat(id, rule, now);
        }
        Ok(())
    }

    /// How many chats' buckets are remembered (idle ones are forgotten).
    pub fn tracked_chats(&self) -> usize {
        self.chats_full_at.len()
    }

    fn chat_rule(&self, chat: i64) -> Option<Rule> {
        if chat < 0 {
            self.group_chat
        } else {
            self.private_chat
        }
    }

    fn take_for_chat(&mut self, chat: i64, rule: Rule, now: Instant) {
        let full_at = self.chats_full_at.get(&chat).copied();
        if full_at.is_none() && self.chats_full_at.len() >= self.prune_threshold {
            self.prune(now);
        }
        self.chats_full_at.insert(chat, rule.take(full_at, now));
    }

    /// Forgets the chats whose bucket is full again (they behave exactly as
    /// chats never seen), then lets the map grow to twice what is left
    /// before the next pruning, so each pruning is paid for by as many
    /// insertions as it scans.
    fn prune(&mut self, now: Instant) {
        self.chats_full_at.retain(|_, full_at| *full_at > now);
        self.prune_threshold = MIN_PRUNE_THRESHOLD.max(2 * self.chats_full_at.len());
    }
}

/// The global bucket holds a second's worth of messages, at least one.
fn global_burst(per_sec: f64) -> u32 {
    // `as` saturates for huge values and maps NaN to 0.
    (per_sec.ceil() as u32).max(1)
}

/// A group is a chat too: the stricter of the per-chat and group rates.
fn group_per_sec(limits: &Limits) -> f64 {
    let group = limits.group_per_min / 60.0;
    let chat = limits.per_chat_per_sec;
    match (group > 0.0, chat > 0.0) {
        (true, true) => group.min(chat),
        (true, false) => group,
        (false, _) => chat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);
    const ALICE: i64 = 1001;
    const BOB: i64 = 1002;
    const GROUP: i64 = -100_500;

    fn only_per_chat() -> Limits {
        Limits {
            global_per_sec: 0.0,
            ..Limits::default()
        }
    }

    /// Acquires until refused; returns how many went through and the wait.
    fn drain(limiter: &mut RateLimiter, chat: Option<i64>, now: Instant) -> (u32, Duration) {
        for sent in 0..10_000 {
            if let Err(wait) = limiter.acquire(chat, now) {
                return (sent, wait);
            }
        }
        panic!("never refused");
    }

    #[test]
    fn defaults_are_telegrams_published_limits() {
        let limits = Limits::default();
        assert_eq!(limits.global_per_sec, 30.0);
        assert_eq!(limits.per_chat_per_sec, 1.0);
        assert_eq!(limits.per_chat_burst, 3);
        assert_eq!(limits.group_per_min, 20.0);
    }

    #[test]
    fn unlimited_always_admits() {
        let mut limiter = RateLimiter::new(Limits::unlimited());
        let now = Instant::now();
        for i in 0..10_000 {
            assert_eq!(limiter.acquire(Some(i % 7 - 3), now), Ok(()));
            assert_eq!(limiter.acquire(None, now), Ok(()));
        }
        assert_eq!(limiter.tracked_chats(), 0);
    }

    #[test]
    fn a_chat_gets_its_burst_then_waits_a_second() {
        let mut limiter = RateLimiter::new(Limits::default());
        let now = Instant::now();
        assert_eq!(drain(&mut limiter, Some(ALICE), now), (3, SECOND));
    }

    #[test]
    fn a_refusal_takes_nothing() {
        let mut limiter = RateLimiter::new(Limits::default());
        let now = Instant::now();
        drain(&mut limiter, Some(ALICE), now);
        assert_eq!(limiter.acquire(Some(ALICE), now + 500 * MS), Err(500 * MS));
        assert_eq!(limiter.acquire(Some(ALICE), now + 999 * MS), Err(MS));
        assert_eq!(limiter.acquire(Some(ALICE), now + SECOND), Ok(()));
        assert_eq!(limiter.acquire(Some(ALICE), now + SECOND), Err(SECOND));
    }

    #[test]
    fn after_the_burst_a_chat_gets_one_message_a_second() {
        let mut limiter = RateLimiter::new(Limits::default());
        let start = Instant::now();
        drain(&mut limiter, Some(ALICE), start);
        for second in 1..=5 {
            let now = start + second * SECOND;
            assert_eq!(drain(&mut limiter, Some(ALICE), now), (1, SECOND));
        }
    }

    #[test]
    fn an_idle_chat_gets_its_burst_back() {
        let mut limiter = RateLimiter::new(Limits::default());
        let start = Instant::now();
        drain(&mut limiter, Some(ALICE), start);
        assert_eq!(drain(&mut limiter, Some(ALICE), start + 3 * SECOND).0, 3);
    }

    #[test]
    fn a_busy_chat_does_not_hold_up_another() {
        let mut limiter = RateLimiter::new(Limits::default());
        let now = Instant::now();
        drain(&mut limiter, Some(ALICE), now);
        assert_eq!(limiter.acquire(Some(BOB), now), Ok(()));
    }

    #[test]
    fn an_empty_global_bucket_holds_up_every_chat() {
        let limits = Limits {
            global_per_sec: 2.0,
            ..Limits::default()
        };
        let mut limiter = RateLimiter::new(limits);
        let now = Instant::now();
        assert_eq!(drain(&mut limiter, Some(ALICE), now), (2, 500 * MS));
        assert_eq!(limiter.acquire(Some(BOB), now), Err(500 * MS));
        assert_eq!(limiter.acquire(None, now), Err(500 * MS));
    }

    #[test]
    fn the_wait_is_the_longer_of_the_global_and_chat_waits() {
        let limits = Limits {
            global_per_sec: 1.0,
            per_chat_per_sec: 0.25,
            per_chat_burst: 1,
            group_per_min: 0.0,
        };
        let mut limiter = RateLimiter::new(limits);
        let now = Instant::now();
        assert_eq!(limiter.acquire(Some(ALICE), now), Ok(()));
        assert_eq!(limiter.acquire(Some(ALICE), now), Err(4 * SECOND));
        assert_eq!(limiter.acquire(Some(BOB), now), Err(SECOND));
    }

    #[test]
    fn the_global_limit_admits_a_second_worth_then_the_rate() {
        let mut limiter = RateLimiter::new(Limits::default());
        let start = Instant::now();
        let (sent, wait) = drain(&mut limiter, None, start);
        assert_eq!(sent, 30);
        assert_eq!(wait, SECOND / 30);
        let sent_in_next_second = (1..=1000)
            .filter(|&ms| limiter.acquire(None, start + ms * MS).is_ok())
            .count();
        assert_eq!(sent_in_next_second, 30);
    }

    #[test]
    fn a_fractional_global_rate_rounds_its_burst_up() {
        let limits = Limits {
            global_per_sec: 2.5,
            ..Limits::unlimited()
        };
        let mut limiter = RateLimiter::new(limits);
        assert_eq!(drain(&mut limiter, None, Instant::now()), (3, 400 * MS));
    }

    #[test]
    fn a_global_rate_below_one_still_admits_one() {
        let limits = Limits {
            global_per_sec: 0.1,
            ..Limits::unlimited()
        };
        let mut limiter = RateLimiter::new(limits);
        assert_eq!(drain(&mut limiter, None, Instant::now()), (1, 10 * SECOND));
    }

    #[test]
    fn a_group_gets_twenty_messages_a_minute() {
        let mut limiter = RateLimiter::new(only_per_chat());
        let start = Instant::now();
        assert_eq!(drain(&mut limiter, Some(GROUP), start), (3, 3 * SECOND));
        let sent_in_next_minute = (1..=60)
            .filter(|&s| limiter.acquire(Some(GROUP), start + s * SECOND).is_ok())
            .count();
        assert_eq!(sent_in_next_minute, 20);
    }

    #[test]
    fn a_group_is_also_held_to_the_per_chat_rate() {
        let limits = Limits {
            per_chat_per_sec: 0.1,
            per_chat_burst: 1,
            ..only_per_chat()
        };
        let mut limiter = RateLimiter::new(limits);
        assert_eq!(
            drain(&mut limiter, Some(GROUP), Instant::now()),
            (1, 10 * SECOND)
        );
    }

    #[test]
    fn a_group_limit_alone_leaves_private_chats_unlimited() {
        let limits = Limits {
            group_per_min: 60.0,
            per_chat_burst: 1,
            ..Limits::unlimited()
        };
        let mut limiter = RateLimiter::new(limits);
        let now = Instant::now();
        assert_eq!(drain(&mut limiter, Some(GROUP), now), (1, SECOND));
        for _ in 0..100 {
            assert_eq!(limiter.acquire(Some(ALICE), now), Ok(()));
        }
    }

    #[test]
    fn idle_chats_are_forgotten() {
        let mut limiter = RateLimiter::new(only_per_chat());
        let start = Instant::now();
        for chat in 0..100_000 {
            let now = start + (chat as u32) * 10 * MS;
            assert_eq!(limiter.acquire(Some(chat), now), Ok(()));
            assert!(
                limiter.tracked_chats() <= 2 * MIN_PRUNE_THRESHOLD,
                "{} chats tracked",
                limiter.tracked_chats()
            );
        }
    }

    #[test]
    fn forgetting_a_chat_does_not_change_its_limits() {
        let mut limiter = RateLimiter::new(only_per_chat());
        let start = Instant::now();
        assert_eq!(limiter.acquire(Some(ALICE), start), Ok(()));
        for chat in 0..(3 * MIN_PRUNE_THRESHOLD as i64) {
            assert_eq!(limiter.acquire(Some(-chat - 1), start + 5 * SECOND), Ok(()));
        }
        // Alice's bucket was full again, so pruning forgot it.
        assert_eq!(limiter.tracked_chats(), 3 * MIN_PRUNE_THRESHOLD);
        let later = start + 5 * SECOND;
        assert_eq!(drain(&mut limiter, Some(ALICE), later), (3, SECOND));
    }

    #[test]
    fn busy_chats_are_kept_while_pruning() {
        let mut limiter = RateLimiter::new(only_per_chat());
        let now = Instant::now();
        let chats = 3 * MIN_PRUNE_THRESHOLD as i64;
        for chat in 0..chats {
            assert_eq!(limiter.acquire(Some(chat), now), Ok(()));
        }
        assert_eq!(limiter.tracked_chats(), chats as usize);
    }

    #[test]
    fn absurd_rates_do_not_panic() {
        let now = Instant::now();
        for rate in [
            f64::MIN_POSITIVE,
            1e-300,
            1e300,
            f64::INFINITY,
            f64::NAN,
            -1.0,
        ] {
            let limits = Limits {
                global_per_sec: rate,
                per_chat_per_sec: rate,
                per_chat_burst: u32::MAX,
                group_per_min: rate,
            };
            let mut limiter = RateLimiter::new(limits);
            for chat in [None, Some(ALICE), Some(GROUP)] {
                let _ = limiter.acquire(chat, now);
                let _ = limiter.acquire(chat, now);
            }
        }
    }

    #[test]
    fn time_going_backwards_does_not_panic() {
        let mut limiter = RateLimiter::new(Limits::default());
        let now = Instant::now() + 10 * SECOND;
        drain(&mut limiter, Some(ALICE), now);
        let wait = limiter.acquire(Some(ALICE), now - 5 * SECOND);
        assert_eq!(wait, Err(6 * SECOND));
    }
}
