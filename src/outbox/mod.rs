//! The durable outbox: every outgoing message, written in the same
//! transaction as the change that caused it, then delivered with retries.
//!
//! This module owns the message shapes ([`Payload`]) and the delivery
//! contract ([`Transport`], [`DeliveryError`]); the rows live in
//! `store::outbox`, the loop that drains them in [`worker`].

pub mod backoff;
pub mod ratelimit;
pub mod receipts;
pub mod split;
pub mod worker;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::engine::FileKind;

/// Which adapter delivers a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    /// The Telegram Bot API (replies, admin notices, media copies).
    Telegram,
    /// The CRM (Wahelp → amoCRM).
    Crm,
}

impl Destination {
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Telegram => "telegram",
            Destination::Crm => "crm",
        }
    }

    pub fn parse(s: &str) -> Option<Destination> {
        match s {
            "telegram" => Some(Destination::Telegram),
            "crm" => Some(Destination::Crm),
            _ => None,
        }
    }
}

/// A keyboard change sent with a Telegram message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Markup {
    /// Remove the reply keyboard.
    Remove,
    /// Buttons under the input field (resized, persistent).
    Reply { rows: Vec<Vec<ReplyButton>> },
    /// Link buttons under the message.
    Inline { rows: Vec<Vec<LinkButton>> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub text: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub share_contact: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkButton {
    pub text: String,
    pub url: String,
}

/// What one outbox row sends. Stored as JSON; field names are stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Payload {
    /// `sendMessage`, plain text (never parsed as markup).
    TelegramText {
        chat_id: i64,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        markup: Option<Markup>,
    },
    /// `copyMessage`: a customer's file to another chat, with a caption.
    TelegramCopy {
        chat_id: i64,
        from_chat_id: i64,
        message_id: i32,
        caption: String,
    },
    /// `sendPhoto`/`sendDocument` by URL (a manager's attachment). When
    /// Telegram cannot fetch the URL, the link goes as text instead.
    TelegramFile {
        chat_id: i64,
        url: String,
        file_kind: FileKind,
    },
    /// `answerCallbackQuery`: stops the spinner on an inline button.
    TelegramAnswerCallback { callback_id: String },
    /// A text for the manager in the CRM, about one customer.
    CrmText {
        customer_id: i64,
        target: String,
        channel: String,
        text: String,
    },
    /// A webhook call we did not consume, passed on to the relay URL as it came.
    WebhookRelay { body: String },
}

impl Payload {
    pub fn destination(&self) -> Destination {
        match self {
            Payload::CrmText { .. } | Payload::WebhookRelay { .. } => Destination::Crm,
            _ => Destination::Telegram,
        }
    }

    /// The ordering queue: rows of one queue are delivered one at a time, in order.
    pub fn queue(&self) -> String {
        match self {
            Payload::TelegramText { chat_id, .. }
            | Payload::TelegramCopy { chat_id, .. }
            | Payload::TelegramFile { chat_id, .. } => format!("tg:{chat_id}"),
            Payload::TelegramAnswerCallback { callback_id } => format!("cb:{callback_id}"),
            Payload::CrmText { customer_id, .. } => format!("crm:{customer_id}"),
            Payload::WebhookRelay { .. } => "relay".to_owned(),
        }
    }

    /// The Telegram chat a row goes to, if any (for per-chat rate limits).
    pub fn chat_id(&self) -> Option<i64> {
        match self {
            Payload::TelegramText { chat_id, .. }
            | Payload::TelegramCopy { chat_id, .. }
            | Payload::TelegramFile { chat_id, .. } => Some(*chat_id),
            _ => None,
        }
    }

    /// A short description for logs and admin notices: kind and size, never the text.
    pub fn summary(&self) -> String {
        match self {
            Payload::TelegramText { chat_id, text, .. } => {
                format!("message to chat {chat_id} ({} chars)", text.chars().count())
            }
            Payload::TelegramCopy { chat_id, .. } => format!("file copy to chat {chat_id}"),
            Payload::TelegramFile { chat_id, .. } => format!("linked file to chat {chat_id}"),
            Payload::WebhookRelay { body } => format!("webhook relay ({} bytes)", body.len()),
            Payload::TelegramAnswerCallback { .. } => "callback answer".to_owned(),
            Payload::CrmText {
                customer_id, text, ..
            } => format!(
                "CRM message about customer {customer_id} ({} chars)",
                text.chars().count()
            ),
        }
    }
}

/// A row to insert: what to send and on whose behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub payload: Payload,
    /// The customer whose conversation caused it (to mark them blocked on 403).
    pub customer_id: Option<i64>,
    /// Admin notices must not announce their own failures (no loops).
    pub is_admin_notice: bool,
}

/// Why a delivery failed, as the worker needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The API asked us to wait exactly this long before the next try to this chat.
    #[error("rate limited, retry after {0:?}")]
    RetryAfter(Duration),
    /// Network trouble, a timeout, a 5xx: try again later.
    #[error("transient: {0}")]
    Transient(String),
    /// The recipient blocked the bot, was deactivated or does not exist.
    #[error("recipient gone: {0}")]
    RecipientGone(String),
    /// This payload will never go through (bad request): do not retry it.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A successful delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The receiving service's id for the message, when we must remember it
    /// (the CRM's id of a message we sent, to recognise its echo).
    pub remote_id: Option<String>,
}

/// Something that carries a payload to the outside world.
pub trait Transport: Send + Sync + 'static {
    fn deliver(
        &self,
        payload: &Payload,
    ) -> impl std::future::Future<Output = Result<Delivered, DeliveryError>> + Send;
}
