//! SQLite storage: customers and their sessions, the update inbox, the
//! outbox, the message log.
//!
//! One input is one transaction ([`Store::commit`]): the customer row, the
//! session, new bonus ledger lines and held messages, every outgoing message
//! as an outbox row, the incoming message's log line and the update marked
//! processed change together or not at all.

mod admin;
pub mod backup;
mod crm;
mod db;
mod inbox;
mod inputs;
mod log;
mod outbox;
mod prune;
mod schema;
mod webhook;

pub use admin::{BonusAdjustment, BonusChange, Stats};
pub use crm::CrmContact;
pub use db::Db;
pub use inputs::PendingInput;
pub use log::Incoming as LogEntry;
pub use outbox::{DeadRow, OutboxRow, QueueHealth};
pub use prune::{Pruned, Retention};
pub use webhook::{Fate, LoggedCall, ManagerMessage, WebhookCall};

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::engine::{BonusEntry, Customer, Effect, HeldMessage, Outcome, Session};
use crate::outbox::NewMessage;
use crate::phone::Phone;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    #[error("backup: {0}")]
    Backup(String),
    #[error("database task failed: {0}")]
    Runtime(String),
    #[error(
        "the database was written by a newer flowbot (schema {found}, this one knows {known}): run the newer binary, or restore the backup taken before the upgrade"
    )]
    NewerSchema { found: i64, known: usize },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Unix milliseconds: how the inbox, outbox and log store time.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Unix milliseconds rounded up: a row to retry "not before `t`" never goes early.
pub(crate) fn ms_ceil(t: DateTime<Utc>) -> i64 {
    let sub_ms = t.timestamp_subsec_nanos() % 1_000_000;
    t.timestamp_millis() + i64::from(sub_ms > 0)
}

/// Everything one input changed, to be stored in one transaction.
#[derive(Debug, Default)]
pub struct Commit<'a> {
    /// The engine's decision, if the input reached a customer's conversation.
    pub outcome: Option<&'a Outcome>,
    /// The customer's private chat (kept on the customer row).
    pub chat_id: Option<i64>,
    /// Every message to send because of this input.
    pub messages: &'a [NewMessage],
    /// The stored input this was, to mark processed.
    pub source: Option<Source>,
    /// The incoming message, for the message log.
    pub log: Option<LogEntry>,
}

/// Where an input was stored before it was applied: processed marks go there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A Telegram update in the inbox.
    Update(i64),
    /// A row of the input queue (see [`PendingInput`]).
    Input(i64),
}

/// What [`Store::commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Applied,
    /// The input had been processed before: nothing was written again.
    AlreadyProcessed,
}

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
            .prepare_cached(
                "SELECT c.phone, c.registered_at, c.blocked_since, c.welcome_granted,
                        s.state, s.manager_until, s.throttle
                 FROM customers c LEFT JOIN sessions s ON s.telegram_id = c.telegram_id
                 WHERE c.telegram_id = ?1",
            )?
            .query_row([customer.telegram_id], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<DateTime<Utc>>>(1)?,
                    r.get::<_, Option<DateTime<Utc>>>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<DateTime<Utc>>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
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

    /// Stores what one input changed, all in one transaction (no outbox:
    /// for the terminal conversation and conversation tests).
    pub fn apply(&mut self, outcome: &Outcome, now: DateTime<Utc>) -> Result<()> {
        self.commit(
            &Commit {
                outcome: Some(outcome),
                ..Commit::default()
            },
            now,
        )
        .map(|_| ())
    }

    /// Stores everything one input changed in one `BEGIN IMMEDIATE`
    /// transaction. An input already processed is skipped whole.
    pub fn commit(&mut self, c: &Commit, now: DateTime<Utc>) -> Result<Committed> {
        let tx = self.immediate()?;
        match c.source {
            Some(Source::Update(id)) => {
                if inbox::is_processed(&tx, id)? {
                    return Ok(Committed::AlreadyProcessed);
                }
                inbox::mark_processed(&tx, id, now)?;
            }
            Some(Source::Input(id)) => {
                if inputs::is_processed(&tx, id)? {
                    return Ok(Committed::AlreadyProcessed);
                }
                inputs::mark_processed(&tx, id, now)?;
            }
            None => {}
        }
        if let Some(outcome) = c.outcome {
            write_session(&tx, &outcome.session, c.chat_id, now)?;
            let id = outcome.session.customer.telegram_id;
            for effect in &outcome.effects {
                write_effect(&tx, id, effect, now)?;
            }
        }
        for m in c.messages {
            outbox::enqueue(&tx, m, now)?;
        }
        if let Some(entry) = &c.log {
            log::incoming(&tx, entry, now)?;
        }
        tx.commit()?;
        Ok(Committed::Applied)
    }

    /// A write transaction that takes the write lock at once (no upgrade
    /// deadlocks); inside a batch ([`Store::begin_batch`]), a savepoint.
    fn immediate(&mut self) -> Result<Tx<'_>> {
        Ok(if self.conn.is_autocommit() {
            Tx::Top(
                self.conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?,
            )
        } else {
            Tx::Nested(self.conn.savepoint()?)
        })
    }

    /// Opens a transaction that groups the following calls' transactions
    /// (each becomes a savepoint): many inputs, one fsync.
    pub(crate) fn begin_batch(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    /// Commits the batch: only now is any of its calls durable.
    pub(crate) fn commit_batch(&mut self) -> Result<()> {
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        Ok(())
    }

    /// A known customer's Telegram profile and private chat, by Telegram id.
    pub fn customer(&self, telegram_id: i64) -> Result<Option<(Customer, Option<i64>)>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT telegram_id, first_name, last_name, username, chat_id
                 FROM customers WHERE telegram_id = ?1",
            )?
            .query_row([telegram_id], |r| {
                Ok((
                    Customer {
                        telegram_id: r.get(0)?,
                        first_name: r.get(1)?,
                        last_name: r.get(2)?,
                        username: r.get(3)?,
                    },
                    r.get(4)?,
                ))
            })
            .optional()?)
    }
}

/// One call's transaction: a real one, or a savepoint inside a batch.
enum Tx<'a> {
    Top(Transaction<'a>),
    Nested(rusqlite::Savepoint<'a>),
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Tx::Top(t) => t,
            Tx::Nested(s) => s,
        }
    }
}

impl Tx<'_> {
    /// Dropping a `Tx` without committing rolls it back.
    fn commit(self) -> Result<()> {
        match self {
            Tx::Top(t) => t.commit()?,
            Tx::Nested(s) => s.commit()?,
        }
        Ok(())
    }
}

fn write_session(
    tx: &Connection,
    s: &Session,
    chat_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    let c = &s.customer;
    tx.prepare_cached(
        "INSERT INTO customers (telegram_id, first_name, last_name, username, phone,
                                registered_at, blocked_since, welcome_granted, created_at, chat_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (telegram_id) DO UPDATE SET
            first_name = excluded.first_name, last_name = excluded.last_name,
            username = excluded.username, phone = excluded.phone,
            registered_at = excluded.registered_at, blocked_since = excluded.blocked_since,
            welcome_granted = excluded.welcome_granted,
            chat_id = COALESCE(excluded.chat_id, customers.chat_id)",
    )?
    .execute(params![
        c.telegram_id,
        c.first_name,
        c.last_name,
        c.username,
        s.phone.as_ref().map(Phone::as_str),
        s.registered_at,
        s.blocked_since,
        s.welcome_granted,
        now,
        chat_id
    ])?;
    let throttle =
        serde_json::to_string(&s.throttle).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.prepare_cached(
        "INSERT INTO sessions (telegram_id, state, manager_until, throttle) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (telegram_id) DO UPDATE SET
            state = excluded.state, manager_until = excluded.manager_until, throttle = excluded.throttle",
    )?
    .execute(params![c.telegram_id, s.state, s.manager_until, throttle])?;
    Ok(())
}

fn write_effect(tx: &Connection, id: i64, effect: &Effect, now: DateTime<Utc>) -> Result<()> {
    match effect {
        Effect::GrantBonus {
            amount,
            expires_at,
            reason,
        } => {
            tx.prepare_cached(
                "INSERT INTO bonus_ledger (telegram_id, delta, reason, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, amount, reason, now, expires_at])?;
        }
        Effect::HoldMessage { text } => {
            tx.prepare_cached(
                "INSERT INTO held_messages (telegram_id, text, received_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![id, text, now])?;
        }
        Effect::ReleaseHeld { .. } => {
            tx.prepare_cached("DELETE FROM held_messages WHERE telegram_id = ?1")?
                .execute([id])?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
