//! The built-in verbs a flow can call by name (`- save_phone`).

/// A built-in action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// Remember the customer's Telegram id, name and username.
    Register,
    /// Save the phone from a shared own contact or from typed text.
    SavePhone,
    /// Grant the flow's welcome bonus, once per customer, and say so once.
    WelcomeBonus,
    /// Keep the customer's text until the phone is known.
    Hold,
    /// End the conversation with the manager now.
    EndManagerChat,
    /// Stop running the rest of the actions.
    Stop,
}

/// Every verb, as written in the flow.
pub const NAMES: &[&str] = &[
    "register",
    "save_phone",
    "welcome_bonus",
    "hold",
    "end_manager_chat",
    "stop",
];

impl Builtin {
    pub fn parse(name: &str) -> Option<Builtin> {
        Some(match name {
            "register" => Builtin::Register,
            "save_phone" => Builtin::SavePhone,
            "welcome_bonus" => Builtin::WelcomeBonus,
            "hold" => Builtin::Hold,
            "end_manager_chat" => Builtin::EndManagerChat,
            "stop" => Builtin::Stop,
            _ => return None,
        })
    }

    /// Texts this verb may send; the flow must define them when it uses the verb.
    pub fn required_texts(self) -> &'static [&'static str] {
        match self {
            Builtin::SavePhone => &["phone_invalid", "contact_not_own"],
            Builtin::WelcomeBonus => &["bonus_granted"],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses() {
        for name in NAMES {
            assert!(Builtin::parse(name).is_some(), "{name}");
        }
        assert_eq!(Builtin::parse("save_phon"), None);
    }
}
