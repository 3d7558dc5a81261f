//! The world of the bridge tests: the real runtime in-process with a fake
//! Telegram and a fake Wahelp on 127.0.0.1, a real SQLite file in a
//! temporary folder, an HTTP client for the bot's own server (webhook,
//! `/healthz`, `/metrics`), and the bot's log lines captured for the whole
//! test binary (see [`super::logs`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::Value;
use tempfile::TempDir;

use super::bot::{self, Bot};
pub use super::logs::logs;
use super::telegram::{FakeTelegram, TgUser};
use super::wahelp::{self, FakeWahelp};

/// Bound for anything that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(15);

/// The webhook secret every bridge test configures.
pub const SECRET: &str = "wh-Secret_0123456789abcdefXYZ";

/// The prefix of every token the fake Wahelp hands out (the rest is random).
pub const FAKE_TOKEN_PREFIX: &str = "eyJhbGciOiJIUzI1NiJ9.fake-";

// Fragments of the default flow's texts.
pub const ASK_PHONE: &str = "кнопкой ниже или введите его вручную";
pub const ASK_PHONE_FIRST: &str = "Сначала поделитесь, пожалуйста, номером телефона";
pub const ASK_PHONE_MANUAL: &str = "Напишите номер телефона, например";
pub const WELCOME_BONUS: &str = "🎁 Вам начислено 300 приветственных бонусов";
pub const FORWARDED: &str = "Сообщение передано менеджеру";

/// Fails if anything logged so far in this binary shows the webhook
/// secret, the Wahelp password, a Wahelp token, the bot's Telegram token or
/// a full phone number of `phones` (national 10 digits, in any format:
/// `+79991234567`, `79991234567`, `89991234567`, `+7 (999) 123-45-67`).
/// Masked numbers (`+7999***4567`) are fine.
///
/// Every test calls it at its end, so the test that ends last checks the
/// log of the whole run.
pub fn assert_no_secrets_logged(phones: &[&str]) {
    let logs = logs().text();
    let secrets = [
        SECRET,
        wahelp::PASSWORD,
        FAKE_TOKEN_PREFIX,
        // The part of the bot token after the colon.
        bot::TOKEN.split_once(':').map_or(bot::TOKEN, |(_, t)| t),
    ];
    for secret in secrets {
        if let Some(line) = logs.lines().find(|l| l.contains(secret)) {
            panic!("a secret («{secret}») reached the logs:\n{line}");
        }
    }
    for phone in phones {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        let national = &digits[digits.len().saturating_sub(10)..];
        for line in logs.lines() {
            let squeezed: String = line
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '\u{a0}'))
                .collect();
            assert!(
                !squeezed.contains(national),
                "a full phone number ({phone}) reached the logs:\n{line}"
            );
        }
    }
}

// ----- the world ----------------------------------------------------------------

/// How a webhook call carries the secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth<'a> {
    /// `?token=...`
    Query(&'a str),
    /// `X-Wahelp-Token: ...`
    Header(&'a str),
    None,
}

/// A body for [`World::post_raw`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawBody {
    /// Only the headers, declaring a `Content-Length` of this many bytes
    /// (for calls the bot must refuse from the headers alone).
    Declared(usize),
    /// Chunked: one chunk of this many bytes, its end never sent (for a
    /// body the bot must refuse as it streams in, once over the limit).
    Streamed(usize),
    /// A whole body with its `Content-Length`.
    Whole(Vec<u8>),
}

/// An answer of the bot's HTTP server.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub struct World {
    pub tg: FakeTelegram,
    pub wahelp: FakeWahelp,
    pub env: HashMap<String, String>,
    pub db_path: PathBuf,
    http: reqwest::Client,
    _dir: TempDir,
}

impl World {
    /// Both fakes started, the bridge configured against the fake Wahelp
    /// (login and password), the webhook secret set; log capture on.
    pub async fn new() -> World {
        logs();
        let tg = FakeTelegram::start().await;
        let wahelp = FakeWahelp::start().await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db_path = dir.path().join("bot.db");
        let mut env = bot::env(&tg, &db_path);
        for (name, value) in [
            ("WAHELP_API_URL", wahelp.url()),
            ("WAHELP_PROJECT_ID", wahelp::PROJECT_ID.to_owned()),
            ("WAHELP_CHANNEL_UUID", wahelp::CHANNEL_UUID.to_owned()),
            ("WAHELP_LOGIN", wahelp::LOGIN.to_owned()),
            ("WAHELP_PASSWORD", wahelp::PASSWORD.to_owned()),
            ("WAHELP_WEBHOOK_SECRET", SECRET.to_owned()),
            ("WAHELP_TIMEOUT_SECS", "5".to_owned()),
        ] {
            env.insert(name.to_owned(), value);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(WAIT)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        World {
            tg,
            wahelp,
            env,
            db_path,
            http,
            _dir: dir,
        }
    }

    /// Starts a bot and waits until it polls (its HTTP server listens by then).
    pub async fn start(&self) -> Bot {
        let polls = self.tg.calls_to("getUpdates").len();
        let bot = Bot::start(&self.env);
        self.tg
            .wait_until("the bot polling", WAIT, |f| {
                f.calls_to("getUpdates").len() > polls
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        bot
    }

    /// A connection of our own to the bot's database.
    pub fn db(&self) -> Connection {
        let db = Connection::open(&self.db_path).unwrap_or_else(|e| panic!("{e}"));
        db.busy_timeout(WAIT).unwrap_or_else(|e| panic!("{e}"));
        db
    }

    /// Waits until `cond` holds for the database.
    pub async fn db_until(&self, what: &str, cond: impl Fn(&Connection) -> bool) {
        let db = self.db();
        self.tg
            .wait_until(what, WAIT, |_| cond(&db))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// POSTs `body` to the bot's webhook.
    pub async fn post_webhook(
        &self,
        bot: &Bot,
        auth: Auth<'_>,
        body: impl Into<Vec<u8>>,
    ) -> Answer {
        let mut url = format!("http://{}/wahelp/webhook", bot.http);
        if let Auth::Query(token) = auth {
            url.push_str("?token=");
            url.push_str(token);
        }
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.into());
        if let Auth::Header(token) = auth {
            request = request.header("X-Wahelp-Token", token);
        }
        answer(request).await
    }

    /// POSTs `body` with the right secret and expects 200 `{"ok":true}`.
    pub async fn deliver(&self, bot: &Bot, body: impl Into<Vec<u8>>) {
        let answer = self.post_webhook(bot, Auth::Query(SECRET), body).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json(), serde_json::json!({"ok": true}), "{answer:?}");
    }

    /// POSTs to the webhook over a plain TCP connection and returns the
    /// answer's status. For bodies the bot refuses before reading them all:
    /// it answers and closes, and a client still writing a body the server
    /// left unread may get a reset instead of the answer, so nothing is
    /// written beyond what [`RawBody`] says before the answer is read.
    pub async fn post_raw(&self, bot: &Bot, auth: Auth<'_>, body: RawBody) -> u16 {
        let target = match auth {
            Auth::Query(token) => format!("/wahelp/webhook?token={token}"),
            _ => "/wahelp/webhook".to_owned(),
        };
        let mut request = format!(
            "POST {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nConnection: close\r\n",
            bot.http
        )
        .into_bytes();
        if let Auth::Header(token) = auth {
            request.extend_from_slice(format!("X-Wahelp-Token: {token}\r\n").as_bytes());
        }
        match body {
            RawBody::Declared(len) => {
                request.extend_from_slice(format!("Content-Length: {len}\r\n\r\n").as_bytes());
            }
            RawBody::Streamed(len) => {
                request.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                request.extend_from_slice(format!("{len:x}\r\n").as_bytes());
                request.resize(request.len() + len, b'x');
            }
            RawBody::Whole(bytes) => {
                request.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", bytes.len()).as_bytes(),
                );
                request.extend_from_slice(&bytes);
            }
        }
        super::http::status_of(bot.http, &request, WAIT).await
    }

    /// GETs a path of the bot's HTTP server.
    pub async fn get(&self, bot: &Bot, path: &str) -> Answer {
        answer(self.http.get(format!("http://{}{path}", bot.http))).await
    }

    // ----- conversations --------------------------------------------------

    /// The customer starts the bot and gets the greeting and the phone request.
    pub async fn start_chat(&self, user: &TgUser) {
        self.tg.push_text(user, "/start");
        self.said(user.id, ASK_PHONE, 1).await;
    }

    /// The customer starts the bot and shares their own contact.
    pub async fn register(&self, user: &TgUser, phone: &str) {
        self.start_chat(user).await;
        self.tg.push_contact(user, phone, Some(user.id));
        self.said(user.id, WELCOME_BONUS, 1).await;
    }

    /// The customer starts the bot and types the number by hand.
    pub async fn register_typed(&self, user: &TgUser, typed: &str) {
        self.start_chat(user).await;
        self.tg.push_text(user, "Ввести номер вручную");
        self.said(user.id, ASK_PHONE_MANUAL, 1).await;
        self.tg.push_text(user, typed);
        self.said(user.id, WELCOME_BONUS, 1).await;
    }

    /// The texts sent to `chat` containing `needle`, in order.
    pub fn texts_with(&self, chat: i64, needle: &str) -> Vec<String> {
        self.tg.texts_with(chat, needle)
    }

    /// Waits until `chat` got `n` texts containing `needle`; returns the n-th.
    pub async fn said(&self, chat: i64, needle: &str, n: usize) -> String {
        self.tg.said(chat, needle, n).await
    }

    /// Waits until the fake Wahelp accepted `n` texts in all.
    pub async fn wahelp_got(&self, n: usize) {
        self.wahelp
            .wait_until(&format!("{n} texts accepted by Wahelp"), WAIT, |w| {
                w.sent().len() >= n
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("the bot's HTTP server: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("the bot's HTTP answer: {e}"));
    Answer {
        status,
        content_type,
        body,
    }
}

// ----- the database -------------------------------------------------------------

/// One value from one row.
pub fn one<T: rusqlite::types::FromSql>(db: &Connection, sql: &str, p: impl rusqlite::Params) -> T {
    db.query_row(sql, p, |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A CRM outbox row.
#[derive(Debug, Clone)]
pub struct CrmRow {
    pub id: i64,
    pub customer_id: Option<i64>,
    pub status: String,
    pub attempts: i64,
    /// Unix milliseconds.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub payload: Value,
}

impl CrmRow {
    pub fn text(&self) -> &str {
        self.payload["text"].as_str().unwrap_or_default()
    }
}

/// Every CRM row, oldest first.
pub fn crm_rows(db: &Connection) -> Vec<CrmRow> {
    let sql = "SELECT id, customer_id, status, attempts, next_attempt_at, last_error, payload
               FROM outbox WHERE destination = 'crm' ORDER BY id";
    let mut stmt = db.prepare(sql).unwrap_or_else(|e| panic!("{e}"));
    let rows = stmt
        .query_map([], |r| {
            Ok(CrmRow {
                id: r.get(0)?,
                customer_id: r.get(1)?,
                status: r.get(2)?,
                attempts: r.get(3)?,
                next_attempt_at: r.get(4)?,
                last_error: r.get(5)?,
                payload: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or(Value::Null),
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    rows.map(|r| r.unwrap_or_else(|e| panic!("{e}"))).collect()
}

/// The CRM rows of one customer, oldest first.
pub fn crm_rows_of(db: &Connection, customer: i64) -> Vec<CrmRow> {
    crm_rows(db)
        .into_iter()
        .filter(|r| r.customer_id == Some(customer))
        .collect()
}

/// How many rows a table has.
pub fn count(db: &Connection, table: &str) -> i64 {
    one(db, &format!("SELECT COUNT(*) FROM {table}"), [])
}

/// The outcome column of the webhook log, oldest first.
pub fn webhook_outcomes(db: &Connection) -> Vec<String> {
    let mut stmt = db
        .prepare("SELECT outcome FROM webhook_log ORDER BY id")
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap_or_else(|e| panic!("{e}"));
    rows.map(|r| r.unwrap_or_else(|e| panic!("{e}"))).collect()
}
