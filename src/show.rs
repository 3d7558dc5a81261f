//! Effects as people and scripts read them: text lines for the terminal, JSON for tools.
//!
//! The JSON field names are a stable interface (documented in the README):
//! `effect` names the kind, the other fields depend on it.

use serde_json::{Value, json};

use crate::engine::Effect;
use crate::flow::model::{Keyboard, KeyboardChoice};

/// One effect as terminal lines (the keyboard, if any, on its own line).
pub fn line(effect: &Effect) -> String {
    match effect {
        Effect::Reply { text, keyboard } => {
            let mut out = format!("бот: {text}");
            if let Some(k) = keyboard_line(keyboard) {
                out.push('\n');
                out.push_str(&k);
            }
            out
        }
        Effect::ReplyFile(file) => format!("бот: файл {}", file.url),
        Effect::ForwardToCrm {
            target,
            channel,
            text,
        } => {
            format!("→ менеджеру ({target}, {channel}): {text}")
        }
        Effect::AdminNotice { target, text } => format!("→ администраторам ({target}): {text}"),
        Effect::CopyMediaToAdmins { target, caption } => {
            format!("→ администраторам ({target}): копия файла, подпись: {caption}")
        }
        Effect::Register => "· клиент зарегистрирован".to_owned(),
        Effect::SavePhone(phone) => format!("· номер сохранён: {phone}"),
        Effect::GrantBonus {
            amount, expires_at, ..
        } => {
            format!(
                "· начислено {amount} бонусов до {}",
                expires_at.format("%Y-%m-%d %H:%M UTC")
            )
        }
        Effect::HoldMessage { .. } => "· сообщение отложено до получения номера".to_owned(),
        Effect::ReleaseHeld { count } => format!("· отложенные сообщения отправлены: {count}"),
        Effect::SetState { from, to } => format!("· состояние: {from} → {to}"),
        Effect::EnterManagerChat { until } => {
            format!(
                "· разговор с менеджером до {}",
                until.format("%Y-%m-%d %H:%M UTC")
            )
        }
        Effect::LeaveManagerChat => "· разговор с менеджером закончен".to_owned(),
        Effect::MarkBlocked => "· клиент заблокировал бота".to_owned(),
        Effect::ClearBlocked => "· клиент снова доступен".to_owned(),
    }
}

/// `[Мои бонусы] [Сделать заказ] / [💰 Прайс]`, or `None` when the keyboard is kept.
pub fn keyboard_line(choice: &KeyboardChoice) -> Option<String> {
    match choice {
        KeyboardChoice::Keep => None,
        KeyboardChoice::Remove => Some("   (клавиатура убрана)".to_owned()),
        KeyboardChoice::Show(k) => Some(format!("   {}", keyboard_rows(k).join("\n   "))),
    }
}

fn keyboard_rows(keyboard: &Keyboard) -> Vec<String> {
    match keyboard {
        Keyboard::Reply(rows) => rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|b| {
                        if b.share_contact {
                            format!("[{} ☎]", b.text)
                        } else {
                            format!("[{}]", b.text)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect(),
        Keyboard::Inline(rows) => rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|b| format!("[{} → {}]", b.text, b.url))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect(),
    }
}

/// One effect as a JSON object.
pub fn json(effect: &Effect) -> Value {
    match effect {
        Effect::Reply { text, keyboard } => {
            json!({"effect": "reply", "text": text, "keyboard": keyboard_json(keyboard)})
        }
        Effect::ReplyFile(file) => {
            json!({"effect": "reply_file", "url": file.url, "kind": file.kind})
        }
        Effect::ForwardToCrm {
            target,
            channel,
            text,
        } => {
            json!({"effect": "forward_to_crm", "target": target, "channel": channel, "text": text})
        }
        Effect::AdminNotice { target, text } => {
            json!({"effect": "admin_notice", "target": target, "text": text})
        }
        Effect::CopyMediaToAdmins { target, caption } => {
            json!({"effect": "copy_media", "target": target, "caption": caption})
        }
        Effect::Register => json!({"effect": "register"}),
        Effect::SavePhone(phone) => json!({"effect": "save_phone", "phone": phone.as_str()}),
        Effect::GrantBonus {
            amount,
            expires_at,
            reason,
        } => {
            json!({"effect": "grant_bonus", "amount": amount, "expires_at": expires_at.to_rfc3339(), "reason": reason})
        }
        Effect::HoldMessage { text } => json!({"effect": "hold", "text": text}),
        Effect::ReleaseHeld { count } => json!({"effect": "release_held", "count": count}),
        Effect::SetState { from, to } => json!({"effect": "set_state", "from": from, "to": to}),
        Effect::EnterManagerChat { until } => {
            json!({"effect": "enter_manager_chat", "until": until.to_rfc3339()})
        }
        Effect::LeaveManagerChat => json!({"effect": "leave_manager_chat"}),
        Effect::MarkBlocked => json!({"effect": "mark_blocked"}),
        Effect::ClearBlocked => json!({"effect": "clear_blocked"}),
    }
}

fn keyboard_json(choice: &KeyboardChoice) -> Value {
    match choice {
        KeyboardChoice::Keep => Value::Null,
        KeyboardChoice::Remove => json!({"type": "remove"}),
        KeyboardChoice::Show(k) => match k.as_ref() {
            Keyboard::Reply(rows) => json!({
                "type": "reply",
                "rows": rows.iter().map(|r| r.iter().map(|b| json!({"text": b.text, "share_contact": b.share_contact})).collect::<Vec<_>>()).collect::<Vec<_>>(),
            }),
            Keyboard::Inline(rows) => json!({
                "type": "inline",
                "rows": rows.iter().map(|r| r.iter().map(|b| json!({"text": b.text, "url": b.url})).collect::<Vec<_>>()).collect::<Vec<_>>(),
            }),
        },
    }
}

/// The labels of a keyboard, row by row (for test expectations).
pub fn keyboard_labels(keyboard: &Keyboard) -> Vec<Vec<String>> {
    match keyboard {
        Keyboard::Reply(rows) => rows
            .iter()
            .map(|r| r.iter().map(|b| b.text.clone()).collect())
            .collect(),
        Keyboard::Inline(rows) => rows
            .iter()
            .map(|r| r.iter().map(|b| b.text.clone()).collect())
            .collect(),
    }
}
