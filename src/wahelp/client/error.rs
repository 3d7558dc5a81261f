//! Errors of the Wahelp client, one variant per class the caller treats
//! differently, and the pure rules that sort an HTTP answer into them.
//!
//! Also the log helpers: phones are masked and secrets removed from every
//! body before it reaches `tracing`.

use std::time::Duration;

use serde_json::Value;

use crate::outbox::DeliveryError;
use crate::wahelp::secret::mask_phones;

/// How long to leave Wahelp alone after it said "too many attempts".
pub const RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(10 * 60);

/// Texts meaning "you are rate limited" (matched lower-case, `ё` read as `е`).
const RATE_LIMIT_PHRASES: &[&str] = &[
    "слишком много попыток",
    "too many requests",
    "too many attempts",
];

/// Texts meaning "this number cannot be reached on the channel".
const NOT_REACHABLE_PHRASES: &[&str] = &[
    "мессенджер не подключен",
    "номер не подключен",
    "номер не зарегистрирован",
    "not connected",
];

/// Texts meaning "your token is not accepted" even without an HTTP 401.
const UNAUTHENTICATED_PHRASES: &[&str] = &["unauthenticated"];

/// Longest server message kept in an [`Error`].
const MAX_MESSAGE_CHARS: usize = 500;

/// Longest body written to a log line.
const MAX_LOG_CHARS: usize = 16 * 1024;

/// Why a Wahelp call failed. `status` is the HTTP status when there was an
/// answer; `message` is the server's own words (phones masked) or what went
/// wrong on the way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// "Too many attempts" or HTTP 429: leave Wahelp alone for
    /// [`RATE_LIMIT_BACKOFF`].
    #[error("Wahelp rate limit{}: {message}", http(*status))]
    RateLimited {
        status: Option<u16>,
        message: String,
    },
    /// The customer's number is not connected to the channel's messenger:
    /// sending again will not help.
    #[error("the number cannot be reached on the Wahelp channel{}: {message}", http(*status))]
    NotReachable {
        status: Option<u16>,
        message: String,
    },
    /// Login refused, or still 401 with a fresh token.
    #[error("Wahelp refused our credentials{}: {message}", http(*status))]
    Auth {
        status: Option<u16>,
        message: String,
    },
    /// Network trouble, a timeout, a 5xx, an unreadable answer: try later.
    #[error("Wahelp is unavailable{}: {message}", http(*status))]
    Transient {
        status: Option<u16>,
        message: String,
    },
    /// Any other refusal (other 4xx, or `"success": false` we do not know).
    #[error("Wahelp rejected the request{}: {message}", http(*status))]
    Rejected {
        status: Option<u16>,
        message: String,
    },
}

fn http(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

impl Error {
    /// How long to wait before the next call: [`RATE_LIMIT_BACKOFF`] when
    /// rate limited, otherwise `None` (the caller's own backoff applies).
    pub fn retry_after(&self) -> Option<Duration> {
        matches!(self, Error::RateLimited { .. }).then_some(RATE_LIMIT_BACKOFF)
    }

    /// The HTTP status of the answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::RateLimited { status, .. }
            | Error::NotReachable { status, .. }
            | Error::Auth { status, .. }
            | Error::Transient { status, .. }
            | Error::Rejected { status, .. } => *status,
        }
    }

    /// The server's words (phones masked) or what went wrong.
    pub fn message(&self) -> &str {
        match self {
            Error::RateLimited { message, .. }
            | Error::NotReachable { message, .. }
            | Error::Auth { message, .. }
            | Error::Transient { message, .. }
            | Error::Rejected { message, .. } => message,
        }
    }

    /// A short name of the class, for log fields.
    pub fn class(&self) -> &'static str {
        match self {
            Error::RateLimited { .. } => "rate_limited",
            Error::NotReachable { .. } => "not_reachable",
            Error::Auth { .. } => "auth",
            Error::Transient { .. } => "transient",
            Error::Rejected { .. } => "rejected",
        }
    }

    /// What the outbox worker should do with the row.
    pub fn to_delivery_error(&self) -> DeliveryError {
        DeliveryError::from(self)
    }
}

impl From<&Error> for DeliveryError {
    fn from(e: &Error) -> DeliveryError {
        match e {
            Error::RateLimited { .. } => DeliveryError::RetryAfter(RATE_LIMIT_BACKOFF),
            Error::Transient { .. } | Error::Auth { .. } => DeliveryError::Transient(e.to_string()),
            Error::NotReachable { .. } => DeliveryError::RecipientGone(e.to_string()),
            Error::Rejected { .. } => DeliveryError::Permanent(e.to_string()),
        }
    }
}

impl From<Error> for DeliveryError {
    fn from(e: Error) -> DeliveryError {
        DeliveryError::from(&e)
    }
}

/// Why a [`super::Client`] could not be built (bad settings: fail at start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("Wahelp API URL «{url}» is not usable: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("Wahelp setting {0} is empty")]
    Empty(&'static str),
    #[error("Wahelp timeout must be above zero")]
    ZeroTimeout,
    #[error("cannot build the HTTP client for Wahelp: {0}")]
    Http(String),
}

/// Sorts an answer: `None` when it is a success (2xx and not
/// `"success": false`), otherwise the error class it belongs to.
///
/// Rate-limit texts count anywhere in the body; "not reachable" texts only
/// in the JSON's strings (a proxy's HTML page must not drop a message for
/// good).
///
/// `secrets` are removed from the error's message (it is logged and stored).
pub(super) fn classify(
    status: u16,
    json: Option<&Value>,
    raw: &str,
    secrets: &[&str],
) -> Option<Error> {
    let refused = json
        .and_then(|v| v.get("success"))
        .is_some_and(|s| *s == Value::Bool(false));
    if (200..300).contains(&status) && !refused {
        return None;
    }
    let json_text = json.map(|v| normalize(&strings_of(v).join("\n")));
    let any_text = json_text.clone().unwrap_or_else(|| normalize(raw));
    let message = error_message(json, raw, secrets);
    let status = Some(status).filter(|s| *s != 0);
    let has = |text: &str, phrases: &[&str]| phrases.iter().any(|p| text.contains(p));
    let code = status.unwrap_or(0);
    Some(if code == 429 || has(&any_text, RATE_LIMIT_PHRASES) {
        Error::RateLimited { status, message }
    } else if json_text
        .as_deref()
        .is_some_and(|t| has(t, NOT_REACHABLE_PHRASES))
    {
        Error::NotReachable { status, message }
    } else if code == 401
        || json_text
            .as_deref()
            .is_some_and(|t| has(t, UNAUTHENTICATED_PHRASES))
    {
        Error::Auth { status, message }
    } else if code == 408 || code >= 500 {
        Error::Transient { status, message }
    } else {
        Error::Rejected { status, message }
    })
}

/// Lower case, `ё` as `е`, words with digits left out (so "Номер +7 999
/// 123-45-67 не подключен" reads "номер не подключен"), runs of whitespace
/// as one space.
fn normalize(text: &str) -> String {
    text.to_lowercase()
        .replace('ё', "е")
        .split_whitespace()
        .filter(|word| !word.chars().any(|c| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every string value in a JSON document, depth first.
fn strings_of(value: &Value) -> Vec<&str> {
    fn walk<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::String(s) => out.push(s),
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut out);
    out
}

/// The server's explanation: the first of `message`, `error`, `errors`,
/// `data.message`, `data.error`, `description`, `detail`; else every string
/// in the JSON; else the raw body. Secrets removed, phones masked, cut to a
/// sane length.
fn error_message(json: Option<&Value>, raw: &str, secrets: &[&str]) -> String {
    const FIELDS: &[&[&str]] = &[
        &["message"],
        &["error"],
        &["errors"],
        &["data", "message"],
        &["data", "error"],
        &["description"],
        &["detail"],
    ];
    let found = json.and_then(|v| {
        FIELDS.iter().find_map(|path| {
            let mut node = v;
            for key in *path {
                node = node.get(key)?;
            }
            let text = strings_of(node).join("; ");
            (!text.trim().is_empty()).then_some(text)
        })
    });
    let text = found
        .or_else(|| {
            let all = strings_of(json?).join("; ");
            (!all.trim().is_empty()).then_some(all)
        })
        .unwrap_or_else(|| {
            let raw = raw.split_whitespace().collect::<Vec<_>>().join(" ");
            if raw.is_empty() {
                "(empty answer)".to_owned()
            } else {
                raw
            }
        });
    truncate(&scrub(&text, secrets), MAX_MESSAGE_CHARS)
}

/// Cuts `text` to `max` characters, marking the cut.
pub(super) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// A body ready for a log line: [`scrub`]bed and cut to 16 KiB.
pub(super) fn for_log(text: &str, secrets: &[&str]) -> String {
    truncate(&scrub(text, secrets), MAX_LOG_CHARS)
}

/// Secrets replaced by `[redacted]` (also as they look inside a JSON
/// string), phones masked. Secrets shorter than 3 characters are left alone
/// (they would blank out ordinary words).
fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| s.chars().count() >= 3) {
        text = text.replace(secret, "[redacted]");
        // The same secret as a JSON string (`/` → `\/`, quotes escaped).
        if let Ok(quoted) = serde_json::to_string(secret) {
            let escaped = quoted.trim_matches('"');
            if escaped != *secret {
                text = text.replace(escaped, "[redacted]");
            }
            let slashed = escaped.replace('/', "\\/");
            if slashed != *secret {
                text = text.replace(&slashed, "[redacted]");
            }
        }
    }
    mask_phones(&text)
}

/// The structure of a JSON answer without its values, e.g.
/// `{"success":bool,"data":{"id":number}}`: enough to see where a field
/// is, nothing private. Deep or wide documents are cut.
pub(super) fn shape_of(value: &Value) -> String {
    fn walk(value: &Value, depth: usize, out: &mut String) {
        match value {
            Value::Null => out.push_str("null"),
            Value::Bool(_) => out.push_str("bool"),
            Value::Number(_) => out.push_str("number"),
            Value::String(_) => out.push_str("string"),
            Value::Array(items) => {
                out.push('[');
                match items.first() {
                    Some(_) if depth >= 5 => out.push('…'),
                    Some(first) => walk(first, depth + 1, out),
                    None => {}
                }
                if items.len() > 1 {
                    out.push_str(&format!(",…×{}", items.len()));
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                if depth >= 5 && !map.is_empty() {
                    out.push('…');
                }
                for (i, (key, item)) in map.iter().enumerate() {
                    if depth >= 5 {
                        break;
                    }
                    if i >= 30 {
                        out.push_str(",…");
                        break;
                    }
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    walk(item, depth + 1, out);
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    walk(value, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sort(status: u16, body: &str) -> Option<Error> {
        let json = serde_json::from_str::<Value>(body).ok();
        classify(status, json.as_ref(), body, &[])
    }

    #[test]
    fn successes_are_not_errors() {
        assert_eq!(sort(200, r#"{"success":true,"data":{"id":1}}"#), None);
        assert_eq!(sort(201, r#"{"data":{"id":1}}"#), None);
        assert_eq!(sort(204, ""), None);
        assert_eq!(sort(200, "not json at all"), None);
    }

    #[test]
    fn rate_limits_from_status_and_texts() {
        let cases = [
            (429, r#"{"message":"Too Many Attempts."}"#),
            (429, "<html>slow down</html>"),
            (
                200,
                r#"{"success":false,"message":"Слишком много попыток. Попробуйте позже"}"#,
            ),
            (400, r#"{"success":false,"error":"TOO MANY REQUESTS"}"#),
            (500, "Too many requests, try later"),
            (
                200,
                r#"{"success":false,"message":"\u0421\u043b\u0438\u0448\u043a\u043e\u043c \u043c\u043d\u043e\u0433\u043e \u043f\u043e\u043f\u044b\u0442\u043e\u043a"}"#,
            ),
        ];
        for (status, body) in cases {
            let e = sort(status, body).unwrap_or_else(|| panic!("{status} {body}: no error"));
            assert!(
                matches!(e, Error::RateLimited { .. }),
                "{status} {body}: {e:?}"
            );
            assert_eq!(e.retry_after(), Some(Duration::from_secs(600)));
            assert_eq!(
                e.to_delivery_error(),
                DeliveryError::RetryAfter(RATE_LIMIT_BACKOFF)
            );
        }
    }

    #[test]
    fn unreachable_numbers_from_texts() {
        let cases = [
            (
                200,
                r#"{"success":false,"message":"Мессенджер не подключен"}"#,
            ),
            (
                200,
                r#"{"success":false,"message":"Номер не подключён к WhatsApp"}"#,
            ),
            (
                200,
                r#"{"success":false,"message":"Номер +7 (999) 123-45-67 не зарегистрирован в WhatsApp"}"#,
            ),
            (
                400,
                r#"{"success":false,"message":"номер 79991234567 не подключен"}"#,
            ),
            (
                422,
                r#"{"errors":{"phone":["Номер не зарегистрирован в Telegram"]}}"#,
            ),
            (
                400,
                r#"{"success":false,"error":{"message":"Messenger NOT CONNECTED"}}"#,
            ),
            (
                500,
                r#"{"success":false,"message":"мессенджер  не подключен"}"#,
            ),
        ];
        for (status, body) in cases {
            let e = sort(status, body).unwrap_or_else(|| panic!("{status} {body}: no error"));
            assert!(
                matches!(e, Error::NotReachable { .. }),
                "{status} {body}: {e:?}"
            );
            assert!(matches!(
                e.to_delivery_error(),
                DeliveryError::RecipientGone(_)
            ));
            assert_eq!(e.retry_after(), None);
        }
        // A proxy page is not the service's verdict on a number.
        let e = sort(502, "<h1>upstream not connected</h1>");
        assert!(matches!(e, Some(Error::Transient { .. })), "{e:?}");
    }

    #[test]
    fn statuses_without_known_texts() {
        let class = |status, body| sort(status, body).map(|e| e.class());
        assert_eq!(
            class(401, r#"{"message":"Unauthenticated."}"#),
            Some("auth")
        );
        assert_eq!(class(401, ""), Some("auth"));
        assert_eq!(
            class(200, r#"{"success":false,"message":"Unauthenticated."}"#),
            Some("auth")
        );
        assert_eq!(
            class(500, r#"{"message":"Server Error"}"#),
            Some("transient")
        );
        assert_eq!(class(503, "<html>down</html>"), Some("transient"));
        assert_eq!(class(408, ""), Some("transient"));
        assert_eq!(class(400, r#"{"message":"bad"}"#), Some("rejected"));
        assert_eq!(class(404, ""), Some("rejected"));
        assert_eq!(
            class(422, r#"{"errors":{"text":["required"]}}"#),
            Some("rejected")
        );
        assert_eq!(class(302, ""), Some("rejected"));
        assert_eq!(
            class(200, r#"{"success":false,"message":"Канал удалён"}"#),
            Some("rejected")
        );
    }

    #[test]
    fn delivery_errors() {
        let e = |f: fn(Option<u16>, String) -> Error| f(Some(500), "x".into());
        let transient = e(|status, message| Error::Transient { status, message });
        let auth = e(|status, message| Error::Auth { status, message });
        let rejected = e(|status, message| Error::Rejected { status, message });
        assert!(matches!(
            transient.to_delivery_error(),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(
            DeliveryError::from(&auth),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(
            DeliveryError::from(rejected),
            DeliveryError::Permanent(_)
        ));
    }

    #[test]
    fn error_messages_prefer_the_server_words_and_mask_phones() {
        let body = r#"{"success":false,"message":"Номер +79991234567 не зарегистрирован","data":{"x":"y"}}"#;
        let e = sort(200, body).unwrap_or_else(|| panic!("no error"));
        assert_eq!(e.message(), "Номер +7999***4567 не зарегистрирован");
        assert_eq!(e.status(), Some(200));
        let text = e.to_string();
        assert!(text.contains("HTTP 200"), "{text}");
        assert!(!text.contains("1234567"), "{text}");

        let e = sort(422, r#"{"errors":{"phone":["is invalid","is short"]}}"#);
        assert_eq!(
            e.map(|e| e.message().to_owned()),
            Some("is invalid; is short".to_owned())
        );
        let e = sort(500, "  <html>\n  Server   Error </html>");
        assert_eq!(
            e.map(|e| e.message().to_owned()),
            Some("<html> Server Error </html>".to_owned())
        );
        let e = sort(500, "");
        assert_eq!(
            e.map(|e| e.message().to_owned()),
            Some("(empty answer)".to_owned())
        );
    }

    #[test]
    fn error_messages_lose_secrets() {
        let body = r#"{"success":false,"message":"password pa/ss is wrong for +79991234567"}"#;
        let json = serde_json::from_str::<Value>(body).ok();
        let e = classify(422, json.as_ref(), body, &["pa/ss"]);
        assert_eq!(
            e.map(|e| e.message().to_owned()),
            Some("password [redacted] is wrong for +7999***4567".to_owned())
        );
    }

    #[test]
    fn logged_bodies_mask_phones_in_any_format() {
        for text in [
            "+79991234567",
            "tel 89991234567.",
            "+7 (999) 123-45-67, ok",
            r#"{"phone":"79991234567"}"#,
        ] {
            let logged = for_log(text, &[]);
            assert!(logged.contains("***4567"), "{text} → {logged}");
            assert!(
                !logged.contains("1234567") && !logged.contains("123-45"),
                "{logged}"
            );
        }
        assert_eq!(for_log("id 12345, Иван", &[]), "id 12345, Иван");
    }

    #[test]
    fn logs_lose_secrets() {
        let text = r#"{"message":"bad p@ss/w\"rd for a.b@c.d","token":"eyJhbGci.x.y"}"#;
        let logged = for_log(text, &["p@ss/w\"rd", "eyJhbGci.x.y", "ab"]);
        assert!(!logged.contains("p@ss"), "{logged}");
        assert!(!logged.contains("eyJhbGci"), "{logged}");
        assert!(logged.contains("a.b@c.d"), "{logged}");
        let long = "я".repeat(20_000);
        assert_eq!(for_log(&long, &[]).chars().count(), MAX_LOG_CHARS + 1);
    }

    #[test]
    fn shapes_have_no_values() {
        let v = json!({"success": true, "data": {"token": {"token": "SECRET", "expires_in": 3600}, "list": [1, 2]}});
        let shape = shape_of(&v);
        assert_eq!(
            shape,
            r#"{"data":{"list":[number,…×2],"token":{"expires_in":number,"token":string}},"success":bool}"#
        );
        assert!(!shape.contains("SECRET"));
    }
}
