//! Webhook calls from the CRM: each call is logged whole (token removed)
//! with how it was read, and each manager message in it becomes a stored
//! input for its customer, in one transaction, before the call is
//! answered. An echo of our own message, a message id seen before and an
//! unknown phone are told apart here, where the ids and phones are.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::crm::{self, Known};
use super::inputs::{self, PendingInput};
use super::{Result, Store, StoreError, ms, outbox};
use crate::engine::{FileLink, Input};
use crate::outbox::NewMessage;
use crate::phone::Phone;

/// A manager's message found in a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerMessage {
    /// Which of the call's events it is (its index in `reading`).
    pub event: usize,
    pub message_id: Option<String>,
    pub phone: Phone,
    pub text: String,
    pub file: Option<FileLink>,
}

/// One authenticated, well-formed call, as the app read it.
#[derive(Debug, Clone, Default)]
pub struct WebhookCall {
    /// The body as received, the secret removed.
    pub body: String,
    /// How each event was read (one JSON object per event); the fate of
    /// each manager message is added under `"fate"`.
    pub reading: Vec<Value>,
    pub messages: Vec<ManagerMessage>,
    /// Messages decided before the database was asked (admin notices about
    /// unreadable events, the relay of what we do not consume).
    pub extra: Vec<NewMessage>,
}

/// What became of one manager message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Stored as an input for the customer; apply it.
    Forwarded(PendingInput),
    /// We sent this message ourselves.
    Echo,
    /// Its id came before.
    Duplicate,
    /// No customer has this phone.
    UnknownPhone(Phone),
}

impl Fate {
    pub fn as_str(&self) -> &'static str {
        match self {
            Fate::Forwarded(_) => "forwarded",
            Fate::Echo => "echo",
            Fate::Duplicate => "duplicate",
            Fate::UnknownPhone(_) => "unknown_phone",
        }
    }
}

/// A logged call, for `flowbot wahelp inspect`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedCall {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub body: String,
    pub reading: Value,
    pub outcome: String,
}

impl Store {
    /// Stores the call: its log row, an input per new manager message,
    /// `unknown(phone)`'s notices for phones no customer has, and the
    /// call's extra messages, all in one transaction.
    pub fn accept_webhook(
        &mut self,
        mut call: WebhookCall,
        now: DateTime<Utc>,
        unknown: &dyn Fn(&Phone) -> Vec<NewMessage>,
    ) -> Result<Vec<Fate>> {
        let tx = self.immediate()?;
        let mut fates = Vec::with_capacity(call.messages.len());
        for m in &call.messages {
            let fate = fate(&tx, m, now)?;
            if let Fate::UnknownPhone(phone) = &fate {
                for notice in unknown(phone) {
                    outbox::enqueue(&tx, &notice, now)?;
                }
            }
            if let Some(Value::Object(event)) = call.reading.get_mut(m.event) {
                event.insert("fate".into(), fate.as_str().into());
            }
            fates.push(fate);
        }
        for extra in &call.extra {
            outbox::enqueue(&tx, extra, now)?;
        }
        let outcome = outcome(&fates, call.reading.len());
        let reading =
            serde_json::to_string(&call.reading).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.prepare_cached(
            "INSERT INTO webhook_log (received_at, body, reading, outcome) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![ms(now), call.body, reading, outcome])?;
        tx.commit()?;
        Ok(fates)
    }

    /// The last `n` calls, newest first.
    pub fn webhook_log(&self, n: usize) -> Result<Vec<LoggedCall>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, received_at, body, reading, outcome FROM webhook_log
             ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([i64::try_from(n).unwrap_or(i64::MAX)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut calls = Vec::new();
        for row in rows {
            let (id, at, body, reading, outcome) = row?;
            calls.push(LoggedCall {
                id,
                received_at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
                body,
                reading: serde_json::from_str(&reading).unwrap_or(Value::Null),
                outcome,
            });
        }
        Ok(calls)
    }
}

fn fate(tx: &Connection, m: &ManagerMessage, now: DateTime<Utc>) -> Result<Fate> {
    if let Some(id) = &m.message_id {
        match crm::known(tx, id)? {
            Known::Ours => return Ok(Fate::Echo),
            Known::Seen => return Ok(Fate::Duplicate),
            Known::New => {}
        }
    }
    // Not remembered: the same message sent again once the customer is
    // known (after a 200 Wahelp has no reason to repeat it) must go through.
    let Some(customer_id) = customer_by_phone(tx, &m.phone)? else {
        return Ok(Fate::UnknownPhone(m.phone.clone()));
    };
    if own_text_in_flight(tx, customer_id, &m.text, now)? {
        if let Some(id) = &m.message_id {
            crm::remember(tx, id, crm::Origin::Received, Some(customer_id), now)?;
        }
        return Ok(Fate::Echo);
    }
    if let Some(id) = &m.message_id {
        crm::remember(tx, id, crm::Origin::Received, Some(customer_id), now)?;
    }
    let input = Input::ManagerReply {
        text: m.text.clone(),
        file: m.file.clone(),
    };
    let id = inputs::enqueue(tx, customer_id, &input, "crm", now)?;
    Ok(Fate::Forwarded(PendingInput {
        id,
        customer_id,
        input,
    }))
}

/// How long after our send an echo without a known id is still recognised by its text.
const ECHO_WINDOW_MS: i64 = 60_000;

/// Both halves go through `outbox_crm_customer`: one customer's CRM rows.
const ECHO_QUERY: &str = "SELECT
    EXISTS (SELECT 1 FROM outbox
            WHERE destination = 'crm' AND customer_id = ?1 AND status = 'pending'
              AND trim(json_extract(payload, '$.text')) = trim(?2))
 OR EXISTS (SELECT 1 FROM outbox
            WHERE destination = 'crm' AND customer_id = ?1 AND status = 'delivered'
              AND finished_at >= ?3 AND trim(json_extract(payload, '$.text')) = trim(?2))";

/// Whether we are sending (or have just sent) this very text for this
/// customer: Wahelp may call back about our own message before our send's
/// answer told us its id.
fn own_text_in_flight(
    tx: &Connection,
    customer_id: i64,
    text: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    if text.trim().is_empty() {
        return Ok(false);
    }
    Ok(tx
        .prepare_cached(ECHO_QUERY)?
        .query_row(params![customer_id, text, ms(now) - ECHO_WINDOW_MS], |r| {
            r.get(0)
        })?)
}

/// The customer with this phone (the most recently registered one, if
/// several ever gave it).
fn customer_by_phone(tx: &Connection, phone: &Phone) -> Result<Option<i64>> {
    Ok(tx
        .prepare_cached(
            "SELECT telegram_id FROM customers WHERE phone = ?1
             ORDER BY registered_at DESC, telegram_id DESC LIMIT 1",
        )?
        .query_row([phone.as_str()], |r| r.get(0))
        .optional()?)
}

/// A short summary for the log table: `2 events: forwarded 1, echo 1`.
fn outcome(fates: &[Fate], events: usize) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for f in fates {
        match counts.iter_mut().find(|(name, _)| *name == f.as_str()) {
            Some((_, n)) => *n += 1,
            None => counts.push((f.as_str(), 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if parts.is_empty() {
        format!("{events} events: nothing to forward")
    } else {
        format!("{events} events: {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::ECHO_QUERY;
    use crate::store::Store;

    #[test]
    fn the_echo_check_reads_one_customers_rows_through_its_index() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(&dir.path().join("t.db")).unwrap_or_else(|e| panic!("{e}"));
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {ECHO_QUERY}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params![5, "x", 0], |r| r.get::<_, String>(3))
            .unwrap_or_else(|e| panic!("{e}"))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            plan.iter().all(|line| !line.starts_with("SCAN outbox")),
            "{plan:#?}"
        );
        assert!(
            plan.iter().any(|line| line.contains("outbox_crm_customer")),
            "{plan:#?}"
        );
    }
}
