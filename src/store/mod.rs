//! SQLite storage of customers and their sessions.
//!
//! The engine's [`Outcome`] is applied in one transaction: the customer row,
//! the session, new bonus ledger lines and held messages change together or
//! not at all.

mod schema;

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::engine::{BonusEntry, Customer, Effect, HeldMessage, Outcome, Session};
use crate::phone::Phone;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One open database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&mut conn)?;
        Ok(Store { conn })
    }

    /// The customer's session, or a fresh one in `start_state` for a new customer.
    pub fn load_session(&self, customer: &Customer, start_state: &str) -> Result<Session> {
        let row = self
            .conn
            .query_row(
                "SELECT c.phone, c.registered_at, c.blocked_since, c.welcome_granted,
                        s.state, s.manager_until, s.throttle
                 FROM customers c LEFT JOIN sessions s ON s.telegram_id = c.telegram_id
                 WHERE c.telegram_id = ?1",
                [customer.telegram_id],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<DateTime<Utc>>>(1)?,
                        r.get::<_, Option<DateTime<Utc>>>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<DateTime<Utc>>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                },
            )
            .optional()?;
        let mut session = Session::new(customer.clone(), start_state);
        let Some((phone, registered, blocked, welcome, state, until, throttle)) = row else {
            return Ok(session);
        };
        session.phone = phone
            .map(|p| Phone::parse(&p).map_err(|e| StoreError::Corrupt(format!("phone: {e}"))))
            .transpose()?;
        session.registered_at = registered;
        session.blocked_since = blocked;
        session.welcome_granted = welcome;
        session.state = state.unwrap_or_else(|| start_state.to_owned());
        session.manager_until = until;
        if let Some(json) = throttle {
            session.throttle = serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("throttle: {e}")))?;
        }
        session.bonuses = self.bonuses(customer.telegram_id)?;
        session.held = self.held(customer.telegram_id)?;
        Ok(session)
    }

    fn bonuses(&self, id: i64) -> Result<Vec<BonusEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT delta, reason, expires_at FROM bonus_ledger WHERE telegram_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(BonusEntry {
                delta: r.get(0)?,
                reason: r.get(1)?,
                expires_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn held(&self, id: i64) -> Result<Vec<HeldMessage>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT text, received_at FROM held_messages WHERE telegram_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(HeldMessage {
                text: r.get(0)?,
                received_at: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stores what one input changed, all in one transaction.
    pub fn apply(&mut self, outcome: &Outcome, now: DateTime<Utc>) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        write_session(&tx, &outcome.session, now)?;
        let id = outcome.session.customer.telegram_id;
        for effect in &outcome.effects {
            write_effect(&tx, id, effect, now)?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn write_session(tx: &Transaction, s: &Session, now: DateTime<Utc>) -> Result<()> {
    let c = &s.customer;
    tx.execute(
        "INSERT INTO customers (telegram_id, first_name, last_name, username, phone,
                                registered_at, blocked_since, welcome_granted, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (telegram_id) DO UPDATE SET
            first_name = excluded.first_name, last_name = excluded.last_name,
            username = excluded.username, phone = excluded.phone,
            registered_at = excluded.registered_at, blocked_since = excluded.blocked_since,
            welcome_granted = excluded.welcome_granted",
        params![
            c.telegram_id,
            c.first_name,
            c.last_name,
            c.username,
            s.phone.as_ref().map(Phone::as_str),
            s.registered_at,
            s.blocked_since,
            s.welcome_granted,
            now
        ],
    )?;
    let throttle =
        serde_json::to_string(&s.throttle).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.execute(
        "INSERT INTO sessions (telegram_id, state, manager_until, throttle) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (telegram_id) DO UPDATE SET
            state = excluded.state, manager_until = excluded.manager_until, throttle = excluded.throttle",
        params![c.telegram_id, s.state, s.manager_until, throttle],
    )?;
    Ok(())
}

fn write_effect(tx: &Transaction, id: i64, effect: &Effect, now: DateTime<Utc>) -> Result<()> {
    match effect {
        Effect::GrantBonus {
            amount,
            expires_at,
            reason,
        } => {
            tx.execute(
                "INSERT INTO bonus_ledger (telegram_id, delta, reason, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, amount, reason, now, expires_at],
            )?;
        }
        Effect::HoldMessage { text } => {
            tx.execute(
                "INSERT INTO held_messages (telegram_id, text, received_at) VALUES (?1, ?2, ?3)",
                params![id, text, now],
            )?;
        }
        Effect::ReleaseHeld { .. } => {
            tx.execute("DELETE FROM held_messages WHERE telegram_id = ?1", [id])?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
