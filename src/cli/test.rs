//! `flowbot test`: run conversation tests and show failures side by side.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::flowtest::{Failure, run_paths};

pub(super) fn run(mut paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    if paths.is_empty() {
        paths.push(PathBuf::from("flows/tests"));
    }
    let results = run_paths(&paths);
    if results.is_empty() {
        anyhow::bail!("no test files (*.yaml) found in {paths:?}");
    }
    let (mut passed, mut failed) = (0, 0);
    for result in &results {
        let file = result.file.display();
        if let Some(broken) = &result.broken {
            println!("✗ {file}: не запустился\n{broken}");
            failed += 1;
            continue;
        }
        println!(
            "{} {file}: тестов пройдено {}, не пройдено {}",
            if result.failures.is_empty() {
                "✓"
            } else {
                "✗"
            },
            result.passed,
            result.failed_tests()
        );
        for failure in &result.failures {
            print!("{}", side_by_side(&file.to_string(), failure));
        }
        passed += result.passed;
        failed += result.failed_tests();
    }
    println!("\n{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The failed step, then expected and actual in two columns.
fn side_by_side(file: &str, f: &Failure) -> String {
    let mut out = format!(
        "\n  ✗ «{}», шаг {} ({file}:{}): {}\n    проверка {}:\n",
        f.test, f.step, f.line, f.step_text, f.what
    );
    let left: Vec<&str> = f.expected.lines().collect();
    let right: Vec<&str> = f.actual.lines().collect();
    let width = left
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(9, 60);
    out.push_str(&format!("    {:<width$} │ {}\n", "ожидалось", "получено"));
    for i in 0..left.len().max(right.len()) {
        let l = left.get(i).copied().unwrap_or("");
        let r = right.get(i).copied().unwrap_or("");
        let pad = width.saturating_sub(l.chars().count());
        out.push_str(&format!("    {l}{} │ {r}\n", " ".repeat(pad)));
    }
    out
}
