//! The YAML conversation tests in `flows/tests/` run under `cargo test` too.

use std::path::PathBuf;

use flowbot::flowtest::run_paths;

#[test]
fn default_flow_conversations_pass() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("flows/tests");
    let results = run_paths(&[dir]);
    assert!(
        results.len() >= 4,
        "expected the flow's test files, found {}",
        results.len()
    );
    let mut report = String::new();
    let mut passed = 0;
    for r in &results {
        if let Some(broken) = &r.broken {
            report.push_str(&format!("{}: {broken}\n", r.file.display()));
        }
        for f in &r.failures {
            report.push_str(&format!(
                "{}:{} «{}» step {} ({}): {}\n  expected: {}\n  actual:   {}\n",
                r.file.display(),
                f.line,
                f.test,
                f.step,
                f.step_text,
                f.what,
                f.expected,
                f.actual
            ));
        }
        passed += r.passed;
    }
    assert!(report.is_empty(), "conversation tests failed:\n{report}");
    assert!(passed >= 35, "only {passed} conversations ran");
}
