//! The engine's rules, one by one, on a small flow written for the purpose.

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::flow::compile;
use crate::flow::model::{Flow, KeyboardChoice};

const FLOW: &str = r#"
version: 1
business:
  name: Тест
  timezone: Europe/Moscow
  hours: { mon-fri: "09:00-18:00" }
  welcome_bonus: { amount: 100, days: 10 }
texts:
  finish_step: "Закончите шаг."
  phone_invalid: "Не номер."
  contact_not_own: "Не ваш."
  bonus_granted: "Бонус {welcome_bonus}."
  state_reset: "Начнём сначала."
keyboards:
  main: [[💰 Прайс, Заказ]]
targets:
  crm: { kind: wahelp, text: "[{phone}] {text}" }
  admins: { kind: admins }
anytime: [Отмена]
commands:
  /start: [register, { reply: "Привет, {first_name}!", keyboard: main }]
buttons:
  💰 Прайс: [{ reply: "Цены." }]
  Заказ: [{ reply: "Что заказать?" }, { goto: order }]
  Отмена: [{ goto: main }, { reply: "Отменено." }]
states:
  main:
    rules:
      - contact: own
        do: [save_phone, welcome_bonus, { release_held: crm }]
      - contact: other
        do: [reply: contact_not_own]
      - regex: "^\\d+$"
        if: no_phone
        do: [save_phone]
  order:
    rules:
      - text: any
        do: [{ forward: admins, text: "Заказ: {text}" }, { goto: main }]
fallback:
  - if: no_phone
    then: [hold, { reply: "Дайте номер." }, stop]
  - { forward: crm }
  - { reply: "Передано.", at_most_every: 30m }
manager:
  conversation_minutes: 10
  do: [{ reply: "{text}" }]
blocked:
  - { forward: admins, text: "Блок {name}", at_most_every: 1d }
"#;

fn flow() -> Flow {
    match compile::load(FLOW) {
        Ok(l) => l.flow,
        Err(r) => panic!("test flow must load:\n{}", r.render("test.yaml", FLOW)),
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

fn session() -> Session {
    let customer = Customer {
        telegram_id: 42,
        first_name: "Анна".into(),
        last_name: None,
        username: None,
    };
    Session::new(customer, "main")
}

fn with_phone() -> Session {
    let mut s = session();
    s.phone = crate::phone::Phone::parse("+79991234567").ok();
    s
}

fn replies(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reply { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn forwards(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ForwardToCrm { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_command_registers_and_replies_with_a_keyboard() {
    let out = step(&flow(), &session(), &Input::text("/start"), t0());
    assert_eq!(out.effects[0], Effect::Register);
    assert!(
        matches!(&out.effects[1], Effect::Reply { text, keyboard: KeyboardChoice::Show(_) } if text == "Привет, Анна!")
    );
    assert_eq!(out.session.registered_at, Some(t0()));
}

#[test]
fn labels_match_after_normalisation_outside_a_manager_chat() {
    let flow = flow();
    for typed in [
        "💰 Прайс",
        "💰\u{fe0f} Прайс",
        "прайс",
        "Прайс!",
        "  ПРАЙС ",
    ] {
        let out = step(&flow, &with_phone(), &Input::text(typed), t0());
        assert_eq!(replies(&out.effects), ["Цены."], "{typed:?}");
    }
}

#[test]
fn with_a_manager_only_the_exact_label_is_a_button() {
    let flow = flow();
    let mut s = with_phone();
    s.manager_until = Some(t0() + chrono::Duration::minutes(5));
    let typed = step(&flow, &s, &Input::text("прайс"), t0());
    assert_eq!(forwards(&typed.effects), ["[+79991234567] прайс"]);
    let pressed = step(&flow, &s, &Input::text("💰\u{fe0f} Прайс"), t0());
    assert_eq!(replies(&pressed.effects), ["Цены."]);
}

#[test]
fn a_manager_chat_ends_on_time() {
    let flow = flow();
    let out = step(&flow, &with_phone(), &Input::manager("Здравствуйте"), t0());
    assert_eq!(replies(&out.effects), ["Здравствуйте"]);
    assert!(
        out.session
            .with_manager(t0() + chrono::Duration::minutes(9))
    );
    let later = step(
        &flow,
        &out.session,
        &Input::text("прайс"),
        t0() + chrono::Duration::minutes(11),
    );
    assert!(later.effects.contains(&Effect::LeaveManagerChat));
    assert_eq!(replies(&later.effects), ["Цены."]);
}

#[test]
fn a_state_blocks_other_buttons_but_not_anytime_ones() {
    let flow = flow();
    let mut s = with_phone();
    s.state = "order".into();
    let busy = step(&flow, &s, &Input::text("Прайс"), t0());
    assert_eq!(replies(&busy.effects), ["Закончите шаг."]);
    assert_eq!(busy.session.state, "order");
    let cancel = step(&flow, &s, &Input::text("отмена"), t0());
    assert_eq!(cancel.session.state, "main");
}

#[test]
fn a_state_rule_forwards_to_admins_and_leaves() {
    let mut s = with_phone();
    s.state = "order".into();
    let out = step(&flow(), &s, &Input::text("диван"), t0());
    assert!(out.effects.contains(&Effect::AdminNotice {
        target: "admins".into(),
        text: "Заказ: диван".into()
    }));
    assert!(out.effects.contains(&Effect::SetState {
        from: "order".into(),
        to: "main".into()
    }));
}

#[test]
fn text_without_a_phone_is_held_and_released_in_order_when_the_phone_comes() {
    let flow = flow();
    let first = step(&flow, &session(), &Input::text("раз"), t0());
    assert_eq!(replies(&first.effects), ["Дайте номер."]);
    assert!(forwards(&first.effects).is_empty());
    let second = step(&flow, &first.session, &Input::text("два"), t0());
    assert_eq!(second.session.held.len(), 2);
    let contact = Input::Contact {
        phone: "89991234567".into(),
        user_id: Some(42),
    };
    let third = step(&flow, &second.session, &contact, t0());
    assert_eq!(
        forwards(&third.effects),
        ["[+79991234567] раз", "[+79991234567] два"]
    );
    assert!(third.effects.contains(&Effect::ReleaseHeld { count: 2 }));
    assert!(third.session.held.is_empty());
}

#[test]
fn the_welcome_bonus_is_granted_once_and_expires() {
    let flow = flow();
    let contact = Input::Contact {
        phone: "+79991234567".into(),
        user_id: Some(42),
    };
    let once = step(&flow, &session(), &contact, t0());
    assert_eq!(replies(&once.effects), ["Бонус 100."]);
    assert_eq!(once.session.bonus_balance(t0()), 100);
    let twice = step(&flow, &once.session, &contact, t0());
    assert!(replies(&twice.effects).is_empty());
    assert_eq!(twice.session.bonus_balance(t0()), 100);
    assert_eq!(
        twice
            .session
            .bonus_balance(t0() + chrono::Duration::days(11)),
        0
    );
}

#[test]
fn someone_elses_contact_is_refused() {
    let other = Input::Contact {
        phone: "+79990000000".into(),
        user_id: Some(7),
    };
    let out = step(&flow(), &session(), &other, t0());
    assert_eq!(replies(&out.effects), ["Не ваш."]);
    assert_eq!(out.session.phone, None);
}

#[test]
fn an_invalid_typed_phone_stops_with_a_message() {
    let out = step(&flow(), &session(), &Input::text("123"), t0());
    assert_eq!(replies(&out.effects), ["Не номер."]);
    assert_eq!(out.session.phone, None);
}

#[test]
fn the_acknowledgement_is_throttled() {
    let flow = flow();
    let first = step(&flow, &with_phone(), &Input::text("вопрос"), t0());
    assert_eq!(replies(&first.effects), ["Передано."]);
    let soon = step(
        &flow,
        &first.session,
        &Input::text("ещё"),
        t0() + chrono::Duration::minutes(29),
    );
    assert!(replies(&soon.effects).is_empty());
    assert_eq!(forwards(&soon.effects), ["[+79991234567] ещё"]);
    let later = step(
        &flow,
        &soon.session,
        &Input::text("и ещё"),
        t0() + chrono::Duration::minutes(31),
    );
    assert_eq!(replies(&later.effects), ["Передано."]);
}

#[test]
fn blocking_marks_the_customer_and_runs_the_blocked_rule_at_most_daily() {
    let flow = flow();
    let blocked = step(&flow, &with_phone(), &Input::Blocked, t0());
    assert_eq!(blocked.effects[0], Effect::MarkBlocked);
    assert!(blocked.effects.contains(&Effect::AdminNotice {
        target: "admins".into(),
        text: "Блок Анна".into()
    }));
    let reply = step(&flow, &blocked.session, &Input::manager("ау"), t0());
    assert!(reply.effects.is_empty(), "{:?}", reply.effects);
    let back = step(&flow, &blocked.session, &Input::text("я тут"), t0());
    assert_eq!(back.effects[0], Effect::ClearBlocked);
}

#[test]
fn a_session_in_a_removed_state_returns_to_the_start() {
    let mut s = with_phone();
    s.state = "gone".into();
    let out = step(&flow(), &s, &Input::text("прайс"), t0());
    assert_eq!(
        out.effects[0],
        Effect::SetState {
            from: "gone".into(),
            to: "main".into()
        }
    );
    assert_eq!(replies(&out.effects), ["Начнём сначала.", "Цены."]);
}

#[test]
fn media_outside_any_rule_reaches_the_fallback_without_an_empty_forward() {
    let media = Input::Media {
        media: MediaKind::Sticker,
        caption: None,
    };
    let out = step(&flow(), &with_phone(), &media, t0());
    assert!(forwards(&out.effects).is_empty());
}

#[test]
fn the_engine_never_panics_on_odd_text() {
    let flow = flow();
    for text in [
        "",
        "/",
        "/@",
        "/ start",
        "\u{200d}",
        "💰",
        "\u{feff}/start",
        "/START@bot extra",
    ] {
        let _ = step(&flow, &with_phone(), &Input::text(text), t0());
    }
}

#[test]
fn a_keycap_before_a_label_and_a_long_text_are_told_apart() {
    let flow = flow();
    let keycap = step(
        &flow,
        &with_phone(),
        &Input::text("1\u{FE0F}\u{20E3} Прайс"),
        t0(),
    );
    assert_eq!(replies(&keycap.effects), ["Цены."]);
    let long = format!("Прайс {}", "очень ".repeat(50));
    let out = step(&flow, &with_phone(), &Input::text(long.clone()), t0());
    assert_eq!(forwards(&out.effects), [format!("[+79991234567] {long}")]);
}
