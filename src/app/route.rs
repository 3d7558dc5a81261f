//! Where the engine's message effects go: Telegram chats (the customer's,
//! the admins') or the CRM, as outbox rows. Pure; long texts are split here
//! so each row is one Telegram message.

use crate::engine::Effect;
use crate::flow::model::{Keyboard, KeyboardChoice};
use crate::outbox::split::{CAPTION_LIMIT, MESSAGE_LIMIT, split, utf16_len};
use crate::outbox::{LinkButton, Markup, NewMessage, Payload, ReplyButton};

/// Who the effects of one input concern.
#[derive(Debug, Clone, Copy)]
pub struct Addressing<'a> {
    pub customer_id: i64,
    /// The customer's private chat (`None` when unknown: replies are then dropped with a log line).
    pub chat_id: Option<i64>,
    /// The customer's message being handled, for copying files to the admins.
    pub message_id: Option<i32>,
    pub admins: &'a [i64],
}

/// The outbox rows for one input's effects, in the order the engine decided them.
pub fn messages(effects: &[Effect], to: Addressing) -> Vec<NewMessage> {
    let mut out = Vec::new();
    for effect in effects {
        match effect {
            Effect::Reply { text, keyboard } => {
                if let Some(chat_id) = to.chat_id {
                    push_text(
                        &mut out,
                        chat_id,
                        text,
                        markup(keyboard),
                        Some(to.customer_id),
                        false,
                    );
                } else {
                    tracing::warn!(customer = to.customer_id, "reply without a known chat");
                }
            }
            Effect::ReplyFile(file) => match to.chat_id {
                Some(chat_id) => out.push(NewMessage {
                    payload: Payload::TelegramFile {
                        chat_id,
                        url: file.url.clone(),
                        file_kind: file.kind,
                    },
                    customer_id: Some(to.customer_id),
                    is_admin_notice: false,
                }),
                None => tracing::warn!(customer = to.customer_id, "file without a known chat"),
            },
            Effect::AdminNotice { text, .. } => {
                for &admin in to.admins {
                    push_text(&mut out, admin, text, None, Some(to.customer_id), true);
                }
            }
            Effect::CopyMediaToAdmins { caption, .. } => copy_media(&mut out, caption, to),
            Effect::ForwardToCrm {
                target,
                channel,
                text,
            } => out.push(NewMessage {
                payload: Payload::CrmText {
                    customer_id: to.customer_id,
                    target: target.clone(),
                    channel: channel.clone(),
                    text: text.clone(),
                },
                customer_id: Some(to.customer_id),
                is_admin_notice: false,
            }),
            _ => {}
        }
    }
    out
}

/// A text for an admin chat that is not about any customer.
pub fn admin_text(chat_id: i64, text: &str) -> Vec<NewMessage> {
    let mut out = Vec::new();
    push_text(&mut out, chat_id, text, None, None, true);
    out
}

/// A text split into Telegram-sized messages; the keyboard goes with the last part.
fn push_text(
    out: &mut Vec<NewMessage>,
    chat_id: i64,
    text: &str,
    markup: Option<Markup>,
    customer_id: Option<i64>,
    is_admin_notice: bool,
) {
    let parts = split(text, MESSAGE_LIMIT);
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.into_iter().enumerate() {
        out.push(NewMessage {
            payload: Payload::TelegramText {
                chat_id,
                text: part,
                markup: if i == last { markup.clone() } else { None },
            },
            customer_id,
            is_admin_notice,
        });
    }
}

/// The customer's file to each admin chat. A caption longer than Telegram
/// allows goes as text messages after the file.
fn copy_media(out: &mut Vec<NewMessage>, caption: &str, to: Addressing) {
    let (Some(from_chat_id), Some(message_id)) = (to.chat_id, to.message_id) else {
        tracing::warn!(
            customer = to.customer_id,
            "file copy without a source message"
        );
        return;
    };
    let fits = utf16_len(caption) <= CAPTION_LIMIT;
    for &admin in to.admins {
        out.push(NewMessage {
            payload: Payload::TelegramCopy {
                chat_id: admin,
                from_chat_id,
                message_id,
                caption: if fits {
                    caption.to_owned()
                } else {
                    String::new()
                },
            },
            customer_id: Some(to.customer_id),
            is_admin_notice: true,
        });
        if !fits {
            push_text(out, admin, caption, None, Some(to.customer_id), true);
        }
    }
}

fn markup(choice: &KeyboardChoice) -> Option<Markup> {
    match choice {
        KeyboardChoice::Keep => None,
        KeyboardChoice::Remove => Some(Markup::Remove),
        KeyboardChoice::Show(k) => Some(match k.as_ref() {
            Keyboard::Reply(rows) => Markup::Reply {
                rows: rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|b| ReplyButton {
                                text: b.text.clone(),
                                share_contact: b.share_contact,
                            })
                            .collect()
                    })
                    .collect(),
            },
            Keyboard::Inline(rows) => Markup::Inline {
                rows: rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|b| LinkButton {
                                text: b.text.clone(),
                                url: b.url.clone(),
                            })
                            .collect()
                    })
                    .collect(),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::flow::model::ReplyButton as FlowButton;

    fn to(admins: &[i64]) -> Addressing<'_> {
        Addressing {
            customer_id: 5,
            chat_id: Some(5),
            message_id: Some(77),
            admins,
        }
    }

    fn texts(rows: &[NewMessage]) -> Vec<(i64, String)> {
        rows.iter()
            .filter_map(|m| match &m.payload {
                Payload::TelegramText { chat_id, text, .. } => Some((*chat_id, text.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_reply_goes_to_the_customer_with_its_keyboard() {
        let keyboard = KeyboardChoice::Show(Arc::new(Keyboard::Reply(vec![vec![FlowButton {
            text: "📱 Поделиться номером".into(),
            share_contact: true,
        }]])));
        let rows = messages(
            &[Effect::Reply {
                text: "Привет".into(),
                keyboard,
            }],
            to(&[]),
        );
        assert_eq!(rows.len(), 1);
        let Payload::TelegramText {
            chat_id, markup, ..
        } = &rows[0].payload
        else {
            panic!("a text: {rows:?}");
        };
        assert_eq!(*chat_id, 5);
        assert!(matches!(markup, Some(Markup::Reply { rows }) if rows[0][0].share_contact));
    }

    #[test]
    fn an_admin_notice_goes_to_every_admin_chat() {
        let rows = messages(
            &[Effect::AdminNotice {
                target: "admins".into(),
                text: "Заказ".into(),
            }],
            to(&[-100, 7]),
        );
        assert_eq!(texts(&rows), [(-100, "Заказ".into()), (7, "Заказ".into())]);
        assert!(rows.iter().all(|m| m.is_admin_notice));
    }

    #[test]
    fn a_long_reply_is_split_and_the_keyboard_rides_on_the_last_part() {
        let long = "строка текста\n".repeat(700);
        let rows = messages(
            &[Effect::Reply {
                text: long.clone(),
                keyboard: KeyboardChoice::Remove,
            }],
            to(&[]),
        );
        assert!(rows.len() >= 3);
        let joined: String = texts(&rows).into_iter().map(|(_, t)| t).collect();
        assert_eq!(joined, long);
        let markups: Vec<_> = rows
            .iter()
            .map(|m| {
                matches!(
                    &m.payload,
                    Payload::TelegramText {
                        markup: Some(_),
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(markups.iter().filter(|m| **m).count(), 1);
        assert_eq!(markups.last(), Some(&true));
    }

    #[test]
    fn media_is_copied_from_the_customers_message() {
        let rows = messages(
            &[Effect::CopyMediaToAdmins {
                target: "admins".into(),
                caption: "Фото".into(),
            }],
            to(&[-100]),
        );
        assert_eq!(
            rows[0].payload,
            Payload::TelegramCopy {
                chat_id: -100,
                from_chat_id: 5,
                message_id: 77,
                caption: "Фото".into()
            }
        );
    }

    #[test]
    fn a_managers_file_goes_to_the_customer_by_its_link() {
        let file = crate::engine::FileLink {
            url: "https://files.example.invalid/a.jpg".into(),
            kind: crate::engine::FileKind::Photo,
        };
        let rows = messages(&[Effect::ReplyFile(file)], to(&[]));
        assert_eq!(
            rows[0].payload,
            Payload::TelegramFile {
                chat_id: 5,
                url: "https://files.example.invalid/a.jpg".into(),
                file_kind: crate::engine::FileKind::Photo,
            }
        );
    }

    #[test]
    fn a_crm_forward_is_about_the_customer() {
        let rows = messages(
            &[Effect::ForwardToCrm {
                target: "manager".into(),
                channel: "clients_tg".into(),
                text: "вопрос".into(),
            }],
            to(&[]),
        );
        assert!(
            matches!(&rows[0].payload, Payload::CrmText { customer_id: 5, text, .. } if text == "вопрос")
        );
    }
}
