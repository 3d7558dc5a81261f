//! Running one input through the flow.

use chrono::{DateTime, Utc};

use super::effect::Effect;
use super::input::Input;
use super::render::Context;
use super::session::{BonusEntry, HeldMessage, Session};
use crate::flow::builtins::Builtin;
use crate::flow::model::{
    Action, ButtonHit, Flow, KeyboardChoice, Matcher, Rule, StateId, Throttle,
};
use crate::flow::raw::{ButtonPolicy, Condition, ContactMatch, TargetKind, TextMatch};
use crate::flow::template::{Placeholder, Template};
use crate::phone::Phone;

/// The effects of one input and the session after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub effects: Vec<Effect>,
    pub session: Session,
}

/// Runs one input: a pure function of the flow, the session, the input and the time.
pub fn step(flow: &Flow, session: &Session, input: &Input, now: DateTime<Utc>) -> Outcome {
    let mut run = Run {
        flow,
        session: session.clone(),
        input,
        now,
        effects: Vec::new(),
    };
    run.dispatch();
    Outcome {
        effects: run.effects,
        session: run.session,
    }
}

/// Whether to go on with the next action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Continue,
    Stop,
}

struct Run<'a> {
    flow: &'a Flow,
    session: Session,
    input: &'a Input,
    now: DateTime<Utc>,
    effects: Vec<Effect>,
}

/// A text that starts with `/`, split into the command name and the rest.
struct Command<'t> {
    name: String,
    #[allow(dead_code)]
    args: &'t str,
}

fn parse_command(text: &str) -> Option<Command<'_>> {
    let rest = text.trim_start().strip_prefix('/')?;
    let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let name = word.split('@').next().unwrap_or_default().to_lowercase();
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(Command {
        name,
        args: args.trim(),
    })
}

impl Run<'_> {
    fn dispatch(&mut self) {
        match self.input {
            Input::Blocked => {
                if self.session.blocked_since.is_none() {
                    self.session.blocked_since = Some(self.now);
                    self.effects.push(Effect::MarkBlocked);
                }
                let actions = &self.flow.blocked;
                self.exec(actions);
            }
            Input::Unblocked => self.clear_blocked(),
            Input::ManagerReply { .. } => self.manager_reply(),
            _ => self.customer_input(),
        }
    }

    fn clear_blocked(&mut self) {
        if self.session.blocked_since.take().is_some() {
            self.effects.push(Effect::ClearBlocked);
        }
    }

    fn manager_reply(&mut self) {
        if self.session.blocked_since.is_some() {
            let actions = &self.flow.blocked;
            self.exec(actions);
            return;
        }
        let minutes = i64::from(self.flow.manager.conversation_minutes);
        let until = self.now + chrono::Duration::minutes(minutes);
        self.session.manager_until = Some(until);
        self.effects.push(Effect::EnterManagerChat { until });
        if let Input::ManagerReply {
            file: Some(file), ..
        } = self.input
        {
            self.effects.push(Effect::ReplyFile(file.clone()));
        }
        let actions = &self.flow.manager.actions;
        self.exec(actions);
    }

    fn customer_input(&mut self) {
        self.clear_blocked();
        if self
            .session
            .manager_until
            .is_some_and(|until| until <= self.now)
        {
            self.session.manager_until = None;
            self.effects.push(Effect::LeaveManagerChat);
        }
        let state = self.current_state();
        if let Input::Text { text } = self.input {
            if let Some(command) = parse_command(text) {
                if let Some(actions) = self.flow.commands.get(&command.name) {
                    let allowed = self.allowed(state, None, Some(&command.name));
                    return self.run_or_busy(state, allowed, actions);
                }
            } else if let ButtonHit::Button(i) = self.flow.find_button(text, self.with_manager()) {
                let allowed = self.allowed(state, Some(i), None);
                let actions = &self.flow.buttons[i].actions;
                return self.run_or_busy(state, allowed, actions);
            }
        }
        let rules = &self.flow.states[state].rules;
        if let Some(rule) = rules.iter().find(|r| self.rule_matches(r)) {
            self.exec(&rule.actions);
            return;
        }
        if let (Input::Text { text }, Some(t)) =
            (self.input, self.flow.texts.get("unknown_command"))
            && parse_command(text).is_some()
        {
            let t = t.clone();
            return self.reply(&t, KeyboardChoice::Keep);
        }
        let fallback = &self.flow.fallback;
        self.exec(fallback);
    }

    /// The session's state; a state the flow no longer has sends the customer to the start.
    fn current_state(&mut self) -> StateId {
        if let Some(id) = self.flow.state_id(&self.session.state) {
            return id;
        }
        let start = self.flow.start_state().name.clone();
        let from = std::mem::replace(&mut self.session.state, start.clone());
        self.effects.push(Effect::SetState { from, to: start });
        if let Some(t) = self.flow.texts.get("state_reset") {
            let t = t.clone();
            self.reply(&t, KeyboardChoice::Keep);
        }
        self.flow.start
    }

    fn allowed(&self, state: StateId, button: Option<usize>, command: Option<&str>) -> bool {
        state == self.flow.start
            || self.flow.states[state].buttons == ButtonPolicy::Allow
            || button.is_some_and(|b| self.flow.anytime_buttons.contains(&b))
            || command.is_some_and(|c| self.flow.anytime_commands.iter().any(|a| a == c))
    }

    fn run_or_busy(&mut self, state: StateId, allowed: bool, actions: &[Action]) {
        if allowed {
            self.exec(actions);
        } else {
            let busy = self.flow.states[state].busy_reply.clone();
            self.reply(&busy, KeyboardChoice::Keep);
        }
    }

    fn with_manager(&self) -> bool {
        self.session.with_manager(self.now)
    }

    fn rule_matches(&self, rule: &Rule) -> bool {
        self.matcher_matches(&rule.matcher) && rule.condition.is_none_or(|c| self.holds(c))
    }

    fn matcher_matches(&self, matcher: &Matcher) -> bool {
        match (matcher, self.input) {
            (Matcher::Any, _) => true,
            (Matcher::Button { .. } | Matcher::Exact(_), Input::Text { text }) => {
                parse_command(text).is_none()
                    && matcher.matches_label(self.flow, text, self.with_manager())
            }
            (Matcher::Command(name), Input::Text { text }) => {
                parse_command(text).is_some_and(|c| c.name == *name)
            }
            (Matcher::Regex(re), Input::Text { text }) => {
                parse_command(text).is_none() && re.is_match(text)
            }
            (Matcher::Text(TextMatch::Any), Input::Text { text }) => parse_command(text).is_none(),
            (Matcher::Text(TextMatch::Phone), Input::Text { text }) => {
                Phone::looks_like_phone(text)
            }
            (Matcher::Contact(which), Input::Contact { user_id, .. }) => {
                let own = *user_id == Some(self.session.customer.telegram_id);
                match which {
                    ContactMatch::Own => own,
                    ContactMatch::Other => !own,
                    ContactMatch::Any => true,
                }
            }
            (Matcher::Media(kinds), Input::Media { media, .. }) => {
                kinds.is_empty() || kinds.contains(media)
            }
            _ => false,
        }
    }

    fn holds(&self, condition: Condition) -> bool {
        match condition {
            Condition::HasPhone => self.session.phone.is_some(),
            Condition::NoPhone => self.session.phone.is_none(),
            Condition::WithManager => self.with_manager(),
            Condition::HasBonus => self.session.bonus_balance(self.now) > 0,
            Condition::OpenNow => self.context("").open_now(),
        }
    }

    fn exec(&mut self, actions: &[Action]) -> Next {
        for action in actions {
            if self.action(action) == Next::Stop {
                return Next::Stop;
            }
        }
        Next::Continue
    }

    fn action(&mut self, action: &Action) -> Next {
        match action {
            Action::Builtin(b) => return self.builtin(*b),
            Action::Reply {
                text,
                keyboard,
                throttle,
            } => {
                if self.throttled(throttle.as_ref()) {
                    return Next::Continue;
                }
                self.reply(text, keyboard.clone());
            }
            Action::Goto(state) => self.goto(*state),
            Action::Forward {
                target,
                text,
                throttle,
            } => {
                if self.throttled(throttle.as_ref()) {
                    return Next::Continue;
                }
                let words = self.input_text().to_owned();
                self.forward(*target, text, &words);
            }
            Action::CopyMedia { target, caption } => {
                if let Input::Media { .. } = self.input {
                    let caption = self.context(self.input_text()).render(caption);
                    let target = self.flow.targets[*target].name.clone();
                    self.effects
                        .push(Effect::CopyMediaToAdmins { target, caption });
                }
            }
            Action::ReleaseHeld { target } => self.release_held(*target),
            Action::If {
                condition,
                then,
                otherwise,
            } => {
                let branch = if self.holds(*condition) {
                    then
                } else {
                    otherwise
                };
                return self.exec(branch);
            }
        }
        Next::Continue
    }

    fn builtin(&mut self, builtin: Builtin) -> Next {
        match builtin {
            Builtin::Register => {
                if self.session.registered_at.is_none() {
                    self.session.registered_at = Some(self.now);
                }
                self.effects.push(Effect::Register);
            }
            Builtin::SavePhone => return self.save_phone(),
            Builtin::WelcomeBonus => self.welcome_bonus(),
            Builtin::Hold => {
                let text = self.input_text().to_owned();
                if !text.trim().is_empty() && self.input.is_from_customer() {
                    self.session.held.push(HeldMessage {
                        text: text.clone(),
                        received_at: self.now,
                    });
                    self.effects.push(Effect::HoldMessage { text });
                }
            }
            Builtin::EndManagerChat => {
                if self.session.manager_until.take().is_some() {
                    self.effects.push(Effect::LeaveManagerChat);
                }
            }
            Builtin::Stop => return Next::Stop,
        }
        Next::Continue
    }

    /// Saves the phone from an own contact or typed text; otherwise explains and stops.
    fn save_phone(&mut self) -> Next {
        let parsed = match self.input {
            Input::Contact { phone, user_id }
                if *user_id == Some(self.session.customer.telegram_id) =>
            {
                Phone::parse(phone).ok()
            }
            Input::Contact { .. } => return self.reply_named_and_stop("contact_not_own"),
            Input::Text { text } => Phone::parse(text).ok(),
            _ => None,
        };
        let Some(phone) = parsed else {
            return self.reply_named_and_stop("phone_invalid");
        };
        self.session.phone = Some(phone.clone());
        self.effects.push(Effect::SavePhone(phone));
        Next::Continue
    }

    fn reply_named_and_stop(&mut self, name: &str) -> Next {
        if let Some(t) = self.flow.texts.get(name) {
            let t = t.clone();
            self.reply(&t, KeyboardChoice::Keep);
        }
        Next::Stop
    }

    fn welcome_bonus(&mut self) {
        let Some(bonus) = self.flow.business.welcome_bonus else {
            return;
        };
        if self.session.welcome_granted || bonus.amount == 0 {
            return;
        }
        let expires_at = self.now + chrono::Duration::days(i64::from(bonus.days));
        let amount = i64::from(bonus.amount);
        let reason = "welcome".to_owned();
        self.session.welcome_granted = true;
        self.session.bonuses.push(BonusEntry {
            delta: amount,
            reason: reason.clone(),
            expires_at: Some(expires_at),
        });
        self.effects.push(Effect::GrantBonus {
            amount,
            expires_at,
            reason,
        });
        if let Some(t) = self.flow.texts.get("bonus_granted") {
            let t = t.clone();
            self.reply(&t, KeyboardChoice::Keep);
        }
    }

    fn goto(&mut self, state: StateId) {
        let to = self.flow.states[state].name.clone();
        if to != self.session.state {
            let from = std::mem::replace(&mut self.session.state, to.clone());
            self.effects.push(Effect::SetState { from, to });
        }
    }

    /// Sends a rendered text to a target. A template built around the
    /// customer's words (`{text}`) sends nothing when there are no words.
    fn forward(&mut self, target: usize, template: &Template, words: &str) {
        let about_words = template.placeholders().any(|p| p == Placeholder::Text);
        if about_words && words.trim().is_empty() {
            return;
        }
        let text = self.context(words).render(template);
        if text.trim().is_empty() {
            return;
        }
        let target = &self.flow.targets[target];
        self.effects.push(match target.kind {
            TargetKind::Wahelp => Effect::ForwardToCrm {
                target: target.name.clone(),
                channel: target.channel.clone(),
                text,
            },
            TargetKind::Admins => Effect::AdminNotice {
                target: target.name.clone(),
                text,
            },
        });
    }

    fn release_held(&mut self, target: usize) {
        let held = std::mem::take(&mut self.session.held);
        if held.is_empty() {
            return;
        }
        let template = self.flow.targets[target].text.clone();
        for message in &held {
            self.forward(target, &template, &message.text);
        }
        self.effects.push(Effect::ReleaseHeld { count: held.len() });
    }

    fn reply(&mut self, template: &Template, keyboard: KeyboardChoice) {
        let text = self.context(self.input_text()).render(template);
        if text.trim().is_empty() && keyboard == KeyboardChoice::Keep {
            return;
        }
        self.effects.push(Effect::Reply { text, keyboard });
    }

    /// True when the action ran too recently; otherwise records that it runs now.
    fn throttled(&mut self, throttle: Option<&Throttle>) -> bool {
        let Some(t) = throttle else {
            return false;
        };
        if let Some(last) = self.session.throttle.get(&t.key)
            && self.now - *last < t.every
        {
            return true;
        }
        self.session.throttle.insert(t.key.clone(), self.now);
        false
    }

    fn input_text(&self) -> &str {
        match self.input {
            Input::Text { text } | Input::ManagerReply { text, .. } => text,
            Input::Media {
                caption: Some(c), ..
            } => c,
            Input::Contact { phone, .. } => phone,
            _ => "",
        }
    }

    fn context<'s>(&'s self, text: &'s str) -> Context<'s> {
        let media_kind = match self.input {
            Input::Media { media, .. } => media.words(),
            _ => "",
        };
        Context {
            flow: self.flow,
            session: &self.session,
            now: self.now,
            text,
            media_kind,
        }
    }
}
