//! The bot's HTTP server (axum on `HTTP_LISTEN`): Wahelp's webhook,
//! Telegram's webhook (see [`telegram`]), `/healthz` and `/metrics`.
//!
//! This layer only checks and parses: the secret (constant time, never
//! logged), the body's size and JSON. What a call means is the
//! [`Service`]'s business, implemented by the app.

pub mod telegram;

use std::future::Future;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::wahelp::secret::{constant_time_eq, mask_query_token};

/// Largest webhook body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The header that may carry the webhook secret instead of `?token=`.
pub const TOKEN_HEADER: &str = "x-wahelp-token";

/// What the server asks of the app.
pub trait Service: Clone + Send + Sync + 'static {
    /// `None`: the webhook is not configured and refuses every call.
    fn webhook_secret(&self) -> Option<&str>;
    /// Stores an authenticated, well-formed call; `Err` when it could not
    /// be stored (the caller should try again later).
    fn accept_webhook(&self, body: Value) -> impl Future<Output = Result<(), String>> + Send;
    /// The secret Telegram must send with each update; `None` when updates
    /// do not come by webhook (`/telegram/webhook` then refuses every call).
    fn telegram_secret(&self) -> Option<&str>;
    /// Stores one authenticated update (`raw`: its JSON text as received)
    /// durably; it is then processed like a polled one. `Err` when it could
    /// not be stored (Telegram should send it again).
    fn accept_update(
        &self,
        id: i64,
        raw: String,
    ) -> impl Future<Output = Result<Accepted, String>> + Send;
    fn health(&self) -> impl Future<Output = Health> + Send;
    /// Prometheus text exposition.
    fn metrics(&self) -> impl Future<Output = String> + Send;
}

/// What became of an update Telegram posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now; it will be processed.
    New,
    /// Its id was received before: nothing was done again.
    Duplicate,
}

/// The `/healthz` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub healthy: bool,
    pub report: Value,
}

pub fn router<S: Service>(service: S) -> Router {
    Router::new()
        .route("/wahelp/webhook", post(webhook::<S>))
        .route("/wahelp/webhook/", post(webhook::<S>))
        .route(telegram::PATH, post(telegram::webhook::<S>))
        .route("/healthz", get(healthz::<S>))
        .route("/metrics", get(metrics::<S>))
        .with_state(service)
}

/// Serves until `shutdown`; calls in progress finish.
pub async fn serve<S: Service>(
    listener: TcpListener,
    service: S,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(service))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

fn answer(status: StatusCode, result: &'static str, body: Value) -> Response {
    metrics::counter!("flowbot_webhook_calls_total", "result" => result).increment(1);
    (status, axum::Json(body)).into_response()
}

async fn webhook<S: Service>(State(service): State<S>, request: Request) -> Response {
    let uri = mask_query_token(&request.uri().to_string());
    let Some(secret) = service.webhook_secret() else {
        tracing::warn!(%uri, "webhook call refused: WAHELP_WEBHOOK_SECRET is not set");
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            json!({"ok": false, "error": "webhook not configured"}),
        );
    };
    let given = token(request.uri().query(), request.headers());
    if !given.is_some_and(|t| constant_time_eq(t.as_bytes(), secret.as_bytes())) {
        tracing::warn!(%uri, "webhook call refused: wrong or missing token");
        // Read (and drop) the body first, so that the client sees the 401
        // rather than a connection closed under its upload.
        let _ = read_body(request).await;
        return answer(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            json!({"ok": false, "error": "unauthorized"}),
        );
    }
    let bytes = match read_body(request).await {
        Ok(b) => b,
        Err(status) => {
            tracing::warn!(%uri, "webhook call refused: body over {BODY_LIMIT} bytes");
            return answer(
                status,
                "too_large",
                json!({"ok": false, "error": "body too large"}),
            );
        }
    };
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(%uri, bytes = bytes.len(), error = %e, "webhook call refused: body is not JSON");
            return answer(
                StatusCode::BAD_REQUEST,
                "bad_json",
                json!({"ok": false, "error": "body is not JSON"}),
            );
        }
    };
    match service.accept_webhook(body).await {
        Ok(()) => answer(StatusCode::OK, "ok", json!({"ok": true})),
        Err(e) => {
            tracing::error!(%uri, error = %e, "webhook call not stored");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "error",
                json!({"ok": false, "error": "try again later"}),
            )
        }
    }
}

/// The secret from `?token=` or the header (the query wins).
fn token<'a>(query: Option<&str>, headers: &'a HeaderMap) -> Option<std::borrow::Cow<'a, str>> {
    let from_query = query.and_then(|q| {
        url_pairs(q)
            .find(|(k, _)| k == "token")
            .map(|(_, v)| std::borrow::Cow::Owned(v))
    });
    from_query.or_else(|| {
        headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(std::borrow::Cow::Borrowed)
    })
}

fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    reqwest::Url::parse(&format!("http://q/?{query}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
}

async fn read_body(request: Request) -> Result<Bytes, StatusCode> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    axum::body::to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE)
}

async fn healthz<S: Service>(State(service): State<S>) -> Response {
    let health = service.health().await;
    let status = if health.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(health.report)).into_response()
}

async fn metrics<S: Service>(State(service): State<S>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        service.metrics().await,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_query_or_the_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            token(Some("a=1&token=s%2Bx"), &headers).as_deref(),
            Some("s+x")
        );
        assert_eq!(token(Some("a=1"), &headers), None);
        headers.insert(
            TOKEN_HEADER,
            "h".parse().unwrap_or_else(|_| panic!("header")),
        );
        assert_eq!(token(None, &headers).as_deref(), Some("h"));
        assert_eq!(token(Some("token=q"), &headers).as_deref(), Some("q"));
    }
}
