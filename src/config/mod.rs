//! Runtime configuration of the live bot.
//!
//! This module owns everything the bot reads from its environment: the
//! variable names, their defaults and descriptions ([`VARIABLES`], also used
//! for the README and `.env.example`), loading an optional `.env` file from
//! the working directory (it never overrides variables that are already set),
//! and turning the raw strings into a validated [`Config`]. Errors name the
//! offending variable, show what was given (never a secret) and say what is
//! expected.
//!
//! [`from_lookup`] is the pure parser; [`from_env`] feeds it the process
//! environment after loading `.env`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

pub mod wahelp;

pub use wahelp::WahelpConfig;

const TOKEN: &str = "TELEGRAM_BOT_TOKEN";
const API_URL: &str = "TELEGRAM_API_URL";
const PROXY_URL: &str = "TELEGRAM_PROXY_URL";
pub(crate) const DATABASE_PATH: &str = "DATABASE_PATH";
pub(crate) const FLOW_PATH: &str = "FLOW_PATH";
const ADMIN_CHAT_IDS: &str = "ADMIN_CHAT_IDS";
pub(crate) const HTTP_LISTEN: &str = "HTTP_LISTEN";
const WEBHOOK_URL: &str = "TELEGRAM_WEBHOOK_URL";
const POLL_TIMEOUT: &str = "TELEGRAM_POLL_TIMEOUT_SECS";
const SEND_TIMEOUT: &str = "TELEGRAM_SEND_TIMEOUT_SECS";
const RATE_GLOBAL: &str = "TELEGRAM_RATE_GLOBAL";
const RATE_PER_CHAT: &str = "TELEGRAM_RATE_PER_CHAT";
const OUTBOX_MAX_ATTEMPTS: &str = "OUTBOX_MAX_ATTEMPTS";
const OUTBOX_MAX_AGE: &str = "OUTBOX_MAX_AGE_HOURS";
const MESSAGE_LOG_DAYS: &str = "MESSAGE_LOG_DAYS";
const PROCESSED_UPDATES_DAYS: &str = "PROCESSED_UPDATES_DAYS";
const FLOW_WATCH: &str = "FLOW_WATCH";
const HEARTBEAT_ALERT: &str = "HEARTBEAT_ALERT_SECS";
const LOG_FORMAT: &str = "LOG_FORMAT";
const RUST_LOG: &str = "RUST_LOG";

const DEFAULT_API_URL: &str = "https://api.telegram.org";
const DEFAULT_DATABASE_PATH: &str = "flowbot.db";
const DEFAULT_FLOW_PATH: &str = "flows/default.yaml";
const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_POLL_TIMEOUT: &str = "25";
const DEFAULT_SEND_TIMEOUT: &str = "15";
const DEFAULT_RATE_GLOBAL: &str = "30";
const DEFAULT_RATE_PER_CHAT: &str = "1";
const DEFAULT_OUTBOX_MAX_ATTEMPTS: &str = "30";
const DEFAULT_OUTBOX_MAX_AGE: &str = "24";
const DEFAULT_MESSAGE_LOG_DAYS: &str = "90";
const DEFAULT_PROCESSED_UPDATES_DAYS: &str = "7";
const DEFAULT_FLOW_WATCH: &str = "true";
const DEFAULT_HEARTBEAT_ALERT: &str = "300";
const DEFAULT_LOG_FORMAT: &str = "text";

/// The token placeholder written in `.env.example`; rejected with its own
/// message so that an unedited copy does not look like a bad token.
const PLACEHOLDER_TOKEN: &str = "123456789:replace-with-the-token-from-BotFather";

/// Accepted length of the secret part of a bot token (real ones have 35).
const TOKEN_SECRET_LEN: std::ops::RangeInclusive<usize> = 30..=50;

const PROXY_SCHEMES: &[&str] = &["http", "https", "socks5", "socks5h"];

/// Every environment variable the bot reads, in documentation order, with a
/// one-line description that ends with its default (or says it is required).
pub const VARIABLES: &[(&str, &str)] = &[
    (
        TOKEN,
        "Bot token from @BotFather, like 123456789:AAH... (required; run `flowbot chat` to try the flow without it)",
    ),
    (
        API_URL,
        "Base URL of the Telegram Bot API, http or https; change it only for a local Bot API server (default: https://api.telegram.org)",
    ),
    (
        PROXY_URL,
        "Proxy for requests to Telegram, scheme http, https, socks5 or socks5h, like socks5h://user:password@host:1080 (default: none, connect directly)",
    ),
    (
        DATABASE_PATH,
        "SQLite database file, created when missing (default: flowbot.db)",
    ),
    (
        FLOW_PATH,
        "YAML flow file that defines what the bot says and does (default: flows/default.yaml)",
    ),
    (
        FLOW_WATCH,
        "Reload the flow by itself when its file is saved, true or false; false = only on SIGHUP or the admins' /reload (default: true)",
    ),
    (
        ADMIN_CHAT_IDS,
        "Telegram chat ids of the administrators (the flow's `admins` target), separated by commas, semicolons or spaces (default: none)",
    ),
    (
        HTTP_LISTEN,
        "IP address and port the bot's HTTP server listens on (default: 127.0.0.1:8080)",
    ),
    (
        WEBHOOK_URL,
        "Public https URL at which Telegram reaches the bot's POST /telegram/webhook (through a reverse proxy that maps it there, with TLS); set = webhook mode with a random secret checked on every call, unset = long polling (default: none, long polling)",
    ),
    (
        POLL_TIMEOUT,
        "Long-polling timeout for getUpdates in whole seconds, 0 to 50 (default: 25)",
    ),
    (
        SEND_TIMEOUT,
        "Timeout of one request sending a message, in whole seconds, 1 to 120 (default: 15)",
    ),
    (
        RATE_GLOBAL,
        "Most messages sent per second over all chats, 0 = unlimited (default: 30)",
    ),
    (
        RATE_PER_CHAT,
        "Most messages sent per second to one chat, 0 = unlimited (default: 1)",
    ),
    (
        OUTBOX_MAX_ATTEMPTS,
        "Attempts to send an outgoing message before giving up, at least 1 (default: 30)",
    ),
    (
        OUTBOX_MAX_AGE,
        "Hours an outgoing message may wait to be sent before giving up, at least 1 (default: 24)",
    ),
    (
        MESSAGE_LOG_DAYS,
        "Days the message log is kept, at least 1 (default: 90)",
    ),
    (
        PROCESSED_UPDATES_DAYS,
        "Days the ids of processed Telegram updates are kept to skip duplicates, at least 1 (default: 7)",
    ),
    (
        wahelp::API_URL,
        "Wahelp API root, the part before /app/... (default: https://wahelp.ru/api)",
    ),
    (
        wahelp::PROJECT_ID,
        "Wahelp project id; unset = the CRM bridge is off and messages for managers wait in the outbox (default: none)",
    ),
    (
        wahelp::CHANNEL_UUID,
        "UUID of the Wahelp channel of kind clients_tg (required with WAHELP_PROJECT_ID)",
    ),
    (
        wahelp::LOGIN,
        "Wahelp login, with WAHELP_PASSWORD (or set WAHELP_TOKEN instead) (default: none)",
    ),
    (
        wahelp::PASSWORD,
        "Wahelp password, with WAHELP_LOGIN (default: none)",
    ),
    (
        wahelp::TOKEN,
        "A fixed Wahelp API token instead of login and password (default: none)",
    ),
    (
        wahelp::TIMEOUT,
        "Timeout of one Wahelp API call in whole seconds, 1 to 300 (default: 30)",
    ),
    (
        wahelp::WEBHOOK_SECRET,
        "Secret in the webhook URL (?token=...) or the X-Wahelp-Token header, at least 16 characters; unset = the webhook refuses every call (default: none)",
    ),
    (
        wahelp::RELAY_URL,
        "Where webhook calls the bot does not consume are passed on, http or https (default: none)",
    ),
    (
        wahelp::WEBHOOK_LOG_DAYS,
        "Days raw webhook calls are kept for `flowbot wahelp inspect`, at least 1 (default: 7)",
    ),
    (
        wahelp::PATH_DIRECTION,
        "Where a webhook event says who wrote it: comma-separated JSON paths tried in order (default: destination, direction)",
    ),
    (
        wahelp::PATH_TEXT,
        "Where the message text is (default: message, message.text, message.message)",
    ),
    (
        wahelp::PATH_PHONE,
        "Where the customer's phone is (default: user.phone, user.uid2, user.uid, contact.phone, receiver.profile.phone)",
    ),
    (
        wahelp::PATH_MESSAGE_ID,
        "Where the message id is (default: message_id, id, wahelp_id, message.message_id, message.id, message.wahelp_id, msgid)",
    ),
    (
        wahelp::PATH_MEDIA_URL,
        "Where a file's URL is (default: message.file.url and the other known places)",
    ),
    (
        wahelp::OPERATOR_VALUES,
        "Direction values meaning a message written by the business (a manager), comma-separated, compared without case (default: from_operator, operator)",
    ),
    (
        HEARTBEAT_ALERT,
        "Seconds Telegram polling or Wahelp may keep failing before the admins are told (and told again when it works), 0 = never tell (default: 300)",
    ),
    (
        LOG_FORMAT,
        "Log lines on stderr: text (for people) or json (one JSON object per line, for log collectors) (default: text)",
    ),
    (
        RUST_LOG,
        "Log filter, like info or flowbot=debug,info (default: info)",
    ),
];

/// The validated runtime configuration of the bot.
///
/// `Debug` is written by hand: it masks the token and any proxy password.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// `TELEGRAM_BOT_TOKEN`, required.
    pub telegram_token: String,
    /// `TELEGRAM_API_URL`: http or https, without a trailing slash on its path.
    pub telegram_api_url: Url,
    /// `TELEGRAM_PROXY_URL`: scheme http, https, socks5 or socks5h.
    pub telegram_proxy_url: Option<Url>,
    /// `DATABASE_PATH`.
    pub database_path: PathBuf,
    /// `FLOW_PATH`.
    pub flow_path: PathBuf,
    /// `ADMIN_CHAT_IDS`: no duplicates, in the order given.
    pub admin_chat_ids: Vec<i64>,
    /// `HTTP_LISTEN`.
    pub http_listen: SocketAddr,
    /// `TELEGRAM_WEBHOOK_URL`: https (http only for a loopback host);
    /// `None` = long polling.
    pub telegram_webhook_url: Option<Url>,
    /// `TELEGRAM_POLL_TIMEOUT_SECS`, 0 to 50 seconds.
    pub poll_timeout: Duration,
    /// `TELEGRAM_SEND_TIMEOUT_SECS`, 1 to 120 seconds.
    pub send_timeout: Duration,
    /// `TELEGRAM_RATE_GLOBAL`, messages per second; 0 = unlimited.
    pub rate_global_per_sec: f64,
    /// `TELEGRAM_RATE_PER_CHAT`, messages per second; 0 = unlimited.
    pub rate_per_chat_per_sec: f64,
    /// `OUTBOX_MAX_ATTEMPTS`, at least 1.
    pub outbox_max_attempts: u32,
    /// `OUTBOX_MAX_AGE_HOURS`, at least one hour.
    pub outbox_max_age: Duration,
    /// `MESSAGE_LOG_DAYS`, at least 1.
    pub message_log_days: u32,
    /// `PROCESSED_UPDATES_DAYS`, at least 1.
    pub processed_updates_days: u32,
    /// `FLOW_WATCH`.
    pub flow_watch: bool,
    /// `HEARTBEAT_ALERT_SECS`; `None` = never tell.
    pub heartbeat_alert: Option<Duration>,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// The `WAHELP_*` variables.
    pub wahelp: WahelpConfig,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field(
                "telegram_token",
                &format_args!("{}", masked_token(&self.telegram_token)),
            )
            .field(
                "telegram_api_url",
                &format_args!("{}", redacted_url(&self.telegram_api_url)),
            )
            .field(
                "telegram_proxy_url",
                &self.telegram_proxy_url.as_ref().map(redacted_url),
            )
            .field("database_path", &self.database_path)
            .field("flow_path", &self.flow_path)
            .field("admin_chat_ids", &self.admin_chat_ids)
            .field("http_listen", &self.http_listen)
            .field(
                "telegram_webhook_url",
                &self.telegram_webhook_url.as_ref().map(redacted_url),
            )
            .field("poll_timeout", &self.poll_timeout)
            .field("send_timeout", &self.send_timeout)
            .field("rate_global_per_sec", &self.rate_global_per_sec)
            .field("rate_per_chat_per_sec", &self.rate_per_chat_per_sec)
            .field("outbox_max_attempts", &self.outbox_max_attempts)
            .field("outbox_max_age", &self.outbox_max_age)
            .field("message_log_days", &self.message_log_days)
            .field("processed_updates_days", &self.processed_updates_days)
            .field("flow_watch", &self.flow_watch)
            .field("heartbeat_alert", &self.heartbeat_alert)
            .field("log_format", &self.log_format)
            .field("wahelp", &self.wahelp)
            .finish()
    }
}

/// Why the configuration could not be read. Every message names the
/// variable (or the `.env` file and line) and never shows a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `TELEGRAM_BOT_TOKEN` is unset or blank.
    #[error(
        "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put its token in TELEGRAM_BOT_TOKEN (or in .env); to try the flow without Telegram run `flowbot chat`"
    )]
    MissingToken,
    /// `TELEGRAM_BOT_TOKEN` still holds the placeholder from `.env.example`.
    #[error(
        "TELEGRAM_BOT_TOKEN still holds the placeholder from .env.example: replace it with the token @BotFather sent you; to try the flow without Telegram run `flowbot chat`"
    )]
    PlaceholderToken,
    /// `TELEGRAM_BOT_TOKEN` does not have the shape of a bot token. The
    /// reason never contains the token.
    #[error(
        "TELEGRAM_BOT_TOKEN does not look like a bot token: {reason} (expected the token exactly as @BotFather sent it: the bot id, a colon and about 35 letters, digits, '_' or '-', like 123456789:AAH...; the value is not shown here)"
    )]
    MalformedToken {
        /// What is wrong, without the token itself.
        reason: String,
    },
    /// A variable has a value that cannot be used.
    #[error("{var}: {value:?} {problem} (expected {expected})")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What was given, with any password replaced by `***`.
        value: String,
        /// What is wrong with it, like "is not a whole number".
        problem: String,
        /// What is expected instead.
        expected: String,
    },
    /// A variable is set but is not valid UTF-8.
    #[error("{var} is not valid UTF-8 (expected {var} to be plain text)")]
    NotUnicode {
        /// The variable.
        var: &'static str,
    },
    /// The `.env` file exists but cannot be read or parsed.
    #[error("{}{}: {detail}", .path.display(), dotenv_location(.line, .variable))]
    DotEnv {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the error, when known.
        line: Option<usize>,
        /// The variable defined on that line, when it can be told.
        variable: Option<String>,
        /// What is wrong (never the value).
        detail: String,
    },
}

impl ConfigError {
    /// The variable the error is about, when there is one.
    pub fn variable(&self) -> Option<&str> {
        match self {
            Self::MissingToken | Self::PlaceholderToken | Self::MalformedToken { .. } => {
                Some(TOKEN)
            }
            Self::Invalid { var, .. } | Self::NotUnicode { var } => Some(var),
            Self::DotEnv { variable, .. } => variable.as_deref(),
        }
    }
}

fn dotenv_location(line: &Option<usize>, variable: &Option<String>) -> String {
    let mut location = String::new();
    if let Some(line) = line {
        location.push_str(&format!(" line {line}"));
    }
    if let Some(variable) = variable {
        location.push_str(&format!(" ({variable})"));
    }
    location
}

/// Reads the configuration from the process environment, after loading
/// `.env` from the working directory when that file exists.
///
/// Variables from `.env` never override variables that are already set
/// (even when set to an empty value). Loading `.env` sets process
/// environment variables, so call this early, before other threads start.
pub fn from_env() -> Result<Config, ConfigError> {
    load_env()?;
    from_lookup(|name| std::env::var(name).ok())
}

/// What [`from_env`] does before reading: loads `.env` (never over a
/// variable already set) and checks that every variable is UTF-8. For the
/// tools that need some variables but not the bot token.
pub fn load_env() -> Result<(), ConfigError> {
    let path = std::env::current_dir()
        .map(|dir| dir.join(".env"))
        .unwrap_or_else(|_| PathBuf::from(".env"));
    if let Some(content) = read_dotenv(&path)? {
        dotenvy::from_read(content.as_bytes())
            .map_err(|err| dotenv_error(&path, &content, &err))?;
    }
    for &(var, _) in VARIABLES {
        if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(var) {
            return Err(ConfigError::NotUnicode { var });
        }
    }
    Ok(())
}

/// `DATABASE_PATH` from `raw` (trimmed values, `None` when unset or blank),
/// or its default; needs no token.
pub fn database_path(raw: impl Fn(&str) -> Option<String>) -> PathBuf {
    PathBuf::from(raw(DATABASE_PATH).unwrap_or_else(|| DEFAULT_DATABASE_PATH.to_owned()))
}

/// `HTTP_LISTEN` from `raw`, or its default; needs no token.
pub fn http_listen(raw: impl Fn(&str) -> Option<String>) -> Result<SocketAddr, ConfigError> {
    parse_listen(&raw(HTTP_LISTEN).unwrap_or_else(|| DEFAULT_HTTP_LISTEN.to_owned()))
}

/// Reads a dotenv file and checks that it parses, without touching the
/// environment. Returns its text without a byte order mark, or `None` when
/// the file does not exist.
fn read_dotenv(path: &Path) -> Result<Option<String>, ConfigError> {
    let content = match std::fs::read_to_string(path) {
        Ok(content) => content,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(ConfigError::DotEnv {
                path: path.to_owned(),
                line: None,
                variable: None,
                detail: format!("cannot read the file: {err}"),
            });
        }
    };
    let content = match content.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => content,
    };
    if let Some(Err(err)) = dotenvy::from_read_iter(content.as_bytes()).find(Result::is_err) {
        return Err(dotenv_error(path, &content, &err));
    }
    Ok(Some(content))
}

/// Turns a dotenvy error into a [`ConfigError::DotEnv`] with the line
/// number and the variable of the offending line, but not its value.
fn dotenv_error(path: &Path, content: &str, err: &dotenvy::Error) -> ConfigError {
    let (line, detail) = match err {
        dotenvy::Error::LineParse(..) => (
            dotenv_error_line(content, err),
            "cannot parse this line (expected NAME=value; put a value that contains spaces in single quotes)"
                .to_owned(),
        ),
        other => (None, format!("cannot read the file: {other}")),
    };
    let variable = line
        .and_then(|line| content.lines().nth(line - 1))
        .and_then(dotenv_line_key);
    ConfigError::DotEnv {
        path: path.to_owned(),
        line,
        variable,
        detail,
    }
}

/// dotenvy reports the text of the bad line (or only its value) and a
/// position inside it, not the line number. The number is found as the
/// shortest prefix of the file that fails with the same error.
fn dotenv_error_line(content: &str, err: &dotenvy::Error) -> Option<usize> {
    let dotenvy::Error::LineParse(text, index) = err else {
        return None;
    };
    let mut end = 0;
    for (number, line) in content.split_inclusive('\n').enumerate() {
        end += line.len();
        let prefix = &content[..end];
        if let Some(Err(dotenvy::Error::LineParse(t, i))) =
            dotenvy::from_read_iter(prefix.as_bytes()).find(Result::is_err)
            && t == *text
            && i == *index
        {
            return Some(number + 1);
        }
    }
    None
}

/// The variable name a dotenv line defines, if it looks like `NAME=...`.
fn dotenv_line_key(line: &str) -> Option<String> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let key = key.strip_prefix("export ").map_or(key, str::trim);
    let plausible = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    plausible.then(|| key.to_owned())
}

/// Parses the configuration from `get`, which returns the raw value of a
/// variable. Values that are empty or only whitespace count as unset;
/// others are trimmed.
pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let raw = |var: &str| {
        get(var)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    let or = |var: &str, default: &str| raw(var).unwrap_or_else(|| default.to_owned());

    let telegram_token = raw(TOKEN).ok_or(ConfigError::MissingToken)?;
    check_token(&telegram_token)?;

    Ok(Config {
        telegram_token,
        telegram_api_url: parse_api_url(&or(API_URL, DEFAULT_API_URL))?,
        telegram_proxy_url: raw(PROXY_URL).as_deref().map(parse_proxy_url).transpose()?,
        database_path: database_path(raw),
        flow_path: PathBuf::from(or(FLOW_PATH, DEFAULT_FLOW_PATH)),
        admin_chat_ids: parse_admin_chat_ids(&raw(ADMIN_CHAT_IDS).unwrap_or_default())?,
        http_listen: http_listen(raw)?,
        telegram_webhook_url: raw(WEBHOOK_URL)
            .as_deref()
            .map(parse_webhook_url)
            .transpose()?,
        poll_timeout: Duration::from_secs(parse_whole(
            POLL_TIMEOUT,
            &or(POLL_TIMEOUT, DEFAULT_POLL_TIMEOUT),
            0,
            50,
            "whole seconds from 0 to 50",
        )?),
        send_timeout: Duration::from_secs(parse_whole(
            SEND_TIMEOUT,
            &or(SEND_TIMEOUT, DEFAULT_SEND_TIMEOUT),
            1,
            120,
            "whole seconds from 1 to 120",
        )?),
        rate_global_per_sec: parse_rate(RATE_GLOBAL, &or(RATE_GLOBAL, DEFAULT_RATE_GLOBAL))?,
        rate_per_chat_per_sec: parse_rate(
            RATE_PER_CHAT,
            &or(RATE_PER_CHAT, DEFAULT_RATE_PER_CHAT),
        )?,
        outbox_max_attempts: parse_u32_at_least_one(
            OUTBOX_MAX_ATTEMPTS,
            &or(OUTBOX_MAX_ATTEMPTS, DEFAULT_OUTBOX_MAX_ATTEMPTS),
            "a whole number of attempts, at least 1",
        )?,
        outbox_max_age: Duration::from_secs(
            parse_whole(
                OUTBOX_MAX_AGE,
                &or(OUTBOX_MAX_AGE, DEFAULT_OUTBOX_MAX_AGE),
                1,
                u64::MAX / 3600,
                "whole hours, at least 1",
            )? * 3600,
        ),
        message_log_days: parse_u32_at_least_one(
            MESSAGE_LOG_DAYS,
            &or(MESSAGE_LOG_DAYS, DEFAULT_MESSAGE_LOG_DAYS),
            "whole days, at least 1",
        )?,
        processed_updates_days: parse_u32_at_least_one(
            PROCESSED_UPDATES_DAYS,
            &or(PROCESSED_UPDATES_DAYS, DEFAULT_PROCESSED_UPDATES_DAYS),
            "whole days, at least 1",
        )?,
        flow_watch: parse_bool(FLOW_WATCH, &or(FLOW_WATCH, DEFAULT_FLOW_WATCH))?,
        heartbeat_alert: match parse_whole(
            HEARTBEAT_ALERT,
            &or(HEARTBEAT_ALERT, DEFAULT_HEARTBEAT_ALERT),
            0,
            7 * 24 * 3600,
            "whole seconds from 0 (never) to 604800 (a week)",
        )? {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        },
        log_format: parse_log_format(&or(LOG_FORMAT, DEFAULT_LOG_FORMAT))?,
        wahelp: wahelp::from_lookup(&raw)?,
    })
}

fn invalid(
    var: &'static str,
    value: impl Into<String>,
    problem: impl Into<String>,
    expected: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.into(),
        problem: problem.into(),
        expected: expected.into(),
    }
}

/// Checks the loose shape `<digits>:<about 35 of [A-Za-z0-9_-]>`. No error
/// message contains the token.
fn check_token(token: &str) -> Result<(), ConfigError> {
    if token == PLACEHOLDER_TOKEN {
        return Err(ConfigError::PlaceholderToken);
    }
    let malformed = |reason: &str| {
        Err(ConfigError::MalformedToken {
            reason: reason.to_owned(),
        })
    };
    if token.chars().any(char::is_whitespace) {
        return malformed("it contains whitespace");
    }
    let Some((id, secret)) = token.split_once(':') else {
        return malformed("there is no ':' between the bot id and the secret");
    };
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        if id.to_ascii_lowercase().starts_with("bot") {
            return malformed("the part before ':' is not a number (drop the \"bot\" prefix)");
        }
        return malformed("the part before ':' is not a number");
    }
    if id.len() > 20 {
        return malformed("the bot id before ':' is too long");
    }
    if !secret
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return malformed(
            "the part after ':' has characters other than letters, digits, '_' and '-'",
        );
    }
    if !TOKEN_SECRET_LEN.contains(&secret.len()) {
        return Err(ConfigError::MalformedToken {
            reason: format!(
                "the part after ':' is {} characters long, not about 35",
                secret.len()
            ),
        });
    }
    Ok(())
}

/// The token with everything after the bot id hidden: `123456789:***`.
fn masked_token(token: &str) -> String {
    match token.split_once(':') {
        Some((id, _)) if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) => {
            format!("{id}:***")
        }
        _ => "***".to_owned(),
    }
}

/// The URL with its password, if any, replaced by `***`.
pub(crate) fn redacted_url(url: &Url) -> String {
    if url.password().is_some() {
        let mut shown = url.clone();
        if shown.set_password(Some("***")).is_ok() {
            return shown.into();
        }
        return format!("{}://***", url.scheme());
    }
    url.as_str().to_owned()
}

/// A URL as typed, with its user information (which may hold a password)
/// replaced by `***`; used in error messages, also for text that is not a URL.
fn redacted_url_text(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    match raw[start..].rfind('@') {
        Some(at) => format!("{}***@{}", &raw[..start], &raw[start + at + 1..]),
        None => raw.to_owned(),
    }
}

fn parse_api_url(raw: &str) -> Result<Url, ConfigError> {
    const EXPECTED: &str =
        "an http or https URL like https://api.telegram.org or http://127.0.0.1:8081";
    let mut url = Url::parse(raw).map_err(|err| {
        invalid(
            API_URL,
            redacted_url_text(raw),
            format!("is not a URL ({err})"),
            EXPECTED,
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            API_URL,
            redacted_url_text(raw),
            format!("has the scheme {:?}", url.scheme()),
            EXPECTED,
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            API_URL,
            redacted_url_text(raw),
            "has a query or a fragment",
            EXPECTED,
        ));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

fn parse_proxy_url(raw: &str) -> Result<Url, ConfigError> {
    const EXPECTED: &str = "a URL with scheme http, https, socks5 or socks5h, like socks5h://user:password@127.0.0.1:1080 or http://proxy.example.com:3128";
    let url = Url::parse(raw).map_err(|err| {
        invalid(
            PROXY_URL,
            redacted_url_text(raw),
            format!("is not a URL ({err})"),
            EXPECTED,
        )
    })?;
    if !PROXY_SCHEMES.contains(&url.scheme()) {
        return Err(invalid(
            PROXY_URL,
            redacted_url_text(raw),
            format!("has the scheme {:?}", url.scheme()),
            EXPECTED,
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(
            PROXY_URL,
            redacted_url_text(raw),
            "has no host",
            EXPECTED,
        ));
    }
    Ok(url)
}

/// The public URL Telegram posts updates to: https, or http for a
/// loopback host (a test, or a Bot API server on the same machine).
fn parse_webhook_url(raw: &str) -> Result<Url, ConfigError> {
    const EXPECTED: &str = "an https URL like https://bot.example.com/telegram/webhook (http only for 127.0.0.1, ::1 or localhost)";
    let fail = |problem: String| invalid(WEBHOOK_URL, redacted_url_text(raw), problem, EXPECTED);
    let url = Url::parse(raw).map_err(|err| fail(format!("is not a URL ({err})")))?;
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(fail("has no host".to_owned()));
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(fail(
                "is http with a host other than the loopback".to_owned(),
            ));
        }
        other => return Err(fail(format!("has the scheme {other:?}"))),
    }
    if url.fragment().is_some() {
        return Err(fail("has a fragment".to_owned()));
    }
    Ok(url)
}

fn parse_admin_chat_ids(raw: &str) -> Result<Vec<i64>, ConfigError> {
    let mut ids = Vec::new();
    for piece in raw
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|piece| !piece.is_empty())
    {
        let id = piece
            .parse::<i64>()
            .ok()
            .filter(|&id| id != 0)
            .ok_or_else(|| {
                invalid(
                    ADMIN_CHAT_IDS,
                    piece,
                    "is not a chat id",
                    "integers like -1001234567890 or 123456789, separated by commas",
                )
            })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn parse_listen(raw: &str) -> Result<SocketAddr, ConfigError> {
    raw.parse().map_err(|_| {
        invalid(
            HTTP_LISTEN,
            raw,
            "is not an IP address with a port",
            "an IP address and port like 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080; host names are not accepted",
        )
    })
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// For people reading a terminal or the journal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `LOG_FORMAT`: `text` or `json`, in any case.
pub fn parse_log_format(raw: &str) -> Result<LogFormat, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(invalid(
            LOG_FORMAT,
            raw,
            "is not a log format",
            "text or json",
        )),
    }
}

/// `true`/`false` and the usual spellings of yes and no.
fn parse_bool(var: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(invalid(var, raw, "is not true or false", "true or false")),
    }
}

/// A whole number in `min..=max`.
fn parse_whole(
    var: &'static str,
    raw: &str,
    min: u64,
    max: u64,
    expected: &str,
) -> Result<u64, ConfigError> {
    let number = raw
        .parse::<i128>()
        .map_err(|_| invalid(var, raw, "is not a whole number", expected))?;
    if number < i128::from(min) {
        return Err(invalid(var, raw, "is too small", expected));
    }
    u64::try_from(number)
        .ok()
        .filter(|&number| number <= max)
        .ok_or_else(|| invalid(var, raw, "is too large", expected))
}

fn parse_u32_at_least_one(
    var: &'static str,
    raw: &str,
    expected: &str,
) -> Result<u32, ConfigError> {
    let number = parse_whole(var, raw, 1, u64::from(u32::MAX), expected)?;
    u32::try_from(number).map_err(|_| invalid(var, raw, "is too large", expected))
}

/// Messages per second: finite and not negative; 0 means unlimited.
fn parse_rate(var: &'static str, raw: &str) -> Result<f64, ConfigError> {
    const EXPECTED: &str = "messages per second, a number like 30 or 0.5, 0 for unlimited";
    let rate = raw
        .parse::<f64>()
        .map_err(|_| invalid(var, raw, "is not a number", EXPECTED))?;
    if !rate.is_finite() {
        return Err(invalid(var, raw, "is not a finite number", EXPECTED));
    }
    if rate < 0.0 {
        return Err(invalid(var, raw, "is negative", EXPECTED));
    }
    // Turns -0 into 0.
    Ok(rate.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;

    const GOOD_TOKEN: &str = "7412583690:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

    /// Parses `pairs`, with a valid token unless `pairs` sets one.
    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = HashMap::new();
        map.insert(TOKEN.to_owned(), GOOD_TOKEN.to_owned());
        for (name, value) in pairs {
            map.insert((*name).to_owned(), (*value).to_owned());
        }
        from_lookup(|name| map.get(name).cloned())
    }

    fn parse_err(pairs: &[(&str, &str)]) -> ConfigError {
        match parse(pairs) {
            Ok(config) => panic!("{pairs:?} was accepted: {config:?}"),
            Err(err) => err,
        }
    }

    fn defaults() -> Config {
        parse(&[]).expect("defaults parse")
    }

    #[test]
    fn defaults_apply_when_only_the_token_is_set() {
        let config = defaults();
        assert_eq!(config.telegram_token, GOOD_TOKEN);
        assert_eq!(
            config.telegram_api_url.as_str(),
            "https://api.telegram.org/"
        );
        assert_eq!(config.telegram_proxy_url, None);
        assert_eq!(config.database_path, PathBuf::from("flowbot.db"));
        assert_eq!(config.flow_path, PathBuf::from("flows/default.yaml"));
        assert!(config.admin_chat_ids.is_empty());
        assert_eq!(config.http_listen, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(config.telegram_webhook_url, None);
        assert_eq!(config.poll_timeout, Duration::from_secs(25));
        assert_eq!(config.send_timeout, Duration::from_secs(15));
        assert_eq!(config.rate_global_per_sec, 30.0);
        assert_eq!(config.rate_per_chat_per_sec, 1.0);
        assert_eq!(config.outbox_max_attempts, 30);
        assert_eq!(config.outbox_max_age, Duration::from_secs(24 * 3600));
        assert_eq!(config.message_log_days, 90);
        assert_eq!(config.processed_updates_days, 7);
        assert!(config.flow_watch);
        assert_eq!(config.heartbeat_alert, Some(Duration::from_secs(300)));
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn blank_values_count_as_unset() {
        let blank: Vec<(&str, &str)> = VARIABLES
            .iter()
            .filter(|(name, _)| *name != TOKEN)
            .map(|(name, _)| (*name, " \t "))
            .collect();
        assert_eq!(parse(&blank).expect("blank values"), defaults());
        assert!(matches!(
            parse_err(&[(TOKEN, "  ")]),
            ConfigError::MissingToken
        ));
    }

    #[test]
    fn every_variable_is_parsed() {
        let config = parse(&[
            (TOKEN, "  123:abcdefghijklmnopqrstuvwxyz_-0123456789  "),
            (API_URL, "http://127.0.0.1:8081/telegram/"),
            (PROXY_URL, "socks5h://user:secret@10.0.0.1:1080"),
            (DATABASE_PATH, "/var/lib/flowbot/bot.db"),
            (FLOW_PATH, "my flows/shop.yaml"),
            (ADMIN_CHAT_IDS, "-1001234567890, 42"),
            (HTTP_LISTEN, "[::1]:9000"),
            (WEBHOOK_URL, "https://bot.example.com/tg/hook"),
            (POLL_TIMEOUT, "0"),
            (SEND_TIMEOUT, "120"),
            (RATE_GLOBAL, "0"),
            (RATE_PER_CHAT, "0.5"),
            (OUTBOX_MAX_ATTEMPTS, "1"),
            (OUTBOX_MAX_AGE, "48"),
            (MESSAGE_LOG_DAYS, "365"),
            (PROCESSED_UPDATES_DAYS, "1"),
            (FLOW_WATCH, "off"),
            (HEARTBEAT_ALERT, "0"),
            (LOG_FORMAT, "JSON"),
        ])
        .expect("all variables");
        assert_eq!(
            config.telegram_token,
            "123:abcdefghijklmnopqrstuvwxyz_-0123456789"
        );
        assert_eq!(
            config.telegram_api_url.as_str(),
            "http://127.0.0.1:8081/telegram"
        );
        let proxy = config.telegram_proxy_url.clone().expect("proxy");
        assert_eq!(proxy.scheme(), "socks5h");
        assert_eq!(proxy.username(), "user");
        assert_eq!(proxy.password(), Some("secret"));
        assert_eq!(proxy.host_str(), Some("10.0.0.1"));
        assert_eq!(proxy.port(), Some(1080));
        assert_eq!(
            config.database_path,
            PathBuf::from("/var/lib/flowbot/bot.db")
        );
        assert_eq!(config.flow_path, PathBuf::from("my flows/shop.yaml"));
        assert_eq!(config.admin_chat_ids, vec![-1001234567890, 42]);
        assert_eq!(config.http_listen, "[::1]:9000".parse().expect("addr"));
        assert_eq!(
            config.telegram_webhook_url.as_ref().map(Url::as_str),
            Some("https://bot.example.com/tg/hook")
        );
        assert_eq!(config.poll_timeout, Duration::ZERO);
        assert_eq!(config.send_timeout, Duration::from_secs(120));
        assert_eq!(config.rate_global_per_sec, 0.0);
        assert_eq!(config.rate_per_chat_per_sec, 0.5);
        assert_eq!(config.outbox_max_attempts, 1);
        assert_eq!(config.outbox_max_age, Duration::from_secs(48 * 3600));
        assert_eq!(config.message_log_days, 365);
        assert_eq!(config.processed_updates_days, 1);
        assert!(!config.flow_watch);
        assert_eq!(config.heartbeat_alert, None);
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn log_format_watch_and_heartbeat_refuse_what_they_cannot_use() {
        let err = parse_err(&[(LOG_FORMAT, "xml")]).to_string();
        assert_eq!(
            err,
            "LOG_FORMAT: \"xml\" is not a log format (expected text or json)"
        );
        let err = parse_err(&[(FLOW_WATCH, "maybe")]).to_string();
        assert_eq!(
            err,
            "FLOW_WATCH: \"maybe\" is not true or false (expected true or false)"
        );
        let err = parse_err(&[(HEARTBEAT_ALERT, "-5")]).to_string();
        assert!(
            err.starts_with("HEARTBEAT_ALERT_SECS: \"-5\" is too small"),
            "{err}"
        );
    }

    #[test]
    fn missing_token_explains_what_to_do() {
        let err = from_lookup(|_| None).expect_err("no token");
        assert_eq!(
            err.to_string(),
            "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put its token in TELEGRAM_BOT_TOKEN (or in .env); to try the flow without Telegram run `flowbot chat`"
        );
        assert_eq!(err.variable(), Some(TOKEN));
    }

    #[test]
    fn bad_values_name_their_variable_and_show_the_value() {
        let cases: &[(&str, &str)] = &[
            (API_URL, "api.telegram.org"),
            (API_URL, "ftp://api.telegram.org"),
            (API_URL, "https://api.telegram.org/?x=1"),
            (PROXY_URL, "ftp://proxy:21"),
            (PROXY_URL, "socks4://proxy:1080"),
            (PROXY_URL, "not a url"),
            (ADMIN_CHAT_IDS, "1,12x"),
            (ADMIN_CHAT_IDS, "0"),
            (ADMIN_CHAT_IDS, "99999999999999999999"),
            (HTTP_LISTEN, "localhost:8080"),
            (HTTP_LISTEN, "127.0.0.1"),
            (WEBHOOK_URL, "http://bot.example.com/telegram/webhook"),
            (WEBHOOK_URL, "ftp://bot.example.com/telegram/webhook"),
            (WEBHOOK_URL, "bot.example.com/telegram/webhook"),
            (WEBHOOK_URL, "https://bot.example.com/telegram/webhook#x"),
            (WEBHOOK_URL, "http://10.0.0.1:8080/telegram/webhook"),
            (POLL_TIMEOUT, "51"),
            (POLL_TIMEOUT, "-1"),
            (POLL_TIMEOUT, "25s"),
            (SEND_TIMEOUT, "0"),
            (SEND_TIMEOUT, "121"),
            (RATE_GLOBAL, "-1"),
            (RATE_GLOBAL, "NaN"),
            (RATE_GLOBAL, "inf"),
            (RATE_GLOBAL, "fast"),
            (RATE_PER_CHAT, "-0.5"),
            (RATE_PER_CHAT, "1,5"),
            (OUTBOX_MAX_ATTEMPTS, "0"),
            (OUTBOX_MAX_ATTEMPTS, "4294967296"),
            (OUTBOX_MAX_AGE, "0"),
            (OUTBOX_MAX_AGE, "99999999999999999999"),
            (MESSAGE_LOG_DAYS, "0"),
            (MESSAGE_LOG_DAYS, "ninety"),
            (PROCESSED_UPDATES_DAYS, "0"),
            (PROCESSED_UPDATES_DAYS, "1.5"),
        ];
        for &(var, value) in cases {
            let err = parse_err(&[(var, value)]);
            let message = err.to_string();
            assert_eq!(err.variable(), Some(var), "{message}");
            assert!(message.starts_with(&format!("{var}: ")), "{message}");
            assert!(message.contains("(expected "), "{message}");
            let shown = value.split(',').next_back().unwrap_or(value);
            assert!(message.contains(shown), "{message}");
        }
    }

    #[test]
    fn a_bad_chat_id_message_reads_well() {
        assert_eq!(
            parse_err(&[(ADMIN_CHAT_IDS, "1, 12x")]).to_string(),
            "ADMIN_CHAT_IDS: \"12x\" is not a chat id (expected integers like -1001234567890 or 123456789, separated by commas)"
        );
    }

    #[test]
    fn admin_chat_ids_accept_mixed_separators_and_drop_duplicates() {
        let ids = |raw: &str| parse(&[(ADMIN_CHAT_IDS, raw)]).map(|c| c.admin_chat_ids);
        assert_eq!(ids("1, -2;3  4").expect("ids"), vec![1, -2, 3, 4]);
        assert_eq!(ids("5,,5;\n7 ; 5").expect("ids"), vec![5, 7]);
        assert_eq!(ids(" ,; ").expect("ids"), Vec::<i64>::new());
        assert_eq!(ids("-1001234567890").expect("ids"), vec![-1001234567890]);
    }

    #[test]
    fn proxy_schemes() {
        for scheme in ["http", "https", "socks5", "socks5h"] {
            let raw = format!("{scheme}://127.0.0.1:1080");
            let config = parse(&[(PROXY_URL, &raw)]).expect(&raw);
            let proxy = config.telegram_proxy_url.expect("proxy");
            assert_eq!(proxy.scheme(), scheme);
        }
        for raw in [
            "socks4://h:1080",
            "ftp://h:21",
            "localhost:1080",
            "socks5://",
        ] {
            let err = parse_err(&[(PROXY_URL, raw)]);
            assert_eq!(err.variable(), Some(PROXY_URL), "{err}");
        }
    }

    #[test]
    fn proxy_passwords_are_never_shown() {
        for raw in [
            "socks4://user:hunter2pass@h:1080",
            "socks5://user:hunter2pass@:1080",
            "socks5://user:hunter2pass@h:99999",
            "ftp://user:hunter2pass@h",
        ] {
            let message = parse_err(&[(PROXY_URL, raw)]).to_string();
            assert!(!message.contains("hunter2pass"), "{message}");
            assert!(message.starts_with("TELEGRAM_PROXY_URL: "), "{message}");
        }
        let config = parse(&[(PROXY_URL, "http://user:hunter2pass@proxy:3128")]).expect("proxy");
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2pass"), "{debug}");
        assert!(debug.contains("http://user:***@proxy:3128"), "{debug}");
    }

    #[test]
    fn webhook_url_is_https_or_http_on_the_loopback() {
        let url = |raw: &str| {
            parse(&[(WEBHOOK_URL, raw)])
                .expect(raw)
                .telegram_webhook_url
                .map(String::from)
        };
        for raw in [
            "https://bot.example.com/telegram/webhook",
            "https://bot.example.com:8443/tg?x=1",
            "http://127.0.0.1:8080/telegram/webhook",
            "http://127.1.2.3/telegram/webhook",
            "http://[::1]:8080/telegram/webhook",
            "http://LocalHost:8080/telegram/webhook",
        ] {
            assert_eq!(url(raw).as_deref(), Some(raw.to_lowercase().as_str()));
        }
        let message =
            parse_err(&[(WEBHOOK_URL, "http://user:hunter2pass@bot.example.com/")]).to_string();
        assert!(message.starts_with("TELEGRAM_WEBHOOK_URL: "), "{message}");
        assert!(!message.contains("hunter2pass"), "{message}");
    }

    #[test]
    fn api_url_loses_its_trailing_slash() {
        let url = |raw: &str| {
            parse(&[(API_URL, raw)])
                .expect(raw)
                .telegram_api_url
                .to_string()
        };
        assert_eq!(url("https://example.com/tg/"), "https://example.com/tg");
        assert_eq!(url("https://example.com/tg//"), "https://example.com/tg");
        assert_eq!(url("http://127.0.0.1:8081/"), "http://127.0.0.1:8081/");
        assert_eq!(url("http://127.0.0.1:8081"), "http://127.0.0.1:8081/");
    }

    #[test]
    fn bad_tokens_are_rejected_without_being_shown() {
        let secret = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
        let cases = [
            format!("7412583690 :{secret}"),
            format!("7412583690:{secret} x"),
            format!("7412583690{secret}"),
            format!("bot7412583690:{secret}"),
            format!(":{secret}"),
            format!("7412583690:{secret}!"),
            format!("7412583690:{secret}:x"),
            "7412583690:AAHdqTcvCH".to_owned(),
            format!("7412583690:{secret}{secret}"),
            format!("123456789012345678901:{secret}"),
        ];
        for token in &cases {
            let err = parse_err(&[(TOKEN, token)]);
            let message = err.to_string();
            assert!(
                matches!(err, ConfigError::MalformedToken { .. }),
                "{token}: {message}"
            );
            assert_eq!(err.variable(), Some(TOKEN));
            assert!(message.starts_with("TELEGRAM_BOT_TOKEN "), "{message}");
            assert!(!message.contains(&secret[..10]), "{message}");
            assert!(!message.contains("7412583690"), "{message}");
        }
        assert!(
            parse_err(&[(TOKEN, "bot1:x")])
                .to_string()
                .contains("\"bot\" prefix")
        );
    }

    #[test]
    fn the_placeholder_token_has_its_own_message() {
        let err = parse_err(&[(TOKEN, PLACEHOLDER_TOKEN)]);
        assert!(matches!(err, ConfigError::PlaceholderToken), "{err}");
        assert!(err.to_string().contains(".env.example"));
    }

    #[test]
    fn debug_never_contains_the_token() {
        let config = defaults();
        let debug = format!("{config:?}");
        assert!(!debug.contains(GOOD_TOKEN), "{debug}");
        assert!(!debug.contains("AAHdqTcvCH"), "{debug}");
        assert!(debug.contains("7412583690:***"), "{debug}");
        let pretty = format!("{config:#?}");
        assert!(!pretty.contains("AAHdqTcvCH"), "{pretty}");

        let odd = Config {
            telegram_token: "no-colon-secret".to_owned(),
            ..config
        };
        assert!(!format!("{odd:?}").contains("no-colon-secret"));
    }

    #[test]
    fn variables_are_unique_documented_and_state_their_default() {
        let mut seen = std::collections::HashSet::new();
        for (name, description) in VARIABLES {
            assert!(seen.insert(*name), "{name} listed twice");
            assert!(!description.contains('\n'), "{name}");
            assert!(
                description.ends_with(')')
                    && (description.contains("(default: ") || description.contains("(required")),
                "{name}: {description}"
            );
        }
        let defaults = [
            (API_URL, DEFAULT_API_URL),
            (DATABASE_PATH, DEFAULT_DATABASE_PATH),
            (FLOW_PATH, DEFAULT_FLOW_PATH),
            (HTTP_LISTEN, DEFAULT_HTTP_LISTEN),
            (POLL_TIMEOUT, DEFAULT_POLL_TIMEOUT),
            (SEND_TIMEOUT, DEFAULT_SEND_TIMEOUT),
            (RATE_GLOBAL, DEFAULT_RATE_GLOBAL),
            (RATE_PER_CHAT, DEFAULT_RATE_PER_CHAT),
            (OUTBOX_MAX_ATTEMPTS, DEFAULT_OUTBOX_MAX_ATTEMPTS),
            (OUTBOX_MAX_AGE, DEFAULT_OUTBOX_MAX_AGE),
            (MESSAGE_LOG_DAYS, DEFAULT_MESSAGE_LOG_DAYS),
            (PROCESSED_UPDATES_DAYS, DEFAULT_PROCESSED_UPDATES_DAYS),
            (FLOW_WATCH, DEFAULT_FLOW_WATCH),
            (HEARTBEAT_ALERT, DEFAULT_HEARTBEAT_ALERT),
            (LOG_FORMAT, DEFAULT_LOG_FORMAT),
        ];
        for (name, default) in defaults {
            let description = VARIABLES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, d)| *d)
                .unwrap_or_else(|| panic!("{name} is not in VARIABLES"));
            assert!(
                description.ends_with(&format!("(default: {default})")),
                "{name}: {description}"
            );
        }
        let names: Vec<&str> = VARIABLES.iter().map(|(name, _)| *name).collect();
        assert_eq!(names.first(), Some(&TOKEN));
        assert_eq!(names.last(), Some(&RUST_LOG));
        assert_eq!(names.len(), 36);
    }

    fn env_example() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".env.example");
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    }

    #[test]
    fn env_example_mentions_every_variable() {
        let text = env_example();
        for (name, _) in VARIABLES {
            assert!(
                text.lines().any(|line| {
                    line.trim_start_matches(['#', ' '])
                        .strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('='))
                }),
                ".env.example has no {name}= line"
            );
        }
    }

    #[test]
    fn env_example_parses_and_its_commented_defaults_are_the_defaults() {
        let text = env_example();
        let set: Vec<(String, String)> = dotenvy::from_read_iter(text.as_bytes())
            .collect::<Result<_, _>>()
            .expect(".env.example parses");
        assert_eq!(
            set,
            vec![(TOKEN.to_owned(), PLACEHOLDER_TOKEN.to_owned())],
            "only the token is set"
        );

        let mut commented: Vec<(&str, &str)> = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("# ") else {
                continue;
            };
            if let Some((name, value)) = rest.split_once('=')
                && VARIABLES.iter().any(|(known, _)| *known == name)
            {
                commented.push((name, value));
            }
        }
        assert_eq!(commented.len(), VARIABLES.len() - 1, "{commented:?}");
        assert_eq!(parse(&commented).expect("commented defaults"), defaults());
        let rust_log = commented.iter().find(|(name, _)| *name == RUST_LOG);
        assert_eq!(rust_log, Some(&(RUST_LOG, "info")));
    }

    fn dotenv_file(content: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(content.as_bytes()).expect("write");
        file
    }

    #[test]
    fn a_malformed_dotenv_names_the_file_line_and_variable_but_not_the_value() {
        let file = dotenv_file(
            "# comment\nDATABASE_PATH=a.db\n\nTELEGRAM_BOT_TOKEN=7412583690:AAHdqTcv CH1vGW\nFLOW_PATH=x\n",
        );
        let err = read_dotenv(file.path()).expect_err("malformed");
        let ConfigError::DotEnv { line, variable, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*line, Some(4));
        assert_eq!(variable.as_deref(), Some(TOKEN));
        let message = err.to_string();
        assert!(
            message.contains(&file.path().display().to_string()),
            "{message}"
        );
        assert!(
            message.contains(" line 4 (TELEGRAM_BOT_TOKEN): "),
            "{message}"
        );
        assert!(!message.contains("AAHdqTcv"), "{message}");

        let file = dotenv_file("A=1\nB='open\nC=3\n");
        let err = read_dotenv(file.path()).expect_err("unterminated quote");
        assert!(
            matches!(err, ConfigError::DotEnv { line: Some(3), .. }),
            "{err}"
        );

        let file = dotenv_file("A=1\nnot a line\n");
        let err = read_dotenv(file.path()).expect_err("no equals sign");
        assert!(
            matches!(
                err,
                ConfigError::DotEnv {
                    line: Some(2),
                    variable: None,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_missing_dotenv_is_fine_and_a_bom_is_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            read_dotenv(&dir.path().join(".env")).expect("missing"),
            None
        );

        let file = dotenv_file("\u{feff}TELEGRAM_BOT_TOKEN=x\nexport FLOW_PATH='a b.yaml'\n");
        let content = read_dotenv(file.path()).expect("bom").expect("exists");
        let pairs: Vec<(String, String)> = dotenvy::from_read_iter(content.as_bytes())
            .collect::<Result<_, _>>()
            .expect("parses");
        assert_eq!(
            pairs,
            vec![
                (TOKEN.to_owned(), "x".to_owned()),
                (FLOW_PATH.to_owned(), "a b.yaml".to_owned())
            ]
        );
    }

    #[test]
    fn dotenv_line_keys() {
        assert_eq!(dotenv_line_key("A_B=1").as_deref(), Some("A_B"));
        assert_eq!(dotenv_line_key(" export  A = 1").as_deref(), Some("A"));
        assert_eq!(dotenv_line_key("no equals"), None);
        assert_eq!(dotenv_line_key("a b=1"), None);
    }
}
