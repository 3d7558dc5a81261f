//! A fake Wahelp REST API for integration tests.
//!
//! [`FakeWahelp::start`] binds `127.0.0.1:0` and serves, under `/api`:
//! - `POST /app/user/login` (`{"login","password"}`) → a token, in the
//!   configured [`TokenShape`], living [`FakeWahelp::set_expires_in`] seconds;
//! - `GET /app/user/refresh-token` (valid bearer) → a new token in the
//!   nested shape; the old one stops working, as with JWT blacklisting;
//! - `POST /app/projects/{p}/channels/{c}/users` → `data.id`, the same id for
//!   the same phone;
//! - `POST /app/projects/{p}/channels/{c}/send_message/{user}` → increasing
//!   message ids at the configured [`MessageIdPlace`];
//! - `PUT|GET /app/projects/{p}/hook`.
//!
//! Project-scoped calls need `Authorization: Bearer <valid token>` and
//! `X-Project: {p}` (403 otherwise); an expired, replaced or unknown token
//! gets 401 `Unauthenticated.`. Every request is recorded as a [`Call`].
//! Faults ([`Failure`]) are scripted per [`Endpoint`]; the whole server can
//! go [`Down`] and come back on the same port.
//!
//! The server stops when the last [`FakeWahelp`] handle is dropped.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

/// Project id the fake serves.
pub const PROJECT_ID: &str = "4821";
/// Channel uuid the fake serves.
pub const CHANNEL_UUID: &str = "0b6f2c9e-5d1a-4c3b-9e8f-7a6b5c4d3e2f";
/// Credentials the fake accepts.
pub const LOGIN: &str = "manager@example.com";
pub const PASSWORD: &str = "s3cret-Pa$$word";
/// The first user id handed out.
pub const FIRST_USER_ID: i64 = 12_345;
/// The first message id handed out.
pub const FIRST_MESSAGE_ID: i64 = 90_001;

/// Which endpoint a request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Login,
    Refresh,
    Users,
    SendMessage,
    SetHook,
    GetHook,
    /// Anything else (answered 404).
    Other,
}

/// Where a token answer puts the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenShape {
    /// `{"data":{"access_token":"T","token_type":"bearer","expires_in":N}}`
    AccessToken,
    /// `{"data":{"token":{"token":"T","expires_in":N}}}`
    Nested,
}

/// Where the send answer puts the message id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageIdPlace {
    DataId,
    DataMessageId,
    DataMessageNestedId,
    TopMessageId,
    Msgid,
    /// No id anywhere.
    Nowhere,
}

/// What `GET .../hook` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookGet {
    /// `{"success":true,"data":{"url":...}}` (`null` when none).
    Supported,
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
}

/// A scripted fault for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 500 `{"success":false,"message":"Server Error"}`.
    ServerError,
    /// 503 `{"success":false,"message":"Service Unavailable"}`.
    Unavailable,
    /// 429 `{"message":"Too Many Attempts."}`.
    TooManyRequests,
    /// 401 `{"message":"Unauthenticated."}` (whatever the token).
    Unauthorized,
    /// 200 `{"success":false,"message": text}`.
    Refused(String),
    /// `status` with `{"success":false,"message": text}`.
    Status(u16, String),
    /// `status` with exactly this body.
    Raw(u16, String),
    /// Sleeps this long, then answers normally.
    Hang(Duration),
}

/// How the server is down, see [`FakeWahelp::go_down`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Down {
    /// Nothing listens on the port: connections are refused.
    Refused,
    /// Every request gets 503.
    Unavailable,
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Call {
    pub endpoint: Endpoint,
    pub method: String,
    /// The path, e.g. `/api/app/user/login`.
    pub path: String,
    /// The whole `Authorization` header.
    pub authorization: Option<String>,
    /// The `X-Project` header.
    pub project: Option<String>,
    pub content_type: Option<String>,
    /// The JSON body (`null` when empty, `{"_raw": text}` when not JSON).
    pub body: Value,
    pub at: Instant,
    /// The answer's status; 0 while a [`Failure::Hang`] holds it.
    pub status: u16,
}

impl Call {
    /// The token of a `Bearer` authorization.
    pub fn bearer(&self) -> Option<&str> {
        self.authorization.as_deref()?.strip_prefix("Bearer ")
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn describe(&self, since: Instant) -> String {
        let body: String = self.body.to_string().chars().take(160).collect();
        format!(
            "+{:.3}s {} {} [{}] {}",
            self.at.saturating_duration_since(since).as_secs_f64(),
            self.method,
            self.path,
            self.status,
            body
        )
    }
}

/// A text the fake accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub user_id: String,
    pub phone: String,
    pub text: String,
    pub message_id: String,
}

/// A customer the fake knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub phone: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Issue {
    Login,
    Refresh,
    Fixed,
}

struct TokenInfo {
    expires_at: Option<Instant>,
    revoked: bool,
}

struct Rule {
    failure: Failure,
    remaining: usize,
}

struct Inner {
    calls: Vec<Call>,
    login_shape: TokenShape,
    refresh_shape: TokenShape,
    expires_in: u64,
    tokens: HashMap<String, TokenInfo>,
    /// Issued tokens in order, with how.
    issued: Vec<(String, Issue)>,
    users: Vec<User>,
    user_ids_as_strings: bool,
    message_place: MessageIdPlace,
    message_ids_as_strings: bool,
    next_message_id: i64,
    sent: Vec<Sent>,
    failures: HashMap<Endpoint, VecDeque<Rule>>,
    down: Option<Down>,
    hook: Option<String>,
    hook_get: HookGet,
}

impl Inner {
    fn take_failure(&mut self, endpoint: Endpoint) -> Option<Failure> {
        let rules = self.failures.get_mut(&endpoint)?;
        let rule = rules.front_mut()?;
        let failure = rule.failure.clone();
        rule.remaining = rule.remaining.saturating_sub(1);
        if rule.remaining == 0 {
            rules.pop_front();
        }
        Some(failure)
    }

    fn issue_token(&mut self, how: Issue) -> String {
        let token = format!(
            "eyJhbGciOiJIUzI1NiJ9.fake-{}.{}",
            self.issued.len() + 1,
            fastrand::u64(..)
        );
        let expires_at =
            (how != Issue::Fixed).then(|| Instant::now() + Duration::from_secs(self.expires_in));
        self.tokens.insert(
            token.clone(),
            TokenInfo {
                expires_at,
                revoked: false,
            },
        );
        self.issued.push((token.clone(), how));
        token
    }

    fn token_valid(&self, token: &str) -> bool {
        self.tokens
            .get(token)
            .is_some_and(|t| !t.revoked && t.expires_at.is_none_or(|at| Instant::now() < at))
    }

    fn token_answer(&self, shape: TokenShape, token: &str) -> Value {
        match shape {
            TokenShape::AccessToken => json!({
                "success": true,
                "data": {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in},
            }),
            TokenShape::Nested => json!({
                "success": true,
                "data": {"token": {"token": token, "expires_in": self.expires_in}},
            }),
        }
    }

    fn user_id_json(&self, id: i64) -> Value {
        if self.user_ids_as_strings {
            json!(id.to_string())
        } else {
            json!(id)
        }
    }
}

struct Shared {
    inner: Mutex<Inner>,
    /// A call recorded or answered.
    changed: Notify,
    addr: SocketAddr,
    started: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Handle {
    shared: Arc<Shared>,
    /// Dropping the sender stops the current server.
    server: Mutex<Option<watch::Sender<bool>>>,
}

/// A running fake Wahelp server. Cheap to clone; the server stops when the
/// last clone is dropped.
#[derive(Clone)]
pub struct FakeWahelp {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for FakeWahelp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeWahelp")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl FakeWahelp {
    /// Starts the server on `127.0.0.1` with an ephemeral port.
    pub async fn start() -> FakeWahelp {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|e| panic!("fake wahelp: cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fake wahelp: no local address: {e}"));
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                calls: Vec::new(),
                login_shape: TokenShape::AccessToken,
                refresh_shape: TokenShape::Nested,
                expires_in: 3600,
                tokens: HashMap::new(),
                issued: Vec::new(),
                users: Vec::new(),
                user_ids_as_strings: false,
                message_place: MessageIdPlace::DataId,
                message_ids_as_strings: false,
                next_message_id: FIRST_MESSAGE_ID,
                sent: Vec::new(),
                failures: HashMap::new(),
                down: None,
                hook: None,
                hook_get: HookGet::Supported,
            }),
            changed: Notify::new(),
            addr,
            started: Instant::now(),
        });
        let stop = serve(listener, Arc::clone(&shared));
        FakeWahelp {
            handle: Arc::new(Handle {
                shared,
                server: Mutex::new(Some(stop)),
            }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// `http://127.0.0.1:PORT/api`: the `api_url` of the client settings.
    pub fn url(&self) -> String {
        format!("http://{}/api", self.shared().addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared().addr
    }

    // ----- configuration ---------------------------------------------------

    /// The shape of login answers (default [`TokenShape::AccessToken`]).
    pub fn set_login_shape(&self, shape: TokenShape) {
        self.shared().lock().login_shape = shape;
    }

    /// The shape of refresh answers (default [`TokenShape::Nested`]).
    pub fn set_refresh_shape(&self, shape: TokenShape) {
        self.shared().lock().refresh_shape = shape;
    }

    /// `expires_in` of tokens issued from now on (default 3600); the fake
    /// refuses them after that long.
    pub fn set_expires_in(&self, secs: u64) {
        self.shared().lock().expires_in = secs;
    }

    /// Registers a token that never expires (for `Auth::Token`).
    pub fn add_fixed_token(&self, token: &str) {
        let mut inner = self.shared().lock();
        inner.tokens.insert(
            token.to_owned(),
            TokenInfo {
                expires_at: None,
                revoked: false,
            },
        );
        inner.issued.push((token.to_owned(), Issue::Fixed));
    }

    /// Every token issued so far stops working (401), as after a password
    /// change.
    pub fn revoke_tokens(&self) {
        for token in self.shared().lock().tokens.values_mut() {
            token.revoked = true;
        }
    }

    /// Answer user ids as strings (`"12345"`) instead of numbers.
    pub fn set_user_ids_as_strings(&self, yes: bool) {
        self.shared().lock().user_ids_as_strings = yes;
    }

    /// Where send answers put the message id (default `data.id`).
    pub fn set_message_id_place(&self, place: MessageIdPlace) {
        self.shared().lock().message_place = place;
    }

    /// Answer message ids as strings instead of numbers.
    pub fn set_message_ids_as_strings(&self, yes: bool) {
        self.shared().lock().message_ids_as_strings = yes;
    }

    /// What `GET .../hook` does (default: supported).
    pub fn set_hook_get(&self, mode: HookGet) {
        self.shared().lock().hook_get = mode;
    }

    /// The next `times` calls to `endpoint` fail with `failure`. Rules queue
    /// up per endpoint.
    pub fn fail(&self, endpoint: Endpoint, failure: Failure, times: usize) {
        if times == 0 {
            return;
        }
        self.shared()
            .lock()
            .failures
            .entry(endpoint)
            .or_default()
            .push_back(Rule {
                failure,
                remaining: times,
            });
    }

    /// The next `times` `send_message` calls fail with `failure`.
    pub fn fail_send(&self, failure: Failure, times: usize) {
        self.fail(Endpoint::SendMessage, failure, times);
    }

    /// Removes every scripted failure.
    pub fn clear_failures(&self) {
        self.shared().lock().failures.clear();
    }

    /// Takes the server down. [`Down::Refused`] closes the listening socket
    /// (returns once a connection is refused, at most 2 s); open keep-alive
    /// connections are closed as soon as they are idle.
    pub async fn go_down(&self, how: Down) {
        self.shared().lock().down = Some(how);
        if how == Down::Refused {
            let stop = self
                .handle
                .server
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(stop) = stop {
                stop.send_replace(true);
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            while tokio::net::TcpStream::connect(self.addr()).await.is_ok() {
                if Instant::now() >= deadline {
                    panic!("fake wahelp: still accepting connections 2 s after going down");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Brings the server back on the same port (retrying the bind for up to
    /// 2 s).
    pub async fn come_up(&self) {
        let was = self.shared().lock().down.take();
        if was != Some(Down::Refused) {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr()).await {
                Ok(listener) => break listener,
                Err(e) if Instant::now() >= deadline => {
                    panic!("fake wahelp: cannot bind {} again: {e}", self.addr())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let stop = serve(listener, Arc::clone(&self.handle.shared));
        *self.handle.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(stop);
    }

    // ----- observers ---------------------------------------------------------

    /// Every call so far, in order of arrival of their answers (a hanging
    /// call is recorded when it arrives, with status 0).
    pub fn calls(&self) -> Vec<Call> {
        self.shared().lock().calls.clone()
    }

    /// The calls to one endpoint.
    pub fn calls_to(&self, endpoint: Endpoint) -> Vec<Call> {
        self.shared()
            .lock()
            .calls
            .iter()
            .filter(|c| c.endpoint == endpoint)
            .cloned()
            .collect()
    }

    /// How many calls reached `endpoint`.
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.shared()
            .lock()
            .calls
            .iter()
            .filter(|c| c.endpoint == endpoint)
            .count()
    }

    /// Tokens handed out by successful logins.
    pub fn logins(&self) -> usize {
        self.issued_by(Issue::Login).len()
    }

    /// Tokens handed out by successful refreshes.
    pub fn refreshes(&self) -> usize {
        self.issued_by(Issue::Refresh).len()
    }

    /// Every token handed out by logins and refreshes, in order.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared()
            .lock()
            .issued
            .iter()
            .filter(|(_, how)| *how != Issue::Fixed)
            .map(|(token, _)| token.clone())
            .collect()
    }

    fn issued_by(&self, how: Issue) -> Vec<String> {
        self.shared()
            .lock()
            .issued
            .iter()
            .filter(|(_, h)| *h == how)
            .map(|(token, _)| token.clone())
            .collect()
    }

    /// The customers the fake knows, in order of creation.
    pub fn users(&self) -> Vec<User> {
        self.shared().lock().users.clone()
    }

    /// The id the fake gave `phone`, if any.
    pub fn user_id_of(&self, phone: &str) -> Option<i64> {
        self.shared()
            .lock()
            .users
            .iter()
            .find(|u| u.phone == phone)
            .map(|u| u.id)
    }

    /// Accepted texts as (user id, phone, text), in order.
    pub fn sent_texts(&self) -> Vec<(String, String, String)> {
        self.shared()
            .lock()
            .sent
            .iter()
            .map(|s| (s.user_id.clone(), s.phone.clone(), s.text.clone()))
            .collect()
    }

    /// Accepted texts with their message ids, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.shared().lock().sent.clone()
    }

    /// The registered webhook URL.
    pub fn hook(&self) -> Option<String> {
        self.shared().lock().hook.clone()
    }

    /// Waits until `cond` holds, re-checking on every recorded call and every
    /// 20 ms. On timeout the error names `what` and lists the last 20 calls.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&FakeWahelp) -> bool,
    ) -> Result<(), String> {
        if super::wait::until(&self.shared().changed, timeout, || cond(self)).await {
            Ok(())
        } else {
            Err(self.report(&format!("timed out after {timeout:?} waiting for {what}")))
        }
    }

    /// A readable list of the last 20 calls, for assertion messages.
    pub fn report(&self, headline: &str) -> String {
        let started = self.shared().started;
        let inner = self.shared().lock();
        let skip = inner.calls.len().saturating_sub(20);
        let mut report = format!(
            "{headline}\n{} calls recorded (times since the fake started), last {}:",
            inner.calls.len(),
            inner.calls.len() - skip
        );
        for call in &inner.calls[skip..] {
            report.push_str("\n  ");
            report.push_str(&call.describe(started));
        }
        report
    }
}

/// Serves `listener` until the returned sender is dropped or set.
fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> watch::Sender<bool> {
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let app = Router::new().fallback(handle_request).with_state(shared);
    tokio::spawn(async move {
        let signal = async move {
            // Err: the sender is gone, stop as well.
            let _ = stop_rx.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
        {
            eprintln!("fake wahelp: server error: {e}");
        }
    });
    stop_tx
}

// ----- request handling ------------------------------------------------------

/// What a path names: the endpoint, and the project / channel / user parts.
struct Route {
    endpoint: Endpoint,
    project: Option<String>,
    channel: Option<String>,
    user: Option<String>,
}

fn route(method: &Method, path: &str) -> Route {
    let parts: Vec<&str> = path
        .strip_prefix("/api/app/")
        .unwrap_or("")
        .trim_end_matches('/')
        .split('/')
        .collect();
    let own = |s: &str| Some(s.to_owned());
    let mut r = Route {
        endpoint: Endpoint::Other,
        project: None,
        channel: None,
        user: None,
    };
    match (method, parts.as_slice()) {
        (&Method::POST, ["user", "login"]) => r.endpoint = Endpoint::Login,
        (&Method::GET, ["user", "refresh-token"]) => r.endpoint = Endpoint::Refresh,
        (&Method::POST, ["projects", p, "channels", c, "users"]) => {
            r = Route {
                endpoint: Endpoint::Users,
                project: own(p),
                channel: own(c),
                user: None,
            }
        }
        (&Method::POST, ["projects", p, "channels", c, "send_message", u]) => {
            r = Route {
                endpoint: Endpoint::SendMessage,
                project: own(p),
                channel: own(c),
                user: own(u),
            }
        }
        (&Method::PUT, ["projects", p, "hook"]) => {
            r.endpoint = Endpoint::SetHook;
            r.project = own(p);
        }
        (&Method::GET, ["projects", p, "hook"]) => {
            r.endpoint = Endpoint::GetHook;
            r.project = own(p);
        }
        _ => {}
    }
    r
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn handle_request(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = route(&method, uri.path());
    let body_json = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice::<Value>(&body)
            .unwrap_or_else(|_| json!({"_raw": String::from_utf8_lossy(&body)}))
    };
    let mut call = Call {
        endpoint: route.endpoint,
        method: method.to_string(),
        path: uri.path().to_owned(),
        authorization: header_text(&headers, "authorization"),
        project: header_text(&headers, "x-project"),
        content_type: header_text(&headers, "content-type"),
        body: body_json,
        at: Instant::now(),
        status: 0,
    };

    let (down, failure) = {
        let mut inner = shared.lock();
        let down = inner.down;
        let failure = if down.is_some() {
            None
        } else {
            inner.take_failure(route.endpoint)
        };
        (down, failure)
    };
    if down.is_some() {
        return finish(
            &shared,
            call,
            503,
            json!({"success": false, "message": "Service Unavailable"}),
        );
    }
    match failure {
        Some(Failure::Hang(delay)) => {
            // Recorded now (status 0), so a test sees it while it hangs.
            let index = {
                let mut inner = shared.lock();
                inner.calls.push(call.clone());
                inner.calls.len() - 1
            };
            shared.changed.notify_waiters();
            tokio::time::sleep(delay).await;
            let (status, answer) = answer(&shared, &route, &call);
            if let Some(recorded) = shared.lock().calls.get_mut(index) {
                recorded.status = status;
            }
            shared.changed.notify_waiters();
            return json_response(status, answer);
        }
        Some(failure) => {
            let (status, body) = failure_answer(&failure);
            call.status = status;
            shared.lock().calls.push(call);
            shared.changed.notify_waiters();
            return text_response(status, body);
        }
        None => {}
    }
    let (status, answer) = answer(&shared, &route, &call);
    finish(&shared, call, status, answer)
}

fn finish(shared: &Shared, mut call: Call, status: u16, answer: Value) -> Response {
    call.status = status;
    shared.lock().calls.push(call);
    shared.changed.notify_waiters();
    json_response(status, answer)
}

fn failure_answer(failure: &Failure) -> (u16, String) {
    let refusal = |text: &str| json!({"success": false, "message": text}).to_string();
    match failure {
        Failure::ServerError => (500, refusal("Server Error")),
        Failure::Unavailable => (503, refusal("Service Unavailable")),
        Failure::TooManyRequests => (429, json!({"message": "Too Many Attempts."}).to_string()),
        Failure::Unauthorized => (401, json!({"message": "Unauthenticated."}).to_string()),
        Failure::Refused(text) => (200, refusal(text)),
        Failure::Status(status, text) => (*status, refusal(text)),
        Failure::Raw(status, body) => (*status, body.clone()),
        Failure::Hang(_) => (200, json!({"success": true}).to_string()),
    }
}

fn refused(status: u16, text: &str) -> (u16, Value) {
    (status, json!({"success": false, "message": text}))
}

/// The normal answer of an endpoint (auth and project checked).
fn answer(shared: &Shared, route: &Route, call: &Call) -> (u16, Value) {
    let mut inner = shared.lock();
    if route.endpoint == Endpoint::Other {
        return refused(404, "Not Found");
    }
    if route.endpoint == Endpoint::Login {
        let login = call.body.get("login").and_then(Value::as_str);
        let password = call.body.get("password").and_then(Value::as_str);
        if login != Some(LOGIN) || password != Some(PASSWORD) {
            return refused(401, "Неверный логин или пароль");
        }
        let token = inner.issue_token(Issue::Login);
        let shape = inner.login_shape;
        return (200, inner.token_answer(shape, &token));
    }
    let bearer = call.bearer().map(str::to_owned);
    if !bearer.as_deref().is_some_and(|t| inner.token_valid(t)) {
        return (401, json!({"message": "Unauthenticated."}));
    }
    if route.endpoint == Endpoint::Refresh {
        if let Some(old) = bearer.as_deref().and_then(|t| inner.tokens.get_mut(t)) {
            old.revoked = true;
        }
        let token = inner.issue_token(Issue::Refresh);
        let shape = inner.refresh_shape;
        return (200, inner.token_answer(shape, &token));
    }
    if route.project.as_deref() != Some(PROJECT_ID) || call.project.as_deref() != Some(PROJECT_ID) {
        return refused(403, "Нет доступа к проекту");
    }
    if route.channel.as_deref().is_some_and(|c| c != CHANNEL_UUID) {
        return refused(404, "Канал не найден");
    }
    match route.endpoint {
        Endpoint::Users => {
            let Some(phone) = call.body.get("phone").and_then(Value::as_str) else {
                return (
                    422,
                    json!({"success": false, "message": "The given data was invalid.", "errors": {"phone": ["The phone field is required."]}}),
                );
            };
            let name = call
                .body
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let id = match inner.users.iter().find(|u| u.phone == phone) {
                Some(user) => user.id,
                None => {
                    let id = FIRST_USER_ID + i64::try_from(inner.users.len()).unwrap_or(0);
                    inner.users.push(User {
                        id,
                        phone: phone.to_owned(),
                        name: name.to_owned(),
                    });
                    id
                }
            };
            let id_json = inner.user_id_json(id);
            (
                200,
                json!({"success": true, "data": {"id": id_json, "phone": phone, "name": name}}),
            )
        }
        Endpoint::SendMessage => {
            let user_id = route.user.clone().unwrap_or_default();
            let Some(user) = inner
                .users
                .iter()
                .find(|u| u.id.to_string() == user_id)
                .cloned()
            else {
                return refused(404, "Пользователь не найден");
            };
            let text = call
                .body
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if text.is_empty() {
                return (
                    422,
                    json!({"success": false, "message": "The given data was invalid.", "errors": {"text": ["The text field is required."]}}),
                );
            }
            let id = inner.next_message_id;
            inner.next_message_id += 1;
            let id_json = if inner.message_ids_as_strings {
                json!(id.to_string())
            } else {
                json!(id)
            };
            inner.sent.push(Sent {
                user_id,
                phone: user.phone,
                text: text.clone(),
                message_id: id.to_string(),
            });
            let message = json!({"text": text, "destination": "from_operator", "status": "queued"});
            let answer = match inner.message_place {
                MessageIdPlace::DataId => {
                    json!({"success": true, "data": {"id": id_json, "text": text}})
                }
                MessageIdPlace::DataMessageId => {
                    json!({"success": true, "data": {"message_id": id_json, "message": message}})
                }
                MessageIdPlace::DataMessageNestedId => {
                    let mut message = message;
                    message["id"] = id_json;
                    json!({"success": true, "data": {"message": message}})
                }
                MessageIdPlace::TopMessageId => {
                    json!({"success": true, "message_id": id_json, "data": {"message": message}})
                }
                MessageIdPlace::Msgid => {
                    json!({"success": true, "msgid": id_json, "data": {"message": message}})
                }
                MessageIdPlace::Nowhere => json!({"success": true, "data": {"message": message}}),
            };
            (200, answer)
        }
        Endpoint::SetHook => match call.body.get("url").and_then(Value::as_str) {
            Some(url) if !url.is_empty() => {
                inner.hook = Some(url.to_owned());
                (200, json!({"success": true, "data": {"url": url}}))
            }
            _ => (
                422,
                json!({"success": false, "message": "The given data was invalid.", "errors": {"url": ["The url field is required."]}}),
            ),
        },
        Endpoint::GetHook => match inner.hook_get {
            HookGet::Supported => (200, json!({"success": true, "data": {"url": inner.hook}})),
            HookGet::NotFound => refused(404, "Not Found"),
            HookGet::MethodNotAllowed => {
                refused(405, "The GET method is not supported for this route.")
            }
        },
        Endpoint::Login | Endpoint::Refresh | Endpoint::Other => refused(404, "Not Found"),
    }
}

fn json_response(status: u16, body: Value) -> Response {
    text_response(status, body.to_string())
}

fn text_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
