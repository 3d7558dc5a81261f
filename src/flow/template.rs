//! Texts with `{placeholders}`: parsing at load time, rendering at run time.
//!
//! `{{` and `}}` stand for literal braces. Every placeholder is checked when
//! the flow loads, so rendering never meets an unknown name.

use std::fmt;

/// A value a text may insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// The customer's full name.
    Name,
    FirstName,
    /// `@username`, or a dash when the customer has none.
    Username,
    /// The customer's Telegram id.
    UserId,
    Phone,
    /// The current bonus balance.
    Bonus,
    /// When the earliest active expiring bonus ends (a date).
    BonusExpires,
    /// What the customer (or the manager) wrote, or a file's caption.
    Text,
    /// The kind of file the customer sent, in words.
    MediaKind,
    /// When the business opens next ("завтра в 10:00").
    OpensAt,
    /// When the business closes next ("сегодня в 20:00").
    ClosesAt,
    /// The weekly schedule, a line per group of days.
    Schedule,
    /// The welcome bonus amount and its validity in days.
    WelcomeBonus,
    WelcomeDays,
    /// The business's name.
    Business,
}

impl Placeholder {
    pub const ALL: &[(&str, Placeholder)] = &[
        ("name", Placeholder::Name),
        ("first_name", Placeholder::FirstName),
        ("username", Placeholder::Username),
        ("user_id", Placeholder::UserId),
        ("phone", Placeholder::Phone),
        ("bonus", Placeholder::Bonus),
        ("bonus_expires", Placeholder::BonusExpires),
        ("text", Placeholder::Text),
        ("media_kind", Placeholder::MediaKind),
        ("opens_at", Placeholder::OpensAt),
        ("closes_at", Placeholder::ClosesAt),
        ("schedule", Placeholder::Schedule),
        ("welcome_bonus", Placeholder::WelcomeBonus),
        ("welcome_days", Placeholder::WelcomeDays),
        ("business", Placeholder::Business),
    ];

    pub fn parse(name: &str) -> Option<Placeholder> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("?", |(n, _)| n)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Value(Placeholder),
}

/// A parsed text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    segments: Vec<Segment>,
}

/// A problem in a text, with the character offset where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    /// Parses a text; reports every problem in it.
    pub fn parse(source: &str) -> Result<Template, Vec<TemplateError>> {
        let mut segments = Vec::new();
        let mut errors = Vec::new();
        let mut literal = String::new();
        let mut chars = source.char_indices().peekable();
        let char_offset = |byte: usize| source[..byte].chars().count();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &source[at + 1..];
                    let Some(end) = rest.find('}') else {
                        errors.push(TemplateError {
                            offset: char_offset(at),
                            message: "«{» без закрывающей «}»: чтобы написать саму скобку, удвойте её: «{{»".to_owned(),
                        });
                        break;
                    };
                    let name = rest[..end].trim();
                    match Placeholder::parse(name) {
                        Some(p) => {
                            if !literal.is_empty() {
                                segments.push(Segment::Literal(std::mem::take(&mut literal)));
                            }
                            segments.push(Segment::Value(p));
                        }
                        None => errors.push(TemplateError {
                            offset: char_offset(at),
                            message: format!(
                                "неизвестная подстановка «{{{name}}}»{} Все подстановки: {}",
                                super::suggest::hint_sentence(
                                    name,
                                    Placeholder::ALL.iter().map(|(n, _)| *n)
                                ),
                                Placeholder::ALL
                                    .iter()
                                    .map(|(n, _)| format!("{{{n}}}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        }),
                    }
                    for _ in 0..rest[..=end].chars().count() {
                        chars.next();
                    }
                }
                '}' => errors.push(TemplateError {
                    offset: char_offset(at),
                    message: "лишняя «}»: чтобы написать саму скобку, удвойте её: «}}»".to_owned(),
                }),
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        if errors.is_empty() {
            Ok(Template { segments })
        } else {
            Err(errors)
        }
    }

    /// A template that is only this literal text.
    pub fn literal(text: &str) -> Template {
        Template {
            segments: vec![Segment::Literal(text.to_owned())],
        }
    }

    /// Fills the placeholders from `values`.
    pub fn render(&self, values: &dyn Fn(Placeholder) -> String) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Value(p) => out.push_str(&values(*p)),
            }
        }
        out
    }

    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Value(p) => Some(*p),
            Segment::Literal(_) => None,
        })
    }
}

impl fmt::Display for Template {
    /// The template as a flow editor would write it.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => {
                    f.write_str(&text.replace('{', "{{").replace('}', "}}"))?
                }
                Segment::Value(p) => write!(f, "{{{}}}", p.name())?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str) -> String {
        let template = Template::parse(source).unwrap_or_default();
        template.render(&|p| match p {
            Placeholder::Name => "Анна".to_owned(),
            Placeholder::Bonus => "300".to_owned(),
            other => format!("<{}>", other.name()),
        })
    }

    #[test]
    fn fills_placeholders() {
        assert_eq!(
            render("Здравствуйте, {name}! Бонусов: {bonus}."),
            "Здравствуйте, Анна! Бонусов: 300."
        );
        assert_eq!(render("{ name }"), "Анна");
        assert_eq!(render("скобки {{так}}"), "скобки {так}");
    }

    #[test]
    fn reports_every_unknown_placeholder_with_a_hint() {
        let errors = Template::parse("Привет, {nmae}! {bonus} {foo}")
            .err()
            .unwrap_or_default();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].offset, 8);
        assert!(
            errors[0].message.contains("может быть, «name»"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn reports_unbalanced_braces() {
        assert!(Template::parse("a { b").is_err());
        assert!(Template::parse("a } b").is_err());
    }

    #[test]
    fn displays_as_written() {
        let source = "Бонусы {bonus} {{x}}";
        assert_eq!(
            Template::parse(source).unwrap_or_default().to_string(),
            source
        );
    }
}
