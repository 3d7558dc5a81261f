//! The kinds of file a customer can send, as the flow names them (`media: photo`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Вид файла.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
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
    /// The name the flow file uses (`photo`, `video_note`…).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Photo => "photo",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
            MediaKind::Voice => "voice",
            MediaKind::Audio => "audio",
            MediaKind::Sticker => "sticker",
            MediaKind::Animation => "animation",
            MediaKind::VideoNote => "video_note",
            MediaKind::Location => "location",
            MediaKind::Other => "other",
        }
    }

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
}
