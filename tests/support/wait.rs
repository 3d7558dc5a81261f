//! Waiting for a condition on a fake server: checked again whenever the
//! server says something changed, and at least every few milliseconds.

use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Re-checks at least this often, in case a change was not notified.
const TICK: Duration = Duration::from_millis(20);

/// Waits until `cond` holds (true) or `timeout` has passed (false).
/// `changed` is notified by the server on every change.
pub async fn until(changed: &Notify, timeout: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        // Registered before the check, so a change in between is not missed.
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep(TICK.min(deadline - now)) => {}
        }
    }
}
