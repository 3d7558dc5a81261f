//! Whole-flow checks: unreachable states, states with no way out, buttons that do nothing.

use std::collections::HashSet;

use super::super::model::{Action, Flow, Keyboard, Matcher};
use super::super::raw::{ButtonPolicy, Condition, RawFlow};
use super::Compiler;

impl Compiler<'_> {
    pub(super) fn run_checks(&mut self, raw: &RawFlow, flow: &Flow) {
        if flow.states.is_empty() {
            return;
        }
        self.unreachable_states(raw, flow);
        self.states_without_exit(raw, flow);
        self.idle_keyboard_buttons(flow);
        if raw.business.0.is_some() {
            self.open_now_without_hours(flow);
        }
    }

    fn unreachable_states(&mut self, raw: &RawFlow, flow: &Flow) {
        let mut global = Vec::new();
        global.extend(flow.buttons.iter().flat_map(|b| gotos(&b.actions)));
        global.extend(flow.commands.values().flat_map(|a| gotos(a)));
        global.extend(gotos(&flow.fallback));
        global.extend(gotos(&flow.manager.actions));
        global.extend(gotos(&flow.blocked));
        let mut reached: HashSet<usize> = HashSet::from([flow.start]);
        let mut queue: Vec<usize> = global.into_iter().chain([flow.start]).collect();
        while let Some(state) = queue.pop() {
            reached.insert(state);
            let Some(s) = flow.states.get(state) else {
                continue;
            };
            for next in s.rules.iter().flat_map(|r| gotos(&r.actions)) {
                if !reached.contains(&next) {
                    queue.push(next);
                }
            }
        }
        for (index, (name, _)) in raw.states.iter().enumerate() {
            if !reached.contains(&index) && self.names.states.get(&name.value) == Some(&index) {
                self.warning(
                    name.pos,
                    format!(
                        "в состояние «{}» ничто не ведёт (нет goto: {}): клиент в него не попадёт",
                        name.value, name.value
                    ),
                );
            }
        }
    }

    fn states_without_exit(&mut self, raw: &RawFlow, flow: &Flow) {
        let anytime_exits: Vec<usize> = flow
            .anytime_buttons
            .iter()
            .flat_map(|b| gotos(&flow.buttons[*b].actions))
            .chain(
                flow.anytime_commands
                    .iter()
                    .flat_map(|c| flow.commands.get(c).map(|a| gotos(a)).unwrap_or_default()),
            )
            .collect();
        let global_exits: Vec<usize> = flow
            .buttons
            .iter()
            .flat_map(|b| gotos(&b.actions))
            .chain(flow.commands.values().flat_map(|a| gotos(a)))
            .collect();
        for (index, state) in flow.states.iter().enumerate() {
            if index == flow.start {
                continue;
            }
            let own = state
                .rules
                .iter()
                .flat_map(|r| gotos(&r.actions))
                .chain(gotos(&flow.fallback));
            let mut exits: Vec<usize> = own.chain(anytime_exits.iter().copied()).collect();
            if state.buttons == ButtonPolicy::Allow {
                exits.extend(global_exits.iter().copied());
            }
            if exits.iter().all(|e| *e == index) {
                let pos = raw
                    .states
                    .0
                    .get(index)
                    .map(|(k, _)| k.pos)
                    .unwrap_or_default();
                self.error(pos, format!("из состояния «{}» нет выхода: ни одно правило не ведёт в другое состояние (goto), а кнопки меню в нём заблокированы — добавьте «Отмена» в anytime или goto в правила", state.name));
            }
        }
    }

    fn idle_keyboard_buttons(&mut self, flow: &Flow) {
        let mut labels: Vec<(String, bool)> = Vec::new();
        for keyboard in self.names.keyboards.values() {
            if let Keyboard::Reply(rows) = keyboard.as_ref() {
                labels.extend(
                    rows.iter()
                        .flatten()
                        .map(|b| (b.text.clone(), b.share_contact)),
                );
            }
        }
        labels.sort();
        labels.dedup();
        for (label, share) in labels {
            let handled = share
                || flow.find_button(&label, false) != super::super::model::ButtonHit::None
                || flow.states.iter().flat_map(|s| &s.rules).any(|r| {
                    matches!(r.matcher, Matcher::Button { .. } | Matcher::Exact(_))
                        && r.matcher.matches_label(flow, &label, false)
                });
            if !handled {
                self.warning(
                    super::super::node::Pos::UNKNOWN,
                    format!("кнопка «{label}» есть в клавиатуре, но ничего не делает: добавьте её в buttons или в правило состояния"),
                );
            }
        }
    }

    fn open_now_without_hours(&mut self, flow: &Flow) {
        let all_actions = flow
            .buttons
            .iter()
            .map(|b| &b.actions)
            .chain(flow.commands.values())
            .chain(
                flow.states
                    .iter()
                    .flat_map(|s| s.rules.iter().map(|r| &r.actions)),
            );
        let uses_open_now = all_actions
            .into_iter()
            .any(|a| uses_condition(a, Condition::OpenNow));
        if uses_open_now && flow.business.schedule.is_always_closed() {
            self.warning(super::super::node::Pos::UNKNOWN, "условие open_now используется, а часы работы (business.hours) не заданы: бизнес всегда будет «закрыт»");
        }
    }
}

/// Every state an action list may go to, including inside `if`.
fn gotos(actions: &[Action]) -> Vec<usize> {
    let mut out = Vec::new();
    for action in actions {
        match action {
            Action::Goto(s) => out.push(*s),
            Action::If {
                then, otherwise, ..
            } => {
                out.extend(gotos(then));
                out.extend(gotos(otherwise));
            }
            _ => {}
        }
    }
    out
}

fn uses_condition(actions: &[Action], condition: Condition) -> bool {
    actions.iter().any(|a| match a {
        Action::If {
            condition: c,
            then,
            otherwise,
        } => {
            *c == condition
                || uses_condition(then, condition)
                || uses_condition(otherwise, condition)
        }
        _ => false,
    })
}
