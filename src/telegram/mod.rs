//! The Telegram adapter: Bot API updates in (long polling into the inbox,
//! or webhook mode), outbox payloads out.

use teloxide::types::AllowedUpdate;

pub mod poll;
pub mod send;
pub mod update;
pub mod webhook;

/// The update kinds we ask Telegram for, in polling and webhook mode alike.
pub const ALLOWED_UPDATES: [AllowedUpdate; 4] = [
    AllowedUpdate::Message,
    AllowedUpdate::EditedMessage,
    AllowedUpdate::CallbackQuery,
    AllowedUpdate::MyChatMember,
];
