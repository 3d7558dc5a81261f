//! The message log: what customers wrote and what we sent, both ways, kept
//! for a configurable number of days (for `/stats` and for people asking
//! "did the bot answer?").

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::outbox::OutboxRow;
use super::{Result, ms};
use crate::outbox::Payload;

/// An incoming message, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub customer_id: Option<i64>,
    pub chat_id: Option<i64>,
    /// `text`, `contact`, `photo`, `manager`…
    pub kind: String,
    pub text: Option<String>,
}

pub(super) fn incoming(tx: &Connection, entry: &Incoming, now: DateTime<Utc>) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO message_log (at, customer_id, chat_id, direction, kind, text)
         VALUES (?1, ?2, ?3, 'in', ?4, ?5)",
    )?
    .execute(params![
        ms(now),
        entry.customer_id,
        entry.chat_id,
        entry.kind,
        entry.text
    ])?;
    Ok(())
}

pub(super) fn outgoing(tx: &Connection, row: &OutboxRow, now: DateTime<Utc>) -> Result<()> {
    let (kind, chat, text) = match &row.payload {
        Payload::TelegramText { chat_id, text, .. } => ("text", Some(*chat_id), Some(text)),
        Payload::TelegramCopy {
            chat_id, caption, ..
        } => ("copy", Some(*chat_id), Some(caption)),
        Payload::TelegramFile { chat_id, url, .. } => ("file", Some(*chat_id), Some(url)),
        Payload::TelegramAnswerCallback { .. } | Payload::WebhookRelay { .. } => return Ok(()),
        Payload::CrmText { text, .. } => ("crm", None, Some(text)),
    };
    tx.prepare_cached(
        "INSERT INTO message_log (at, customer_id, chat_id, direction, kind, text)
         VALUES (?1, ?2, ?3, 'out', ?4, ?5)",
    )?
    .execute(params![ms(now), row.customer_id, chat, kind, text])?;
    Ok(())
}
