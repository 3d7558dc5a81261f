//! `POST /telegram/webhook`: updates Telegram posts in webhook mode.
//!
//! Checks, in order: webhook mode is on (404), the
//! `X-Telegram-Bot-Api-Secret-Token` header in constant time (401; the body
//! is read and dropped first), the body's size (413), and that the body is
//! JSON with a whole-number `update_id` (400). Then the body's text, as
//! received, goes to [`Service::accept_update`]; the answer is 200 only
//! once the update is durable (a duplicate too: it is not processed twice),
//! 500 when it could not be stored, so that Telegram sends it again.
//!
//! The secret and the body are never logged. Calls are counted in
//! `flowbot_telegram_webhook_calls_total{result}`.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Accepted, BODY_LIMIT, Service, read_body};
use crate::wahelp::secret::constant_time_eq;

/// Where Telegram posts (the reverse proxy maps the public URL here).
pub const PATH: &str = "/telegram/webhook";

/// The header carrying the secret given to `setWebhook`.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Why a body is not an update.
#[derive(Debug, thiserror::Error)]
pub enum BadUpdate {
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error("the body is not JSON ({0})")]
    NotJson(serde_json::Error),
    #[error("the body has no update_id that is a whole number from 0 to 4294967295")]
    NoUpdateId,
}

/// The update's id and its text as received. The id must fit in `u32`, as
/// teloxide reads it.
pub fn parse_update(body: &[u8]) -> Result<(i64, String), BadUpdate> {
    let text = std::str::from_utf8(body).map_err(|_| BadUpdate::NotUtf8)?;
    let value: Value = serde_json::from_str(text).map_err(BadUpdate::NotJson)?;
    let id = value
        .get("update_id")
        .and_then(Value::as_u64)
        .filter(|&id| id <= u64::from(u32::MAX))
        .and_then(|id| i64::try_from(id).ok())
        .ok_or(BadUpdate::NoUpdateId)?;
    Ok((id, text.to_owned()))
}

/// What the secret header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Right,
    Wrong,
    Missing,
}

fn auth(request: &Request, secret: &str) -> Auth {
    match request.headers().get(SECRET_HEADER) {
        None => Auth::Missing,
        Some(given) if constant_time_eq(given.as_bytes(), secret.as_bytes()) => Auth::Right,
        Some(_) => Auth::Wrong,
    }
}

fn answer(status: StatusCode, result: &'static str, body: Value) -> Response {
    metrics::counter!("flowbot_telegram_webhook_calls_total", "result" => result).increment(1);
    (status, axum::Json(body)).into_response()
}

fn refused(status: StatusCode, result: &'static str, error: &str) -> Response {
    answer(status, result, json!({"ok": false, "error": error}))
}

pub(super) async fn webhook<S: Service>(State(service): State<S>, request: Request) -> Response {
    let Some(secret) = service.telegram_secret() else {
        tracing::warn!(
            "Telegram webhook call refused: webhook mode is off (TELEGRAM_WEBHOOK_URL is not set)"
        );
        let _ = read_body(request).await;
        return refused(
            StatusCode::NOT_FOUND,
            "not_configured",
            "webhook mode is off",
        );
    };
    let auth = auth(&request, secret);
    if auth != Auth::Right {
        let header = if auth == Auth::Missing {
            "missing"
        } else {
            "wrong"
        };
        tracing::warn!(
            header,
            "Telegram webhook call refused: wrong or missing secret token"
        );
        // Read (and drop) the body first, so that the client sees the 401
        // rather than a connection closed under its upload.
        let _ = read_body(request).await;
        return refused(StatusCode::UNAUTHORIZED, "unauthorized", "unauthorized");
    }
    match read_body(request).await {
        Ok(body) => accept(&service, body).await,
        Err(status) => {
            tracing::warn!("Telegram webhook call refused: body over {BODY_LIMIT} bytes");
            refused(status, "too_large", "body too large")
        }
    }
}

/// An authenticated body: parsed, then stored.
async fn accept<S: Service>(service: &S, body: Bytes) -> Response {
    let (id, raw) = match parse_update(&body) {
        Ok(update) => update,
        Err(e) => {
            tracing::warn!(bytes = body.len(), error = %e, "Telegram webhook call refused: not an update");
            return refused(StatusCode::BAD_REQUEST, "bad_request", "not an update");
        }
    };
    match service.accept_update(id, raw).await {
        Ok(Accepted::New) => answer(StatusCode::OK, "ok", json!({"ok": true})),
        Ok(Accepted::Duplicate) => {
            tracing::info!(
                update_id = id,
                "Telegram sent an update received before; not processed again"
            );
            answer(StatusCode::OK, "duplicate", json!({"ok": true}))
        }
        Err(e) => {
            tracing::error!(update_id = id, error = %e, "Telegram update not stored; Telegram will send it again");
            refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error",
                "try again later",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_keeps_its_text_as_received() {
        let body = "{\"update_id\": 781234501,\n \"message\": {\"text\": \"\\u0410\u{451}\"}}";
        let (id, raw) = parse_update(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id, 781_234_501);
        assert_eq!(raw, body);
    }

    #[test]
    fn bodies_that_are_not_updates() {
        let bad = |body: &[u8]| parse_update(body).err().map(|e| e.to_string());
        assert!(matches!(parse_update(b"\xff{}"), Err(BadUpdate::NotUtf8)));
        assert!(matches!(parse_update(b"{"), Err(BadUpdate::NotJson(_))));
        assert!(matches!(parse_update(b""), Err(BadUpdate::NotJson(_))));
        for body in [
            &b"{}"[..],
            b"[1]",
            b"7",
            b"{\"update_id\": \"5\"}",
            b"{\"update_id\": 5.0}",
            b"{\"update_id\": -1}",
            b"{\"update_id\": 4294967296}",
            b"{\"update_id\": null}",
        ] {
            assert!(
                matches!(parse_update(body), Err(BadUpdate::NoUpdateId)),
                "{:?}",
                bad(body)
            );
        }
        assert!(parse_update(b"{\"update_id\": 4294967295}").is_ok());
        assert!(parse_update(b"{\"update_id\": 0}").is_ok());
    }
}
