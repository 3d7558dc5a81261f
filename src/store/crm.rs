//! The CRM side of a customer: their Wahelp user id (so sends after the
//! first skip the look-up), and the ids of CRM messages we sent (a webhook
//! echoing one is not forwarded back) or received (forwarded once).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, Store, ms};
use crate::phone::Phone;

/// What the CRM transport needs to know about a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmContact {
    pub customer_id: i64,
    pub name: String,
    pub phone: Option<Phone>,
    /// Known from an earlier send; `None` until the CRM told us.
    pub crm_user_id: Option<String>,
}

impl Store {
    /// The customer as the CRM knows them, or `None` for an unknown id.
    pub fn crm_contact(&self, customer_id: i64) -> Result<Option<CrmContact>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT c.first_name, c.last_name, c.phone, u.crm_user_id
                 FROM customers c LEFT JOIN crm_users u ON u.customer_id = c.telegram_id
                 WHERE c.telegram_id = ?1",
            )?
            .query_row([customer_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()?;
        Ok(row.map(|(first, last, phone, crm_user_id)| CrmContact {
            customer_id,
            name: match last {
                Some(last) if !last.trim().is_empty() => format!("{first} {last}"),
                _ => first,
            },
            phone: phone.and_then(|p| Phone::parse(&p).ok()),
            crm_user_id,
        }))
    }

    /// Remembers the CRM's id for the customer.
    pub fn set_crm_user(
        &mut self,
        customer_id: i64,
        crm_user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO crm_users (customer_id, crm_user_id, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (customer_id) DO UPDATE SET
                    crm_user_id = excluded.crm_user_id, updated_at = excluded.updated_at",
            )?
            .execute(params![customer_id, crm_user_id, ms(now)])?;
        Ok(())
    }

    /// Forgets the CRM's id (it refused it): the next send looks it up again.
    pub fn forget_crm_user(&mut self, customer_id: i64) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM crm_users WHERE customer_id = ?1")?
            .execute([customer_id])?;
        Ok(())
    }
}

/// Where a CRM message id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// We sent it: its echo must not come back to the customer.
    Sent,
    /// A manager's message we handled: a second delivery is a duplicate.
    Received,
}

/// Remembers a CRM message id (the first origin stays).
pub(super) fn remember(
    tx: &Connection,
    message_id: &str,
    origin: Origin,
    customer_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    let origin = match origin {
        Origin::Sent => "sent",
        Origin::Received => "received",
    };
    tx.prepare_cached(
        "INSERT OR IGNORE INTO crm_messages (message_id, origin, customer_id, at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![message_id, origin, customer_id, ms(now)])?;
    Ok(())
}

/// What a CRM message id is to us already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Known {
    New,
    /// We sent it: a webhook about it is our own echo.
    Ours,
    /// It came before and was handled.
    Seen,
}

pub(super) fn known(tx: &Connection, message_id: &str) -> Result<Known> {
    let origin: Option<String> = tx
        .prepare_cached("SELECT origin FROM crm_messages WHERE message_id = ?1")?
        .query_row([message_id], |r| r.get(0))
        .optional()?;
    Ok(match origin.as_deref() {
        None => Known::New,
        Some("sent") => Known::Ours,
        Some(_) => Known::Seen,
    })
}
