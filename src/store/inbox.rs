//! The update inbox: every Telegram update is stored here before its offset
//! is confirmed to Telegram, and marked processed in the same transaction as
//! its effects. A processed id seen again is skipped.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, Store, ms};

impl Store {
    /// Stores a batch of raw updates (id, JSON text) in one transaction.
    /// Returns the updates that are new; ids already stored (pending or
    /// processed) are left alone.
    pub fn inbox_add(
        &mut self,
        updates: Vec<(i64, String)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, String)>> {
        let tx = self.immediate()?;
        let mut added = Vec::with_capacity(updates.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO inbox (update_id, raw, received_at) VALUES (?1, ?2, ?3)",
            )?;
            for (id, raw) in updates {
                if stmt.execute(params![id, raw, ms(now)])? == 1 {
                    added.push((id, raw));
                }
            }
        }
        tx.commit()?;
        Ok(added)
    }

    /// Updates received but not processed yet, oldest first (after a restart).
    pub fn inbox_pending(&self) -> Result<Vec<(i64, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT update_id, raw FROM inbox WHERE processed_at IS NULL ORDER BY update_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The highest update id ever stored (the offset to confirm from, after a restart).
    pub fn inbox_last_id(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT MAX(update_id) FROM inbox", [], |r| r.get(0))?)
    }
}

/// Whether the update was processed already (then its effects must not be applied again).
pub(super) fn is_processed(tx: &Connection, update_id: i64) -> Result<bool> {
    let at: Option<Option<i64>> = tx
        .prepare_cached("SELECT processed_at FROM inbox WHERE update_id = ?1")?
        .query_row([update_id], |r| r.get(0))
        .optional()?;
    Ok(matches!(at, Some(Some(_))))
}

/// Marks the update processed and drops its raw text (no longer needed).
pub(super) fn mark_processed(tx: &Connection, update_id: i64, now: DateTime<Utc>) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO inbox (update_id, raw, received_at, processed_at) VALUES (?1, NULL, ?2, ?2)
         ON CONFLICT (update_id) DO UPDATE SET processed_at = excluded.processed_at, raw = NULL",
    )?
    .execute(params![update_id, ms(now)])?;
    Ok(())
}
