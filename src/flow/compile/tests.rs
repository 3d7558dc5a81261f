//! Validation, problem by problem, on small flows.

use super::load;

const BASE: &str = "version: 1
texts:
  finish_step: Закончите шаг.
keyboards:
  main: [[Прайс]]
buttons:
  Прайс: [{ reply: \"Цены.\" }]
states:
  main: {}
";

/// The messages of every problem found in `BASE` plus `extra`.
fn problems(extra: &str) -> Vec<String> {
    let source = format!("{BASE}{extra}");
    match load(&source) {
        Ok(loaded) => loaded
            .warnings
            .diagnostics
            .iter()
            .map(|d| format!("W {}", d.message))
            .collect(),
        Err(report) => report
            .diagnostics
            .iter()
            .map(|d| format!("{} {}", if d.is_error() { "E" } else { "W" }, d.message))
            .collect(),
    }
}

fn has(problems: &[String], needle: &str) -> bool {
    problems.iter().any(|p| p.contains(needle))
}

#[test]
fn the_base_flow_is_clean() {
    assert_eq!(problems(""), Vec::<String>::new());
}

#[test]
fn a_missing_version_and_an_unknown_section_are_named() {
    let p = problems("textz: {}\n");
    assert!(
        has(&p, "E неизвестный раздел «textz» — может быть, «texts»?"),
        "{p:?}"
    );
    let source = BASE.replacen("version: 1\n", "", 1);
    let report = load(&source).err().unwrap_or_default();
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.message.contains("version: 1"))
    );
}

#[test]
fn names_defined_twice_are_errors() {
    let p = problems("scenarios:\n  a: [stop]\n  a: [stop]\n");
    assert!(has(&p, "E сценарий «a» встречается дважды"), "{p:?}");
}

#[test]
fn keyboards_are_checked() {
    let source = BASE.replace(
        "  main: [[Прайс]]\n",
        "  main: [[Прайс]]\n  empty: []\n  mixed: [[Прайс, { text: B, url: \"https://x.ru\" }]]\n  long: [[\"очень длинная надпись на кнопке, которую никто не дочитает до самого конца, честно\"]]\n  bad_link: [[{ text: C, url: \"ftp://x\" }]]\n  slash: [[/start]]\n",
    );
    let messages: Vec<String> = load(&source)
        .err()
        .unwrap_or_default()
        .diagnostics
        .into_iter()
        .map(|d| d.message)
        .collect();
    for needle in [
        "клавиатура «empty» пустая",
        "смешаны обычные кнопки и кнопки-ссылки",
        "не больше 64",
        "должна начинаться с https://",
        "Telegram примет её за команду",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(needle)),
            "no «{needle}» in {messages:?}"
        );
    }
}

#[test]
fn an_action_with_two_verbs_or_none_is_refused() {
    let p = problems("fallback:\n  - { reply: \"Да.\", goto: main }\n  - { keyboard: main }\n");
    assert!(has(&p, "несколько главных полей (reply, goto)"), "{p:?}");
    assert!(has(&p, "нет главного поля"), "{p:?}");
}

#[test]
fn a_modifier_without_its_verb_is_refused() {
    let p = problems("fallback:\n  - { goto: main, keyboard: main }\n");
    assert!(has(&p, "поле «keyboard» здесь не работает"), "{p:?}");
}

#[test]
fn a_rule_needs_exactly_one_trigger() {
    let source = BASE.replace(
        "  main: {}\n",
        "  main:\n    rules:\n      - do: [stop]\n      - { text: any, any: true, do: [stop] }\n",
    );
    let messages: Vec<String> = load(&source)
        .err()
        .unwrap_or_default()
        .diagnostics
        .into_iter()
        .map(|d| d.message)
        .collect();
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.contains("нужно ровно одно из"))
            .count(),
        2,
        "{messages:?}"
    );
}

#[test]
fn scenarios_that_call_themselves_are_refused() {
    let p = problems("scenarios:\n  a: [run: b]\n  b: [run: a]\nfallback: [run: a]\n");
    assert!(has(&p, "вызывает сам себя"), "{p:?}");
}

#[test]
fn builtins_are_checked_with_the_texts_they_need() {
    let p = problems("fallback: [save_phone, welcom_bonus]\n");
    assert!(
        has(&p, "действию «save_phone» нужен текст «phone_invalid»"),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "неизвестное действие «welcom_bonus» — может быть, «welcome_bonus»?"
        ),
        "{p:?}"
    );
}

#[test]
fn durations_and_time_zones_are_checked() {
    let p = problems(
        "business: { timezone: Europe/Moskow }\nfallback:\n  - { reply: \"Да.\", at_most_every: soon }\n",
    );
    assert!(has(&p, "неизвестный часовой пояс «Europe/Moskow»"), "{p:?}");
    assert!(has(&p, "не понимаю срок «soon»"), "{p:?}");
}

#[test]
fn hours_problems_point_at_their_day() {
    let source =
        format!("{BASE}business:\n  hours:\n    mon-fri: \"9-18\"\n    sunday: выходной\n");
    let report = load(&source).err().unwrap_or_default();
    let lines: Vec<u32> = report.diagnostics.iter().map(|d| d.pos.line).collect();
    assert_eq!(lines, [12, 13], "{:?}", report.diagnostics);
}

#[test]
fn a_missing_start_state_is_an_error() {
    let p = problems("start_state: mian\n");
    assert!(
        has(
            &p,
            "нет состояния «mian», с которого начинается разговор — может быть, «main»?"
        ),
        "{p:?}"
    );
}

#[test]
fn anytime_items_must_exist() {
    let p = problems("anytime: [/cancle, Отмена]\n");
    assert!(has(&p, "команда «/cancle», а такой команды нет"), "{p:?}");
    assert!(has(&p, "кнопка «Отмена», а такой кнопки нет"), "{p:?}");
}

#[test]
fn a_keyboard_button_that_does_nothing_is_a_warning() {
    let source = BASE.replace("  main: [[Прайс]]\n", "  main: [[Прайс, Забытая]]\n");
    let warnings = load(&source)
        .map(|l| l.warnings.diagnostics)
        .unwrap_or_default();
    assert!(warnings.iter().any(|d| {
        d.message
            .contains("кнопка «Забытая» есть в клавиатуре, но ничего не делает")
    }));
}
