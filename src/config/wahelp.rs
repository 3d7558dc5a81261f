//! The `WAHELP_*` variables: the CRM bridge's API access, its webhook
//! secret, the relay and where in a webhook payload each field is looked
//! for. Without `WAHELP_PROJECT_ID` the bridge is off (messages for the CRM
//! wait in the outbox); without `WAHELP_WEBHOOK_SECRET` the webhook refuses
//! every call.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use super::{ConfigError, invalid, parse_u32_at_least_one, parse_whole};
use crate::wahelp::client::{self, Auth};
use crate::wahelp::payload::{FieldPath, Paths};

pub(super) const API_URL: &str = "WAHELP_API_URL";
pub(super) const PROJECT_ID: &str = "WAHELP_PROJECT_ID";
pub(super) const CHANNEL_UUID: &str = "WAHELP_CHANNEL_UUID";
pub(super) const LOGIN: &str = "WAHELP_LOGIN";
pub(super) const PASSWORD: &str = "WAHELP_PASSWORD";
pub(super) const TOKEN: &str = "WAHELP_TOKEN";
pub(super) const TIMEOUT: &str = "WAHELP_TIMEOUT_SECS";
pub(super) const WEBHOOK_SECRET: &str = "WAHELP_WEBHOOK_SECRET";
pub(super) const RELAY_URL: &str = "WAHELP_RELAY_URL";
pub(super) const WEBHOOK_LOG_DAYS: &str = "WAHELP_WEBHOOK_LOG_DAYS";
pub(super) const PATH_DIRECTION: &str = "WAHELP_PATH_DIRECTION";
pub(super) const PATH_TEXT: &str = "WAHELP_PATH_TEXT";
pub(super) const PATH_PHONE: &str = "WAHELP_PATH_PHONE";
pub(super) const PATH_MESSAGE_ID: &str = "WAHELP_PATH_MESSAGE_ID";
pub(super) const PATH_MEDIA_URL: &str = "WAHELP_PATH_MEDIA_URL";
pub(super) const OPERATOR_VALUES: &str = "WAHELP_OPERATOR_VALUES";

const DEFAULT_TIMEOUT: &str = "30";
const DEFAULT_WEBHOOK_LOG_DAYS: &str = "7";
/// A guessable secret would let anyone write to customers as a manager.
const MIN_SECRET_LEN: usize = 16;

/// The CRM bridge's configuration.
#[derive(Clone, PartialEq)]
pub struct WahelpConfig {
    /// API access; `None` when `WAHELP_PROJECT_ID` is unset (bridge off).
    pub api: Option<client::Settings>,
    /// `None`: the webhook refuses every call.
    pub webhook_secret: Option<String>,
    pub relay_url: Option<Url>,
    pub webhook_log_days: u32,
    pub paths: Paths,
}

impl fmt::Debug for WahelpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WahelpConfig")
            .field("api", &self.api)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("relay_url", &self.relay_url.as_ref().map(Url::as_str))
            .field("webhook_log_days", &self.webhook_log_days)
            .field("paths", &self.paths)
            .finish()
    }
}

/// Reads the `WAHELP_*` variables (`raw` gives a trimmed, non-empty value).
pub fn from_lookup(raw: &dyn Fn(&str) -> Option<String>) -> Result<WahelpConfig, ConfigError> {
    let or = |var: &str, default: &str| raw(var).unwrap_or_else(|| default.to_owned());
    let timeout = Duration::from_secs(parse_whole(
        TIMEOUT,
        &or(TIMEOUT, DEFAULT_TIMEOUT),
        1,
        300,
        "whole seconds from 1 to 300",
    )?);
    Ok(WahelpConfig {
        api: api(raw, timeout)?,
        webhook_secret: secret(raw)?,
        relay_url: raw(RELAY_URL).as_deref().map(relay_url).transpose()?,
        webhook_log_days: parse_u32_at_least_one(
            WEBHOOK_LOG_DAYS,
            &or(WEBHOOK_LOG_DAYS, DEFAULT_WEBHOOK_LOG_DAYS),
            "whole days, at least 1",
        )?,
        paths: paths(raw)?,
    })
}

fn api(
    raw: &dyn Fn(&str) -> Option<String>,
    timeout: Duration,
) -> Result<Option<client::Settings>, ConfigError> {
    let Some(project) = raw(PROJECT_ID) else {
        return Ok(None);
    };
    let channel = raw(CHANNEL_UUID).ok_or_else(|| {
        invalid(
            CHANNEL_UUID,
            "",
            "is not set although WAHELP_PROJECT_ID is",
            "the UUID of the project's clients_tg channel",
        )
    })?;
    let auth = match (raw(TOKEN), raw(LOGIN), raw(PASSWORD)) {
        (Some(token), _, _) => Auth::Token(token),
        (None, Some(login), Some(password)) => Auth::Login { login, password },
        (None, Some(_), None) => {
            return Err(invalid(
                PASSWORD,
                "",
                "is not set although WAHELP_LOGIN is",
                "the password of the Wahelp login",
            ));
        }
        (None, None, _) => {
            return Err(invalid(
                LOGIN,
                "",
                "is not set, and neither is WAHELP_TOKEN",
                "WAHELP_LOGIN and WAHELP_PASSWORD, or WAHELP_TOKEN",
            ));
        }
    };
    let mut settings = client::Settings::new(project, channel, auth);
    if let Some(url) = raw(API_URL) {
        settings.api_url = http_url(API_URL, &url)?
            .as_str()
            .trim_end_matches('/')
            .to_owned();
    }
    settings.timeout = timeout;
    settings.connect_timeout = settings.connect_timeout.min(timeout);
    Ok(Some(settings))
}

fn secret(raw: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(secret) = raw(WEBHOOK_SECRET) else {
        return Ok(None);
    };
    let expected = "at least 16 letters, digits, '-' or '_' (e.g. from `openssl rand -hex 24`); the value is not shown";
    if secret.chars().count() < MIN_SECRET_LEN {
        return Err(invalid(WEBHOOK_SECRET, "***", "is too short", expected));
    }
    if !secret
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(
            WEBHOOK_SECRET,
            "***",
            "has characters that would need escaping in a URL",
            expected,
        ));
    }
    Ok(Some(secret))
}

fn relay_url(raw: &str) -> Result<Url, ConfigError> {
    http_url(RELAY_URL, raw)
}

fn http_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let expected = "an http or https URL like https://example.com/hook";
    let url =
        Url::parse(raw).map_err(|e| invalid(var, raw, format!("is not a URL ({e})"), expected))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            var,
            raw,
            "is not an http(s) URL with a host",
            expected,
        ));
    }
    Ok(url)
}

fn paths(raw: &dyn Fn(&str) -> Option<String>) -> Result<Paths, ConfigError> {
    let mut paths = Paths::default();
    let lists: [(&'static str, &mut Vec<FieldPath>); 5] = [
        (PATH_DIRECTION, &mut paths.direction),
        (PATH_TEXT, &mut paths.text),
        (PATH_PHONE, &mut paths.phone),
        (PATH_MESSAGE_ID, &mut paths.message_id),
        (PATH_MEDIA_URL, &mut paths.media_url),
    ];
    if let Some(value) = raw(OPERATOR_VALUES) {
        let values: Vec<String> = value
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(invalid(
                OPERATOR_VALUES,
                &value,
                "lists no value",
                "comma-separated values like from_operator, operator",
            ));
        }
        paths.operator_values = values;
    }
    for (var, list) in lists {
        if let Some(value) = raw(var) {
            *list = Paths::parse_list(&value).map_err(|e| {
                invalid(
                    var,
                    &value,
                    format!("is not a list of JSON paths ({e})"),
                    "comma-separated paths like data.user.phone, user.uid",
                )
            })?;
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<WahelpConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        from_lookup(&|name| map.get(name).cloned())
    }

    #[test]
    fn without_a_project_the_bridge_is_off() {
        let c = parse(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.api, None);
        assert_eq!(c.webhook_secret, None);
        assert_eq!(c.webhook_log_days, 7);
        assert_eq!(c.paths, Paths::default());
    }

    #[test]
    fn a_project_needs_a_channel_and_credentials() {
        let e = parse(&[(PROJECT_ID, "42")]).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains(CHANNEL_UUID)));
        let e = parse(&[(PROJECT_ID, "42"), (CHANNEL_UUID, "c-1")])
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains(LOGIN) && e.contains(TOKEN)));
        let e = parse(&[(PROJECT_ID, "42"), (CHANNEL_UUID, "c-1"), (LOGIN, "shop")])
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains(PASSWORD)));
        let c = parse(&[
            (PROJECT_ID, "42"),
            (CHANNEL_UUID, "c-1"),
            (LOGIN, "shop"),
            (PASSWORD, "pw"),
            (API_URL, "http://127.0.0.1:9/api/"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let api = c.api.unwrap_or_else(|| panic!("api settings"));
        assert_eq!(api.api_url, "http://127.0.0.1:9/api");
        assert_eq!(
            (api.project_id.as_str(), api.channel_uuid.as_str()),
            ("42", "c-1")
        );
        assert!(matches!(api.auth, Auth::Login { .. }));
    }

    #[test]
    fn a_weak_secret_is_refused_without_being_shown() {
        let e = parse(&[(WEBHOOK_SECRET, "tiny")])
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains(WEBHOOK_SECRET) && !e.contains("tiny")));
        let c = parse(&[(WEBHOOK_SECRET, "0123456789abcdef-_")]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn paths_can_be_overridden_one_list_at_a_time() {
        let c = parse(&[(PATH_PHONE, "client.tel, user.phone")]).unwrap_or_else(|e| panic!("{e}"));
        let phone: Vec<&str> = c.paths.phone.iter().map(FieldPath::as_str).collect();
        assert_eq!(phone, ["client.tel", "user.phone"]);
        assert_eq!(c.paths.text, Paths::default().text);
        let c = parse(&[(OPERATOR_VALUES, "outgoing, From_Operator")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.paths.operator_values, ["outgoing", "From_Operator"]);
        assert!(parse(&[(OPERATOR_VALUES, " , ")]).is_err());
        let e = parse(&[(PATH_TEXT, "message,,text")])
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains(PATH_TEXT)));
    }
}
