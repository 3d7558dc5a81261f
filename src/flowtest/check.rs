//! Comparing one step's effects and the session after it with the expectations.

use chrono::{DateTime, Utc};

use super::spec::{Expect, KeyboardCheck, TextCheck};
use crate::engine::{Effect, Session};
use crate::flow::model::KeyboardChoice;
use crate::show;

/// A failed check: what was checked, what was expected, what happened.
pub(super) type Mismatch = (&'static str, String, String);

pub(super) fn check_step(
    e: &Expect,
    effects: &[Effect],
    s: &Session,
    now: DateTime<Utc>,
) -> Vec<Mismatch> {
    let replies: Vec<&str> = effects
        .iter()
        .filter_map(|x| match x {
            Effect::Reply { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let forwards: Vec<&str> = effects
        .iter()
        .filter_map(|x| match x {
            Effect::ForwardToCrm { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let notices: Vec<&str> = effects
        .iter()
        .filter_map(|x| match x {
            Effect::AdminNotice { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    any_of(&mut out, "reply", e.reply.as_ref(), &replies);
    all_of(&mut out, "replies", e.replies.as_deref(), &replies);
    none(&mut out, "no_reply", e.no_reply, &replies);
    any_of(&mut out, "forward", e.forward.as_ref(), &forwards);
    all_of(&mut out, "forwards", e.forwards.as_deref(), &forwards);
    none(&mut out, "no_forward", e.no_forward, &forwards);
    any_of(&mut out, "notice", e.notice.as_ref(), &notices);
    none(&mut out, "no_notice", e.no_notice, &notices);
    if let Some(k) = &e.keyboard {
        keyboard(&mut out, k, effects);
    }
    if let Some(copied) = e.media_copied {
        let actual = effects
            .iter()
            .any(|x| matches!(x, Effect::CopyMediaToAdmins { .. }));
        equal(&mut out, "media_copied", copied, actual);
    }
    if let Some(state) = &e.state {
        equal(&mut out, "state", state.clone(), s.state.clone());
    }
    if let Some(held) = e.held {
        equal(&mut out, "held", held, s.held.len());
    }
    if let Some(phone) = &e.phone {
        let actual = s
            .phone
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string);
        equal(&mut out, "phone", phone.clone(), actual);
    }
    if let Some(bonus) = e.bonus {
        equal(&mut out, "bonus", bonus, s.bonus_balance(now));
    }
    if let Some(with) = e.with_manager {
        equal(&mut out, "with_manager", with, s.with_manager(now));
    }
    out
}

fn equal<T: PartialEq + std::fmt::Display>(
    out: &mut Vec<Mismatch>,
    what: &'static str,
    expected: T,
    actual: T,
) {
    if expected != actual {
        out.push((what, expected.to_string(), actual.to_string()));
    }
}

fn listing(texts: &[&str]) -> String {
    if texts.is_empty() {
        "(ничего)".to_owned()
    } else {
        texts
            .iter()
            .map(|t| format!("«{t}»"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn any_of(out: &mut Vec<Mismatch>, what: &'static str, check: Option<&TextCheck>, texts: &[&str]) {
    if let Some(check) = check
        && !texts.iter().any(|t| check.matches(t))
    {
        out.push((what, check.to_string(), listing(texts)));
    }
}

fn all_of(
    out: &mut Vec<Mismatch>,
    what: &'static str,
    checks: Option<&[TextCheck]>,
    texts: &[&str],
) {
    let Some(checks) = checks else { return };
    let ok = checks.len() == texts.len() && checks.iter().zip(texts).all(|(c, t)| c.matches(t));
    if !ok {
        let expected = checks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        out.push((what, expected, listing(texts)));
    }
}

fn none(out: &mut Vec<Mismatch>, what: &'static str, flag: Option<bool>, texts: &[&str]) {
    if flag == Some(true) && !texts.is_empty() {
        out.push((what, "(ничего)".to_owned(), listing(texts)));
    }
}

fn keyboard(out: &mut Vec<Mismatch>, check: &KeyboardCheck, effects: &[Effect]) {
    let last = effects.iter().rev().find_map(|x| match x {
        Effect::Reply { keyboard, .. } if *keyboard != KeyboardChoice::Keep => Some(keyboard),
        _ => None,
    });
    let actual = match last {
        None => "(клавиатура не менялась)".to_owned(),
        Some(KeyboardChoice::Remove) => "none".to_owned(),
        Some(KeyboardChoice::Show(k)) => rows_text(&show::keyboard_labels(k)),
        Some(KeyboardChoice::Keep) => String::new(),
    };
    let expected = match check {
        KeyboardCheck::Word(w) => w.clone(),
        KeyboardCheck::Rows(rows) => rows_text(rows),
    };
    if expected != actual {
        out.push(("keyboard", expected, actual));
    }
}

fn rows_text(rows: &[Vec<String>]) -> String {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|b| format!("[{b}]"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
