//! Telegram's side of how updates reach us: webhook mode (`setWebhook` with
//! a secret that is new at every start) or long polling (which needs any
//! webhook gone).
//!
//! The secret is never logged: [`Secret`]'s `Debug` hides it and no log
//! line here carries it. Receiving the webhook's calls is the HTTP
//! server's business (`POST /telegram/webhook`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use teloxide::RequestError;
use teloxide::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::config::redacted_url;
use crate::outbox::backoff::Backoff;

/// Random bytes in a secret (shown as twice as many hex digits).
const SECRET_BYTES: usize = 32;

/// The `secret_token` Telegram sends back in `X-Telegram-Bot-Api-Secret-Token`
/// with every webhook call: 64 hex digits (Telegram allows 1 to 256 of
/// `A-Z a-z 0-9 _ -`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// A fresh secret from the operating system's random source.
    pub fn random() -> Result<Secret, WebhookError> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| WebhookError::Random(e.to_string()))?;
        Ok(Secret(hex(&bytes).into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why webhook mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The operating system gave no random bytes.
    #[error("no random bytes for the Telegram webhook secret: {0}")]
    Random(String),
    /// Telegram answered and said no (a URL it cannot use, a port it does
    /// not allow, ...): retrying would not help.
    #[error(
        "Telegram refuses TELEGRAM_WEBHOOK_URL {url}: {reason} (expected a public https URL on port 443, 80, 88 or 8443 that reaches POST /telegram/webhook)"
    )]
    Refused { url: String, reason: String },
    /// Asked to stop before Telegram could be reached.
    #[error("stopped before Telegram accepted the webhook")]
    Stopped,
}

/// Points Telegram at `url` with `secret` and the update kinds we handle.
/// Retries while Telegram cannot be reached; fails at once when Telegram
/// refuses. Replacing another URL is logged.
pub async fn register(
    bot: &Bot,
    url: &Url,
    secret: &Secret,
    shutdown: &CancellationToken,
) -> Result<(), WebhookError> {
    warn_if_replacing(bot, url).await;
    let shown = redacted_url(url);
    let backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };
    for attempt in 1u32.. {
        let request = bot
            .set_webhook(url.clone())
            .secret_token(secret.as_str())
            .allowed_updates(super::ALLOWED_UPDATES)
            .send();
        let result = tokio::select! {
            () = shutdown.cancelled() => return Err(WebhookError::Stopped),
            r = request => r,
        };
        let wait = match result {
            Ok(_) => {
                tracing::info!(url = %shown, "Telegram webhook set (with a new secret)");
                return Ok(());
            }
            Err(RequestError::Api(e)) => {
                return Err(WebhookError::Refused {
                    url: shown,
                    reason: e.to_string(),
                });
            }
            Err(RequestError::RetryAfter(s)) => Duration::from_secs(u64::from(s.seconds())),
            Err(e) => {
                let wait = backoff.delay_random(attempt);
                tracing::warn!(error = %e, attempt, retry_in_ms = wait.as_millis() as u64, "cannot reach Telegram to set the webhook; retrying");
                wait
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return Err(WebhookError::Stopped),
            () = tokio::time::sleep(wait) => {}
        }
    }
    Err(WebhookError::Stopped)
}

/// Logs when the webhook set now points elsewhere (another integration's,
/// which stops getting updates). Best effort: a failure is only logged.
async fn warn_if_replacing(bot: &Bot, url: &Url) {
    match bot.get_webhook_info().await {
        Ok(info) => match info.url {
            Some(old) if old != *url => tracing::warn!(
                old = %redacted_url(&old),
                "a webhook to another URL was set for this bot; replacing it"
            ),
            _ => {}
        },
        Err(e) => tracing::warn!(error = %e, "cannot read the webhook state"),
    }
}

/// Long polling does not work while a webhook is set: remove one left by
/// another integration (or by webhook mode), and say so. Updates Telegram
/// holds are kept: polling receives them.
pub async fn delete_leftover(bot: &Bot) {
    match bot.get_webhook_info().await {
        Ok(info) if info.url.is_some() => {
            tracing::warn!("a webhook was set for this bot; deleting it to use long polling");
            if let Err(e) = bot.delete_webhook().await {
                tracing::error!(error = %e, "cannot delete the webhook");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the webhook state"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_64_characters_telegram_allows_and_new_each_time() {
        let a = Secret::random().unwrap_or_else(|e| panic!("{e}"));
        let b = Secret::random().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.as_str().len(), 64);
        assert!(
            a.as_str()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    #[test]
    fn hex_is_two_lower_case_digits_a_byte() {
        assert_eq!(hex(&[0, 9, 10, 255]), "00090aff");
    }
}
