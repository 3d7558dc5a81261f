//! The compiled flow: references resolved, labels normalised, regexes built.
//!
//! Only this form reaches the engine. Its constructors live in
//! `flow::compile`; a `Flow` that exists is a valid one.

use std::collections::HashMap;
use std::sync::Arc;

use chrono_tz::Tz;
use regex::Regex;

use super::builtins::Builtin;
use super::hours::{DayWords, WeeklySchedule};
use super::media::MediaKind;
use super::normalize::{self, Rules};
use super::raw::{ButtonPolicy, Condition, ContactMatch, TargetKind, TextMatch};
use super::template::Template;

pub type StateId = usize;
pub type TargetId = usize;

/// A validated, ready-to-run flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// A short hash of the source, to tell versions apart in logs and replies.
    pub version: String,
    pub start: StateId,
    pub states: Vec<State>,
    pub buttons: Vec<Button>,
    pub commands: HashMap<String, Vec<Action>>,
    /// Buttons (by index) and commands that work in every state.
    pub anytime_buttons: Vec<usize>,
    pub anytime_commands: Vec<String>,
    pub fallback: Vec<Action>,
    pub manager: ManagerRule,
    pub blocked: Vec<Action>,
    pub targets: Vec<Target>,
    pub normalize: Rules,
    pub exact_with_manager: bool,
    pub business: BusinessInfo,
    /// Texts the engine itself may need (e.g. `state_reset`), by name.
    pub texts: HashMap<String, Template>,
    pub(crate) by_normal: HashMap<String, usize>,
    pub(crate) by_exact: HashMap<String, usize>,
    /// The most letters any button label has: a longer text cannot be a
    /// label, since normalising never removes a letter (emoji have none).
    pub(crate) max_label_letters: usize,
}

#[derive(Debug, Clone)]
pub struct BusinessInfo {
    pub name: String,
    pub timezone: Tz,
    pub schedule: WeeklySchedule,
    pub words: DayWords,
    pub welcome_bonus: Option<WelcomeBonus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WelcomeBonus {
    pub amount: u32,
    pub days: u32,
}

#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub buttons: ButtonPolicy,
    pub busy_reply: Template,
    pub rules: Vec<Rule>,
}

/// A menu button: its label and what pressing it does.
#[derive(Debug, Clone)]
pub struct Button {
    pub label: String,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub matcher: Matcher,
    pub condition: Option<Condition>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone)]
pub enum Matcher {
    /// Normalised label (exact while talking to a manager, if the flow says so).
    Button {
        normal: String,
        exact: String,
    },
    /// Exact label after invisible-character cleanup.
    Exact(String),
    /// Command name without the slash.
    Command(String),
    Regex(Regex),
    Text(TextMatch),
    Contact(ContactMatch),
    /// Empty means any kind.
    Media(Vec<MediaKind>),
    Any,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub kind: TargetKind,
    pub channel: String,
    pub text: Template,
}

#[derive(Debug, Clone)]
pub struct ManagerRule {
    pub conversation_minutes: u32,
    pub actions: Vec<Action>,
}

/// What a keyboard change in a reply does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyboardChoice {
    /// Leave whatever keyboard the customer has.
    Keep,
    /// Remove the reply keyboard.
    Remove,
    Show(Arc<Keyboard>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyboard {
    /// Buttons under the input field.
    Reply(Vec<Vec<ReplyButton>>),
    /// Link buttons under the message.
    Inline(Vec<Vec<LinkButton>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyButton {
    pub text: String,
    pub share_contact: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkButton {
    pub text: String,
    pub url: String,
}

/// Don't repeat an action within `every`; `key` names it in the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    pub key: String,
    pub every: chrono::Duration,
}

#[derive(Debug, Clone)]
pub enum Action {
    Builtin(Builtin),
    Reply {
        text: Template,
        keyboard: KeyboardChoice,
        throttle: Option<Throttle>,
    },
    Goto(StateId),
    Forward {
        target: TargetId,
        text: Template,
        throttle: Option<Throttle>,
    },
    CopyMedia {
        target: TargetId,
        caption: Template,
    },
    ReleaseHeld {
        target: TargetId,
    },
    If {
        condition: Condition,
        then: Vec<Action>,
        otherwise: Vec<Action>,
    },
}

/// What a customer's text turned out to be, as far as buttons go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonHit {
    /// The text is this button's label.
    Button(usize),
    None,
}

impl Flow {
    /// The button a typed text stands for. `strict` (talking to a manager)
    /// accepts only the exact label, emoji included.
    pub fn find_button(&self, text: &str, strict: bool) -> ButtonHit {
        if text
            .chars()
            .filter(|c| c.is_alphabetic())
            .nth(self.max_label_letters)
            .is_some()
        {
            return ButtonHit::None;
        }
        let visible = normalize::strip_invisible(text);
        if let Some(&i) = self.by_exact.get(visible.trim()) {
            return ButtonHit::Button(i);
        }
        if strict && self.exact_with_manager {
            return ButtonHit::None;
        }
        match self.by_normal.get(&self.normalize.normalize(text)) {
            Some(&i) => ButtonHit::Button(i),
            None => ButtonHit::None,
        }
    }

    pub fn state_id(&self, name: &str) -> Option<StateId> {
        self.states.iter().position(|s| s.name == name)
    }

    pub fn start_state(&self) -> &State {
        &self.states[self.start]
    }
}

impl Matcher {
    /// Whether a typed text matches a label rule.
    pub fn matches_label(&self, flow: &Flow, text: &str, strict: bool) -> bool {
        match self {
            Matcher::Exact(label) => normalize::exact_key(text) == *label,
            Matcher::Button { normal, exact } => {
                normalize::exact_key(text) == *exact
                    || (!(strict && flow.exact_with_manager)
                        && flow.normalize.normalize(text) == *normal)
            }
            _ => false,
        }
    }
}
