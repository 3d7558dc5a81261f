//! What can happen to a customer's conversation: the engine's inputs.

use serde::{Deserialize, Serialize};

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
    /// A manager's reply from the CRM.
    ManagerReply { text: String },
    /// The customer blocked the bot.
    Blocked,
    /// The customer unblocked the bot.
    Unblocked,
}

impl Input {
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

/// The kinds of file a customer can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Photo,
    Video,
    Document,
    Voice,
    Audio,
    Sticker,
    Animation,
    VideoNote,
    Location,
    Other,
}

impl MediaKind {
    /// The kind in words, for `{media_kind}` (as in «Клиент отправил фото»).
    pub fn words(self) -> &'static str {
        match self {
            MediaKind::Photo => "фото",
            MediaKind::Video => "видео",
            MediaKind::Document => "документ",
            MediaKind::Voice => "голосовое сообщение",
            MediaKind::Audio => "аудио",
            MediaKind::Sticker => "стикер",
            MediaKind::Animation => "GIF-анимацию",
            MediaKind::VideoNote => "видеосообщение",
            MediaKind::Location => "геопозицию",
            MediaKind::Other => "файл",
        }
    }

    /// The same kind as named in the flow (`media: photo`).
    pub fn flow_name(self) -> crate::flow::raw::MediaKindName {
        use crate::flow::raw::MediaKindName as N;
        match self {
            MediaKind::Photo => N::Photo,
            MediaKind::Video => N::Video,
            MediaKind::Document => N::Document,
            MediaKind::Voice => N::Voice,
            MediaKind::Audio => N::Audio,
            MediaKind::Sticker => N::Sticker,
            MediaKind::Animation => N::Animation,
            MediaKind::VideoNote => N::VideoNote,
            MediaKind::Location => N::Location,
            MediaKind::Other => N::Other,
        }
    }
}
