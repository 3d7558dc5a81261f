//! What must not reach a log or the store: the webhook's secret token and
//! customers' phone numbers. Comparing the token without leaking it through
//! timing, masking it in URLs, removing it from stored payloads, and masking
//! phone numbers in free text (API error bodies).
//!
//! Pure: no I/O.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::phone::Phone;

/// What a secret or a phone's middle is replaced with.
const MASK: &str = "***";

/// Whether `a` and `b` are equal, in a time that depends only on their
/// lengths: every byte is compared, whatever the first difference. A
/// length difference answers `false` at once (it reveals the length only).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// A query parameter whose name is or ends with `token` (`token`,
/// `access_token`, any case), at the start of the text or after `?`, `&`,
/// `;` or whitespace. Its value runs to the next `&`, `#`, quote, angle
/// bracket or whitespace.
static TOKEN_PARAM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)((?:^|[?&;\s])[a-z0-9_.\-]*token=)[^&#\s"'<>]*"#)
        .expect("a constant, valid pattern")
});

/// A URL, a query or a log line with the value of every `token=` parameter
/// replaced by `***`:
/// `https://bot.example/wahelp/webhook?token=s3cret&x=1` →
/// `https://bot.example/wahelp/webhook?token=***&x=1`.
pub fn mask_query_token(url_or_query: &str) -> String {
    TOKEN_PARAM
        .replace_all(url_or_query, format!("${{1}}{MASK}"))
        .into_owned()
}

/// Replaces every occurrence of `secret` in the strings of `value` (object
/// keys included) with `***`, and answers how many strings changed. An
/// empty secret changes nothing. Walks without recursion, so any depth is
/// safe.
pub fn strip_token(value: &mut Value, secret: &str) -> usize {
    if secret.is_empty() {
        return 0;
    }
    let mut changed = 0;
    let mut pending = vec![value];
    while let Some(current) = pending.pop() {
        match current {
            Value::String(text) => changed += usize::from(replace_in(text, secret)),
            Value::Array(items) => pending.extend(items.iter_mut()),
            Value::Object(map) => {
                let keys: Vec<String> =
                    map.keys().filter(|k| k.contains(secret)).cloned().collect();
                for key in keys {
                    if let Some(inner) = map.remove(&key) {
                        map.insert(key.replace(secret, MASK), inner);
                        changed += 1;
                    }
                }
                pending.extend(map.values_mut());
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    changed
}

/// Replaces `secret` in `text`; whether anything changed.
fn replace_in(text: &mut String, secret: &str) -> bool {
    if !text.contains(secret) {
        return false;
    }
    *text = text.replace(secret, MASK);
    true
}

/// A phone-like number: 10 digits, optionally after a one-digit country
/// code and `+`, with spaces, dashes or brackets in the usual places
/// (`79991234567`, `+7 (999) 123-45-67`, `8 999 123 45 67`, `9991234567`).
/// Whether it stands alone (no digit on either side) is checked apart.
static PHONE_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\+?[0-9][ \-\u{A0}]?)?\(?[0-9]{3}\)?[ \-\u{A0}]?[0-9]{3}[ \-\u{A0}]?[0-9]{2}[ \-\u{A0}]?[0-9]{2}",
    )
    .expect("a constant, valid pattern")
});

/// Free text (an API error body, a log line) with every phone-like number
/// masked, keeping its first 4 and last 4 digits: `+7 (999) 123-45-67` →
/// `+7999***4567`, `89991234567` → `+7999***4567` (a Russian number is
/// shown in its normal form), `1763629200` → `1763***9200`. Runs of digits
/// longer than a phone are left alone.
pub fn mask_phones(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = PHONE_LIKE.find_at(text, from) {
        if stands_alone(text, found.start(), found.end()) {
            out.push_str(&text[copied..found.start()]);
            out.push_str(&mask_one(found.as_str()));
            copied = found.end();
            from = found.end();
        } else {
            let step = text[found.start()..]
                .chars()
                .next()
                .map_or(1, char::len_utf8);
            from = found.start() + step;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// No digit right before `start` or right after `end`.
fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
}

/// One phone-like number masked.
fn mask_one(number: &str) -> String {
    if let Ok(phone) = Phone::parse(number) {
        return phone.masked();
    }
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let plus = if number.starts_with('+') { "+" } else { "" };
    let head = digits.get(..4).unwrap_or_default();
    let tail = digits
        .get(digits.len().saturating_sub(4)..)
        .unwrap_or_default();
    format!("{plus}{head}{MASK}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn equal_only_when_every_byte_is() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"x3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn token_values_are_masked_in_urls_and_log_lines() {
        assert_eq!(
            mask_query_token("https://bot.example/wahelp/webhook?token=s3cret&x=1"),
            "https://bot.example/wahelp/webhook?token=***&x=1"
        );
        assert_eq!(mask_query_token("token=abc"), "token=***");
        assert_eq!(mask_query_token("a=1&TOKEN=abc#top"), "a=1&TOKEN=***#top");
        assert_eq!(
            mask_query_token("POST /wahelp/webhook?x=1&access_token=abc HTTP/1.1"),
            "POST /wahelp/webhook?x=1&access_token=*** HTTP/1.1"
        );
        assert_eq!(
            mask_query_token(r#"{"url":"https://b.example/h?token=abc"}"#),
            r#"{"url":"https://b.example/h?token=***"}"#
        );
        assert_eq!(mask_query_token("?token=a&token=b"), "?token=***&token=***");
        assert_eq!(mask_query_token("?token="), "?token=***");
        assert_eq!(
            mask_query_token("https://b.example/tokens?mytoken_id=5"),
            "https://b.example/tokens?mytoken_id=5"
        );
        assert_eq!(mask_query_token("no secrets here"), "no secrets here");
    }

    #[test]
    fn the_secret_is_removed_from_every_string_and_key() {
        let mut value = json!({
            "url": "https://b.example/h?token=s3cret",
            "list": ["s3cret", 1, null, {"deep": "xs3cretx"}],
            "s3cret": true,
            "other": "fine"
        });
        assert_eq!(strip_token(&mut value, "s3cret"), 4);
        assert_eq!(
            value,
            json!({
                "url": "https://b.example/h?token=***",
                "list": ["***", 1, null, {"deep": "x***x"}],
                "***": true,
                "other": "fine"
            })
        );
        assert!(!value.to_string().contains("s3cret"));
        assert_eq!(strip_token(&mut value, ""), 0);
    }

    #[test]
    fn stripping_survives_deep_nesting() {
        let mut value = json!("s3cret");
        for _ in 0..10_000 {
            value = Value::Array(vec![value]);
        }
        assert_eq!(strip_token(&mut value, "s3cret"), 1);
        // Taken apart level by level: dropping it whole would recurse.
        let mut rest = value;
        while let Value::Array(mut items) = rest {
            rest = items.pop().unwrap_or(Value::Null);
        }
        assert_eq!(rest, json!("***"));
    }

    #[test]
    fn phones_in_free_text_are_masked() {
        assert_eq!(
            mask_phones(r#"{"error":"user +79991234567 not found"}"#),
            r#"{"error":"user +7999***4567 not found"}"#
        );
        assert_eq!(
            mask_phones("номер +7 (999) 123-45-67 не подключен"),
            "номер +7999***4567 не подключен"
        );
        assert_eq!(mask_phones("8 999 123 45 67"), "+7999***4567");
        assert_eq!(
            mask_phones("89991234567, 79990000010"),
            "+7999***4567, +7999***0010"
        );
        assert_eq!(mask_phones("9991234567"), "+7999***4567");
        assert_eq!(mask_phones("at 1763629200"), "at 1763***9200");
        assert_eq!(mask_phones("+44 2079460958"), "+44 2079***0958");
    }

    #[test]
    fn other_numbers_are_left_alone() {
        for text in [
            "id 90000001",
            "card 1234567890123456",
            "799912345678",
            "2026-11-20T10:15:00+03:00",
            "",
            "нет номеров",
        ] {
            assert_eq!(mask_phones(text), text);
        }
    }

    proptest! {
        #[test]
        fn masking_never_panics_and_hides_whole_phones(
            before in "\\PC{0,20}",
            after in "\\PC{0,20}",
            national in "9[0-9]{9}",
        ) {
            let text = format!("{before} +7{national} {after}");
            let masked = mask_phones(&text);
            let whole = format!("+7{national}");
            prop_assert!(!masked.contains(&whole));
            let _ = mask_query_token(&text);
        }

        #[test]
        fn equality_matches_the_ordinary_one(a in prop::collection::vec(any::<u8>(), 0..16), b in prop::collection::vec(any::<u8>(), 0..16)) {
            prop_assert_eq!(constant_time_eq(&a, &b), a == b);
            prop_assert!(constant_time_eq(&a, &a));
        }
    }
}
