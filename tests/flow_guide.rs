//! Every YAML example in the flow editor's guide is checked against the real language:
//! ```yaml blocks must load when merged into the default flow, ```yaml-error blocks must
//! fail with the message their first comment names.

use std::path::PathBuf;

use flowbot::flow::compile;
use flowbot::flow::diagnostic::Report;
use flowbot::flow::node::{Node, NodeKind};

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `(language, first line number, body)` of every fenced block.
fn blocks(markdown: &str) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(lang)) => open = Some((lang.trim().to_owned(), index + 2, String::new())),
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some((_, _, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// The default flow with the fragment's sections merged in (entries replace same-named ones).
fn merged(fragment: &Node) -> Node {
    let Ok(mut base) = compile::parse_yaml(&read("flows/default.yaml")) else {
        panic!("the default flow must parse");
    };
    let (NodeKind::Map(base_pairs), NodeKind::Map(pairs)) = (&mut base.kind, &fragment.kind) else {
        panic!("a guide example must be a map of flow sections");
    };
    for (key, value) in pairs {
        let slot = base_pairs
            .iter_mut()
            .find(|(k, _)| k.as_text() == key.as_text());
        match slot {
            Some((_, old)) => merge_into(old, value),
            None => base_pairs.push((key.clone(), value.clone())),
        }
    }
    base
}

fn merge_into(old: &mut Node, new: &Node) {
    match (&mut old.kind, &new.kind) {
        (NodeKind::Map(old_pairs), NodeKind::Map(new_pairs)) => {
            for (key, value) in new_pairs {
                match old_pairs
                    .iter_mut()
                    .find(|(k, _)| k.as_text() == key.as_text())
                {
                    Some((_, slot)) => *slot = value.clone(),
                    None => old_pairs.push((key.clone(), value.clone())),
                }
            }
        }
        _ => *old = new.clone(),
    }
}

fn check(body: &str) -> Result<(), Report> {
    let fragment = compile::parse_yaml(body)?;
    compile::load_tree(body, &merged(&fragment), Report::default()).map(|_| ())
}

#[test]
fn every_example_in_the_guide_is_true() {
    let guide = read("docs/flow-guide.md");
    let all = blocks(&guide);
    let (mut valid, mut broken) = (0, 0);
    for (lang, line, body) in &all {
        match lang.as_str() {
            "yaml" => {
                valid += 1;
                if let Err(report) = check(body) {
                    panic!(
                        "docs/flow-guide.md:{line}: the example does not load:\n{}",
                        report.render("example", body)
                    );
                }
            }
            "yaml-error" => {
                broken += 1;
                let expected = body
                    .lines()
                    .next()
                    .and_then(|l| l.trim().strip_prefix("# ошибка:"))
                    .map(str::trim)
                    .unwrap_or_else(|| {
                        panic!(
                            "docs/flow-guide.md:{line}: start a yaml-error block with `# ошибка: …`"
                        )
                    });
                match check(body) {
                    Ok(()) => panic!("docs/flow-guide.md:{line}: the broken example loads"),
                    Err(report) => assert!(
                        report
                            .diagnostics
                            .iter()
                            .any(|d| d.message.contains(expected)),
                        "docs/flow-guide.md:{line}: no «{expected}» among:\n{}",
                        report.render("example", body)
                    ),
                }
            }
            _ => {}
        }
    }
    assert!(valid >= 10, "only {valid} yaml examples in the guide");
    assert!(
        broken >= 5,
        "only {broken} yaml-error examples in the guide"
    );
}

#[test]
fn every_test_example_in_the_guide_parses_as_a_test() {
    let guide = read("docs/flow-guide.md");
    let tests: Vec<_> = blocks(&guide)
        .into_iter()
        .filter(|(lang, _, _)| lang == "yaml-test")
        .collect();
    assert!(!tests.is_empty(), "the guide shows no conversation test");
    for (_, line, body) in tests {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let flow = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("flows/default.yaml");
        let text = format!("flow: {}\n{body}", flow.display());
        let path = dir.path().join("example.yaml");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let results = flowbot::flowtest::run_paths(&[path]);
        let result = &results[0];
        assert!(
            result.broken.is_none() && result.failures.is_empty() && result.passed > 0,
            "docs/flow-guide.md:{line}: {:?} {:?}",
            result.broken,
            result.failures
        );
    }
}
