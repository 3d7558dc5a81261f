//! What the engine decided: a closed list of effects for the adapters to carry out.

use chrono::{DateTime, Utc};

use super::input::FileLink;
use crate::flow::model::KeyboardChoice;
use crate::phone::Phone;

/// One thing to do. Message effects become outbox rows; the others change
/// the stored customer in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send the customer a message, maybe with a keyboard.
    Reply {
        text: String,
        keyboard: KeyboardChoice,
    },
    /// Send the customer a file by its link (a manager's attachment).
    ReplyFile(FileLink),
    /// Send text to the CRM (a manager in amoCRM via Wahelp).
    ForwardToCrm {
        target: String,
        channel: String,
        text: String,
    },
    /// Send a notice to the admins' chat.
    AdminNotice {
        target: String,
        text: String,
    },
    /// Copy the customer's file to the admins' chat with a caption.
    CopyMediaToAdmins {
        target: String,
        caption: String,
    },
    /// Remember (or refresh) the customer's Telegram profile.
    Register,
    SavePhone(Phone),
    GrantBonus {
        amount: i64,
        expires_at: DateTime<Utc>,
        reason: String,
    },
    /// Keep this text until the phone is known.
    HoldMessage {
        text: String,
    },
    /// The held messages were forwarded (just before this effect) and are gone.
    ReleaseHeld {
        count: usize,
    },
    SetState {
        from: String,
        to: String,
    },
    EnterManagerChat {
        until: DateTime<Utc>,
    },
    LeaveManagerChat,
    MarkBlocked,
    ClearBlocked,
}

impl Effect {
    /// Whether this effect sends a message to someone.
    pub fn is_message(&self) -> bool {
        matches!(
            self,
            Effect::Reply { .. }
                | Effect::ReplyFile(_)
                | Effect::ForwardToCrm { .. }
                | Effect::AdminNotice { .. }
                | Effect::CopyMediaToAdmins { .. }
        )
    }
}
