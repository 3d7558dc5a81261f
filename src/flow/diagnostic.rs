//! Problems found in a flow file, and how they are shown to its editor.
//!
//! Every problem is `file:line:column`, the offending line, a caret under the
//! spot, and a Russian message, much like rustc's own errors.

use std::fmt::Write as _;

use super::node::Pos;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The flow still works, but something is probably a mistake.
    Warning,
    /// The flow cannot be used.
    Error,
}

/// One problem in the flow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub pos: Pos,
    pub message: String,
    /// Where the other half of a conflict stands (e.g. the first of two equal buttons).
    pub related: Option<(Pos, String)>,
}

impl Diagnostic {
    pub fn error(pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            pos,
            message: message.into(),
            related: None,
        }
    }

    pub fn warning(pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            pos,
            message: message.into(),
            related: None,
        }
    }

    pub fn with_related(mut self, pos: Pos, note: impl Into<String>) -> Self {
        self.related = Some((pos, note.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The problem as the editor reads it, with the source line and a caret.
    pub fn render(&self, file: &str, source: &str) -> String {
        let label = match self.severity {
            Severity::Error => "ошибка",
            Severity::Warning => "предупреждение",
        };
        let mut out = format!("{label}: {}\n", self.message);
        snippet(&mut out, file, source, self.pos);
        if let Some((pos, note)) = &self.related {
            let _ = writeln!(out, "  = {note}");
            snippet(&mut out, file, source, *pos);
        }
        out
    }
}

/// Appends `--> file:line:col`, the line itself and a caret under the token.
fn snippet(out: &mut String, file: &str, source: &str, pos: Pos) {
    if !pos.is_known() {
        let _ = writeln!(out, "  --> {file}");
        return;
    }
    let _ = writeln!(out, "  --> {file}:{}:{}", pos.line, pos.column);
    let Some(line) = source.lines().nth(pos.line as usize - 1) else {
        return;
    };
    let number = pos.line.to_string();
    let pad = " ".repeat(number.len());
    let column = (pos.column as usize).saturating_sub(1);
    let width = token_width(line, column);
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{number} | {line}");
    let _ = writeln!(out, "{pad} | {}{}", " ".repeat(column), "^".repeat(width));
}

/// How many characters the value starting at `column` spans on its line.
fn token_width(line: &str, column: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(column).collect();
    let Some(&first) = rest.first() else {
        return 1;
    };
    let width = if first == '"' || first == '\'' {
        rest.iter()
            .skip(1)
            .position(|c| *c == first)
            .map_or(rest.len(), |end| end + 2)
    } else {
        let key_end =
            |i: usize| rest[i] == ':' && rest.get(i + 1).is_none_or(|c| c.is_whitespace());
        let end = (0..rest.len())
            .find(|&i| matches!(rest[i], ',' | ']' | '}' | '#') || key_end(i))
            .unwrap_or(rest.len());
        rest[..end]
            .iter()
            .rposition(|c| !c.is_whitespace())
            .map_or(1, |last| last + 1)
    };
    width.max(1)
}

/// Every problem of one file, in line order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    pub fn sort(&mut self) {
        self.diagnostics
            .sort_by(|a, b| (a.pos, &a.message).cmp(&(b.pos, &b.message)));
        self.diagnostics.dedup();
    }

    /// All problems, then a summary line.
    pub fn render(&self, file: &str, source: &str) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&d.render(file, source));
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{file}: ошибок: {}, предупреждений: {}",
            self.errors(),
            self.warnings()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_and_caret() {
        let source = "states:\n  main:\n    - goto: waitng_order\n";
        let d = Diagnostic::error(
            Pos {
                line: 3,
                column: 13,
            },
            "неизвестное состояние «waitng_order»",
        );
        let text = d.render("flows/default.yaml", source);
        assert_eq!(
            text,
            "ошибка: неизвестное состояние «waitng_order»\n  --> flows/default.yaml:3:13\n  |\n3 |     - goto: waitng_order\n  |             ^^^^^^^^^^^^\n"
        );
    }

    #[test]
    fn caret_spans_quoted_and_flow_values() {
        assert_eq!(token_width(r#"reply: "a, b" # x"#, 7), 6);
        assert_eq!(token_width("[Мои бонусы, Сделать заказ]", 1), 10);
        assert_eq!(token_width("x", 5), 1);
        assert_eq!(token_width("  ПРАЙС!:", 2), 6);
        assert_eq!(token_width("url: https://x.ru/a", 5), 14);
    }
}
