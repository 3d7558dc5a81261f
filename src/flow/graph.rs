//! The flow as a Mermaid diagram: states, what leads between them, where messages go.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::model::{Action, Flow, Matcher};
use super::raw::{ContactMatch, TextMatch};

/// A `flowchart` of the flow, ready for a ```mermaid block.
pub fn mermaid(flow: &Flow) -> String {
    let mut edges = BTreeSet::new();
    let start = &flow.start_state().name;
    for button in &flow.buttons {
        collect(
            &mut edges,
            flow,
            start,
            &format!("«{}»", button.label),
            &button.actions,
        );
    }
    let mut commands: Vec<_> = flow.commands.iter().collect();
    commands.sort_by_key(|(name, _)| name.as_str());
    for (name, actions) in commands {
        collect(&mut edges, flow, start, &format!("/{name}"), actions);
    }
    for state in &flow.states {
        for rule in &state.rules {
            collect(
                &mut edges,
                flow,
                &state.name,
                &describe(&rule.matcher),
                &rule.actions,
            );
        }
    }
    collect(&mut edges, flow, start, "другой текст", &flow.fallback);
    collect(
        &mut edges,
        flow,
        "manager_reply",
        "ответ",
        &flow.manager.actions,
    );
    collect(&mut edges, flow, "blocked_bot", "блокировка", &flow.blocked);

    let mut out = String::from("flowchart LR\n");
    for state in &flow.states {
        let id = node_id(&state.name);
        let _ = if state.name == *start {
            writeln!(out, "    {id}([\"{}\"])", escape(&state.name))
        } else {
            writeln!(out, "    {id}[\"{}\"]", escape(&state.name))
        };
    }
    for target in &flow.targets {
        let _ = writeln!(
            out,
            "    {}[(\"{}\")]",
            node_id(&format!("target {}", target.name)),
            escape(&target.name)
        );
    }
    let _ = writeln!(
        out,
        "    {}{{{{\"ответ менеджера\"}}}}",
        node_id("manager_reply")
    );
    let _ = writeln!(
        out,
        "    {}{{{{\"клиент заблокировал бота\"}}}}",
        node_id("blocked_bot")
    );
    for (from, label, to, dotted) in edges {
        let arrow = if dotted { "-.->" } else { "-->" };
        let _ = writeln!(
            out,
            "    {} {arrow}|\"{}\"| {}",
            node_id(&from),
            escape(&label),
            node_id(&to)
        );
    }
    out
}

type Edge = (String, String, String, bool);

/// Edges from `from`, labelled `label`, for every goto and forward in `actions`.
fn collect(edges: &mut BTreeSet<Edge>, flow: &Flow, from: &str, label: &str, actions: &[Action]) {
    for action in actions {
        match action {
            Action::Goto(state) => {
                let to = &flow.states[*state].name;
                if to != from {
                    edges.insert((from.to_owned(), label.to_owned(), to.clone(), false));
                }
            }
            Action::Forward { target, .. }
            | Action::CopyMedia { target, .. }
            | Action::ReleaseHeld { target } => {
                let to = format!("target {}", flow.targets[*target].name);
                edges.insert((from.to_owned(), label.to_owned(), to, true));
            }
            Action::If {
                then, otherwise, ..
            } => {
                collect(edges, flow, from, label, then);
                collect(edges, flow, from, label, otherwise);
            }
            _ => {}
        }
    }
}

fn describe(matcher: &Matcher) -> String {
    match matcher {
        Matcher::Button { exact, .. } | Matcher::Exact(exact) => format!("«{exact}»"),
        Matcher::Command(name) => format!("/{name}"),
        Matcher::Regex(re) => format!("regex {}", re.as_str()),
        Matcher::Text(TextMatch::Any) => "текст".to_owned(),
        Matcher::Text(TextMatch::Phone) => "номер телефона".to_owned(),
        Matcher::Contact(ContactMatch::Own) => "свой контакт".to_owned(),
        Matcher::Contact(ContactMatch::Other) => "чужой контакт".to_owned(),
        Matcher::Contact(ContactMatch::Any) => "контакт".to_owned(),
        Matcher::Media(_) => "файл".to_owned(),
        Matcher::Any => "что угодно".to_owned(),
    }
}

/// Mermaid ids must be plain: keep ASCII letters and digits, code the rest.
fn node_id(name: &str) -> String {
    let mut id = String::from("n_");
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c);
        } else {
            let _ = write!(id, "_{:x}", u32::from(c));
        }
    }
    id
}

fn escape(text: &str) -> String {
    text.replace('"', "#quot;")
}
