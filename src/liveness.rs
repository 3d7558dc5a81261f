//! Whether a connection to an outside service works: when it last worked,
//! since when it has been failing and why. Written by the adapter that
//! talks to the service, read by `/healthz` and the heartbeat. Cheap to
//! clone; every clone sees the same state.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// Longest error text kept.
const ERROR_CHARS: usize = 300;

#[derive(Debug, Clone, Default)]
pub struct Liveness(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// Unix ms of the last success; 0 = never.
    last_ok_ms: AtomicI64,
    /// Unix ms of the first failure since the last success; 0 = not failing.
    failing_since_ms: AtomicI64,
    last_error: Mutex<String>,
}

/// The state at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub last_ok: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    /// The last failure's text (empty when none was seen).
    pub last_error: String,
}

impl Liveness {
    /// A call succeeded.
    pub fn ok(&self) {
        self.0
            .last_ok_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        self.0.failing_since_ms.store(0, Ordering::Relaxed);
    }

    /// A call failed in a way that says the service does not work (not a
    /// refusal of one request).
    pub fn failed(&self, error: &str) {
        let now = Utc::now().timestamp_millis();
        let _ =
            self.0
                .failing_since_ms
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        *self
            .0
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error.chars().take(ERROR_CHARS).collect();
    }

    /// Unix ms of the last success; 0 = never.
    pub fn last_ok_ms(&self) -> i64 {
        self.0.last_ok_ms.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Snapshot {
        let at = |ms: i64| {
            (ms > 0)
                .then(|| DateTime::from_timestamp_millis(ms))
                .flatten()
        };
        Snapshot {
            last_ok: at(self.last_ok_ms()),
            failing_since: at(self.0.failing_since_ms.load(Ordering::Relaxed)),
            last_error: self
                .0
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_starts_at_the_first_failure_and_ends_with_a_success() {
        let live = Liveness::default();
        assert_eq!(live.snapshot().failing_since, None);
        live.failed("connection refused");
        let since = live.snapshot().failing_since;
        assert!(since.is_some());
        std::thread::sleep(std::time::Duration::from_millis(2));
        live.failed("timeout");
        let later = live.snapshot();
        assert_eq!(
            later.failing_since, since,
            "the outage began at the first failure"
        );
        assert_eq!(later.last_error, "timeout");
        live.ok();
        let healed = live.snapshot();
        assert_eq!(healed.failing_since, None);
        assert!(healed.last_ok.is_some());
    }

    #[test]
    fn clones_share_the_state_and_long_errors_are_cut() {
        let live = Liveness::default();
        let other = live.clone();
        other.failed(&"x".repeat(1_000));
        assert_eq!(live.snapshot().last_error.len(), ERROR_CHARS);
    }
}
