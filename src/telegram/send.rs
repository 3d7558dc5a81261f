//! Delivering outbox payloads through the Bot API, and telling the outbox
//! worker what a failure means (retry, wait exactly, recipient gone, never).
//!
//! Texts are sent without a parse mode: nothing a customer or a manager
//! wrote is ever read as markup.

use teloxide::prelude::*;
use teloxide::types::{
    ButtonRequest, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, KeyboardButton,
    KeyboardMarkup, KeyboardRemove, MessageId, ReplyMarkup,
};
use teloxide::{ApiError, RequestError};

use crate::outbox::{Delivered, DeliveryError, FileKind, Markup, Payload, Transport};

/// Sends Telegram payloads with one bot (its client has the send timeout).
#[derive(Clone)]
pub struct TelegramTransport {
    bot: Bot,
}

impl TelegramTransport {
    pub fn new(bot: Bot) -> TelegramTransport {
        TelegramTransport { bot }
    }
}

impl Transport for TelegramTransport {
    async fn deliver(&self, payload: &Payload) -> Result<Delivered, DeliveryError> {
        let result = match payload {
            Payload::TelegramText {
                chat_id,
                text,
                markup,
            } => {
                let mut req = self.bot.send_message(ChatId(*chat_id), text);
                if let Some(m) = markup.as_ref().and_then(reply_markup) {
                    req = req.reply_markup(m);
                }
                req.await.map(drop)
            }
            Payload::TelegramCopy {
                chat_id,
                from_chat_id,
                message_id,
                caption,
            } => {
                let mut req = self.bot.copy_message(
                    ChatId(*chat_id),
                    ChatId(*from_chat_id),
                    MessageId(*message_id),
                );
                if !caption.is_empty() {
                    req = req.caption(caption);
                }
                req.await.map(drop)
            }
            Payload::TelegramAnswerCallback { callback_id } => self
                .bot
                .answer_callback_query(teloxide::types::CallbackQueryId(callback_id.clone()))
                .await
                .map(drop),
            Payload::TelegramFile {
                chat_id,
                url,
                file_kind,
            } => return self.file(ChatId(*chat_id), url, *file_kind).await,
            Payload::CrmText { .. } | Payload::WebhookRelay { .. } => {
                return Err(DeliveryError::Permanent(
                    "a CRM payload reached the Telegram transport".into(),
                ));
            }
        };
        result
            .map(|()| Delivered::default())
            .map_err(|e| classify(&e))
    }
}

impl TelegramTransport {
    /// A file by its URL; when Telegram cannot take the URL (it fetches the
    /// file itself and may refuse it), the link goes as a text instead.
    async fn file(
        &self,
        chat: ChatId,
        url: &str,
        kind: FileKind,
    ) -> Result<Delivered, DeliveryError> {
        let sent = match reqwest::Url::parse(url) {
            Ok(link) => {
                let file = InputFile::url(link);
                let result = match kind {
                    FileKind::Photo => self.bot.send_photo(chat, file).await.map(drop),
                    FileKind::Document => self.bot.send_document(chat, file).await.map(drop),
                };
                result.map_err(|e| classify(&e))
            }
            Err(e) => Err(DeliveryError::Permanent(format!("bad file URL: {e}"))),
        };
        match sent {
            Err(DeliveryError::Permanent(why)) => {
                tracing::info!(reason = %why, "file not accepted by URL; sending the link as text");
                self.bot
                    .send_message(chat, url)
                    .await
                    .map(|_| Delivered::default())
                    .map_err(|e| classify(&e))
            }
            other => other.map(|()| Delivered::default()),
        }
    }
}

/// Our stored keyboard as Telegram's. An inline button whose URL does not
/// parse is dropped with a log line rather than failing the whole message.
pub fn reply_markup(markup: &Markup) -> Option<ReplyMarkup> {
    Some(match markup {
        Markup::Remove => ReplyMarkup::KeyboardRemove(KeyboardRemove::new()),
        Markup::Reply { rows } => {
            let rows = rows.iter().map(|row| {
                row.iter().map(|b| {
                    let button = KeyboardButton::new(b.text.clone());
                    if b.share_contact {
                        button.request(ButtonRequest::Contact)
                    } else {
                        button
                    }
                })
            });
            ReplyMarkup::Keyboard(KeyboardMarkup::new(rows).resize_keyboard().persistent())
        }
        Markup::Inline { rows } => {
            let rows: Vec<Vec<InlineKeyboardButton>> = rows
                .iter()
                .map(|row| {
                    row.iter()
                        .filter_map(|b| match reqwest::Url::parse(&b.url) {
                            Ok(url) => Some(InlineKeyboardButton::url(b.text.clone(), url)),
                            Err(e) => {
                                tracing::warn!(error = %e, "link button with a bad URL dropped");
                                None
                            }
                        })
                        .collect::<Vec<_>>()
                })
                .filter(|row| !row.is_empty())
                .collect();
            if rows.is_empty() {
                return None;
            }
            ReplyMarkup::InlineKeyboard(InlineKeyboardMarkup::new(rows))
        }
    })
}

/// What a failed Bot API call means for the outbox.
pub fn classify(error: &RequestError) -> DeliveryError {
    match error {
        RequestError::RetryAfter(s) => {
            DeliveryError::RetryAfter(std::time::Duration::from_secs(u64::from(s.seconds())))
        }
        RequestError::Api(api) => classify_api(api),
        RequestError::MigrateToChatId(to) => {
            DeliveryError::RecipientGone(format!("group migrated to {}", to.0))
        }
        // The request may or may not have reached Telegram: retrying errs on
        // the side of a rare duplicate rather than a lost message.
        RequestError::Network(e) => DeliveryError::Transient(format!("network: {e}")),
        RequestError::InvalidJson { source, .. } => {
            DeliveryError::Transient(format!("unreadable response: {source}"))
        }
        RequestError::Io(e) => DeliveryError::Transient(format!("i/o: {e}")),
    }
}

fn classify_api(api: &ApiError) -> DeliveryError {
    match api {
        ApiError::BotBlocked
        | ApiError::UserDeactivated
        | ApiError::ChatNotFound
        | ApiError::BotKicked
        | ApiError::BotKickedFromSupergroup
        | ApiError::BotKickedFromChannel
        | ApiError::CantInitiateConversation
        | ApiError::CantTalkWithBots => DeliveryError::RecipientGone(api.to_string()),
        ApiError::Unknown(text) => {
            let permanent = ["Bad Request", "Forbidden", "Unauthorized", "Not Found"]
                .iter()
                .any(|p| text.starts_with(p));
            if permanent {
                DeliveryError::Permanent(text.clone())
            } else {
                DeliveryError::Transient(text.clone())
            }
        }
        other => DeliveryError::Permanent(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outbox::{LinkButton, ReplyButton};

    #[test]
    fn failures_are_told_apart() {
        let retry = RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(7));
        assert_eq!(
            classify(&retry),
            DeliveryError::RetryAfter(Duration::from_secs(7))
        );
        assert!(matches!(
            classify(&RequestError::Api(ApiError::BotBlocked)),
            DeliveryError::RecipientGone(_)
        ));
        assert!(matches!(
            classify(&RequestError::Api(ApiError::ChatNotFound)),
            DeliveryError::RecipientGone(_)
        ));
        assert!(matches!(
            classify(&RequestError::Api(ApiError::MessageIsTooLong)),
            DeliveryError::Permanent(_)
        ));
        assert!(matches!(
            classify(&RequestError::Api(ApiError::Unknown(
                "Internal Server Error".into()
            ))),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(
            classify(&RequestError::Api(ApiError::Unknown(
                "Bad Request: something new".into()
            ))),
            DeliveryError::Permanent(_)
        ));
    }

    #[test]
    fn reply_keyboards_are_resized_and_persistent() {
        let markup = Markup::Reply {
            rows: vec![vec![ReplyButton {
                text: "📱 Поделиться номером".into(),
                share_contact: true,
            }]],
        };
        let Some(ReplyMarkup::Keyboard(k)) = reply_markup(&markup) else {
            panic!("a reply keyboard");
        };
        assert!(k.resize_keyboard && k.is_persistent);
        assert_eq!(k.keyboard[0][0].request, Some(ButtonRequest::Contact));
    }

    #[test]
    fn a_bad_link_is_dropped_not_fatal() {
        let markup = Markup::Inline {
            rows: vec![vec![LinkButton {
                text: "сайт".into(),
                url: "not a url".into(),
            }]],
        };
        assert_eq!(reply_markup(&markup), None);
    }
}
