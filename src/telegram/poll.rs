//! Long polling that never confirms an update before it is safe with us.
//!
//! Telegram forgets an update once a later `getUpdates` call passes an
//! offset beyond it. So each batch is handed to the sink (which stores it in
//! the inbox) and only after the sink says it is stored does the offset move.

use std::future::Future;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::{ApiError, RequestError};
use tokio_util::sync::CancellationToken;

use crate::outbox::backoff::Backoff;

/// One update as received: its id and its JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawUpdate {
    pub id: i64,
    pub raw: String,
}

/// Whether polling works, for health checks and the heartbeat.
pub type PollHealth = crate::liveness::Liveness;

/// Polls until `shutdown`, starting at `offset` (the first id not yet stored).
pub async fn run<F, Fut>(
    bot: Bot,
    timeout: Duration,
    mut offset: i32,
    mut sink: F,
    health: PollHealth,
    shutdown: CancellationToken,
) where
    F: FnMut(Vec<RawUpdate>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let backoff = Backoff {
        base: Duration::from_millis(500),
        max: Duration::from_secs(30),
    };
    let mut failures = 0u32;
    let timeout_secs = u32::try_from(timeout.as_secs()).unwrap_or(25);
    loop {
        let request = bot
            .get_updates()
            .offset(offset)
            .timeout(timeout_secs)
            .allowed_updates(super::ALLOWED_UPDATES)
            .send();
        let result = tokio::select! {
            () = shutdown.cancelled() => return,
            r = request => r,
        };
        let wait = match result {
            Ok(updates) => {
                health.ok();
                failures = 0;
                match store_batch(&updates, &mut sink).await {
                    Ok(Some(next)) => {
                        offset = next;
                        continue;
                    }
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, "could not store updates; they stay unconfirmed");
                        backoff.delay_random(1)
                    }
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                health.failed(&e.to_string());
                poll_failure(&e, failures, &backoff)
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Hands the batch to the sink; returns the next offset once it is stored.
async fn store_batch<F, Fut>(updates: &[Update], sink: &mut F) -> anyhow::Result<Option<i32>>
where
    F: FnMut(Vec<RawUpdate>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let Some(last) = updates.iter().map(|u| u.id.0).max() else {
        return Ok(None);
    };
    let mut batch = Vec::with_capacity(updates.len());
    for u in updates {
        // teloxide's own serialisation reads back identically with `from_str`.
        let raw = serde_json::to_string(u)?;
        batch.push(RawUpdate {
            id: i64::from(u.id.0),
            raw,
        });
    }
    sink(batch).await?;
    Ok(Some(
        i32::try_from(last).unwrap_or(i32::MAX).saturating_add(1),
    ))
}

fn poll_failure(e: &RequestError, failures: u32, backoff: &Backoff) -> Duration {
    match e {
        RequestError::Api(ApiError::TerminatedByOtherGetUpdates) => {
            tracing::error!(
                "another process is polling Telegram with this bot token; \
                 only one instance may run (retrying in 5 s)"
            );
            Duration::from_secs(5)
        }
        RequestError::Api(ApiError::InvalidToken) => {
            tracing::error!("Telegram rejects the bot token (retrying in 60 s)");
            Duration::from_secs(60)
        }
        RequestError::RetryAfter(s) => Duration::from_secs(u64::from(s.seconds())),
        other => {
            let wait = backoff.delay_random(failures);
            tracing::warn!(error = %other, attempt = failures, retry_in_ms = wait.as_millis() as u64, "getUpdates failed");
            wait
        }
    }
}
