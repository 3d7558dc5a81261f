//! What can happen to a customer's conversation: the engine's inputs.

use serde::{Deserialize, Serialize};

pub use crate::flow::media::MediaKind;

/// One thing that happened, from the customer or from the CRM side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Input {
    /// A text message; commands (`/start`) are texts too.
    Text { text: String },
    /// A shared contact. `user_id` is whose contact it is, when Telegram knows.
    Contact { phone: String, user_id: Option<i64> },
    /// A photo, video, document, sticker, voice, location…
    Media {
        media: MediaKind,
        caption: Option<String>,
    },
    /// A manager's reply from the CRM, maybe with a file (by URL).
    ManagerReply {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<FileLink>,
    },
    /// The customer blocked the bot.
    Blocked,
    /// The customer unblocked the bot.
    Unblocked,
}

/// A file a manager sent, as a link Telegram may fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLink {
    pub url: String,
    pub kind: FileKind,
}

/// How a linked file is best shown in Telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Photo,
    Document,
}

impl Input {
    /// A manager's text reply without a file.
    pub fn manager(text: impl Into<String>) -> Input {
        Input::ManagerReply {
            text: text.into(),
            file: None,
        }
    }

    pub fn text(text: impl Into<String>) -> Input {
        Input::Text { text: text.into() }
    }

    /// Whether the input came from the customer (and not from the CRM or Telegram's status).
    pub fn is_from_customer(&self) -> bool {
        matches!(
            self,
            Input::Text { .. } | Input::Contact { .. } | Input::Media { .. }
        )
    }
}
