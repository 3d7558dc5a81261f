//! The few settings the Wahelp tools and `chat --serve` read from the
//! environment and `.env`, without asking for a Telegram token: the
//! database, the HTTP address and the `WAHELP_*` variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{self, ConfigError, WahelpConfig};

pub(super) use crate::config::{DATABASE_PATH, FLOW_PATH};
pub(super) const WEBHOOK_SECRET: &str = "WAHELP_WEBHOOK_SECRET";
pub(super) const WEBHOOK_LOG_DAYS: &str = "WAHELP_WEBHOOK_LOG_DAYS";
pub(super) const PROJECT_ID: &str = "WAHELP_PROJECT_ID";

/// Loads `.env` from the working directory into the environment (never
/// over a variable already set), as `flowbot run` does. Only a broken
/// `.env` or a variable that is not UTF-8 is an error here: the bot's other
/// variables (the token first) are not needed by these tools.
///
/// Sets process environment variables: call it before starting threads.
pub(super) fn load_env() -> Result<(), ConfigError> {
    config::load_env()
}

/// A variable's value, trimmed; `None` when unset or blank (as the bot reads it).
pub(super) fn raw(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The `WAHELP_*` variables, checked as the bot checks them.
pub(super) fn wahelp() -> Result<WahelpConfig, ConfigError> {
    config::wahelp::from_lookup(&raw)
}

/// `DATABASE_PATH` (default `flowbot.db`).
pub(super) fn database_path() -> PathBuf {
    config::database_path(raw)
}

/// `HTTP_LISTEN` (default `127.0.0.1:8080`).
pub(super) fn http_listen() -> Result<SocketAddr, String> {
    config::http_listen(raw).map_err(|e| e.to_string())
}

/// Logs as `LOG_FORMAT` asks (text when it is unusable, with a warning),
/// filtered by `RUST_LOG` (default `default`).
pub(super) fn init_logging(default: &str) {
    let format = raw("LOG_FORMAT").map_or(Ok(config::LogFormat::Text), |v| {
        config::parse_log_format(&v)
    });
    let format = format.unwrap_or_else(|e| {
        eprintln!("flowbot: {e}; writing text logs");
        config::LogFormat::Text
    });
    super::logging::init(default, format);
}

#[cfg(test)]
mod tests {
    use super::super::wahelp;
    use super::*;

    #[test]
    fn every_variable_named_here_is_one_the_bot_documents() {
        for name in [
            WEBHOOK_SECRET,
            WEBHOOK_LOG_DAYS,
            PROJECT_ID,
            wahelp::PATH_DIRECTION,
            wahelp::PATH_TEXT,
            wahelp::PATH_PHONE,
            wahelp::PATH_MESSAGE_ID,
            wahelp::PATH_MEDIA_URL,
        ] {
            assert!(
                config::VARIABLES.iter().any(|(known, _)| *known == name),
                "{name} is not in config::VARIABLES"
            );
        }
    }
}
