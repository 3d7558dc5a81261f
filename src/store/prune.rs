//! Retention: old processed update ids and inputs, finished outbox rows and the message
//! log are deleted by age, so the database does not grow without bound.

use chrono::{DateTime, Duration, Utc};

use super::{Result, Store, ms};

/// How long each kind of record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Processed Telegram update ids and processed queued inputs.
    pub processed_updates_days: u32,
    pub message_log_days: u32,
    /// Delivered, failed and announced dead outbox rows, and the ids of
    /// CRM messages sent and received.
    pub finished_outbox_days: u32,
    /// Raw webhook calls.
    pub webhook_log_days: u32,
}

/// How many rows one pruning removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub updates: usize,
    pub log: usize,
    pub outbox: usize,
    /// Webhook calls and CRM message ids.
    pub webhooks: usize,
}

impl Store {
    pub fn prune(&mut self, keep: Retention, now: DateTime<Utc>) -> Result<Pruned> {
        let before = |days: u32| ms(now - Duration::days(i64::from(days)));
        let tx = self.immediate()?;
        let updates = tx.execute(
            "DELETE FROM inbox WHERE processed_at IS NOT NULL AND processed_at < ?1",
            [before(keep.processed_updates_days)],
        )?;
        let inputs = tx.execute(
            "DELETE FROM inputs WHERE processed_at IS NOT NULL AND processed_at < ?1",
            [before(keep.processed_updates_days)],
        )?;
        let log = tx.execute(
            "DELETE FROM message_log WHERE at < ?1",
            [before(keep.message_log_days)],
        )?;
        let outbox = tx.execute(
            "DELETE FROM outbox WHERE status != 'pending' AND finished_at < ?1
               AND (status != 'dead' OR announced = 1)",
            [before(keep.finished_outbox_days)],
        )?;
        let crm = tx.execute(
            "DELETE FROM crm_messages WHERE at < ?1",
            [before(keep.finished_outbox_days)],
        )?;
        let webhooks = tx.execute(
            "DELETE FROM webhook_log WHERE received_at < ?1",
            [before(keep.webhook_log_days)],
        )?;
        tx.commit()?;
        Ok(Pruned {
            webhooks: webhooks + crm,
            updates: updates + inputs,
            log,
            outbox,
        })
    }
}
