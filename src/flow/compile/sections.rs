//! Compiling each top-level section of the flow.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::diagnostic::Diagnostic;
use super::super::hours::{DayWords, WeeklySchedule};
use super::super::model::{
    Action, BusinessInfo, Button, Flow, Keyboard, LinkButton, ManagerRule, ReplyButton, State,
    Target, WelcomeBonus,
};
use super::super::node::{Lenient, Located, Pos};
use super::super::normalize::{self, Rules};
use super::super::raw::{self, ButtonPolicy, KeyboardButton, RawFlow, TargetKind};
use super::super::suggest;
use super::super::template::Template;
use super::{Compiler, Names};
use crate::flow::diagnostic::Report;

/// Telegram shows at most this many buttons in a row, and a keyboard this many in all.
const MAX_ROW: usize = 8;
const MAX_BUTTONS: usize = 100;
/// Longer labels are cut on a phone screen and are hard to type: we refuse them.
const MAX_LABEL_CHARS: usize = 64;
/// Telegram's limit for one message, in UTF-16 code units.
const MAX_MESSAGE_UTF16: usize = 4096;

impl<'a> Compiler<'a> {
    pub(super) fn new(source: &'a str, report: &'a mut Report) -> Self {
        Compiler {
            source,
            report,
            names: Names::default(),
        }
    }

    pub(super) fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.report.push(Diagnostic::error(pos, message));
    }

    pub(super) fn warning(&mut self, pos: Pos, message: impl Into<String>) {
        self.report.push(Diagnostic::warning(pos, message));
    }

    pub(super) fn compile(&mut self, raw: &RawFlow) -> Option<Flow> {
        self.check_version(raw);
        let normalize = raw.normalize.0.unwrap_or_default();
        let rules = Rules {
            ignore_case: normalize.ignore_case,
            yo_as_ye: normalize.yo_as_ye,
            strip_emoji: normalize.strip_emoji,
            strip_trailing_punctuation: normalize.trailing_punctuation,
        };
        self.collect_texts(raw);
        self.collect_keyboards(raw);
        let targets = self.collect_targets(raw);
        self.collect_state_names(raw);
        self.collect_scenario_names(raw);
        let business = self.business(raw);
        let start = self.start_state(raw);

        let mut flow = Flow {
            version: version_hash(self.source),
            start: start.unwrap_or(0),
            states: Vec::new(),
            buttons: Vec::new(),
            commands: HashMap::new(),
            anytime_buttons: Vec::new(),
            anytime_commands: Vec::new(),
            fallback: Vec::new(),
            manager: ManagerRule {
                conversation_minutes: 30,
                actions: Vec::new(),
            },
            blocked: Vec::new(),
            targets,
            normalize: rules,
            exact_with_manager: normalize.exact_with_manager,
            business: business?,
            texts: self.names.texts.clone(),
            by_normal: HashMap::new(),
            by_exact: HashMap::new(),
            max_label_letters: 0,
        };
        let mut scenarios = super::actions::Scenarios::new(raw);
        self.buttons(raw, &mut flow, &mut scenarios);
        self.commands(raw, &mut flow, &mut scenarios);
        flow.states = self.states(raw, &flow, &mut scenarios);
        self.anytime(raw, &mut flow);
        flow.fallback = self.actions(&raw.fallback, &mut scenarios);
        flow.blocked = self.actions(&raw.blocked, &mut scenarios);
        flow.manager = self.manager(raw, &mut scenarios);
        scenarios.report_unused(self);
        self.run_checks(raw, &flow);
        start.map(|_| flow)
    }

    fn check_version(&mut self, raw: &RawFlow) {
        match &raw.version {
            Some(Lenient(Some(v))) if v.value == 1 => {}
            Some(Lenient(Some(v))) => self.error(
                v.pos,
                format!(
                    "версия сценария {} не поддерживается: напишите version: 1",
                    v.value
                ),
            ),
            Some(Lenient(None)) => {}
            None => self.error(
                Pos { line: 1, column: 1 },
                "нет строки «version: 1» в начале сценария: добавьте её",
            ),
        }
    }

    fn collect_texts(&mut self, raw: &RawFlow) {
        for (name, text) in raw.texts.iter() {
            if self.duplicate(&raw.texts.0, name, "текст") {
                continue;
            }
            let Some(text) = &text.0 else {
                self.names
                    .texts
                    .insert(name.value.clone(), Template::default());
                continue;
            };
            if utf16_len(text) > MAX_MESSAGE_UTF16 {
                self.warning(
                    text.pos,
                    format!(
                        "текст «{}» длиннее {MAX_MESSAGE_UTF16} знаков: Telegram получит его несколькими сообщениями",
                        name.value
                    ),
                );
            }
            let template = self.template(text).unwrap_or_default();
            self.names.texts.insert(name.value.clone(), template);
        }
    }

    /// Reports `name` when an earlier key of `pairs` has the same text; true if so.
    fn duplicate<V>(
        &mut self,
        pairs: &[(Located<String>, V)],
        name: &Located<String>,
        what: &str,
    ) -> bool {
        let Some(first) = self.first_definition(pairs, name) else {
            return false;
        };
        self.report.push(
            Diagnostic::error(
                name.pos,
                format!("{what} «{}» встречается дважды", name.value),
            )
            .with_related(first, "первое место здесь"),
        );
        true
    }

    /// The position of an earlier key equal to `name`, if any.
    fn first_definition<V>(
        &self,
        pairs: &[(Located<String>, V)],
        name: &Located<String>,
    ) -> Option<Pos> {
        pairs
            .iter()
            .map(|(k, _)| k)
            .take_while(|k| k.pos != name.pos)
            .find(|k| k.value == name.value)
            .map(|k| k.pos)
    }

    fn collect_keyboards(&mut self, raw: &RawFlow) {
        for (name, keyboard) in raw.keyboards.iter() {
            if name.value == "none" {
                self.error(
                    name.pos,
                    "имя «none» занято: им убирают клавиатуру; выберите другое",
                );
            }
            if self.duplicate(&raw.keyboards.0, name, "клавиатура") {
                continue;
            }
            let compiled = match &keyboard.0 {
                Some(rows) => self.keyboard(&name.value, rows),
                None => Keyboard::Reply(Vec::new()),
            };
            self.names
                .keyboards
                .insert(name.value.clone(), Arc::new(compiled));
        }
    }

    fn keyboard(&mut self, name: &str, rows: &raw::Keyboard) -> Keyboard {
        if rows.value.iter().all(|row| row.value.is_empty()) {
            self.error(
                rows.pos,
                format!("клавиатура «{name}» пустая: добавьте хотя бы одну кнопку"),
            );
        }
        let mut reply = Vec::new();
        let mut inline = Vec::new();
        let total: usize = rows.value.iter().map(|r| r.value.len()).sum();
        if total > MAX_BUTTONS {
            self.error(rows.pos, format!("в клавиатуре «{name}» {total} кнопок, Telegram разрешает не больше {MAX_BUTTONS}"));
        }
        for row in &rows.value {
            if row.value.is_empty() {
                self.error(
                    row.pos,
                    "пустой ряд кнопок: уберите его или добавьте кнопку",
                );
            }
            if row.value.len() > MAX_ROW {
                self.error(
                    row.pos,
                    format!(
                        "в ряду {} кнопок, Telegram показывает не больше {MAX_ROW}",
                        row.value.len()
                    ),
                );
            }
            let (mut r, mut i) = (Vec::new(), Vec::new());
            for button in &row.value {
                self.button_in_keyboard(button, &mut r, &mut i);
            }
            if !r.is_empty() {
                reply.push(r);
            }
            if !i.is_empty() {
                inline.push(i);
            }
        }
        if !reply.is_empty() && !inline.is_empty() {
            self.error(
                rows.pos,
                format!("в клавиатуре «{name}» смешаны обычные кнопки и кнопки-ссылки: Telegram так не умеет, разнесите их в две клавиатуры"),
            );
        }
        if inline.is_empty() {
            Keyboard::Reply(reply)
        } else {
            Keyboard::Inline(inline)
        }
    }

    fn button_in_keyboard(
        &mut self,
        button: &Located<KeyboardButton>,
        reply: &mut Vec<ReplyButton>,
        inline: &mut Vec<LinkButton>,
    ) {
        let (text, share, url) = match &button.value {
            KeyboardButton::Label(text) => (text.clone(), false, None),
            KeyboardButton::Special(s) => (s.text.clone(), s.share_contact, s.url.clone()),
        };
        self.check_label(button.pos, &text);
        match url {
            Some(url) => {
                if share {
                    self.error(
                        button.pos,
                        "кнопка не может быть одновременно ссылкой и «поделиться номером»",
                    );
                }
                if !(url.starts_with("https://")
                    || url.starts_with("http://")
                    || url.starts_with("tg://"))
                {
                    self.error(
                        button.pos,
                        format!("ссылка «{url}» должна начинаться с https://"),
                    );
                }
                inline.push(LinkButton { text, url });
            }
            None => reply.push(ReplyButton {
                text,
                share_contact: share,
            }),
        }
    }

    pub(super) fn check_label(&mut self, pos: Pos, label: &str) {
        let chars = label.chars().count();
        if label.trim().is_empty() {
            self.error(pos, "у кнопки пустая надпись");
        } else if chars > MAX_LABEL_CHARS {
            self.error(pos, format!("надпись кнопки длиной {chars} знаков: не больше {MAX_LABEL_CHARS}, иначе её не видно целиком"));
        } else if label.starts_with('/') {
            self.error(
                pos,
                format!("надпись «{label}» начинается с «/», Telegram примет её за команду"),
            );
        }
    }

    fn collect_targets(&mut self, raw: &RawFlow) -> Vec<Target> {
        let mut targets = Vec::new();
        for (name, target) in raw.targets.iter() {
            if self.duplicate(&raw.targets.0, name, "получатель") {
                continue;
            }
            let Some(target) = &target.0 else {
                continue;
            };
            let kind = target.kind.value;
            let channel = match (kind, &target.channel) {
                (TargetKind::Wahelp, Some(c)) => c.clone(),
                (TargetKind::Wahelp, None) => "clients_tg".to_owned(),
                (TargetKind::Admins, Some(_)) => {
                    self.warning(
                        target.kind.pos,
                        "у получателя admins не бывает канала: поле channel не используется",
                    );
                    String::new()
                }
                (TargetKind::Admins, None) => String::new(),
            };
            let text = match &target.text {
                Some(t) => self.text_ref(t).unwrap_or_default(),
                None => Template::parse("{text}").unwrap_or_default(),
            };
            self.names.targets.insert(name.value.clone(), targets.len());
            self.names.target_texts.push(text.clone());
            targets.push(Target {
                name: name.value.clone(),
                kind,
                channel,
                text,
            });
        }
        targets
    }

    fn collect_state_names(&mut self, raw: &RawFlow) {
        for (index, (name, _)) in raw.states.iter().enumerate() {
            if self.duplicate(&raw.states.0, name, "состояние") {
                continue;
            }
            self.names.states.insert(name.value.clone(), index);
        }
    }

    fn collect_scenario_names(&mut self, raw: &RawFlow) {
        for (index, (name, _)) in raw.scenarios.iter().enumerate() {
            if self.duplicate(&raw.scenarios.0, name, "сценарий") {
                continue;
            }
            self.names.scenarios.insert(name.value.clone(), index);
        }
    }

    fn start_state(&mut self, raw: &RawFlow) -> Option<usize> {
        let (name, pos) = match &raw.start_state {
            Some(s) => (s.value.clone(), s.pos),
            None => ("main".to_owned(), Pos::UNKNOWN),
        };
        let found = self.names.states.get(&name).copied();
        if found.is_none() {
            let hint = suggest::hint(&name, self.names.states.keys().map(String::as_str));
            self.error(
                pos,
                format!("нет состояния «{name}», с которого начинается разговор{hint}: добавьте его в states"),
            );
        }
        found
    }

    fn business(&mut self, raw: &RawFlow) -> Option<BusinessInfo> {
        let Some(b) = &raw.business.0 else {
            return Some(default_business());
        };
        let timezone = match &b.timezone {
            None => chrono_tz::Europe::Moscow,
            Some(tz) => match tz.value.parse::<chrono_tz::Tz>() {
                Ok(tz) => tz,
                Err(_) => {
                    self.error(tz.pos, format!("неизвестный часовой пояс «{}»: пишите как Europe/Moscow или Asia/Yekaterinburg", tz.value));
                    chrono_tz::Europe::Moscow
                }
            },
        };
        let pairs: Vec<(&str, &str)> = b
            .hours
            .iter()
            .map(|(k, v)| (k.value.as_str(), v.value.as_str()))
            .collect();
        let schedule = match WeeklySchedule::from_pairs(pairs) {
            Ok(s) => s,
            Err(errors) => {
                for (index, e) in errors {
                    let pos = b.hours.0.get(index).map_or(Pos::UNKNOWN, |(k, _)| k.pos);
                    self.error(pos, e.to_string());
                }
                WeeklySchedule::default()
            }
        };
        let welcome_bonus = b.welcome_bonus.as_ref().map(|w| {
            if w.value.days == 0 || w.value.amount == 0 {
                self.warning(
                    w.pos,
                    "приветственный бонус с нулевой суммой или сроком: клиент ничего не получит",
                );
            }
            WelcomeBonus {
                amount: w.value.amount,
                days: w.value.days,
            }
        });
        Some(BusinessInfo {
            name: b.name.clone(),
            timezone,
            schedule,
            words: b.words.clone().unwrap_or_default(),
            welcome_bonus,
        })
    }

    fn buttons(
        &mut self,
        raw: &RawFlow,
        flow: &mut Flow,
        scenarios: &mut super::actions::Scenarios,
    ) {
        let mut first_by_key: HashMap<String, (Pos, String)> = HashMap::new();
        for (label, actions) in raw.buttons.iter() {
            self.check_label(label.pos, &label.value);
            let normal = flow.normalize.normalize(&label.value);
            let exact = normalize::exact_key(&label.value);
            if let Some((pos, other)) = first_by_key.get(&normal) {
                let message = if *other == label.value {
                    format!("кнопка «{}» описана дважды", label.value)
                } else {
                    format!(
                        "кнопки «{other}» и «{}» после нормализации одинаковы («{normal}»): бот их не различит — переименуйте одну",
                        label.value
                    )
                };
                self.report.push(
                    Diagnostic::error(label.pos, message).with_related(*pos, "первая кнопка здесь"),
                );
                continue;
            }
            first_by_key.insert(normal.clone(), (label.pos, label.value.clone()));
            let compiled = self.actions(actions, scenarios);
            let letters = normal.chars().filter(|c| c.is_alphabetic()).count();
            flow.max_label_letters = flow.max_label_letters.max(letters);
            flow.by_normal.insert(normal, flow.buttons.len());
            flow.by_exact.insert(exact, flow.buttons.len());
            flow.buttons.push(Button {
                label: label.value.clone(),
                actions: compiled,
            });
        }
    }

    fn commands(
        &mut self,
        raw: &RawFlow,
        flow: &mut Flow,
        scenarios: &mut super::actions::Scenarios,
    ) {
        for (name, actions) in raw.commands.iter() {
            let Some(command) = command_name(&name.value) else {
                self.error(
                    name.pos,
                    format!("команда «{}» записана неверно: нужно «/» и латинские буквы, цифры или «_», не длиннее 32 (например, /start)", name.value),
                );
                continue;
            };
            if flow.commands.contains_key(&command) {
                self.error(name.pos, format!("команда «{}» описана дважды", name.value));
                continue;
            }
            let compiled = self.actions(actions, scenarios);
            flow.commands.insert(command, compiled);
        }
    }

    fn states(
        &mut self,
        raw: &RawFlow,
        flow: &Flow,
        scenarios: &mut super::actions::Scenarios,
    ) -> Vec<State> {
        let mut states = Vec::new();
        for (name, state) in raw.states.iter() {
            let rules = match &state.0 {
                Some(s) => s
                    .rules
                    .iter()
                    .filter_map(|r| r.0.as_ref())
                    .filter_map(|r| self.rule(r, flow, scenarios))
                    .collect(),
                None => Vec::new(),
            };
            let policy = state
                .0
                .as_ref()
                .and_then(|s| s.buttons.as_ref())
                .map_or(ButtonPolicy::Block, |p| p.value);
            let busy = state.0.as_ref().and_then(|s| s.busy_reply.as_ref());
            let busy_reply = match busy {
                Some(text) => self.text_ref(text).unwrap_or_default(),
                None if policy == ButtonPolicy::Block && states.len() != flow.start => {
                    match self.names.texts.get("finish_step") {
                        Some(t) => t.clone(),
                        None => {
                            self.error(name.pos, format!("состоянию «{}» нужен текст, которым бот просит закончить шаг: добавьте в texts текст finish_step или укажите busy_reply", name.value));
                            Template::default()
                        }
                    }
                }
                None => Template::default(),
            };
            states.push(State {
                name: name.value.clone(),
                buttons: policy,
                busy_reply,
                rules,
            });
        }
        states
    }

    fn anytime(&mut self, raw: &RawFlow, flow: &mut Flow) {
        for item in &raw.anytime {
            if item.value.starts_with('/') {
                match command_name(&item.value) {
                    Some(c) if flow.commands.contains_key(&c) => flow.anytime_commands.push(c),
                    _ => {
                        let hint = suggest::hint(
                            &item.value,
                            raw.commands.iter().map(|(k, _)| k.value.as_str()),
                        );
                        self.error(
                            item.pos,
                            format!(
                                "в anytime команда «{}», а такой команды нет в commands{hint}",
                                item.value
                            ),
                        );
                    }
                }
                continue;
            }
            match flow.find_button(&item.value, false) {
                super::super::model::ButtonHit::Button(i) => flow.anytime_buttons.push(i),
                super::super::model::ButtonHit::None => {
                    let hint =
                        suggest::hint(&item.value, flow.buttons.iter().map(|b| b.label.as_str()));
                    self.error(
                        item.pos,
                        format!(
                            "в anytime кнопка «{}», а такой кнопки нет в buttons{hint}",
                            item.value
                        ),
                    );
                }
            }
        }
    }

    fn manager(&mut self, raw: &RawFlow, scenarios: &mut super::actions::Scenarios) -> ManagerRule {
        let Some(m) = &raw.manager.0 else {
            return ManagerRule {
                conversation_minutes: 30,
                actions: Vec::new(),
            };
        };
        let mut actions = self.actions(&m.actions, scenarios);
        if actions.is_empty() {
            actions.push(Action::Reply {
                text: Template::parse("{text}").unwrap_or_default(),
                keyboard: super::super::model::KeyboardChoice::Keep,
                throttle: None,
            });
        }
        if m.conversation_minutes.value == 0 {
            self.warning(
                m.conversation_minutes.pos,
                "conversation_minutes: 0 — разговор с менеджером не будет длиться ни минуты",
            );
        }
        ManagerRule {
            conversation_minutes: m.conversation_minutes.value,
            actions,
        }
    }
}

fn default_business() -> BusinessInfo {
    BusinessInfo {
        name: String::new(),
        timezone: chrono_tz::Europe::Moscow,
        schedule: WeeklySchedule::default(),
        words: DayWords::default(),
        welcome_bonus: None,
    }
}

/// `/start` → `start`; `None` when it is not a valid Telegram command.
pub(super) fn command_name(text: &str) -> Option<String> {
    let name = text.strip_prefix('/')?;
    let valid = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    valid.then(|| name.to_owned())
}

pub(super) fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// FNV-1a of the source, as 8 hex digits: a short version tag.
fn version_hash(source: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in source.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", hash >> 32)
}
