//! The `flowbot` binary as a flow editor uses it: check, chat, test, graph, schema.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn flowbot(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowbot"))
        .args(args)
        .current_dir(root())
        .env_remove("TELEGRAM_BOT_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("flowbot does not start: {e}"));
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("flowbot did not finish: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The default flow with eight planted mistakes, and where each one stands.
fn planted(dir: &Path) -> (PathBuf, Vec<(usize, &'static str)>) {
    let mut source = std::fs::read_to_string(root().join("flows/default.yaml")).unwrap_or_default();
    let edits: [(&str, &str, &str); 8] = [
        (
            "{ goto: waiting_order }",
            "{ goto: waitng_order }",
            "неизвестное состояние «waitng_order» — может быть, «waiting_order»?",
        ),
        (
            "{ reply: ask_order, keyboard: cancel }",
            "{ reply: ask_order, keyboard: cancle }",
            "неизвестная клавиатура «cancle» — может быть, «cancel»?",
        ),
        (
            "[{ reply: bonus_empty, keyboard: main }]",
            "[{ reply: bonus_emty, keyboard: main }]",
            "неизвестный текст «bonus_emty» — может быть, «bonus_empty»?",
        ),
        (
            "Здравствуйте, {first_name}!",
            "Здравствуйте, {frist_name}!",
            "неизвестная подстановка «{frist_name}» — может быть, «first_name»?",
        ),
        (
            "welcome_bonus: { amount: 300, days: 30 }",
            "welcome_bonus: { amount: много, days: 30 }",
            "здесь нужно целое число, а написано текст «много»",
        ),
        (
            "{ forward: admins, text: order_notice }",
            "{ forward: admns, text: order_notice }",
            "неизвестный получатель «admns» — может быть, «admins»?",
        ),
        (
            "  Ввести номер вручную:\n",
            "  ПРАЙС!:\n    - { reply: price }\n  Ввести номер вручную:\n",
            "после нормализации одинаковы",
        ),
        (
            "  waiting_order:\n    rules:\n",
            "  waiting_order:\n    rules:\n      - regex: \"(\\\\d+\"\n        do: [reply: ask_order]\n",
            "регулярное выражение с ошибкой",
        ),
    ];
    let mut expected = Vec::new();
    for (from, to, message) in edits {
        assert!(
            source.contains(from),
            "the default flow changed: `{from}` is gone; update this test"
        );
        source = source.replacen(from, to, 1);
        expected.push(message);
    }
    let lines: Vec<(usize, &'static str)> = [
        "goto: waitng_order",
        "keyboard: cancle",
        "reply: bonus_emty",
        "{frist_name}",
        "amount: много",
        "forward: admns",
        "ПРАЙС!:",
        "regex: \"(",
    ]
    .iter()
    .zip(expected)
    .map(|(needle, message)| {
        let line = source
            .lines()
            .position(|l| l.contains(needle))
            .map_or(0, |i| i + 1);
        (line, message)
    })
    .collect();
    let path = dir.join("broken.yaml");
    std::fs::write(&path, source)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    (path, lines)
}

#[test]
fn check_reports_all_eight_planted_mistakes_with_their_lines() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (path, expected) = planted(dir.path());
    let out = flowbot(&["check", &path.display().to_string()], "");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for (line, message) in expected {
        let place = format!("broken.yaml:{line}:");
        let found = stdout
            .split("\n\n")
            .any(|block| block.contains(message) && block.contains(&place));
        assert!(found, "no «{message}» at {place} in:\n{stdout}");
    }
    assert!(stdout.contains("ошибок: 8"), "{stdout}");
}

#[test]
fn check_passes_the_default_flow() {
    let out = flowbot(&["check", "flows/default.yaml", "--strict"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("всё в порядке"));
}

#[test]
fn check_strict_fails_on_warnings() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let source = std::fs::read_to_string(root().join("flows/default.yaml")).unwrap_or_default();
    let source = source.replacen(
        "states:\n",
        "states:\n  forgotten:\n    rules:\n      - any: true\n        do: [goto: main]\n",
        1,
    );
    let path = dir.path().join("warn.yaml");
    std::fs::write(&path, source).unwrap_or_else(|e| panic!("{e}"));
    let path = path.display().to_string();
    assert_eq!(flowbot(&["check", &path], "").status.code(), Some(0));
    let strict = flowbot(&["check", &path, "--strict"], "");
    assert_eq!(strict.status.code(), Some(2));
    assert!(text(&strict.stdout).contains("в состояние «forgotten» ничто не ведёт"));
}

#[test]
fn chat_plays_a_whole_conversation_from_stdin() {
    let script = "/start\nСколько стоит диван?\n/contact +79991234567\nМои бонусы\n@manager Диван от 2500 ₽\nпрайс\n@time 2026-11-27T21:00\n🕐 Режим работы\n";
    let out = flowbot(&["chat"], script);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for expected in [
        "бот: Здравствуйте, Анна!",
        "[📱 Поделиться номером ☎]",
        "· сообщение отложено до получения номера",
        "· номер сохранён: +79991234567",
        "→ менеджеру (manager, clients_tg): Сколько стоит диван?",
        "[Мои бонусы] [Сделать заказ]",
        "На вашем счёте 300 бонусов",
        "бот: Диван от 2500 ₽",
        "→ менеджеру (manager, clients_tg): прайс",
        "откроемся завтра в 10:00",
    ] {
        assert!(stdout.contains(expected), "no `{expected}` in:\n{stdout}");
    }
}

#[test]
fn chat_keeps_the_conversation_in_the_given_database() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("chat.db").display().to_string();
    flowbot(&["chat", "--db", &db], "/contact +79991234567\n");
    let out = flowbot(&["chat", "--db", &db, "--json"], "Мои бонусы\n");
    let replies: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let reply = replies
        .iter()
        .find(|r| r["effect"] == "reply")
        .cloned()
        .unwrap_or_default();
    assert!(
        reply["text"]
            .as_str()
            .is_some_and(|t| t.contains("300 бонусов")),
        "{replies:?}"
    );
    assert_eq!(reply["keyboard"]["type"], "reply");
    assert_eq!(reply["keyboard"]["rows"][0][0]["text"], "Мои бонусы");
}

#[test]
fn test_command_runs_the_flow_tests_and_fails_on_a_wrong_expectation() {
    let ok = flowbot(&["test"], "");
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stdout));
    assert!(text(&ok.stdout).contains(" passed, 0 failed"));

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let test = format!(
        "flow: {}\ntests:\n  - name: неверное ожидание\n    steps:\n      - customer: прайс\n        expect:\n          reply: \"Бесплатно!\"\n",
        root().join("flows/default.yaml").display()
    );
    let path = dir.path().join("wrong.yaml");
    std::fs::write(&path, test).unwrap_or_else(|e| panic!("{e}"));
    let out = flowbot(&["test", &path.display().to_string()], "");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("ожидалось")
            && stdout.contains("«Бесплатно!»")
            && stdout.contains("Цены на основные услуги"),
        "{stdout}"
    );
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
}

#[test]
fn graph_prints_mermaid_with_states_and_targets() {
    let out = flowbot(&["graph"], "");
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("flowchart LR"), "{stdout}");
    for needle in ["waiting_order", "«Сделать заказ»", "admins", "manager"] {
        assert!(stdout.contains(needle), "no {needle} in\n{stdout}");
    }
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = flowbot(&["schema"], "");
    let committed =
        std::fs::read_to_string(root().join("schema/flow.schema.json")).unwrap_or_default();
    assert_eq!(text(&out.stdout), committed);
}

#[test]
fn readme_embeds_the_current_diagram_of_the_default_flow() {
    let out = text(&flowbot(&["graph"], "").stdout);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap_or_default();
    assert!(
        readme.contains(&format!("```mermaid\n{out}```")),
        "README.md's diagram is stale: paste the output of `cargo run -- graph` into it"
    );
}

#[test]
fn run_without_a_token_names_the_variable_and_points_at_chat() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_flowbot"))
        .arg("run")
        .current_dir(dir.path())
        .env_remove("TELEGRAM_BOT_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("flowbot does not start: {e}"));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("TELEGRAM_BOT_TOKEN") && err.contains("flowbot chat"),
        "{err}"
    );
}

#[test]
fn a_bad_setting_is_a_startup_error_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_flowbot"))
        .arg("run")
        .current_dir(dir.path())
        .env(
            "TELEGRAM_BOT_TOKEN",
            "7412583690:AAHtestTOKENfor-fake-telegram_0123456",
        )
        .env("ADMIN_CHAT_IDS", "12x")
        .output()
        .unwrap_or_else(|e| panic!("flowbot does not start: {e}"));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ADMIN_CHAT_IDS"), "{err}");
    assert!(!err.contains("AAHtestTOKEN"), "the token leaked: {err}");
}
