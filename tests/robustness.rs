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
