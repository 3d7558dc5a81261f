//! A fake Telegram Bot API server for integration tests.
//!
//! [`FakeTelegram::start`] binds `127.0.0.1:0` and serves
//! `/bot<token>/<method>` (GET or POST, method name matched
//! case-insensitively: teloxide sends `/bot<token>/GetMe`). Point a bot at it
//! with `Bot::new(token).set_api_url(fake.url().parse()?)`.
//!
//! What it does:
//! - `getMe` answers with the `getMe.json` fixture (`@cleaning_bot`).
//! - `getUpdates` long-polls a queue of pushed updates and honours `offset`
//!   like Telegram: updates below the offset are confirmed and dropped,
//!   everything else is returned again on the next call.
//! - Sending methods answer with realistic `Message`s that teloxide 0.17
//!   parses; every call is recorded as a [`Call`].
//! - Faults ([`Failure`]) can be injected per chat and into `getUpdates`.
//! - `setWebhook` keeps the URL and the `secret_token` (refused when
//!   Telegram would refuse the token, or on [`FakeTelegram::refuse_set_webhook`]);
//!   while a webhook is set `getUpdates` answers 409. The fake never posts
//!   to the webhook itself: a test posts the updates (see
//!   [`FakeTelegram::text_update`]) and reads the secret with
//!   [`FakeTelegram::webhook_secret`].
//!
//! Request bodies are accepted as JSON, `application/x-www-form-urlencoded`
//! and `multipart/form-data` (teloxide always uses multipart for `sendPhoto`
//! and `sendDocument`). Form and multipart fields are recorded as strings, so
//! `chat_id` may be `"5213874096"`; use [`Call::chat_id`] to read it.
//!
//! The server stops when the last [`FakeTelegram`] handle is dropped or on
//! [`FakeTelegram::shutdown`].

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, watch};

/// The first `update_id` handed out by [`FakeTelegram::push`].
pub const FIRST_UPDATE_ID: i64 = 100_000;

/// The bot's user id (from the `getMe.json` fixture).
pub const BOT_ID: i64 = 7_412_583_690;

/// The bot's username, without `@` (from the `getMe.json` fixture).
pub const BOT_USERNAME: &str = "cleaning_bot";

const GET_ME_FIXTURE: &str = include_str!("../fixtures/telegram/responses/getMe.json");

const FIXTURE_UPDATES_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/telegram/updates"
);

/// Largest request body the fake accepts (uploads in tests are small).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// How long [`FakeTelegram::said`] waits.
pub const SAID_WAIT: Duration = Duration::from_secs(15);

/// A Telegram user who talks to the bot in a private chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TgUser {
    pub id: i64,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
}

impl TgUser {
    /// A user with only an id and a first name.
    pub fn new(id: i64, first_name: impl Into<String>) -> Self {
        Self {
            id,
            first_name: first_name.into(),
            last_name: None,
            username: None,
        }
    }

    /// Sets the last name.
    pub fn with_last_name(mut self, last_name: impl Into<String>) -> Self {
        self.last_name = Some(last_name.into());
        self
    }

    /// Sets the username (without `@`).
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Анна Смирнова (@anna_smirnova), id 5213874096, as in the fixtures.
    pub fn anna() -> Self {
        Self::new(5_213_874_096, "Анна")
            .with_last_name("Смирнова")
            .with_username("anna_smirnova")
    }

    /// Сергей, id 2096481357, no last name and no username, as in the fixtures.
    /// An admin writing in the admins' group chat.
    pub fn admin() -> Self {
        TgUser::new(1_000_001, "Ольга").with_username("olga_admin")
    }

    pub fn sergey() -> Self {
        Self::new(2_096_481_357, "Сергей")
    }

    /// The `User` object (`from`).
    pub fn user_json(&self) -> Value {
        let mut user = Map::new();
        user.insert("id".into(), json!(self.id));
        user.insert("is_bot".into(), json!(false));
        user.insert("first_name".into(), json!(self.first_name));
        if let Some(last_name) = &self.last_name {
            user.insert("last_name".into(), json!(last_name));
        }
        if let Some(username) = &self.username {
            user.insert("username".into(), json!(username));
        }
        user.insert("language_code".into(), json!("ru"));
        Value::Object(user)
    }

    /// The private `Chat` object of this user.
    pub fn private_chat_json(&self) -> Value {
        let mut chat = Map::new();
        chat.insert("id".into(), json!(self.id));
        chat.insert("first_name".into(), json!(self.first_name));
        if let Some(last_name) = &self.last_name {
            chat.insert("last_name".into(), json!(last_name));
        }
        if let Some(username) = &self.username {
            chat.insert("username".into(), json!(username));
        }
        chat.insert("type".into(), json!("private"));
        Value::Object(chat)
    }
}

/// A fault to inject, see [`FakeTelegram::fail_chat`] and
/// [`FakeTelegram::fail_get_updates_once`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 429 with `parameters.retry_after` (teloxide: `RequestError::RetryAfter`).
    RetryAfter(u64),
    /// 403 "Forbidden: bot was blocked by the user" (`ApiError::BotBlocked`).
    Blocked,
    /// 403 "Forbidden: user is deactivated" (`ApiError::UserDeactivated`).
    Deactivated,
    /// 400 "Bad Request: chat not found" (`ApiError::ChatNotFound`).
    ChatNotFound,
    /// 400 "Bad Request: message is too long" (`ApiError::MessageIsTooLong`).
    MessageTooLong,
    /// 500 "Internal Server Error". Note: teloxide sleeps 10 s on any 5xx
    /// before it reads the body.
    ServerError,
    /// Answers normally after sleeping this long.
    Delay(Duration),
    /// 409 "Conflict: terminated by other getUpdates request; ..."
    /// (`ApiError::TerminatedByOtherGetUpdates`).
    Conflict,
    /// 400 "Bad Request: failed to get HTTP URL content": Telegram could
    /// not fetch a file sent by URL (`ApiError::FailedToGetUrlContent`).
    UrlNotFetched,
}

impl Failure {
    /// The HTTP status and body of this failure; `None` for [`Failure::Delay`].
    fn response(&self) -> Option<(StatusCode, Value)> {
        let (status, description) = match self {
            Failure::RetryAfter(secs) => {
                return Some((
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({
                        "ok": false,
                        "error_code": 429,
                        "description": format!("Too Many Requests: retry after {secs}"),
                        "parameters": {"retry_after": secs},
                    }),
                ));
            }
            Failure::Blocked => (
                StatusCode::FORBIDDEN,
                "Forbidden: bot was blocked by the user",
            ),
            Failure::Deactivated => (StatusCode::FORBIDDEN, "Forbidden: user is deactivated"),
            Failure::ChatNotFound => (StatusCode::BAD_REQUEST, "Bad Request: chat not found"),
            Failure::MessageTooLong => {
                (StatusCode::BAD_REQUEST, "Bad Request: message is too long")
            }
            Failure::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
            Failure::Conflict => (
                StatusCode::CONFLICT,
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
            ),
            Failure::UrlNotFetched => (
                StatusCode::BAD_REQUEST,
                "Bad Request: failed to get HTTP URL content",
            ),
            Failure::Delay(_) => return None,
        };
        Some((status, error_body(status, description)))
    }
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Call {
    /// Canonical lower-case method name, e.g. `"sendmessage"`.
    pub method: String,
    /// The parameters: the JSON body, or form/multipart fields as strings
    /// (uploaded files become `{"file_name": .., "size": ..}`), or the query
    /// string of a GET.
    pub body: Value,
    /// When the request arrived.
    pub at: Instant,
    /// Whether the fake answered with an error (an injected [`Failure`] or a
    /// webhook conflict).
    pub failed: bool,
    /// The HTTP status of the answer.
    pub status: u16,
}

impl Call {
    /// `chat_id` of the call, whether sent as a number or as a string.
    pub fn chat_id(&self) -> Option<i64> {
        self.body.get("chat_id").and_then(int_param)
    }

    /// `text` of the call, if any.
    pub fn text(&self) -> Option<&str> {
        self.body.get("text").and_then(Value::as_str)
    }

    /// A short one-line description for failure messages.
    pub fn describe(&self, since: Instant) -> String {
        let body: String = self.body.to_string().chars().take(160).collect();
        format!(
            "+{:.3}s {} [{}] {}",
            self.at.saturating_duration_since(since).as_secs_f64(),
            self.method,
            if self.failed {
                format!("failed {}", self.status)
            } else {
                "ok".to_owned()
            },
            body
        )
    }
}

/// The parameters of one `setWebhook` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetWebhook {
    pub url: Option<String>,
    pub secret_token: Option<String>,
    /// `allowed_updates`, sent as a JSON array or (in a form) as its text.
    pub allowed_updates: Option<Vec<String>>,
    /// Whether the fake answered with an error.
    pub failed: bool,
}

impl SetWebhook {
    fn from_call(call: &Call) -> SetWebhook {
        SetWebhook {
            failed: call.failed,
            ..SetWebhook::from_params(&call.body)
        }
    }

    fn from_params(params: &Value) -> SetWebhook {
        let allowed = match params.get("allowed_updates") {
            Some(Value::String(text)) => serde_json::from_str::<Value>(text).ok(),
            other => other.cloned(),
        };
        SetWebhook {
            url: str_param(params, "url").map(str::to_owned),
            secret_token: str_param(params, "secret_token").map(str::to_owned),
            allowed_updates: allowed.and_then(|v| {
                v.as_array().map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect()
                })
            }),
            failed: false,
        }
    }
}

/// Whether Telegram accepts this `secret_token`: 1 to 256 of
/// `A-Z a-z 0-9 _ -`.
pub fn valid_secret_token(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether a method delivers or edits a message in a chat: these are the
/// calls [`FakeTelegram::fail_chat`] applies to and
/// [`FakeTelegram::successful_sends`] counts (`sendmessage`, `copymessage`,
/// `sendphoto`, `senddocument`, `editmessagetext`, any other `send*` except
/// `sendchataction`, `copy*`, `forward*`, `edit*`).
pub fn is_send_method(method: &str) -> bool {
    let method = method.to_ascii_lowercase();
    (method.starts_with("send") && method != "sendchataction")
        || method.starts_with("copy")
        || method.starts_with("forward")
        || method.starts_with("edit")
}

struct Rule {
    failure: Failure,
    /// `None`: forever.
    remaining: Option<usize>,
}

struct Inner {
    calls: Vec<Call>,
    tokens: Vec<String>,
    /// Pushed and not yet confirmed updates, in `update_id` order.
    queue: VecDeque<(i64, Value)>,
    next_update_id: i64,
    confirmed_offset: i64,
    served_at: HashMap<i64, Instant>,
    webhook_url: Option<String>,
    /// The `secret_token` of the webhook set now.
    webhook_secret: Option<String>,
    /// The description `setWebhook` answers with (400) instead of succeeding.
    set_webhook_refusal: Option<String>,
    chat_failures: HashMap<i64, VecDeque<Rule>>,
    get_updates_failures: VecDeque<Failure>,
    /// Last message id per chat (shared by the user's and the bot's messages).
    message_ids: HashMap<i64, i64>,
    /// Last message id the bot sent per chat.
    bot_messages: HashMap<i64, i64>,
    users: HashMap<i64, TgUser>,
    serial: u64,
}

impl Inner {
    fn next_message_id(&mut self, chat_id: i64) -> i64 {
        let id = self.message_ids.entry(chat_id).or_insert(0);
        *id += 1;
        *id
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn take_chat_failure(&mut self, chat_id: i64) -> Option<Failure> {
        let rules = self.chat_failures.get_mut(&chat_id)?;
        let rule = rules.front_mut()?;
        let failure = rule.failure.clone();
        if let Some(remaining) = rule.remaining.as_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                rules.pop_front();
            }
        }
        if rules.is_empty() {
            self.chat_failures.remove(&chat_id);
        }
        Some(failure)
    }

    fn chat_json(&self, chat_id: i64) -> Value {
        if chat_id < 0 {
            json!({"id": chat_id, "title": "Group chat", "type": "group"})
        } else if let Some(user) = self.users.get(&chat_id) {
            user.private_chat_json()
        } else {
            json!({"id": chat_id, "first_name": "User", "type": "private"})
        }
    }

    fn record(&mut self, call: Call) {
        self.calls.push(call);
    }
}

struct Shared {
    inner: Mutex<Inner>,
    /// Any state change (a call recorded, an update pushed or confirmed).
    changed: Notify,
    /// An update was pushed or the webhook changed.
    pushed: Notify,
    shutdown_rx: watch::Receiver<bool>,
    addr: SocketAddr,
    /// When the server started; call times in reports are relative to it.
    started: Instant,
    /// `getMe` result, or an error description if the fixture is broken.
    me: Result<Value, String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bot_user(&self) -> Value {
        let me = self.me.as_ref().ok();
        let field = |name: &str| me.and_then(|m| m.get(name)).cloned();
        json!({
            "id": field("id").unwrap_or(json!(BOT_ID)),
            "is_bot": true,
            "first_name": field("first_name").unwrap_or(json!("Bot")),
            "username": field("username").unwrap_or(json!(BOT_USERNAME)),
        })
    }

    fn stopping(&self) -> bool {
        *self.shutdown_rx.borrow() || self.shutdown_rx.has_changed().is_err()
    }

    fn record(&self, call: Call) {
        self.lock().record(call);
        self.changed.notify_waiters();
    }
}

struct Handle {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// A running fake Telegram Bot API server. Cheap to clone; the server stops
/// when the last clone is dropped.
#[derive(Clone)]
pub struct FakeTelegram {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for FakeTelegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTelegram")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl FakeTelegram {
    /// Starts the server on `127.0.0.1` with an ephemeral port.
    pub async fn start() -> FakeTelegram {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|e| panic!("fake telegram: cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fake telegram: no local address: {e}"));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let me = serde_json::from_str::<Value>(GET_ME_FIXTURE)
            .map_err(|e| format!("getMe.json fixture does not parse: {e}"))
            .and_then(|v| {
                v.get("result")
                    .cloned()
                    .ok_or_else(|| "getMe.json fixture has no result".to_owned())
            });
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                calls: Vec::new(),
                tokens: Vec::new(),
                queue: VecDeque::new(),
                next_update_id: FIRST_UPDATE_ID,
                confirmed_offset: 0,
                served_at: HashMap::new(),
                webhook_url: None,
                webhook_secret: None,
                set_webhook_refusal: None,
                chat_failures: HashMap::new(),
                get_updates_failures: VecDeque::new(),
                message_ids: HashMap::new(),
                bot_messages: HashMap::new(),
                users: HashMap::new(),
                serial: 0,
            }),
            changed: Notify::new(),
            pushed: Notify::new(),
            shutdown_rx: shutdown_rx.clone(),
            addr,
            started: Instant::now(),
            me,
        });
        let app = Router::new()
            .fallback(handle_request)
            .with_state(Arc::clone(&shared))
            .layer(DefaultBodyLimit::max(BODY_LIMIT));
        let mut stop = shutdown_rx;
        tokio::spawn(async move {
            let signal = async move {
                // Err means every handle is gone: stop as well.
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
            {
                eprintln!("fake telegram: server error: {e}");
            }
        });
        FakeTelegram {
            handle: Arc::new(Handle {
                shared,
                shutdown: shutdown_tx,
            }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// `http://127.0.0.1:PORT`, for `Bot::set_api_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared().addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.shared().addr
    }

    /// Stops the server; held long polls return at once. Observers keep
    /// working.
    pub fn shutdown(&self) {
        self.handle.shutdown.send_replace(true);
        self.shared().pushed.notify_waiters();
    }

    // ----- updates -------------------------------------------------------

    /// Queues an update, overriding its `update_id` with the next id
    /// (starting at [`FIRST_UPDATE_ID`]), and wakes a held long poll.
    pub fn push(&self, update_json: Value) -> i64 {
        let id = {
            let mut inner = self.shared().lock();
            let (id, update) = with_next_id(&mut inner, update_json);
            inner.queue.push_back((id, update));
            id
        };
        self.shared().pushed.notify_waiters();
        self.shared().changed.notify_waiters();
        id
    }

    /// Queues a file from `tests/fixtures/telegram/updates/` (name with or
    /// without `.json`), with a fresh `update_id`.
    pub fn push_fixture(&self, name: &str) -> Result<i64, String> {
        let file = if name.ends_with(".json") {
            name.to_owned()
        } else {
            format!("{name}.json")
        };
        let path = format!("{FIXTURE_UPDATES_DIR}/{file}");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let value = serde_json::from_str::<Value>(&text).map_err(|e| format!("{path}: {e}"))?;
        Ok(self.push(value))
    }

    /// `update_json` with the next `update_id` (as [`FakeTelegram::push`]
    /// gives), not queued: for posting it to a bot in webhook mode, as
    /// Telegram would.
    pub fn make_update(&self, update_json: Value) -> (i64, Value) {
        with_next_id(&mut self.shared().lock(), update_json)
    }

    /// A text message in the user's private chat (as [`FakeTelegram::push_text`]
    /// builds it), not queued; see [`FakeTelegram::make_update`].
    pub fn text_update(&self, user: &TgUser, text: &str) -> (i64, Value) {
        self.make_update(self.private_message(user, text_content(text)))
    }

    /// A private-chat message from `user` with the given content fields.
    fn push_private_message(&self, user: &TgUser, content: Map<String, Value>) -> i64 {
        self.push(self.private_message(user, content))
    }

    /// The `{"message": ...}` update (without an id) of a private-chat
    /// message from `user` with the given content fields.
    fn private_message(&self, user: &TgUser, content: Map<String, Value>) -> Value {
        let message = {
            let mut inner = self.shared().lock();
            inner.users.insert(user.id, user.clone());
            let message_id = inner.next_message_id(user.id);
            let mut message = Map::new();
            message.insert("message_id".into(), json!(message_id));
            message.insert("from".into(), user.user_json());
            message.insert("chat".into(), user.private_chat_json());
            message.insert("date".into(), json!(unix_now()));
            message.extend(content);
            Value::Object(message)
        };
        json!({ "message": message })
    }

    /// A text message in the user's private chat.
    pub fn push_text(&self, user: &TgUser, text: &str) -> i64 {
        self.push_private_message(user, text_content(text))
    }

    /// A shared contact. `contact_user_id` is the contact's Telegram id
    /// (`Some(user.id)` for the sender's own number, `None` for a phone-book
    /// card).
    pub fn push_contact(&self, user: &TgUser, phone: &str, contact_user_id: Option<i64>) -> i64 {
        let mut contact = Map::new();
        contact.insert("phone_number".into(), json!(phone));
        if contact_user_id == Some(user.id) {
            contact.insert("first_name".into(), json!(user.first_name));
            if let Some(last_name) = &user.last_name {
                contact.insert("last_name".into(), json!(last_name));
            }
        } else {
            contact.insert("first_name".into(), json!("Контакт"));
        }
        if let Some(id) = contact_user_id {
            contact.insert("user_id".into(), json!(id));
        }
        let mut content = Map::new();
        content.insert("contact".into(), Value::Object(contact));
        self.push_private_message(user, content)
    }

    /// A photo (two sizes, the larger last) with an optional caption.
    pub fn push_photo(&self, user: &TgUser, caption: Option<&str>) -> i64 {
        let (small, large) = {
            let mut inner = self.shared().lock();
            (inner.next_serial(), inner.next_serial())
        };
        let mut content = Map::new();
        content.insert(
            "photo".into(),
            json!([
                {
                    "file_id": photo_file_id(small),
                    "file_unique_id": file_unique_id(small),
                    "file_size": 1402,
                    "width": 90,
                    "height": 68,
                },
                {
                    "file_id": photo_file_id(large),
                    "file_unique_id": file_unique_id(large),
                    "file_size": 134_877,
                    "width": 1280,
                    "height": 960,
                },
            ]),
        );
        if let Some(caption) = caption {
            content.insert("caption".into(), json!(caption));
        }
        self.push_private_message(user, content)
    }

    /// A PDF document with an optional caption.
    pub fn push_document(&self, user: &TgUser, caption: Option<&str>) -> i64 {
        let serial = self.shared().lock().next_serial();
        let mut content = Map::new();
        content.insert(
            "document".into(),
            json!({
                "file_name": format!("document_{serial}.pdf"),
                "mime_type": "application/pdf",
                "file_id": document_file_id(serial),
                "file_unique_id": file_unique_id(serial),
                "file_size": 284_113,
            }),
        );
        if let Some(caption) = caption {
            content.insert("caption".into(), json!(caption));
        }
        self.push_private_message(user, content)
    }

    /// `my_chat_member`: the user blocked the bot (`member` → `kicked`).
    pub fn push_kicked(&self, user: &TgUser) -> i64 {
        self.push_my_chat_member(user, true)
    }

    /// `my_chat_member`: the user unblocked the bot (`kicked` → `member`).
    pub fn push_unkicked(&self, user: &TgUser) -> i64 {
        self.push_my_chat_member(user, false)
    }

    fn push_my_chat_member(&self, user: &TgUser, kicked: bool) -> i64 {
        self.shared().lock().users.insert(user.id, user.clone());
        let bot = self.shared().bot_user();
        let member = json!({"user": bot, "status": "member"});
        let banned = json!({"user": bot, "status": "kicked", "until_date": 0});
        let (old, new) = if kicked {
            (member, banned)
        } else {
            (banned, member)
        };
        self.push(json!({
            "my_chat_member": {
                "chat": user.private_chat_json(),
                "from": user.user_json(),
                "date": unix_now(),
                "old_chat_member": old,
                "new_chat_member": new,
            }
        }))
    }

    /// An inline-button press on the bot's last message in the user's chat.
    pub fn push_callback(&self, user: &TgUser, data: &str) -> i64 {
        let (serial, message_id) = {
            let mut inner = self.shared().lock();
            inner.users.insert(user.id, user.clone());
            let serial = inner.next_serial();
            let message_id = match inner.bot_messages.get(&user.id) {
                Some(id) => *id,
                None => {
                    let id = inner.next_message_id(user.id);
                    inner.bot_messages.insert(user.id, id);
                    id
                }
            };
            (serial, message_id)
        };
        let message = json!({
            "message_id": message_id,
            "from": self.shared().bot_user(),
            "chat": user.private_chat_json(),
            "date": unix_now(),
            "text": "Выберите вариант",
            "reply_markup": {"inline_keyboard": [[{"text": "OK", "callback_data": data}]]},
        });
        self.push(json!({
            "callback_query": {
                "id": format!("{}", 2_239_365_780_412_350_000_u64 + serial),
                "from": user.user_json(),
                "message": message,
                "chat_instance": format!("-59382716401928{serial:05}"),
                "data": data,
            }
        }))
    }

    /// A text message in a basic group (`chat_id` should be negative).
    pub fn push_group_text(&self, chat_id: i64, user: &TgUser, text: &str) -> i64 {
        let message_id = self.shared().lock().next_message_id(chat_id);
        self.push(json!({
            "message": {
                "message_id": message_id,
                "from": user.user_json(),
                "chat": {"id": chat_id, "title": "Group chat", "type": "group"},
                "date": unix_now(),
                "text": text,
            }
        }))
    }

    // ----- configuration ---------------------------------------------------

    /// Sets (or clears) the webhook `getWebhookInfo` reports. While a webhook
    /// is set, `getUpdates` answers 409 like Telegram does.
    pub fn set_webhook_url(&self, url: Option<&str>) {
        let mut inner = self.shared().lock();
        inner.webhook_url = url.map(str::to_owned);
        inner.webhook_secret = None;
        drop(inner);
        self.shared().pushed.notify_waiters();
    }

    /// Every later `setWebhook` call fails with 400 and this description
    /// (like Telegram's "Bad Request: bad webhook: ..."); `None` lifts it.
    pub fn refuse_set_webhook(&self, description: Option<&str>) {
        self.shared().lock().set_webhook_refusal = description.map(str::to_owned);
    }

    /// The next `times` send calls (see [`is_send_method`]) to `chat_id` fail
    /// with `failure`. Rules queue up: after these `times` calls, the next
    /// rule for the chat (if any) applies.
    pub fn fail_chat(&self, chat_id: i64, failure: Failure, times: usize) {
        if times == 0 {
            return;
        }
        self.shared()
            .lock()
            .chat_failures
            .entry(chat_id)
            .or_default()
            .push_back(Rule {
                failure,
                remaining: Some(times),
            });
    }

    /// Every send call to `chat_id` fails with `failure` (once earlier queued
    /// rules are used up) until [`FakeTelegram::clear_failures`].
    pub fn fail_chat_always(&self, chat_id: i64, failure: Failure) {
        self.shared()
            .lock()
            .chat_failures
            .entry(chat_id)
            .or_default()
            .push_back(Rule {
                failure,
                remaining: None,
            });
    }

    /// The next `getUpdates` call fails with `failure` (calls queue up).
    pub fn fail_get_updates_once(&self, failure: Failure) {
        self.shared().lock().get_updates_failures.push_back(failure);
    }

    /// Removes every injected failure (per chat and for `getUpdates`).
    pub fn clear_failures(&self) {
        let mut inner = self.shared().lock();
        inner.chat_failures.clear();
        inner.get_updates_failures.clear();
    }

    // ----- observers ---------------------------------------------------------

    /// Every call so far, in arrival order of their answers.
    pub fn calls(&self) -> Vec<Call> {
        self.shared().lock().calls.clone()
    }

    /// How many calls were recorded so far (cheap: copies nothing).
    pub fn call_count(&self) -> usize {
        self.shared().lock().calls.len()
    }

    /// The calls recorded after the first `from` ones, in recording order
    /// (the record only grows, so `calls_since(n)` after `call_count() == n`
    /// returns exactly the new calls). Holds the lock only to copy those.
    pub fn calls_since(&self, from: usize) -> Vec<Call> {
        let inner = self.shared().lock();
        inner.calls[from.min(inner.calls.len())..].to_vec()
    }

    /// Calls of one method (matched case-insensitively).
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        let method = method.to_ascii_lowercase();
        self.shared()
            .lock()
            .calls
            .iter()
            .filter(|call| call.method == method)
            .cloned()
            .collect()
    }

    /// The texts sent to `chat` that contain `needle`, in order.
    pub fn texts_with(&self, chat: i64, needle: &str) -> Vec<String> {
        self.sent_texts(chat)
            .into_iter()
            .filter(|t| t.contains(needle))
            .collect()
    }

    /// Waits (at most [`SAID_WAIT`]) until `chat` got `n` texts containing
    /// `needle`; returns the `n`-th. Panics with the fake's report otherwise.
    pub async fn said(&self, chat: i64, needle: &str, n: usize) -> String {
        let what = format!("text #{n} containing «{needle}» in chat {chat}");
        self.wait_until(&what, SAID_WAIT, |f| f.texts_with(chat, needle).len() >= n)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        self.texts_with(chat, needle)
            .into_iter()
            .nth(n - 1)
            .unwrap_or_else(|| panic!("{what}: gone"))
    }

    /// Texts of the successful `sendMessage` calls to `chat_id`, in order.
    pub fn sent_texts(&self, chat_id: i64) -> Vec<String> {
        self.shared()
            .lock()
            .calls
            .iter()
            .filter(|call| {
                call.method == "sendmessage" && !call.failed && call.chat_id() == Some(chat_id)
            })
            .filter_map(|call| call.text().map(str::to_owned))
            .collect()
    }

    /// Successful send calls (see [`is_send_method`]) so far.
    pub fn successful_sends(&self) -> usize {
        self.shared()
            .lock()
            .calls
            .iter()
            .filter(|call| !call.failed && is_send_method(&call.method))
            .count()
    }

    /// Successful send calls (see [`is_send_method`]) so far.
    pub fn successful_send_calls(&self) -> Vec<Call> {
        self.shared()
            .lock()
            .calls
            .iter()
            .filter(|call| !call.failed && is_send_method(&call.method))
            .cloned()
            .collect()
    }

    /// Updates pushed and not yet confirmed by an `offset`.
    pub fn pending_updates(&self) -> usize {
        self.shared().lock().queue.len()
    }

    /// The JSON of the updates not yet confirmed, in order.
    pub fn pending_update_json(&self) -> Vec<Value> {
        self.shared()
            .lock()
            .queue
            .iter()
            .map(|(_, update)| update.clone())
            .collect()
    }

    /// The highest `offset` seen in `getUpdates` (0 if none).
    pub fn confirmed_offset(&self) -> i64 {
        self.shared().lock().confirmed_offset
    }

    /// When `getUpdates` first returned the update.
    pub fn served_at(&self, update_id: i64) -> Option<Instant> {
        self.shared().lock().served_at.get(&update_id).copied()
    }

    /// Distinct bot tokens seen in request paths, in order of first use.
    pub fn tokens(&self) -> Vec<String> {
        self.shared().lock().tokens.clone()
    }

    /// The webhook URL `getWebhookInfo` would report.
    pub fn webhook_url(&self) -> Option<String> {
        self.shared().lock().webhook_url.clone()
    }

    /// The `secret_token` of the webhook set now (Telegram sends it in
    /// `X-Telegram-Bot-Api-Secret-Token` with every call).
    pub fn webhook_secret(&self) -> Option<String> {
        self.shared().lock().webhook_secret.clone()
    }

    /// The parameters of every `setWebhook` call, refused ones too, in order.
    pub fn set_webhook_calls(&self) -> Vec<SetWebhook> {
        self.calls_to("setWebhook")
            .iter()
            .map(SetWebhook::from_call)
            .collect()
    }

    /// Waits until `cond` holds, re-checking on every recorded call or push
    /// and every 20 ms. On timeout the error names `what` and lists the last
    /// 20 calls other than `getUpdates`.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&FakeTelegram) -> bool,
    ) -> Result<(), String> {
        if super::wait::until(&self.shared().changed, timeout, || cond(self)).await {
            Ok(())
        } else {
            Err(self.timeout_report(what, timeout))
        }
    }

    fn timeout_report(&self, what: &str, timeout: Duration) -> String {
        let started = self.shared().started;
        let inner = self.shared().lock();
        let polls = inner
            .calls
            .iter()
            .filter(|call| call.method == "getupdates")
            .count();
        let others: Vec<&Call> = inner
            .calls
            .iter()
            .filter(|call| call.method != "getupdates")
            .collect();
        let skip = others.len().saturating_sub(20);
        let mut report = format!(
            "timed out after {timeout:?} waiting for {what}\n\
             {} calls recorded ({polls} getUpdates, times since the fake started); \
             pending updates: {}, confirmed offset: {}\n\
             last {} calls other than getUpdates:",
            inner.calls.len(),
            inner.queue.len(),
            inner.confirmed_offset,
            others.len() - skip,
        );
        for call in &others[skip..] {
            report.push_str("\n  ");
            report.push_str(&call.describe(started));
        }
        if others.is_empty() {
            report.push_str(" (none)");
        }
        report
    }
}

// ----- request handling ------------------------------------------------------

async fn handle_request(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let Some((token, api_method)) = parse_path(uri.path()) else {
        return json_response(
            StatusCode::NOT_FOUND,
            error_body(StatusCode::NOT_FOUND, "Not Found"),
        );
    };
    if method != Method::GET && method != Method::POST {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            error_body(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
        );
    }
    let params = parse_params(&headers, &body, uri.query());
    {
        let mut inner = shared.lock();
        if !inner.tokens.contains(&token) {
            inner.tokens.push(token);
        }
    }
    let api_method = api_method.to_ascii_lowercase();
    if api_method == "getupdates" {
        get_updates(&shared, params, at).await
    } else {
        other_method(&shared, api_method, params, at).await
    }
}

async fn get_updates(shared: &Arc<Shared>, params: Value, at: Instant) -> Response {
    let offset = params.get("offset").and_then(int_param).unwrap_or(0);
    let limit = params
        .get("limit")
        .and_then(int_param)
        .unwrap_or(100)
        .clamp(1, 100);
    let limit = usize::try_from(limit).unwrap_or(100);
    let timeout = params
        .get("timeout")
        .and_then(int_param)
        .unwrap_or(0)
        .max(0);
    let deadline = at + Duration::from_secs(u64::try_from(timeout).unwrap_or(0));

    let (injected, webhook) = {
        let mut inner = shared.lock();
        (
            inner.get_updates_failures.pop_front(),
            inner.webhook_url.is_some(),
        )
    };
    let call = |failed: bool, status: StatusCode| Call {
        method: "getupdates".to_owned(),
        body: params.clone(),
        at,
        failed,
        status: status.as_u16(),
    };
    match injected.as_ref().map(|f| (f, f.response())) {
        Some((_, Some((status, body)))) => {
            shared.record(call(true, status));
            return json_response(status, body);
        }
        Some((Failure::Delay(delay), None)) => tokio::time::sleep(*delay).await,
        _ => {}
    }
    if webhook {
        let status = StatusCode::CONFLICT;
        shared.record(call(true, status));
        return json_response(
            status,
            error_body(
                status,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            ),
        );
    }

    shared.record(call(false, StatusCode::OK));
    if offset > 0 {
        let mut inner = shared.lock();
        inner.queue.retain(|(id, _)| *id >= offset);
        inner.confirmed_offset = inner.confirmed_offset.max(offset);
        drop(inner);
        shared.changed.notify_waiters();
    }

    let mut shutdown = shared.shutdown_rx.clone();
    loop {
        let notified = shared.pushed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let batch: Vec<Value> = {
            let mut inner = shared.lock();
            let now = Instant::now();
            let batch: Vec<(i64, Value)> = inner.queue.iter().take(limit).cloned().collect();
            for (id, _) in &batch {
                inner.served_at.entry(*id).or_insert(now);
            }
            batch.into_iter().map(|(_, update)| update).collect()
        };
        let webhook = shared.lock().webhook_url.is_some();
        if !batch.is_empty() || Instant::now() >= deadline || webhook || shared.stopping() {
            if !batch.is_empty() {
                shared.changed.notify_waiters();
            }
            return json_response(StatusCode::OK, json!({"ok": true, "result": batch}));
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn other_method(
    shared: &Arc<Shared>,
    method: String,
    params: Value,
    at: Instant,
) -> Response {
    let chat_id = params.get("chat_id").and_then(int_param);
    let failure = match chat_id {
        Some(chat_id) if is_send_method(&method) => shared.lock().take_chat_failure(chat_id),
        _ => None,
    };
    match failure.as_ref().map(|f| (f, f.response())) {
        Some((_, Some((status, body)))) => {
            shared.record(Call {
                method,
                body: params,
                at,
                failed: true,
                status: status.as_u16(),
            });
            return json_response(status, body);
        }
        Some((Failure::Delay(delay), None)) => tokio::time::sleep(*delay).await,
        _ => {}
    }

    let result = match answer(shared, &method, &params, chat_id) {
        Ok(result) => result,
        Err(description) => {
            let status = StatusCode::BAD_REQUEST;
            shared.record(Call {
                method,
                body: params,
                at,
                failed: true,
                status: status.as_u16(),
            });
            return json_response(status, error_body(status, &description));
        }
    };
    shared.record(Call {
        method,
        body: params,
        at,
        failed: false,
        status: StatusCode::OK.as_u16(),
    });
    json_response(StatusCode::OK, json!({"ok": true, "result": result}))
}

/// The `result` of a successful call, or an error description (400).
fn answer(
    shared: &Shared,
    method: &str,
    params: &Value,
    chat_id: Option<i64>,
) -> Result<Value, String> {
    let needs_chat = || chat_id.ok_or_else(|| "Bad Request: chat_id is empty".to_owned());
    match method {
        "getme" => shared.me.clone(),
        "getwebhookinfo" => {
            let inner = shared.lock();
            Ok(json!({
                "url": inner.webhook_url.clone().unwrap_or_default(),
                "has_custom_certificate": false,
                "pending_update_count": inner.queue.len(),
            }))
        }
        "deletewebhook" => {
            let mut inner = shared.lock();
            inner.webhook_url = None;
            inner.webhook_secret = None;
            if params.get("drop_pending_updates").and_then(bool_param) == Some(true) {
                inner.queue.clear();
            }
            Ok(json!(true))
        }
        "setwebhook" => {
            let set = SetWebhook::from_params(params);
            let mut inner = shared.lock();
            if let Some(refusal) = inner.set_webhook_refusal.clone() {
                return Err(refusal);
            }
            if let Some(secret) = &set.secret_token
                && !valid_secret_token(secret)
            {
                return Err("Bad Request: secret token contains unallowed characters".to_owned());
            }
            let url = set.url.filter(|url| !url.is_empty());
            inner.webhook_secret = set.secret_token.filter(|_| url.is_some());
            inner.webhook_url = url;
            drop(inner);
            shared.pushed.notify_waiters();
            Ok(json!(true))
        }
        "getmycommands" => Ok(json!([])),
        "sendmessage" => {
            let chat_id = needs_chat()?;
            let text = str_param(params, "text").unwrap_or_default();
            if text.is_empty() {
                return Err("Bad Request: message text is empty".to_owned());
            }
            let mut message = bot_message(shared, chat_id);
            message.insert("text".into(), json!(text));
            add_inline_keyboard(&mut message, params);
            Ok(Value::Object(message))
        }
        "copymessage" => {
            let chat_id = needs_chat()?;
            let message_id = shared.lock().next_message_id(chat_id);
            Ok(json!({ "message_id": message_id }))
        }
        "sendphoto" => {
            let chat_id = needs_chat()?;
            let serial = shared.lock().next_serial();
            let file_id = given_file_id(params, "photo").unwrap_or_else(|| photo_file_id(serial));
            let mut message = bot_message(shared, chat_id);
            message.insert(
                "photo".into(),
                json!([
                    {"file_id": file_id, "file_unique_id": file_unique_id(serial), "file_size": 1402, "width": 90, "height": 68},
                    {"file_id": file_id, "file_unique_id": file_unique_id(serial + 1_000_000), "file_size": 134_877, "width": 1280, "height": 960},
                ]),
            );
            add_caption(&mut message, params);
            add_inline_keyboard(&mut message, params);
            Ok(Value::Object(message))
        }
        "senddocument" => {
            let chat_id = needs_chat()?;
            let serial = shared.lock().next_serial();
            let file_id =
                given_file_id(params, "document").unwrap_or_else(|| document_file_id(serial));
            let file_name = uploaded_file_name(params, "document")
                .unwrap_or_else(|| format!("document_{serial}.pdf"));
            let mut message = bot_message(shared, chat_id);
            message.insert(
                "document".into(),
                json!({
                    "file_name": file_name,
                    "mime_type": "application/octet-stream",
                    "file_id": file_id,
                    "file_unique_id": file_unique_id(serial),
                    "file_size": 284_113,
                }),
            );
            add_caption(&mut message, params);
            add_inline_keyboard(&mut message, params);
            Ok(Value::Object(message))
        }
        "editmessagetext" => {
            if params.get("inline_message_id").is_some() {
                return Ok(json!(true));
            }
            let chat_id = needs_chat()?;
            let message_id = params
                .get("message_id")
                .and_then(int_param)
                .ok_or_else(|| "Bad Request: message identifier is not specified".to_owned())?;
            let now = unix_now();
            let message = json!({
                "message_id": message_id,
                "from": shared.bot_user(),
                "chat": shared.lock().chat_json(chat_id),
                "date": now,
                "edit_date": now,
                "text": str_param(params, "text").unwrap_or_default(),
            });
            let mut message = match message {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            add_inline_keyboard(&mut message, params);
            Ok(Value::Object(message))
        }
        _ => Ok(json!(true)),
    }
}

/// A new message from the bot in `chat_id`, without content.
fn bot_message(shared: &Shared, chat_id: i64) -> Map<String, Value> {
    let bot = shared.bot_user();
    let mut inner = shared.lock();
    let message_id = inner.next_message_id(chat_id);
    inner.bot_messages.insert(chat_id, message_id);
    let mut message = Map::new();
    message.insert("message_id".into(), json!(message_id));
    message.insert("from".into(), bot);
    message.insert("chat".into(), inner.chat_json(chat_id));
    message.insert("date".into(), json!(unix_now()));
    message
}

fn add_caption(message: &mut Map<String, Value>, params: &Value) {
    if let Some(caption) = str_param(params, "caption").filter(|c| !c.is_empty()) {
        message.insert("caption".into(), json!(caption));
    }
}

/// Echoes an inline keyboard like Telegram does (reply keyboards are not
/// part of the returned message).
fn add_inline_keyboard(message: &mut Map<String, Value>, params: &Value) {
    let markup = match params.get("reply_markup") {
        Some(Value::String(text)) => serde_json::from_str::<Value>(text).ok(),
        Some(value) => Some(value.clone()),
        None => None,
    };
    if let Some(markup) = markup.filter(|m| m.get("inline_keyboard").is_some()) {
        message.insert("reply_markup".into(), markup);
    }
}

/// A file id given as a plain string (not an `attach://` upload).
fn given_file_id(params: &Value, field: &str) -> Option<String> {
    params
        .get(field)
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && !id.starts_with("attach://"))
        .map(str::to_owned)
}

/// The file name of an `attach://` upload in a multipart body.
fn uploaded_file_name(params: &Value, field: &str) -> Option<String> {
    let attach = params.get(field)?.as_str()?.strip_prefix("attach://")?;
    params
        .get(attach)?
        .get("file_name")?
        .as_str()
        .map(str::to_owned)
}

fn photo_file_id(serial: u64) -> String {
    format!("AgACAgIAAxkBAAIB{serial:08}FakePhoto")
}

fn document_file_id(serial: u64) -> String {
    format!("BQACAgIAAxkBAAIB{serial:08}FakeDocument")
}

fn file_unique_id(serial: u64) -> String {
    format!("AQAD{serial:012}")
}

/// `update_json` with the next `update_id`, which is used up.
fn with_next_id(inner: &mut Inner, update_json: Value) -> (i64, Value) {
    let id = inner.next_update_id;
    inner.next_update_id += 1;
    let update = match update_json {
        Value::Object(mut map) => {
            map.insert("update_id".into(), json!(id));
            Value::Object(map)
        }
        other => json!({"update_id": id, "value": other}),
    };
    (id, update)
}

/// The content of a text message: the text, and a `bot_command` entity
/// when it starts with a command.
fn text_content(text: &str) -> Map<String, Value> {
    let mut content = Map::new();
    content.insert("text".into(), json!(text));
    if let Some(command_len) = command_length(text) {
        content.insert(
            "entities".into(),
            json!([{"offset": 0, "length": command_len, "type": "bot_command"}]),
        );
    }
    content
}

/// Length (UTF-16 units) of a leading `/command`, for a `bot_command` entity.
fn command_length(text: &str) -> Option<usize> {
    let rest = text.strip_prefix('/')?;
    let command: String = std::iter::once('/')
        .chain(rest.chars().take_while(|c| !c.is_whitespace()))
        .collect();
    (command.len() > 1).then(|| command.encode_utf16().count())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn error_body(status: StatusCode, description: &str) -> Value {
    json!({"ok": false, "error_code": status.as_u16(), "description": description})
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

// ----- parameters ------------------------------------------------------------

/// An integer given as a JSON number or as a string.
fn int_param(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn bool_param(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn str_param<'a>(params: &'a Value, field: &str) -> Option<&'a str> {
    params.get(field).and_then(Value::as_str)
}

/// `/bot<token>/<method>` → (token, method).
fn parse_path(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/bot")?;
    let (token, method) = rest.split_once('/')?;
    let method = method.trim_end_matches('/');
    if token.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some((percent_decode(token), percent_decode(method)))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request parameters as a JSON object: the JSON body, form fields or
/// multipart fields, plus query-string fields the body does not set.
fn parse_params(headers: &HeaderMap, body: &[u8], query: Option<&str>) -> Value {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut params = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        parse_urlencoded(&String::from_utf8_lossy(body))
    } else if content_type.starts_with("multipart/form-data") {
        let header_value = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        parse_multipart(header_value, body)
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                let mut map = Map::new();
                map.insert("_body".into(), other);
                map
            }
            Err(_) => {
                let mut map = Map::new();
                map.insert(
                    "_raw_body".into(),
                    json!(String::from_utf8_lossy(body).into_owned()),
                );
                map
            }
        }
    };
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        for (key, value) in parse_urlencoded(query) {
            params.entry(key).or_insert(value);
        }
    }
    Value::Object(params)
}

fn parse_urlencoded(text: &str) -> Map<String, Value> {
    let mut map = Map::new();
    let Ok(mut url) = reqwest::Url::parse("http://127.0.0.1/") else {
        return map;
    };
    url.set_query(Some(text));
    for (key, value) in url.query_pairs() {
        map.insert(key.into_owned(), Value::String(value.into_owned()));
    }
    map
}

/// Text parts become strings; file parts become
/// `{"file_name": .., "size": ..}`.
fn parse_multipart(content_type: &str, body: &[u8]) -> Map<String, Value> {
    let mut map = Map::new();
    let Some(boundary) = content_type.split(';').find_map(|part| {
        let (key, value) = part.trim().split_once('=')?;
        key.eq_ignore_ascii_case("boundary")
            .then(|| value.trim_matches('"').to_owned())
    }) else {
        return map;
    };
    let delimiter = format!("--{boundary}");
    let mut rest = body;
    let Some(start) = find(rest, delimiter.as_bytes()) else {
        return map;
    };
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        let part_start = rest.strip_prefix(b"\r\n").unwrap_or(rest);
        let Some(end) = find(part_start, delimiter.as_bytes()) else {
            break;
        };
        let part = &part_start[..end];
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some((name, value)) = parse_part(part) {
            map.insert(name, value);
        }
        rest = &part_start[end + delimiter.len()..];
    }
    map
}

fn parse_part(part: &[u8]) -> Option<(String, Value)> {
    let split = find(part, b"\r\n\r\n")?;
    let headers = String::from_utf8_lossy(&part[..split]);
    let content = &part[split + 4..];
    let disposition = headers
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with("content-disposition"))?;
    let attribute = |name: &str| {
        disposition.split(';').find_map(|item| {
            let (key, value) = item.trim().split_once('=')?;
            (key == name).then(|| value.trim_matches('"').to_owned())
        })
    };
    let name = attribute("name")?;
    let value = match attribute("filename") {
        Some(file_name) => json!({"file_name": file_name, "size": content.len()}),
        None => Value::String(String::from_utf8_lossy(content).into_owned()),
    };
    Some((name, value))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
