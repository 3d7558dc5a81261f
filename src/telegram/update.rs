//! What a Telegram update means for the bot: an input for one customer's
//! conversation, or a reason to leave it alone.
//!
//! Pure: it reads a parsed `Update` and our own username, nothing else.

use teloxide::types::{
    ChatMemberKind, MediaKind as TgMedia, Message, MessageKind, Update, UpdateKind, User,
};

use crate::engine::{Customer, Input, MediaKind};

/// The meaning of one update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Something for a customer's conversation.
    Customer {
        chat_id: i64,
        /// The message, when the input is one (to copy a file to the admins).
        message_id: Option<i32>,
        customer: Customer,
        input: Input,
    },
    /// An inline button was pressed: Telegram waits for an answer to stop its spinner.
    CallbackQuery { id: String },
    /// Nothing to do; the reason is for the log.
    Ignored(&'static str),
}

/// Reads an update. `bot_username` (without `@`) tells our commands
/// (`/info@cleaning_bot`) from other bots'.
pub fn classify(update: &Update, bot_username: &str) -> Incoming {
    match &update.kind {
        UpdateKind::Message(message) => message_input(message, bot_username),
        UpdateKind::EditedMessage(_) => Incoming::Ignored("edited message"),
        UpdateKind::MyChatMember(change) => {
            if !change.chat.is_private() {
                return Incoming::Ignored("membership change outside a private chat");
            }
            let input = match change.new_chat_member.kind {
                ChatMemberKind::Banned(_) | ChatMemberKind::Left => Input::Blocked,
                ChatMemberKind::Member(_) => Input::Unblocked,
                _ => return Incoming::Ignored("membership change of no interest"),
            };
            Incoming::Customer {
                chat_id: change.chat.id.0,
                message_id: None,
                customer: customer(&change.from),
                input,
            }
        }
        UpdateKind::CallbackQuery(query) => Incoming::CallbackQuery {
            id: query.id.0.clone(),
        },
        UpdateKind::Error(_) => Incoming::Ignored("update teloxide could not parse"),
        _ => Incoming::Ignored("update kind the bot does not use"),
    }
}

fn customer(user: &User) -> Customer {
    Customer {
        telegram_id: i64::try_from(user.id.0).unwrap_or(i64::MAX),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        username: user.username.clone(),
    }
}

fn message_input(message: &Message, bot_username: &str) -> Incoming {
    if !message.chat.is_private() {
        return Incoming::Ignored("message outside a private chat");
    }
    let Some(from) = &message.from else {
        return Incoming::Ignored("message without a sender");
    };
    if from.is_bot {
        return Incoming::Ignored("message from a bot");
    }
    let MessageKind::Common(common) = &message.kind else {
        return match message.kind {
            MessageKind::Empty {} => Incoming::Ignored("message content teloxide could not parse"),
            _ => Incoming::Ignored("service message"),
        };
    };
    let input = match &common.media_kind {
        TgMedia::Text(text) => match own_command(&text.text, bot_username) {
            Some(text) => Input::text(text),
            None => return Incoming::Ignored("command for another bot"),
        },
        TgMedia::Contact(c) => Input::Contact {
            phone: c.contact.phone_number.clone(),
            user_id: c.contact.user_id.and_then(|id| i64::try_from(id.0).ok()),
        },
        other => Input::Media {
            media: media_kind(other),
            caption: message.caption().map(str::to_owned),
        },
    };
    Incoming::Customer {
        chat_id: message.chat.id.0,
        message_id: Some(message.id.0),
        customer: customer(from),
        input,
    }
}

/// A message from a person in any chat (groups too): its chat and its text,
/// with our own `@botname` removed from a command (`None` for a file, or a
/// command for another bot). Admin chats are read this way.
pub fn chat_message(update: &Update, bot_username: &str) -> Option<(i64, Option<String>)> {
    let UpdateKind::Message(message) = &update.kind else {
        return None;
    };
    if message.from.as_ref().is_none_or(|u| u.is_bot) {
        return None;
    }
    let text = message.text().and_then(|t| own_command(t, bot_username));
    Some((message.chat.id.0, text))
}

/// `/info@our_bot args` → `/info args`; `None` for `/info@other_bot`. Other texts as they are.
fn own_command(text: &str, bot_username: &str) -> Option<String> {
    let Some(rest) = text.strip_prefix('/') else {
        return Some(text.to_owned());
    };
    let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match word.split_once('@') {
        None => Some(text.to_owned()),
        Some((name, bot)) if bot.eq_ignore_ascii_case(bot_username) => Some(if args.is_empty() {
            format!("/{name}")
        } else {
            format!("/{name} {args}")
        }),
        Some(_) => None,
    }
}

fn media_kind(media: &TgMedia) -> MediaKind {
    match media {
        TgMedia::Photo(_) => MediaKind::Photo,
        TgMedia::Video(_) => MediaKind::Video,
        TgMedia::Document(_) => MediaKind::Document,
        TgMedia::Voice(_) => MediaKind::Voice,
        TgMedia::Audio(_) => MediaKind::Audio,
        TgMedia::Sticker(_) => MediaKind::Sticker,
        TgMedia::Animation(_) => MediaKind::Animation,
        TgMedia::VideoNote(_) => MediaKind::VideoNote,
        TgMedia::Location(_) | TgMedia::Venue(_) => MediaKind::Location,
        _ => MediaKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture from `tests/fixtures/telegram/updates` (checked against teloxide 0.17).
    fn fixture(name: &str) -> Update {
        let path = format!(
            "{}/tests/fixtures/telegram/updates/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn input(name: &str) -> Input {
        match classify(&fixture(name), "cleaning_bot") {
            Incoming::Customer { input, .. } => input,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn commands_and_texts() {
        assert_eq!(input("01-start-command"), Input::text("/start"));
        assert_eq!(
            input("02-start-with-payload"),
            Input::text("/start promo2026")
        );
        assert_eq!(input("03-command-with-botname"), Input::text("/info"));
        assert!(matches!(input("04-text"), Input::Text { text } if text.contains('ё')));
        assert!(
            matches!(input("24-long-text"), Input::Text { text } if text.chars().count() == 5163)
        );
    }

    #[test]
    fn the_customer_is_who_wrote() {
        let Incoming::Customer {
            chat_id, customer, ..
        } = classify(&fixture("01-start-command"), "cleaning_bot")
        else {
            panic!("a customer input");
        };
        assert_eq!(chat_id, 5_213_874_096);
        assert_eq!(customer.full_name(), "Анна Смирнова");
        assert_eq!(customer.username.as_deref(), Some("anna_smirnova"));
    }

    #[test]
    fn labels_arrive_as_texts_with_or_without_the_variation_selector() {
        assert_eq!(
            input("05-button-label-with-vs16"),
            Input::text("💰\u{FE0F} Прайс")
        );
        assert_eq!(
            input("06-button-label-without-vs16"),
            Input::text("💰 Прайс")
        );
    }

    #[test]
    fn contacts_carry_whose_they_are() {
        assert_eq!(
            input("07-contact-own"),
            Input::Contact {
                phone: "79035551234".into(),
                user_id: Some(5_213_874_096)
            }
        );
        assert_eq!(
            input("08-contact-other-person"),
            Input::Contact {
                phone: "+79167778899".into(),
                user_id: Some(6_029_384_751)
            }
        );
        assert!(matches!(
            input("09-contact-without-user-id"),
            Input::Contact { user_id: None, .. }
        ));
        assert!(
            matches!(input("21-forwarded-contact"), Input::Contact { user_id: Some(id), .. } if id != 5_213_874_096)
        );
    }

    #[test]
    fn files_become_media_inputs() {
        assert!(matches!(
            input("10-photo-with-caption"),
            Input::Media {
                media: MediaKind::Photo,
                caption: Some(_)
            }
        ));
        assert!(matches!(
            input("11-video"),
            Input::Media {
                media: MediaKind::Video,
                ..
            }
        ));
        assert!(matches!(
            input("12-document"),
            Input::Media {
                media: MediaKind::Document,
                caption: Some(_)
            }
        ));
        assert!(matches!(
            input("13-sticker"),
            Input::Media {
                media: MediaKind::Sticker,
                ..
            }
        ));
        assert!(matches!(
            input("14-voice"),
            Input::Media {
                media: MediaKind::Voice,
                ..
            }
        ));
        assert!(matches!(
            input("15-location"),
            Input::Media {
                media: MediaKind::Location,
                ..
            }
        ));
        assert!(matches!(
            input("22-media-group-photo-1"),
            Input::Media {
                media: MediaKind::Photo,
                ..
            }
        ));
        assert!(matches!(
            input("23-media-group-photo-2"),
            Input::Media {
                media: MediaKind::Photo,
                caption: None
            }
        ));
    }

    #[test]
    fn blocking_and_unblocking() {
        assert_eq!(input("17-my-chat-member-kicked"), Input::Blocked);
        assert_eq!(input("18-my-chat-member-member"), Input::Unblocked);
    }

    #[test]
    fn what_the_bot_leaves_alone() {
        let bot = "cleaning_bot";
        assert_eq!(
            classify(&fixture("16-edited-message"), bot),
            Incoming::Ignored("edited message")
        );
        assert_eq!(
            classify(&fixture("20-group-message"), bot),
            Incoming::Ignored("message outside a private chat")
        );
        assert!(matches!(
            classify(&fixture("19-callback-query"), bot),
            Incoming::CallbackQuery { .. }
        ));
        assert_eq!(
            classify(&fixture("03-command-with-botname"), "other_bot"),
            Incoming::Ignored("command for another bot")
        );
    }

    #[test]
    fn own_commands() {
        assert_eq!(
            own_command("/info@Cleaning_Bot", "cleaning_bot"),
            Some("/info".into())
        );
        assert_eq!(
            own_command("/start@cleaning_bot promo", "cleaning_bot"),
            Some("/start promo".into())
        );
        assert_eq!(
            own_command("привет @cleaning_bot", "cleaning_bot"),
            Some("привет @cleaning_bot".into())
        );
        assert_eq!(own_command("/", "cleaning_bot"), Some("/".into()));
    }
}
