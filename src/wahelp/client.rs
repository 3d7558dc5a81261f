//! The Wahelp REST client: finds or creates a customer in the channel, sends
//! texts, registers the webhook.
//!
//! One [`Client`] (cheap to clone) is shared by every delivery task. It keeps
//! one bearer token for all of them: it logs in when it has none, refreshes
//! it [`Settings::refresh_margin`] before it expires (a new login if the
//! refresh fails), and on a 401 gets a new one once and retries the call
//! once. Only one caller at a time logs in; the others wait and reuse the
//! result. Every failure is one of the [`Error`] classes; error bodies are
//! logged whole, with phones masked and secrets removed.

mod auth;
mod error;

pub use error::{Error, RATE_LIMIT_BACKOFF, SetupError};

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Url};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::phone::Phone;
use auth::{Bearer, Issued, Plan, TokenState};
use error::{classify, for_log, shape_of, truncate};

/// The API root the listing names (`WAHELP_API_URL` default).
pub const DEFAULT_API_URL: &str = "https://wahelp.ru/api";

/// Largest answer body read (anything beyond is dropped).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How the client proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// Log in with these, refresh and log in again as needed.
    Login { login: String, password: String },
    /// Use this token as it is; never log in.
    Token(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Login { login, .. } => f
                .debug_struct("Login")
                .field("login", login)
                .field("password", &"[redacted]")
                .finish(),
            Auth::Token(_) => f.debug_tuple("Token").field(&"[redacted]").finish(),
        }
    }
}

/// Everything the client needs; the app fills it from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The part before `/app/...`, e.g. `https://wahelp.ru/api`.
    pub api_url: String,
    pub project_id: String,
    pub channel_uuid: String,
    pub auth: Auth,
    /// Limit on a whole call (connect, send, read the answer).
    pub timeout: Duration,
    /// Limit on opening the connection (the whole-call limit still applies).
    pub connect_timeout: Duration,
    /// Refresh the token this long before it expires (capped at half its
    /// lifetime).
    pub refresh_margin: Duration,
}

impl Settings {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);

    /// Settings with the default URL, timeouts and refresh margin.
    pub fn new(
        project_id: impl Into<String>,
        channel_uuid: impl Into<String>,
        auth: Auth,
    ) -> Settings {
        Settings {
            api_url: DEFAULT_API_URL.to_owned(),
            project_id: project_id.into(),
            channel_uuid: channel_uuid.into(),
            auth,
            timeout: Self::DEFAULT_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            refresh_margin: Self::DEFAULT_REFRESH_MARGIN,
        }
    }
}

/// A customer's id in the Wahelp channel (a number or a string on the wire;
/// kept as text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    pub fn new(id: impl Into<String>) -> UserId {
        UserId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A text Wahelp accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// Its id, when the answer carried one (a webhook echoing our own
    /// message carries it too).
    pub message_id: Option<String>,
}

/// The project's webhook as Wahelp reports it.
#[derive(Clone, PartialEq, Eq)]
pub enum Hook {
    /// This URL is registered.
    Set(String),
    /// The answer says no URL is registered.
    NotSet,
    /// The API cannot tell (no such endpoint, or an answer we cannot read).
    Unknown,
}

impl fmt::Debug for Hook {
    /// The query (where the secret is) is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hook::Set(url) => f.debug_tuple("Set").field(&without_query(url)).finish(),
            Hook::NotSet => f.write_str("NotSet"),
            Hook::Unknown => f.write_str("Unknown"),
        }
    }
}

/// A Wahelp REST client. Clones share the connection pool and the token.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    project_id: String,
    channel_uuid: String,
    auth: Auth,
    timeout: Duration,
    refresh_margin: Duration,
    tokens: Mutex<TokenState>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("project_id", &self.inner.project_id)
            .field("channel_uuid", &self.inner.channel_uuid)
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

/// One HTTP call.
struct Call<'a> {
    /// Name for logs.
    op: &'static str,
    method: Method,
    url: Url,
    /// Send `X-Project`.
    project: bool,
    body: Option<Value>,
    /// Strings to remove from logged bodies besides the password and token.
    secrets: Vec<&'a str>,
}

impl Client {
    /// Checks the settings and builds the HTTP client (no request is made).
    pub fn new(settings: Settings) -> Result<Client, SetupError> {
        let bad_url = |reason: &str| SetupError::BadUrl {
            url: settings.api_url.clone(),
            reason: reason.to_owned(),
        };
        let mut base = Url::parse(settings.api_url.trim()).map_err(|e| bad_url(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad_url("it must be an http(s) URL"));
        }
        base.set_query(None);
        base.set_fragment(None);
        if settings.project_id.trim().is_empty() {
            return Err(SetupError::Empty("project_id"));
        }
        if settings.channel_uuid.trim().is_empty() {
            return Err(SetupError::Empty("channel_uuid"));
        }
        match &settings.auth {
            Auth::Login { login, password } => {
                if login.is_empty() {
                    return Err(SetupError::Empty("login"));
                }
                if password.is_empty() {
                    return Err(SetupError::Empty("password"));
                }
            }
            Auth::Token(token) if token.trim().is_empty() => {
                return Err(SetupError::Empty("token"));
            }
            Auth::Token(_) => {}
        }
        if settings.timeout.is_zero() {
            return Err(SetupError::ZeroTimeout);
        }
        let connect_timeout = if settings.connect_timeout.is_zero() {
            settings.timeout
        } else {
            settings.connect_timeout.min(settings.timeout)
        };
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("flowbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError::Http(e.to_string()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                project_id: settings.project_id.trim().to_owned(),
                channel_uuid: settings.channel_uuid.trim().to_owned(),
                auth: settings.auth,
                timeout: settings.timeout,
                refresh_margin: settings.refresh_margin,
                tokens: Mutex::new(TokenState::default()),
            }),
        })
    }

    /// The customer's id in the channel, created if Wahelp does not know the
    /// number yet (`need_create: true` returns an existing user's id).
    pub async fn find_or_create_user(&self, phone: &Phone, name: &str) -> Result<UserId, Error> {
        let started = Instant::now();
        let call = Call {
            op: "find_or_create_user",
            method: Method::POST,
            url: self.channel_url(&["users"]),
            project: true,
            body: Some(json!({"phone": phone.as_str(), "name": name, "need_create": true})),
            secrets: Vec::new(),
        };
        let answer = self.call(&call).await?;
        match user_id_of(&answer) {
            Some(id) => {
                tracing::debug!(
                    phone = %phone.masked(),
                    user_id = %id,
                    elapsed_ms = elapsed_ms(started),
                    "Wahelp user found or created"
                );
                Ok(id)
            }
            None => {
                tracing::warn!(
                    phone = %phone.masked(),
                    shape = %shape_of(&answer),
                    body = %for_log(&answer.to_string(), &[]),
                    "the Wahelp users answer carries no data.id"
                );
                Err(Error::Transient {
                    status: Some(200),
                    message: "the answer carries no user id (data.id)".to_owned(),
                })
            }
        }
    }

    /// Sends a plain text to the customer (markdown is not rendered).
    pub async fn send_text(&self, user_id: &UserId, text: &str) -> Result<SentMessage, Error> {
        let started = Instant::now();
        let call = Call {
            op: "send_message",
            method: Method::POST,
            url: self.channel_url(&["send_message", user_id.as_str()]),
            project: true,
            body: Some(json!({ "text": text })),
            secrets: Vec::new(),
        };
        let answer = self.call(&call).await?;
        let message_id = message_id_of(&answer);
        if message_id.is_none() {
            tracing::warn!(
                user_id = %user_id,
                shape = %shape_of(&answer),
                "the Wahelp send_message answer carries no message id where expected \
                 (data.id, data.message_id, data.message.id, message_id, msgid)"
            );
        }
        tracing::debug!(
            user_id = %user_id,
            message_id = message_id.as_deref().unwrap_or("-"),
            chars = text.chars().count(),
            elapsed_ms = elapsed_ms(started),
            "text sent to Wahelp"
        );
        Ok(SentMessage { message_id })
    }

    /// Registers the project's webhook URL (`PUT .../hook`). The URL's query
    /// (where the secret is) is never logged.
    pub async fn set_hook(&self, url: &str) -> Result<(), Error> {
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let call = Call {
            op: "set_hook",
            method: Method::PUT,
            url: self.project_url(&["hook"]),
            project: true,
            body: Some(json!({ "url": url })),
            secrets: vec![url, query],
        };
        self.call(&call).await?;
        tracing::info!(url = %without_query(url), "Wahelp webhook registered");
        Ok(())
    }

    /// The project's webhook URL, if the API tells (`GET .../hook`; the
    /// listing does not name this endpoint, so 404 and 405 give
    /// [`Hook::Unknown`]).
    pub async fn get_hook(&self) -> Result<Hook, Error> {
        let call = Call {
            op: "get_hook",
            method: Method::GET,
            url: self.project_url(&["hook"]),
            project: true,
            body: None,
            secrets: Vec::new(),
        };
        match self.call(&call).await {
            Ok(answer) => Ok(hook_of(&answer)),
            Err(Error::Rejected {
                status: Some(404 | 405),
                ..
            }) => Ok(Hook::Unknown),
            Err(e) => Err(e),
        }
    }

    // ----- URLs --------------------------------------------------------------

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        // The base was checked to be an http(s) URL, so this always holds.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn project_url(&self, rest: &[&str]) -> Url {
        let mut segments = vec!["app", "projects", self.inner.project_id.as_str()];
        segments.extend_from_slice(rest);
        self.url(&segments)
    }

    fn channel_url(&self, rest: &[&str]) -> Url {
        let mut segments = vec!["channels", self.inner.channel_uuid.as_str()];
        segments.extend_from_slice(rest);
        self.project_url(&segments)
    }

    // ----- calls with a token ------------------------------------------------

    /// Makes a call with the shared token; on a 401 gets a new token once and
    /// retries once.
    async fn call(&self, call: &Call<'_>) -> Result<Value, Error> {
        let bearer = self.bearer(None).await?;
        match self.send(call, Some(&bearer)).await {
            Err(Error::Auth { status, .. }) if !self.fixed_token() => {
                tracing::info!(
                    op = call.op,
                    status,
                    "Wahelp did not accept the token: getting a new one and retrying once"
                );
                let fresh = self.bearer(Some(&bearer)).await?;
                match self.send(call, Some(&fresh)).await {
                    Err(Error::Auth { status, message }) => Err(Error::Auth {
                        status,
                        message: format!("still refused with a new token: {message}"),
                    }),
                    other => other,
                }
            }
            Err(Error::Auth { status, message }) => Err(Error::Auth {
                status,
                message: format!("the configured token is refused: {message}"),
            }),
            other => other,
        }
    }

    fn fixed_token(&self) -> bool {
        matches!(self.inner.auth, Auth::Token(_))
    }

    /// The token to use. `failed`: the token a call just got a 401 with.
    ///
    /// Holds the token lock while it refreshes or logs in, so concurrent
    /// callers wait for that one attempt and share its result.
    async fn bearer(&self, failed: Option<&Bearer>) -> Result<Bearer, Error> {
        let (login, password) = match &self.inner.auth {
            Auth::Token(token) => return Ok(Bearer::fixed(token)),
            Auth::Login { login, password } => (login, password),
        };
        let asked = Instant::now();
        let mut state = self.inner.tokens.lock().await;
        let refresh_with = match state.plan(Instant::now(), failed.map(|b| b.generation)) {
            Plan::Use(bearer) => return Ok(bearer),
            Plan::Refresh(bearer) => Some(bearer),
            Plan::Login => None,
        };
        if let Some(error) = state.shared_failure(asked, Instant::now()) {
            return Err(error);
        }
        // Lifetimes count from when we asked: the server's clock started
        // before the answer reached us.
        let sent_at = Instant::now();
        if let Some(old) = refresh_with {
            match self.refresh(&old).await {
                Ok(issued) => {
                    tracing::info!(
                        expires_in_s = issued.expires_in.map(|d| d.as_secs()),
                        "Wahelp token refreshed"
                    );
                    return Ok(state.install(issued, sent_at, self.inner.refresh_margin));
                }
                Err(e) => {
                    tracing::info!(error = %e, "Wahelp token refresh failed: logging in again")
                }
            }
        }
        let sent_at = Instant::now();
        match self.login(login, password).await {
            Ok(issued) => {
                tracing::info!(
                    expires_in_s = issued.expires_in.map(|d| d.as_secs()),
                    "logged in to Wahelp"
                );
                Ok(state.install(issued, sent_at, self.inner.refresh_margin))
            }
            Err(e) => {
                tracing::warn!(error = %e, "Wahelp login failed");
                state.record_failure(e.clone(), Instant::now());
                Err(e)
            }
        }
    }

    async fn login(&self, login: &str, password: &str) -> Result<Issued, Error> {
        let call = Call {
            op: "login",
            method: Method::POST,
            url: self.url(&["app", "user", "login"]),
            project: false,
            body: Some(json!({"login": login, "password": password})),
            secrets: vec![password],
        };
        let answer = self.send(&call, None).await.map_err(|e| match e {
            Error::RateLimited { .. } | Error::Transient { .. } => e,
            other => Error::Auth {
                status: other.status(),
                message: format!("login refused: {}", other.message()),
            },
        })?;
        auth::parse_token_answer(&answer).ok_or_else(|| {
            tracing::warn!(
                shape = %shape_of(&answer),
                "the Wahelp login answer carries no token where expected \
                 (data.access_token or data.token.token)"
            );
            Error::Auth {
                status: Some(200),
                message: "the login answer carries no token".to_owned(),
            }
        })
    }

    async fn refresh(&self, old: &Bearer) -> Result<Issued, Error> {
        let call = Call {
            op: "refresh_token",
            method: Method::GET,
            url: self.url(&["app", "user", "refresh-token"]),
            project: false,
            body: None,
            secrets: Vec::new(),
        };
        let answer = self.send(&call, Some(old)).await?;
        auth::parse_token_answer(&answer).ok_or_else(|| {
            tracing::warn!(
                shape = %shape_of(&answer),
                "the Wahelp refresh answer carries no token where expected"
            );
            Error::Auth {
                status: Some(200),
                message: "the refresh answer carries no token".to_owned(),
            }
        })
    }

    // ----- one HTTP exchange -------------------------------------------------

    /// One request, its answer sorted: the JSON of a success (`null` for an
    /// empty body) or the error class. Error bodies are logged here.
    async fn send(&self, call: &Call<'_>, bearer: Option<&Bearer>) -> Result<Value, Error> {
        let started = Instant::now();
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header(ACCEPT, "application/json");
        if let Some(bearer) = bearer {
            request = request.bearer_auth(&*bearer.value);
        }
        if call.project {
            request = request.header("X-Project", &self.inner.project_id);
        }
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let mut secrets = call.secrets.clone();
        if let Auth::Login { password, .. } = &self.inner.auth {
            secrets.push(password);
        }
        let token = match (&self.inner.auth, bearer) {
            (Auth::Token(token), _) => Some(token.as_str()),
            (_, Some(bearer)) => Some(&*bearer.value),
            _ => None,
        };
        secrets.extend(token);

        let (status, location, raw) = match self.exchange(request).await {
            Ok(answer) => answer,
            Err(e) => {
                let error = self.transport_error(&e);
                tracing::warn!(
                    op = call.op,
                    path = call.url.path(),
                    elapsed_ms = elapsed_ms(started),
                    error = %for_log(&error.to_string(), &secrets),
                    "Wahelp could not be reached"
                );
                return Err(error);
            }
        };
        let text = String::from_utf8_lossy(&raw);
        let json = serde_json::from_slice::<Value>(&raw).ok();
        if let Some(mut error) = classify(status, json.as_ref(), &text, &secrets) {
            if let (Some(location), Error::Rejected { message, .. }) = (&location, &mut error) {
                *message = format!(
                    "redirected to {} (check the API URL): {message}",
                    without_query(location)
                );
            }
            tracing::warn!(
                op = call.op,
                path = call.url.path(),
                status,
                class = error.class(),
                elapsed_ms = elapsed_ms(started),
                body = %for_log(&text, &secrets),
                "Wahelp answered with an error"
            );
            return Err(error);
        }
        match json {
            Some(value) => {
                tracing::trace!(
                    op = call.op,
                    status,
                    elapsed_ms = elapsed_ms(started),
                    "Wahelp call done"
                );
                Ok(value)
            }
            None if text.trim().is_empty() => Ok(Value::Null),
            None => {
                tracing::warn!(
                    op = call.op,
                    path = call.url.path(),
                    status,
                    body = %for_log(&text, &secrets),
                    "Wahelp answered with something that is not JSON"
                );
                Err(Error::Transient {
                    status: Some(status),
                    message: format!(
                        "the answer is not JSON: {}",
                        truncate(&for_log(&text, &secrets), 200)
                    ),
                })
            }
        }
    }

    /// Sends and reads at most [`MAX_BODY_BYTES`] of the answer.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Option<String>, Vec<u8>), reqwest::Error> {
        let mut response = request.send().await?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            let room = MAX_BODY_BYTES.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_BODY_BYTES {
                break;
            }
        }
        Ok((status, location, body))
    }

    fn transport_error(&self, e: &reqwest::Error) -> Error {
        let message = if e.is_timeout() {
            format!("no answer within {:?}", self.inner.timeout)
        } else {
            let mut text = if e.is_connect() {
                "cannot connect".to_owned()
            } else {
                "network error".to_owned()
            };
            let mut source: Option<&dyn std::error::Error> = Some(e);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        };
        Error::Transient {
            status: None,
            message,
        }
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A URL without its query and fragment (the webhook secret lives there).
fn without_query(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    if cut < url.len() {
        format!("{}?…", &url[..cut])
    } else {
        url.to_owned()
    }
}

/// A JSON number or non-empty string as text.
fn scalar_id(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn at_path<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |node, key| node.get(key))
}

/// `data.id` of a users answer.
fn user_id_of(answer: &Value) -> Option<UserId> {
    at_path(answer, &["data", "id"])
        .and_then(scalar_id)
        .map(UserId)
}

/// The message id of a send answer: the first of `data.id`,
/// `data.message_id`, `data.message.id`, `message_id`, `msgid`.
fn message_id_of(answer: &Value) -> Option<String> {
    const PLACES: &[&[&str]] = &[
        &["data", "id"],
        &["data", "message_id"],
        &["data", "message", "id"],
        &["message_id"],
        &["msgid"],
    ];
    PLACES
        .iter()
        .find_map(|path| at_path(answer, path).and_then(scalar_id))
}

/// Reads a hook answer: `data.url`, `data.hook.url`, `data.hook`, `data`
/// (as a string), `url`, `hook`. `null` or `""` there, or `data: null`,
/// mean no hook; an answer without any of them is unknown.
fn hook_of(answer: &Value) -> Hook {
    const PLACES: &[&[&str]] = &[
        &["data", "url"],
        &["data", "hook", "url"],
        &["data", "hook"],
        &["data"],
        &["url"],
        &["hook"],
    ];
    for path in PLACES {
        match at_path(answer, path) {
            Some(Value::String(url)) if url.trim().is_empty() => return Hook::NotSet,
            Some(Value::String(url)) => return Hook::Set(url.trim().to_owned()),
            Some(Value::Null) => return Hook::NotSet,
            _ => {}
        }
    }
    tracing::warn!(shape = %shape_of(answer), "the Wahelp hook answer has no URL where expected");
    Hook::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_from_each_place() {
        let cases = [
            (json!({"success": true, "data": {"id": 901}}), "901"),
            (
                json!({"success": true, "data": {"message_id": "m-902"}}),
                "m-902",
            ),
            (
                json!({"success": true, "data": {"message": {"id": 903}}}),
                "903",
            ),
            (json!({"success": true, "message_id": 904}), "904"),
            (json!({"success": true, "msgid": "905"}), "905"),
            // The first place wins.
            (json!({"data": {"id": 1, "message_id": 2}, "msgid": 3}), "1"),
            // Empty or odd values are skipped.
            (
                json!({"data": {"id": "", "message": "hello"}, "msgid": 7}),
                "7",
            ),
            (json!({"data": {"id": null, "message_id": 12.5}}), "12.5"),
        ];
        for (answer, id) in cases {
            assert_eq!(message_id_of(&answer).as_deref(), Some(id), "{answer}");
        }
        assert_eq!(message_id_of(&json!({"success": true, "data": {}})), None);
        assert_eq!(message_id_of(&json!({"data": {"id": true}})), None);
        assert_eq!(message_id_of(&Value::Null), None);
    }

    #[test]
    fn user_id_number_or_string() {
        assert_eq!(
            user_id_of(&json!({"success": true, "data": {"id": 12345, "name": "x"}})),
            Some(UserId::new("12345"))
        );
        assert_eq!(
            user_id_of(&json!({"data": {"id": " u-77 "}})),
            Some(UserId::new("u-77"))
        );
        assert_eq!(user_id_of(&json!({"data": {"user": {"id": 1}}})), None);
        assert_eq!(user_id_of(&json!({"id": 1})), None);
    }

    #[test]
    fn hook_answers() {
        let set = |u: &str| Hook::Set(u.to_owned());
        assert_eq!(
            hook_of(&json!({"data": {"url": "https://a/b?token=x"}})),
            set("https://a/b?token=x")
        );
        assert_eq!(
            hook_of(&json!({"data": {"hook": {"url": "https://a"}}})),
            set("https://a")
        );
        assert_eq!(
            hook_of(&json!({"data": {"hook": "https://b"}})),
            set("https://b")
        );
        assert_eq!(hook_of(&json!({"data": "https://c"})), set("https://c"));
        assert_eq!(hook_of(&json!({"url": "https://d"})), set("https://d"));
        assert_eq!(hook_of(&json!({"data": {"url": null}})), Hook::NotSet);
        assert_eq!(hook_of(&json!({"data": {"url": ""}})), Hook::NotSet);
        assert_eq!(
            hook_of(&json!({"success": true, "data": null})),
            Hook::NotSet
        );
        assert_eq!(
            hook_of(&json!({"success": true, "data": {"other": 1}})),
            Hook::Unknown
        );
        assert_eq!(hook_of(&Value::Null), Hook::Unknown);
    }

    #[test]
    fn hook_debug_hides_the_query() {
        let hook = Hook::Set("https://bot.example/wahelp/webhook?token=SECRET".into());
        let text = format!("{hook:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(
            text.contains("https://bot.example/wahelp/webhook"),
            "{text}"
        );
    }

    fn settings(auth: Auth) -> Settings {
        Settings::new("4821", "chan-uuid", auth)
    }

    #[test]
    fn debug_never_prints_secrets() {
        let login = settings(Auth::Login {
            login: "manager@example.com".into(),
            password: "hunter2-secret".into(),
        });
        let text = format!("{login:?}");
        assert!(text.contains("manager@example.com"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let token = settings(Auth::Token("eyJ.secret.token".into()));
        let text = format!("{token:?}");
        assert!(!text.contains("eyJ"), "{text}");
        let client = Client::new(token).unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{client:?}").contains("eyJ"));
    }

    #[test]
    fn urls_are_built_under_the_base() {
        let mut s = settings(Auth::Token("t".into()));
        s.api_url = "http://127.0.0.1:9/api/".into();
        let client = Client::new(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            client.channel_url(&["send_message", "12 3"]).as_str(),
            "http://127.0.0.1:9/api/app/projects/4821/channels/chan-uuid/send_message/12%203"
        );
        assert_eq!(
            client.url(&["app", "user", "login"]).as_str(),
            "http://127.0.0.1:9/api/app/user/login"
        );
        assert_eq!(
            client.project_url(&["hook"]).path(),
            "/api/app/projects/4821/hook"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let with = |f: fn(&mut Settings)| {
            let mut s = settings(Auth::Token("t".into()));
            f(&mut s);
            Client::new(s).err()
        };
        assert!(matches!(
            with(|s| s.api_url = "wahelp.ru/api".into()),
            Some(SetupError::BadUrl { .. })
        ));
        assert!(matches!(
            with(|s| s.api_url = "ftp://wahelp.ru".into()),
            Some(SetupError::BadUrl { .. })
        ));
        assert_eq!(
            with(|s| s.project_id = " ".into()),
            Some(SetupError::Empty("project_id"))
        );
        assert_eq!(
            with(|s| s.channel_uuid = String::new()),
            Some(SetupError::Empty("channel_uuid"))
        );
        assert_eq!(
            with(|s| s.auth = Auth::Token(String::new())),
            Some(SetupError::Empty("token"))
        );
        assert_eq!(
            with(|s| s.timeout = Duration::ZERO),
            Some(SetupError::ZeroTimeout)
        );
        assert_eq!(with(|_| {}), None);
    }

    #[test]
    fn without_query_keeps_the_path() {
        assert_eq!(without_query("https://a/b?token=1"), "https://a/b?…");
        assert_eq!(without_query("https://a/b#x"), "https://a/b?…");
        assert_eq!(without_query("https://a/b"), "https://a/b");
    }
}
