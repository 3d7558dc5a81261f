//! Outbox rows: inserted with the change that caused them, claimed by the
//! delivery worker one queue head at a time, finished as delivered, failed
//! (permanently refused) or dead (gave up), never deleted before retention.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, Store, StoreError, log, ms, ms_ceil};
use crate::outbox::{Destination, NewMessage, Payload};

/// How one destination's deliveries stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueHealth {
    pub destination: Destination,
    pub pending: i64,
    pub oldest_pending: Option<DateTime<Utc>>,
    pub dead: i64,
}

/// A pending row as the worker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub queue: String,
    pub customer_id: Option<i64>,
    pub is_admin_notice: bool,
    pub payload: Payload,
    /// Attempts made so far (0 for a fresh row).
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// Inserts a row to deliver as soon as possible.
pub(super) fn enqueue(tx: &Connection, msg: &NewMessage, now: DateTime<Utc>) -> Result<()> {
    let payload =
        serde_json::to_string(&msg.payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO outbox (queue, destination, customer_id, is_admin_notice, payload,
                             next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?;
    stmt.execute(params![
        msg.payload.queue(),
        msg.payload.destination().as_str(),
        msg.customer_id,
        msg.is_admin_notice,
        payload,
        ms(now),
    ])?;
    Ok(())
}

impl Store {
    /// Inserts messages on their own (not caused by an input), in one transaction.
    pub fn enqueue(&mut self, messages: &[NewMessage], now: DateTime<Utc>) -> Result<()> {
        let tx = self.immediate()?;
        for m in messages {
            enqueue(&tx, m, now)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The first pending row of each queue of `destination` that is due at
    /// `now`, oldest first, skipping queues in `busy` (already in flight),
    /// and when the earliest head that is not due yet will be.
    /// A queue whose head waits for a retry holds back the rows behind it.
    pub fn due_heads(
        &self,
        destination: Destination,
        now: DateTime<Utc>,
        busy: &dyn Fn(&str) -> bool,
        limit: usize,
    ) -> Result<(Vec<OutboxRow>, Option<DateTime<Utc>>)> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, o.queue, o.customer_id, o.is_admin_notice, o.payload, o.attempts,
                    o.created_at, o.next_attempt_at
             FROM (SELECT MIN(id) AS id FROM outbox
                   WHERE status = 'pending' AND destination = ?1 GROUP BY queue) h
             JOIN outbox o ON o.id = h.id
             ORDER BY o.id",
        )?;
        let mut rows = stmt.query([destination.as_str()])?;
        let (mut due, mut next) = (Vec::new(), None::<i64>);
        let mut unreadable = Vec::new();
        while let Some(r) = rows.next()? {
            let queue: String = r.get(1)?;
            let at: i64 = r.get(7)?;
            if busy(&queue) {
                continue;
            }
            if at > ms(now) || due.len() >= limit {
                next = Some(next.map_or(at, |n| n.min(at)).max(ms(now)));
                continue;
            }
            let id: i64 = r.get(0)?;
            let Ok(payload) = serde_json::from_str::<Payload>(&r.get::<_, String>(4)?) else {
                unreadable.push(id);
                continue;
            };
            due.push(OutboxRow {
                id,
                queue,
                customer_id: r.get(2)?,
                is_admin_notice: r.get(3)?,
                payload,
                attempts: r.get(5)?,
                created_at: DateTime::from_timestamp_millis(r.get(6)?).unwrap_or(now),
            });
        }
        for id in unreadable {
            // Not ours to guess at: park it as dead so its queue moves on.
            tracing::error!(row = id, "outbox row has an unreadable payload");
            self.conn.execute(
                "UPDATE outbox SET status = 'dead', last_error = 'unreadable payload',
                        finished_at = ?2 WHERE id = ?1",
                params![id, ms(now)],
            )?;
        }
        Ok((due, next.and_then(DateTime::from_timestamp_millis)))
    }

    /// How many rows wait for delivery, per destination.
    pub fn outbox_depth(&self, destination: Destination) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND destination = ?1",
            [destination.as_str()],
            |r| r.get(0),
        )?)
    }

    /// Per destination: rows waiting, when the oldest of them was created,
    /// and dead rows (for `/healthz` and `/metrics`).
    pub fn outbox_health(&self) -> Result<Vec<QueueHealth>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT destination,
                    COUNT(*) FILTER (WHERE status = 'pending'),
                    MIN(created_at) FILTER (WHERE status = 'pending'),
                    COUNT(*) FILTER (WHERE status = 'dead')
             FROM outbox WHERE status IN ('pending', 'dead') GROUP BY destination",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut found = Vec::new();
        for row in rows {
            let (destination, pending, oldest, dead) = row?;
            if let Some(destination) = Destination::parse(&destination) {
                found.push(QueueHealth {
                    destination,
                    pending,
                    oldest_pending: oldest.and_then(DateTime::from_timestamp_millis),
                    dead,
                });
            }
        }
        Ok(found)
    }

    /// The row went out: record it, log the message and remember the
    /// receiving service's id for it (a CRM message's echo is recognised
    /// by it), in one transaction.
    pub fn mark_delivered(
        &mut self,
        row: &OutboxRow,
        remote_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.immediate()?;
        delivered(&tx, row, remote_id, now)?;
        tx.commit()?;
        Ok(())
    }

    /// [`Store::mark_delivered`], and in the same call the queue's next
    /// pending row when it is due (so the worker goes on with that queue
    /// without scanning every queue again).
    pub fn mark_delivered_next(
        &mut self,
        row: &OutboxRow,
        remote_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<OutboxRow>> {
        self.mark_delivered(row, remote_id, now)?;
        let next = self
            .conn
            .prepare_cached(
                "SELECT id, customer_id, is_admin_notice, payload, attempts, created_at, next_attempt_at
                 FROM outbox WHERE status = 'pending' AND destination = ?1 AND queue = ?2
                 ORDER BY id LIMIT 1",
            )?
            .query_row(
                params![row.payload.destination().as_str(), row.queue],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get::<_, String>(3)?,
                        r.get(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, customer_id, is_admin_notice, payload, attempts, created, due)) = next else {
            return Ok(None);
        };
        // Not due yet, or unreadable: the next full scan deals with it.
        let Ok(payload) = serde_json::from_str::<Payload>(&payload) else {
            return Ok(None);
        };
        if due > ms(now) {
            return Ok(None);
        }
        Ok(Some(OutboxRow {
            id,
            queue: row.queue.clone(),
            customer_id,
            is_admin_notice,
            payload,
            attempts,
            created_at: DateTime::from_timestamp_millis(created).unwrap_or(now),
        }))
    }

    /// Marks delivered the rows a previous run noted in its receipts file
    /// but did not get to mark here (a crash in between); rows no longer
    /// pending are left alone. Returns how many were marked.
    pub fn confirm_receipts(
        &mut self,
        receipts: &[(i64, Option<String>)],
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let tx = self.immediate()?;
        let mut marked = 0;
        for (id, remote_id) in receipts {
            let id = *id;
            let row = tx
                .prepare_cached(
                    "SELECT queue, customer_id, is_admin_notice, payload, attempts, created_at
                     FROM outbox WHERE id = ?1 AND status = 'pending'",
                )?
                .query_row([id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get::<_, String>(3)?,
                        r.get(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                })
                .optional()?;
            let Some((queue, customer_id, is_admin_notice, payload, attempts, created)) = row
            else {
                continue;
            };
            let payload = serde_json::from_str(&payload)
                .map_err(|e| StoreError::Corrupt(format!("outbox row {id}: {e}")))?;
            let row = OutboxRow {
                id,
                queue,
                customer_id,
                is_admin_notice,
                payload,
                attempts,
                created_at: DateTime::from_timestamp_millis(created).unwrap_or(now),
            };
            delivered(&tx, &row, remote_id.as_deref(), now)?;
            marked += 1;
        }
        tx.commit()?;
        Ok(marked)
    }

    /// Try again at `next`; `error` is kept for `/stats` and the logs.
    pub fn mark_retry(&mut self, id: i64, next: DateTime<Utc>, error: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3
                 WHERE id = ?1",
            )?
            .execute(params![id, ms_ceil(next), error])?;
        Ok(())
    }

    /// The row will never go through (refused by the recipient's side): keep it, stop trying.
    pub fn mark_failed(&mut self, id: i64, error: &str, now: DateTime<Utc>) -> Result<()> {
        self.finish(id, "failed", error, now)
    }

    /// We gave up on the row (too many attempts or too old): kept, counted, announced once.
    pub fn mark_dead(&mut self, id: i64, error: &str, now: DateTime<Utc>) -> Result<()> {
        self.finish(id, "dead", error, now)
    }

    fn finish(&mut self, id: i64, status: &str, error: &str, now: DateTime<Utc>) -> Result<()> {
        finish(&self.conn, id, status, error, now)
    }

    /// Dead rows not yet announced, as one summary line each (oldest first),
    /// and marks them announced together with the notices `make` builds from them.
    pub fn announce_dead(
        &mut self,
        now: DateTime<Utc>,
        make: &dyn Fn(&[DeadRow]) -> Vec<NewMessage>,
    ) -> Result<usize> {
        let tx = self.immediate()?;
        let dead = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, payload, last_error, is_admin_notice FROM outbox
                 WHERE status = 'dead' AND announced = 0 ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(DeadRow {
                    id: r.get(0)?,
                    summary: serde_json::from_str::<Payload>(&r.get::<_, String>(1)?)
                        .map_or_else(|_| "unreadable row".to_owned(), |p| p.summary()),
                    error: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    is_admin_notice: r.get(3)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        if dead.is_empty() {
            return Ok(0);
        }
        for m in make(&dead) {
            enqueue(&tx, &m, now)?;
        }
        tx.execute(
            "UPDATE outbox SET announced = 1 WHERE status = 'dead' AND announced = 0 AND id <= ?1",
            [dead.iter().map(|d| d.id).max().unwrap_or(0)],
        )?;
        tx.commit()?;
        Ok(dead.len())
    }
}

/// A dead row, for the admins' notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadRow {
    pub id: i64,
    pub summary: String,
    pub error: String,
    pub is_admin_notice: bool,
}

/// Ends a row's delivery attempts with `status` (failed or dead).
pub(super) fn finish(
    conn: &Connection,
    id: i64,
    status: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbox SET status = ?2, attempts = attempts + 1, last_error = ?3,
                finished_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, status, error, ms(now)])?;
    Ok(())
}

fn delivered(
    tx: &Connection,
    row: &OutboxRow,
    remote_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, finished_at = ?2
         WHERE id = ?1",
    )?
    .execute(params![row.id, ms(now)])?;
    if let Some(message_id) = remote_id {
        super::crm::remember(
            tx,
            message_id,
            super::crm::Origin::Sent,
            row.customer_id,
            now,
        )?;
    }
    log::outgoing(tx, row, now)
}
