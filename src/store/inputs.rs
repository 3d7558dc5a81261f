//! The input queue: inputs that did not come from a Telegram update (a
//! delivery that found the customer gone, a manager's reply from the CRM)
//! are stored here first, in the transaction that discovered them, and
//! marked processed in the transaction that applies them. Like the inbox,
//! a crash loses none and applies none twice.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, Store, StoreError, ms};
use crate::engine::Input;

/// A stored input waiting to be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInput {
    pub id: i64,
    pub customer_id: i64,
    pub input: Input,
}

impl Store {
    /// Inputs stored but not applied yet, oldest first (after a restart).
    pub fn inputs_pending(&self) -> Result<Vec<PendingInput>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, customer_id, input FROM inputs WHERE processed_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut pending = Vec::new();
        for row in rows {
            let (id, customer_id, json) = row?;
            let input = serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("input {id}: {e}")))?;
            pending.push(PendingInput {
                id,
                customer_id,
                input,
            });
        }
        Ok(pending)
    }

    /// A delivery found the customer gone (blocked the bot, deleted the
    /// chat): the row is failed and, unless the customer is already known
    /// to be blocked or a `Blocked` input for them is already waiting, a
    /// `Blocked` input is queued, in one transaction.
    pub fn mark_recipient_gone(
        &mut self,
        row_id: i64,
        customer_id: i64,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingInput>> {
        let tx = self.immediate()?;
        super::outbox::finish(&tx, row_id, "failed", error, now)?;
        let already: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM customers WHERE telegram_id = ?1 AND blocked_since IS NOT NULL)
                     OR EXISTS (SELECT 1 FROM inputs WHERE customer_id = ?1
                                AND processed_at IS NULL AND input = ?2)",
            )?
            .query_row(params![customer_id, encode(&Input::Blocked)?], |r| r.get(0))?;
        let queued = if already {
            None
        } else {
            let id = enqueue(&tx, customer_id, &Input::Blocked, "delivery", now)?;
            Some(PendingInput {
                id,
                customer_id,
                input: Input::Blocked,
            })
        };
        tx.commit()?;
        Ok(queued)
    }
}

fn encode(input: &Input) -> Result<String> {
    serde_json::to_string(input).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Queues an input for a customer; `origin` says where it came from (for
/// the operator reading the table).
pub(super) fn enqueue(
    tx: &Connection,
    customer_id: i64,
    input: &Input,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO inputs (customer_id, input, origin, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![customer_id, encode(input)?, origin, ms(now)])?;
    Ok(tx.last_insert_rowid())
}

/// Whether the input was applied already.
pub(super) fn is_processed(tx: &Connection, id: i64) -> Result<bool> {
    let at: Option<Option<i64>> = tx
        .prepare_cached("SELECT processed_at FROM inputs WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(matches!(at, Some(Some(_))))
}

pub(super) fn mark_processed(tx: &Connection, id: i64, now: DateTime<Utc>) -> Result<()> {
    tx.prepare_cached("UPDATE inputs SET processed_at = ?2 WHERE id = ?1")?
        .execute(params![id, ms(now)])?;
    Ok(())
}
