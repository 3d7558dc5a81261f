//! Compiling rules, actions, text references and templates.

use std::collections::HashSet;

use regex::RegexBuilder;

use super::super::builtins::Builtin;
use super::super::model::{Action, Flow, KeyboardChoice, Matcher, Rule, Throttle};
use super::super::node::{Located, Pos};
use super::super::normalize;
use super::super::raw::{self, ActionFields, Actions, MediaMatch, RawFlow};
use super::super::suggest;
use super::super::template::Template;
use super::Compiler;

/// Regexes are compiled with these limits, so a hostile pattern cannot eat memory.
const MAX_REGEX_CHARS: usize = 1000;
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Named action lists, compiled once when first used, with loops detected.
pub(super) struct Scenarios<'r> {
    raw: &'r RawFlow,
    compiled: Vec<Option<Vec<Action>>>,
    in_progress: Vec<usize>,
    used: HashSet<usize>,
}

impl<'r> Scenarios<'r> {
    pub(super) fn new(raw: &'r RawFlow) -> Self {
        Scenarios {
            raw,
            compiled: vec![None; raw.scenarios.0.len()],
            in_progress: Vec::new(),
            used: HashSet::new(),
        }
    }

    pub(super) fn report_unused(&self, c: &mut Compiler) {
        for (index, (name, _)) in self.raw.scenarios.iter().enumerate() {
            if !self.used.contains(&index) && c.names.scenarios.get(&name.value) == Some(&index) {
                c.warning(
                    name.pos,
                    format!(
                        "сценарий «{}» нигде не вызывается (run: {})",
                        name.value, name.value
                    ),
                );
            }
        }
    }
}

impl Compiler<'_> {
    pub(super) fn actions(&mut self, list: &Actions, sc: &mut Scenarios) -> Vec<Action> {
        let mut out = Vec::new();
        for action in list.iter().filter_map(|a| a.0.as_ref()) {
            self.action(action, sc, &mut out);
        }
        out
    }

    fn action(&mut self, action: &Located<raw::Action>, sc: &mut Scenarios, out: &mut Vec<Action>) {
        match &action.value {
            raw::Action::Builtin(name) => {
                if let Some(b) = self.builtin(name, action.pos) {
                    out.push(Action::Builtin(b));
                }
            }
            raw::Action::Step(fields) => self.step(fields, action.pos, sc, out),
        }
    }

    fn builtin(&mut self, name: &str, pos: Pos) -> Option<Builtin> {
        let Some(builtin) = Builtin::parse(name) else {
            let hint = suggest::hint(name, super::super::builtins::NAMES.iter().copied());
            let looks_like_text = self.names.texts.contains_key(name);
            let extra = if looks_like_text {
                format!(" (чтобы отправить текст, пишите «reply: {name}»)")
            } else {
                String::new()
            };
            self.error(
                pos,
                format!(
                    "неизвестное действие «{name}»{hint}{extra}; встроенные: {}",
                    super::super::builtins::NAMES.join(", ")
                ),
            );
            return None;
        };
        for text in builtin.required_texts() {
            if !self.names.texts.contains_key(*text) {
                self.error(
                    pos,
                    format!("действию «{name}» нужен текст «{text}»: добавьте его в texts"),
                );
            }
        }
        Some(builtin)
    }

    fn step(&mut self, f: &ActionFields, pos: Pos, sc: &mut Scenarios, out: &mut Vec<Action>) {
        let main: Vec<&str> = [
            ("reply", f.reply.is_some()),
            ("goto", f.goto.is_some()),
            ("forward", f.forward.is_some()),
            ("copy_media", f.copy_media.is_some()),
            ("release_held", f.release_held.is_some()),
            ("run", f.run.is_some()),
            ("if", f.condition.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        match main.len() {
            0 => return self.error(pos, "в действии нет главного поля: нужно одно из reply, goto, forward, copy_media, release_held, run, if"),
            1 => {}
            _ => return self.error(pos, format!("в одном действии несколько главных полей ({}): разнесите их по отдельным строкам списка, каждое со своим «- »", main.join(", "))),
        }
        self.check_modifiers(f, main[0], pos);
        if let Some(text) = &f.reply {
            let keyboard = self.keyboard_choice(f.keyboard.as_ref());
            let throttle = self.throttle(f.at_most_every.as_ref(), format!("reply:{}", text.value));
            if let Some(text) = self.text_ref(text) {
                out.push(Action::Reply {
                    text,
                    keyboard,
                    throttle,
                });
            }
        } else if let Some(state) = &f.goto {
            if let Some(id) = self.state_ref(state) {
                out.push(Action::Goto(id));
            }
        } else if let Some(target) = &f.forward {
            let key = format!(
                "forward:{}:{}",
                target.value,
                f.text.as_ref().map_or("", |t| &t.value)
            );
            let throttle = self.throttle(f.at_most_every.as_ref(), key);
            let text = f.text.as_ref().and_then(|t| self.text_ref(t));
            if let Some(target) = self.target_ref(target) {
                let text = text.unwrap_or_else(|| self.target_text(target));
                out.push(Action::Forward {
                    target,
                    text,
                    throttle,
                });
            }
        } else if let Some(target) = &f.copy_media {
            let caption = f
                .text
                .as_ref()
                .and_then(|t| self.text_ref(t))
                .unwrap_or_default();
            if let Some(target) = self.target_ref(target) {
                out.push(Action::CopyMedia { target, caption });
            }
        } else if let Some(target) = &f.release_held {
            if let Some(target) = self.target_ref(target) {
                out.push(Action::ReleaseHeld { target });
            }
        } else if let Some(name) = &f.run {
            self.run_scenario(name, sc, out);
        } else if let Some(condition) = &f.condition {
            if f.then.is_empty() && f.otherwise.is_empty() {
                self.error(
                    condition.pos,
                    "у условия нет ни then, ни else: добавьте, что делать",
                );
            }
            let then = self.actions(&f.then, sc);
            let otherwise = self.actions(&f.otherwise, sc);
            out.push(Action::If {
                condition: condition.value,
                then,
                otherwise,
            });
        }
    }

    /// Fields that only make sense beside one main field.
    fn check_modifiers(&mut self, f: &ActionFields, main: &str, pos: Pos) {
        let checks = [
            (
                "keyboard",
                f.keyboard.as_ref().map(|k| k.pos),
                &["reply"][..],
            ),
            (
                "at_most_every",
                f.at_most_every.as_ref().map(|k| k.pos),
                &["reply", "forward"][..],
            ),
            (
                "text",
                f.text.as_ref().map(|k| k.pos),
                &["forward", "copy_media"][..],
            ),
        ];
        for (field, at, allowed) in checks {
            if let Some(at) = at
                && !allowed.contains(&main)
            {
                let at = if at.is_known() { at } else { pos };
                self.error(
                    at,
                    format!(
                        "поле «{field}» здесь не работает: оно бывает только вместе с {}",
                        allowed.join(" или ")
                    ),
                );
            }
        }
        let has_branches = !f.then.is_empty() || !f.otherwise.is_empty();
        if has_branches && main != "if" {
            self.error(pos, "then и else бывают только вместе с if");
        }
    }

    fn run_scenario(&mut self, name: &Located<String>, sc: &mut Scenarios, out: &mut Vec<Action>) {
        let Some(&index) = self.names.scenarios.get(&name.value) else {
            let hint = suggest::hint(&name.value, self.names.scenarios.keys().map(String::as_str));
            return self.error(
                name.pos,
                format!("неизвестный сценарий «{}»{hint}", name.value),
            );
        };
        sc.used.insert(index);
        if let Some(actions) = &sc.compiled[index] {
            out.extend(actions.iter().cloned());
            return;
        }
        if sc.in_progress.contains(&index) {
            return self.error(
                name.pos,
                format!(
                    "сценарий «{}» вызывает сам себя (через run): бот зациклится",
                    name.value
                ),
            );
        }
        sc.in_progress.push(index);
        let raw = sc.raw;
        let actions = self.actions(&raw.scenarios.0[index].1, sc);
        sc.in_progress.pop();
        out.extend(actions.iter().cloned());
        sc.compiled[index] = Some(actions);
    }

    pub(super) fn rule(
        &mut self,
        rule: &Located<raw::Rule>,
        flow: &Flow,
        sc: &mut Scenarios,
    ) -> Option<Rule> {
        let r = &rule.value;
        let matchers = [
            r.button.is_some(),
            r.exact.is_some(),
            r.command.is_some(),
            r.regex.is_some(),
            r.text.is_some(),
            r.contact.is_some(),
            r.media.is_some(),
            r.any.is_some(),
        ];
        let count = matchers.iter().filter(|m| **m).count();
        if count != 1 {
            let what = if count == 0 {
                "не сказано, когда оно срабатывает"
            } else {
                "несколько условий срабатывания сразу"
            };
            self.error(rule.pos, format!("в правиле {what}: нужно ровно одно из button, exact, command, regex, text, contact, media, any"));
            return None;
        }
        let actions = self.actions(&r.actions, sc);
        if r.actions.is_empty() {
            self.warning(
                rule.pos,
                "в правиле нет действий (do): оно ничего не делает",
            );
        }
        let matcher = self.matcher(r, flow)?;
        Some(Rule {
            matcher,
            condition: r.condition.as_ref().map(|c| c.value),
            actions,
        })
    }

    fn matcher(&mut self, r: &raw::Rule, flow: &Flow) -> Option<Matcher> {
        if let Some(label) = &r.button {
            self.check_label(label.pos, &label.value);
            return Some(Matcher::Button {
                normal: flow.normalize.normalize(&label.value),
                exact: normalize::exact_key(&label.value),
            });
        }
        if let Some(label) = &r.exact {
            self.check_label(label.pos, &label.value);
            return Some(Matcher::Exact(normalize::exact_key(&label.value)));
        }
        if let Some(command) = &r.command {
            return match super::sections::command_name(&command.value) {
                Some(name) => Some(Matcher::Command(name)),
                None => {
                    self.error(command.pos, format!("команда «{}» записана неверно: нужно «/» и латинские буквы (например, /start)", command.value));
                    None
                }
            };
        }
        if let Some(pattern) = &r.regex {
            return self.regex(pattern).map(Matcher::Regex);
        }
        if let Some(text) = &r.text {
            return Some(Matcher::Text(text.value));
        }
        if let Some(contact) = &r.contact {
            return Some(Matcher::Contact(contact.value));
        }
        if let Some(media) = &r.media {
            let kinds = match &media.value {
                MediaMatch::Any => Vec::new(),
                MediaMatch::Kinds(kinds) => kinds.clone(),
            };
            return Some(Matcher::Media(kinds));
        }
        match &r.any {
            Some(any) if !any.value => {
                self.error(
                    any.pos,
                    "any: false никогда не срабатывает: напишите any: true или уберите правило",
                );
                None
            }
            _ => Some(Matcher::Any),
        }
    }

    fn regex(&mut self, pattern: &Located<String>) -> Option<regex::Regex> {
        if pattern.value.chars().count() > MAX_REGEX_CHARS {
            self.error(
                pattern.pos,
                format!("регулярное выражение длиннее {MAX_REGEX_CHARS} знаков"),
            );
            return None;
        }
        match RegexBuilder::new(&pattern.value)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT * 4)
            .build()
        {
            Ok(re) => Some(re),
            Err(regex::Error::CompiledTooBig(_)) => {
                self.error(
                    pattern.pos,
                    "регулярное выражение слишком сложное: упростите его",
                );
                None
            }
            Err(e) => {
                let detail = e.to_string();
                let last = detail
                    .lines()
                    .rfind(|l| !l.trim().is_empty())
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                self.error(pattern.pos, format!("регулярное выражение с ошибкой ({last}); проверьте скобки и обратные косые черты (в YAML в двойных кавычках пишите «\\\\d»)"));
                None
            }
        }
    }

    fn keyboard_choice(&mut self, name: Option<&Located<String>>) -> KeyboardChoice {
        let Some(name) = name else {
            return KeyboardChoice::Keep;
        };
        if name.value == "none" {
            return KeyboardChoice::Remove;
        }
        match self.names.keyboards.get(&name.value) {
            Some(k) => KeyboardChoice::Show(k.clone()),
            None => {
                let hint =
                    suggest::hint(&name.value, self.names.keyboards.keys().map(String::as_str));
                self.error(
                    name.pos,
                    format!("неизвестная клавиатура «{}»{hint}", name.value),
                );
                KeyboardChoice::Keep
            }
        }
    }

    fn throttle(&mut self, every: Option<&Located<String>>, key: String) -> Option<Throttle> {
        let every = every?;
        match super::super::duration::parse(&every.value) {
            Some(d) => Some(Throttle { key, every: d }),
            None => {
                self.error(
                    every.pos,
                    format!(
                        "не понимаю срок «{}»: пишите 30m (минуты), 2h (часы) или 1d (дни)",
                        every.value
                    ),
                );
                None
            }
        }
    }

    fn state_ref(&mut self, name: &Located<String>) -> Option<usize> {
        let found = self.names.states.get(&name.value).copied();
        if found.is_none() {
            let hint = suggest::hint(&name.value, self.names.states.keys().map(String::as_str));
            self.error(
                name.pos,
                format!("неизвестное состояние «{}»{hint}", name.value),
            );
        }
        found
    }

    fn target_ref(&mut self, name: &Located<String>) -> Option<usize> {
        let found = self.names.targets.get(&name.value).copied();
        if found.is_none() {
            let hint = suggest::hint(&name.value, self.names.targets.keys().map(String::as_str));
            self.error(
                name.pos,
                format!(
                    "неизвестный получатель «{}»{hint}: опишите его в targets",
                    name.value
                ),
            );
        }
        found
    }

    fn target_text(&self, target: usize) -> Template {
        self.names
            .target_texts
            .get(target)
            .cloned()
            .unwrap_or_default()
    }

    /// A text by name (`greeting`) or written in place; a name-like word that
    /// names no text is reported as a typo rather than sent as it is.
    pub(super) fn text_ref(&mut self, text: &Located<String>) -> Option<Template> {
        if let Some(t) = self.names.texts.get(&text.value) {
            return Some(t.clone());
        }
        if is_identifier(&text.value) {
            let hint = suggest::hint(&text.value, self.names.texts.keys().map(String::as_str));
            self.error(text.pos, format!("неизвестный текст «{}»{hint}: добавьте его в texts (или напишите сам текст в кавычках, с пробелом или знаком препинания)", text.value));
            return None;
        }
        self.template(text)
    }

    /// Parses a template, pointing each problem at its exact column when it can.
    pub(super) fn template(&mut self, text: &Located<String>) -> Option<Template> {
        match Template::parse(&text.value) {
            Ok(t) => Some(t),
            Err(errors) => {
                for e in errors {
                    let pos = locate_offset(self.source, text, e.offset);
                    self.error(pos, e.message);
                }
                None
            }
        }
    }
}

/// `greeting`, `ask_phone`: lowercase Latin, digits and `_`.
fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Where character `offset` of a string value stands in the file.
fn locate_offset(source: &str, text: &Located<String>, offset: usize) -> Pos {
    let Some(line) = source
        .lines()
        .nth((text.pos.line as usize).saturating_sub(1))
    else {
        return text.pos;
    };
    let start = (text.pos.column as usize).saturating_sub(1);
    let rest: String = line.chars().skip(start).collect();
    let prefix: String = text.value.chars().take(offset).collect();
    let quoted = rest.starts_with('"') || rest.starts_with('\'');
    let body = if quoted { &rest[1..] } else { rest.as_str() };
    if !prefix.contains('\n') && body.starts_with(&prefix) {
        let column = start + usize::from(quoted) + offset + 1;
        return Pos {
            line: text.pos.line,
            column: u32::try_from(column).unwrap_or(text.pos.column),
        };
    }
    // A block scalar (`|`): find the line of the value that holds the offset.
    let line_index = prefix.matches('\n').count();
    let in_line = prefix
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count();
    let value_line = text.value.lines().nth(line_index).unwrap_or_default();
    for (n, candidate) in source
        .lines()
        .enumerate()
        .skip(text.pos.line as usize - 1)
        .take(line_index + 3)
    {
        let indent = candidate.chars().take_while(|c| *c == ' ').count();
        if !value_line.is_empty() && candidate.trim_start() == value_line.trim_start() {
            let column = indent + in_line + 1
                - (value_line.chars().count() - value_line.trim_start().chars().count());
            return Pos {
                line: u32::try_from(n + 1).unwrap_or(0),
                column: u32::try_from(column).unwrap_or(1),
            };
        }
    }
    text.pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("ask_phone"));
        assert!(!is_identifier("Спасибо!"));
        assert!(!is_identifier("ok thanks"));
    }
}
