//! Hostile or broken flow files never panic the loader; they get diagnostics.

use flowbot::flow::compile;
use proptest::prelude::*;

fn default_flow() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/flows/default.yaml"))
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = compile::load(&text);
    }

    #[test]
    fn yaml_shaped_noise_never_panics(text in "([a-z_]{1,8}: ?(\\[|\\{|-|\\||\"|'|&a|\\*a|[0-9]{1,3}|[а-я ]{0,10})\n {0,4}){0,30}") {
        let _ = compile::load(&text);
    }

    #[test]
    fn the_default_flow_with_a_line_removed_never_panics(index in 0usize..400) {
        let source = default_flow();
        let lines: Vec<&str> = source.lines().collect();
        let index = index % lines.len().max(1);
        let broken: String = lines.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, l)| format!("{l}\n")).collect();
        let _ = compile::load(&broken);
    }

    #[test]
    fn the_default_flow_with_a_byte_changed_never_panics(index in 0usize..20_000, byte in any::<u8>()) {
        let mut source = default_flow().into_bytes();
        let index = index % source.len().max(1);
        source[index] = byte;
        let text = String::from_utf8_lossy(&source);
        let _ = compile::load(&text);
    }
}

#[test]
fn an_alias_bomb_is_refused_with_a_diagnostic() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        bomb.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
    }
    let started = std::time::Instant::now();
    let result = compile::load(&bomb);
    assert!(result.is_err());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the budget did not stop the bomb quickly"
    );
}

#[test]
fn a_huge_file_is_refused_before_parsing() {
    let huge = "# x\n".repeat(200_000);
    let report = compile::load(&huge).err().unwrap_or_default();
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.message.contains("слишком большой"))
    );
}

#[test]
fn a_catastrophic_regex_is_refused() {
    let source = default_flow().replacen(
        "  waiting_order:\n    rules:\n",
        "  waiting_order:\n    rules:\n      - regex: \"(a{1000}){1000}\"\n        do: [reply: ask_order]\n",
        1,
    );
    let report = compile::load(&source).err().unwrap_or_default();
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.message.contains("слишком сложное")),
        "{:?}",
        report.diagnostics
    );
}

/// Every Telegram update fixture, as text.
fn update_fixtures() -> Vec<String> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/telegram/updates"
    );
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A damaged update from Telegram (or from the inbox) is read or skipped, never a panic.
    #[test]
    fn a_damaged_update_never_panics(which in 0usize..100, index in 0usize..5_000, byte in any::<u8>()) {
        let fixtures = update_fixtures();
        prop_assume!(!fixtures.is_empty());
        let mut raw = fixtures[which % fixtures.len()].clone().into_bytes();
        let index = index % raw.len().max(1);
        raw[index] = byte;
        if let Ok(update) = serde_json::from_slice::<teloxide::types::Update>(&raw) {
            let _ = flowbot::telegram::update::classify(&update, "cleaning_bot");
            let _ = flowbot::telegram::update::chat_message(&update, "cleaning_bot");
        }
    }

    /// The customer's words reach the engine exactly as written: nothing invented, nothing cut.
    #[test]
    fn a_text_update_gives_exactly_its_text(text in "[^/\\u{0}][^\\u{0}]{0,300}") {
        let update = serde_json::json!({
            "update_id": 1,
            "message": {
                "message_id": 1, "date": 1_795_158_900,
                "chat": { "id": 5, "type": "private", "first_name": "Анна" },
                "from": { "id": 5, "is_bot": false, "first_name": "Анна" },
                "text": text,
            }
        });
        let raw = update.to_string();
        let parsed: teloxide::types::Update = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{e}"));
        match flowbot::telegram::update::classify(&parsed, "cleaning_bot") {
            flowbot::telegram::update::Incoming::Customer { input, .. } => {
                prop_assert_eq!(input, flowbot::engine::Input::text(text));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
