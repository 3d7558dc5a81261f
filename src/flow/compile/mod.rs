//! From flow text to a validated [`Flow`], reporting every problem at once.
//!
//! Loading is two-phase: the YAML becomes the raw types of `flow::raw`
//! (shape only), then this module resolves names, normalises labels,
//! compiles regexes and runs the whole-flow checks. A problem in one part
//! never hides the problems in the others.

mod actions;
mod checks;
mod sections;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::diagnostic::{Diagnostic, Report};
use super::model::{Flow, Keyboard};
use super::node::{Node, NodeDe, NodeKind, Pos, Sink};
use super::raw::{self, RawFlow};
use super::template::Template;

/// Larger files are refused before parsing.
pub const MAX_SOURCE_BYTES: usize = 512 * 1024;

/// A flow that loaded, with the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub flow: Flow,
    pub warnings: Report,
}

/// A flow compiled for the people who read its problems: the flow with its
/// warnings rendered (`None` when there are none), or every problem rendered
/// as the `file:line:column` text `flowbot check` prints. `name` is the
/// file's name as shown in that text.
pub fn load_rendered(name: &str, source: &str) -> Result<(Flow, Option<String>), String> {
    match load(source) {
        Ok(loaded) if loaded.warnings.diagnostics.is_empty() => Ok((loaded.flow, None)),
        Ok(loaded) => {
            let warnings = loaded.warnings.render(name, source);
            Ok((loaded.flow, Some(warnings)))
        }
        Err(report) => Err(report.render(name, source)),
    }
}

/// Parses and validates a flow. `Err` holds every problem (errors and warnings).
pub fn load(source: &str) -> Result<Loaded, Report> {
    let mut report = Report::default();
    match parse_tree(source, &mut report) {
        Some(root) => load_tree(source, &root, report),
        None => Err(report),
    }
}

/// Parses flow text into a located tree (for tools that combine flows).
pub fn parse_yaml(source: &str) -> Result<Node, Report> {
    let mut report = Report::default();
    parse_tree(source, &mut report).ok_or(report)
}

/// Validates an already parsed tree; `source` is used for exact columns.
pub fn load_tree(source: &str, root: &Node, mut report: Report) -> Result<Loaded, Report> {
    let raw = match to_raw(root, &mut report) {
        Some(raw) => raw,
        None => return Err(report),
    };
    let flow = Compiler::new(source, &mut report).compile(&raw);
    report.sort();
    match flow {
        Some(flow) if report.errors() == 0 => Ok(Loaded {
            flow,
            warnings: report,
        }),
        _ => Err(report),
    }
}

/// Text → located tree. `None` when the text is not YAML at all.
fn parse_tree(source: &str, report: &mut Report) -> Option<Node> {
    if source.len() > MAX_SOURCE_BYTES {
        report.push(Diagnostic::error(
            Pos::UNKNOWN,
            format!(
                "файл слишком большой ({} КБ): сценарий должен быть не больше {} КБ",
                source.len() / 1024,
                MAX_SOURCE_BYTES / 1024
            ),
        ));
        return None;
    }
    match serde_saphyr::from_str_with_options::<Node>(source, yaml_options()) {
        Ok(node) => Some(node),
        Err(e) => {
            report.push(syntax_error(&e));
            None
        }
    }
}

/// Tree → raw types. `None` when not even the shape could be read.
fn to_raw(node: &Node, report: &mut Report) -> Option<RawFlow> {
    let NodeKind::Map(pairs) = &node.kind else {
        report.push(Diagnostic::error(
            node.pos,
            "сценарий должен начинаться с полей верхнего уровня (version:, texts:, keyboards: …)",
        ));
        return None;
    };
    let known = known_root_pairs(pairs, report);
    let root = Node {
        pos: node.pos,
        kind: NodeKind::Map(known),
    };
    let sink = Sink::default();
    let raw = RawFlow::deserialize(NodeDe::new(&root, &sink));
    for e in sink.into_inner() {
        report.push(Diagnostic::error(e.pos, e.message));
    }
    match raw {
        Ok(raw) => Some(raw),
        Err(e) => {
            report.push(Diagnostic::error(e.pos, e.message));
            None
        }
    }
}

/// Budgets that stop alias bombs and absurd nesting long before memory does.
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = 200_000;
    budget.max_aliases = 2_000;
    budget.max_anchors = 2_000;
    budget.max_nodes = 100_000;
    budget.max_depth = 32;
    budget.max_total_scalar_bytes = 4 * 1024 * 1024;
    budget.max_recorded_anchor_bytes = 1024 * 1024;
    serde_saphyr::options! {
        budget: Some(budget),
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
    }
}

fn syntax_error(e: &serde_saphyr::Error) -> Diagnostic {
    let pos = e.location().map_or(Pos::UNKNOWN, |loc| Pos {
        line: u32::try_from(loc.line()).unwrap_or(0),
        column: u32::try_from(loc.column()).unwrap_or(0),
    });
    let detail = e.to_string();
    let detail = detail.lines().next().unwrap_or_default();
    Diagnostic::error(
        pos,
        format!(
            "файл не читается как YAML ({detail}): проверьте отступы (только пробелы, одинаковые на одном уровне), двоеточия после имён и парные кавычки"
        ),
    )
}

/// Keeps the known top-level keys and reports the rest.
fn known_root_pairs(pairs: &[(Node, Node)], report: &mut Report) -> Vec<(Node, Node)> {
    let mut seen: HashMap<String, Pos> = HashMap::new();
    let mut known = Vec::new();
    for (key, value) in pairs {
        let name = key.as_text().unwrap_or_default();
        if !raw::ROOT_KEYS.contains(&name.as_str()) {
            report.push(Diagnostic::error(
                key.pos,
                format!(
                    "неизвестный раздел «{name}»{}",
                    super::suggest::hint(&name, raw::ROOT_KEYS.iter().copied())
                ),
            ));
            continue;
        }
        if let Some(first) = seen.insert(name.clone(), key.pos) {
            report.push(
                Diagnostic::error(key.pos, format!("раздел «{name}» указан дважды"))
                    .with_related(first, "первый раз он здесь"),
            );
            continue;
        }
        known.push((key.clone(), value.clone()));
    }
    known
}

/// Names defined in the flow, collected before anything refers to them.
#[derive(Default)]
struct Names {
    texts: HashMap<String, Template>,
    keyboards: HashMap<String, Arc<Keyboard>>,
    states: HashMap<String, usize>,
    targets: HashMap<String, usize>,
    /// Each target's own template, by target index.
    target_texts: Vec<Template>,
    scenarios: HashMap<String, usize>,
}

/// Carries what compiling needs: the source (for exact columns), the report, the names.
struct Compiler<'a> {
    source: &'a str,
    report: &'a mut Report,
    names: Names,
}
