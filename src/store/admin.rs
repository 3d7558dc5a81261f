//! What the admins ask of the store: `/stats` figures and `/bonus` adjustments.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, Store, inbox, ms, outbox};
use crate::engine::Customer;
use crate::outbox::NewMessage;
use crate::phone::Phone;

/// The figures `/stats` and `flowbot stats` show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub customers: i64,
    pub registered_today: i64,
    pub blocked: i64,
    pub messages_in_today: i64,
    pub messages_out_today: i64,
    /// Rows waiting to be delivered.
    pub outbox_pending: i64,
    /// Rows refused for good (recipient blocked the bot, bad request).
    pub outbox_failed: i64,
    /// Rows given up on after too many attempts or too long.
    pub outbox_dead: i64,
}

/// The result of a `/bonus` adjustment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BonusChange {
    Done {
        customer: Customer,
        balance: i64,
    },
    NoSuchCustomer,
    /// Taking this much would make the balance negative.
    NotEnough {
        customer: Customer,
        balance: i64,
    },
}

impl Store {
    /// Figures for today, where "today" started at `since`.
    pub fn stats(&self, since: DateTime<Utc>) -> Result<Stats> {
        let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<i64> {
            Ok(self.conn.query_row(sql, p, |r| r.get(0))?)
        };
        Ok(Stats {
            customers: count("SELECT COUNT(*) FROM customers", &[])?,
            registered_today: count(
                "SELECT COUNT(*) FROM customers WHERE registered_at >= ?1",
                &[&since],
            )?,
            blocked: count(
                "SELECT COUNT(*) FROM customers WHERE blocked_since IS NOT NULL",
                &[],
            )?,
            messages_in_today: count(
                "SELECT COUNT(*) FROM message_log WHERE direction = 'in' AND at >= ?1",
                &[&ms(since)],
            )?,
            messages_out_today: count(
                "SELECT COUNT(*) FROM message_log WHERE direction = 'out' AND at >= ?1",
                &[&ms(since)],
            )?,
            outbox_pending: count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'", &[])?,
            outbox_failed: count("SELECT COUNT(*) FROM outbox WHERE status = 'failed'", &[])?,
            outbox_dead: count("SELECT COUNT(*) FROM outbox WHERE status = 'dead'", &[])?,
        })
    }

    /// Adds `delta` bonuses (negative takes them) to the customer with this
    /// phone, with `reason` in the ledger. Never takes the balance below zero.
    /// The admin's update is marked processed and the answer `reply` builds
    /// is queued in the same transaction, so a restart never applies it twice.
    pub fn adjust_bonus(
        &mut self,
        adjustment: &BonusAdjustment,
        now: DateTime<Utc>,
        reply: &dyn Fn(&BonusChange) -> Vec<NewMessage>,
    ) -> Result<Option<BonusChange>> {
        let tx = self.immediate()?;
        if let Some(id) = adjustment.update_id {
            if inbox::is_processed(&tx, id)? {
                return Ok(None);
            }
            inbox::mark_processed(&tx, id, now)?;
        }
        let change = bonus_change(&tx, adjustment, now)?;
        for m in reply(&change) {
            outbox::enqueue(&tx, &m, now)?;
        }
        tx.commit()?;
        Ok(Some(change))
    }
}

/// One `/bonus` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BonusAdjustment {
    pub phone: Phone,
    pub delta: i64,
    pub reason: String,
    /// The admin's update, to mark processed with the change.
    pub update_id: Option<i64>,
}

fn bonus_change(tx: &Connection, a: &BonusAdjustment, now: DateTime<Utc>) -> Result<BonusChange> {
    let (phone, delta, reason) = (&a.phone, a.delta, a.reason.as_str());
    let customer = tx
        .query_row(
            "SELECT telegram_id, first_name, last_name, username FROM customers
                 WHERE phone = ?1 ORDER BY created_at DESC LIMIT 1",
            [phone.as_str()],
            |r| {
                Ok(Customer {
                    telegram_id: r.get(0)?,
                    first_name: r.get(1)?,
                    last_name: r.get(2)?,
                    username: r.get(3)?,
                })
            },
        )
        .optional()?;
    let Some(customer) = customer else {
        return Ok(BonusChange::NoSuchCustomer);
    };
    let balance = |tx: &Connection| -> Result<i64> {
        let sum: i64 = tx.query_row(
            "SELECT COALESCE(SUM(delta), 0) FROM bonus_ledger
                 WHERE telegram_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
            params![customer.telegram_id, now],
            |r| r.get(0),
        )?;
        Ok(sum.max(0))
    };
    let before = balance(tx)?;
    if before + delta < 0 {
        return Ok(BonusChange::NotEnough {
            customer,
            balance: before,
        });
    }
    tx.execute(
        "INSERT INTO bonus_ledger (telegram_id, delta, reason, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, NULL)",
        params![customer.telegram_id, delta, reason, now],
    )?;
    let after = balance(tx)?;
    Ok(BonusChange::Done {
        customer,
        balance: after,
    })
}
