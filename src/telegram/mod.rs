//! The Telegram adapter: Bot API updates in (long polling into the inbox),
//! outbox payloads out.

pub mod poll;
pub mod send;
pub mod update;
