//! Telegram webhook mode end to end: the real `flowbot` binary with
//! `TELEGRAM_WEBHOOK_URL` pointing at its own `POST /telegram/webhook`,
//! against the fake Telegram Bot API, with updates posted over real HTTP on
//! 127.0.0.1 the way Telegram posts them. Also long polling's side of it: a
//! webhook left by someone else is deleted at start, and said so.
//!
//! Every wait has a timeout; every test ends by checking that the bot's log
//! never showed the webhook secret or the bot token.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{Value, json};
use support::bot;
use support::process::BotProcess;
use support::telegram::{FakeTelegram, TgUser, valid_secret_token};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(15);
const GREETING: &str = "Здравствуйте, Анна!";
const START_FIXTURE: &str = include_str!("fixtures/telegram/updates/01-start-command.json");
/// Анна's id in the fixtures.
const ANNA: i64 = 5_213_874_096;
/// The bot's largest accepted body (`flowbot::http::BODY_LIMIT`).
const BODY_LIMIT: usize = flowbot::http::BODY_LIMIT;

// ----- the world a test runs in ------------------------------------------------

/// A fake Telegram, a temporary folder with the bot's database and log, and
/// the environment of the bot (webhook mode unless [`World::polling`]).
struct World {
    fake: FakeTelegram,
    env: HashMap<String, String>,
    http: SocketAddr,
    db_path: PathBuf,
    client: reqwest::Client,
    dir: TempDir,
}

impl World {
    /// Webhook mode: `TELEGRAM_WEBHOOK_URL` is the bot's own route.
    async fn webhook() -> World {
        let mut world = World::polling().await;
        let url = format!("http://{}/telegram/webhook", world.http);
        world.env.insert("TELEGRAM_WEBHOOK_URL".into(), url);
        world
    }

    /// Long polling (no `TELEGRAM_WEBHOOK_URL`).
    async fn polling() -> World {
        let fake = FakeTelegram::start().await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db_path = dir.path().join("bot.db");
        let mut env = bot::env(&fake, &db_path);
        env.insert("RUST_LOG".into(), "info".into());
        env.insert("NO_COLOR".into(), "1".into());
        let http = env["HTTP_LISTEN"]
            .parse()
            .unwrap_or_else(|e| panic!("HTTP_LISTEN: {e}"));
        let client = reqwest::Client::builder()
            .timeout(WAIT)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        World {
            fake,
            env,
            http,
            db_path,
            client,
            dir,
        }
    }

    fn url(&self) -> String {
        self.env["TELEGRAM_WEBHOOK_URL"].clone()
    }

    /// The real binary with this world's environment; not started yet.
    fn process(&self) -> BotProcess {
        BotProcess::new("bot", self.env.clone(), self.dir.path())
    }

    /// Starts `bot` in webhook mode and waits until it has set the webhook
    /// (its HTTP server listens by then); returns the secret it chose.
    async fn start(&self, bot: &mut BotProcess) -> String {
        let before = self.fake.set_webhook_calls().len();
        bot.start().unwrap_or_else(|e| panic!("{e}"));
        self.fake
            .wait_until("setWebhook", WAIT, |f| {
                f.set_webhook_calls().len() > before && f.webhook_secret().is_some()
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", bot.log_tail(40)));
        self.fake
            .webhook_secret()
            .unwrap_or_else(|| panic!("no webhook secret"))
    }

    /// POSTs `body` to `/telegram/webhook`, with the secret header when
    /// given; the status and body of the answer.
    async fn post(&self, secret: Option<&str>, body: impl Into<Vec<u8>>) -> (u16, String) {
        let mut request = self
            .client
            .post(format!("http://{}/telegram/webhook", self.http))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.into());
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("the bot's HTTP server: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, text)
    }

    /// GETs a path of the bot's HTTP server: status and body.
    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("http://{}{path}", self.http))
            .send()
            .await
            .unwrap_or_else(|e| panic!("the bot's HTTP server: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// `/healthz` as JSON.
    async fn health(&self) -> Value {
        let (status, body) = self.get("/healthz").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// A connection of our own to the bot's database (WAL: reads never block it).
    fn db(&self) -> Connection {
        let db = Connection::open(&self.db_path).unwrap_or_else(|e| panic!("{e}"));
        db.busy_timeout(WAIT).unwrap_or_else(|e| panic!("{e}"));
        db
    }

    /// Waits until the bot has sent `chat` `n` texts containing `needle`.
    async fn said(&self, chat: i64, needle: &str, n: usize) {
        let what = format!("{n} texts containing «{needle}» in chat {chat}");
        self.fake
            .wait_until(&what, WAIT, |f| f.texts_with(chat, needle).len() >= n)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Waits until the update is processed.
    async fn processed(&self, update_id: i64) {
        let db = self.db();
        self.fake
            .wait_until(&format!("update {update_id} processed"), WAIT, |_| {
                processed(&db, update_id)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

fn count(db: &Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Whether the update is in the inbox and marked processed.
fn processed(db: &Connection, update_id: i64) -> bool {
    db.query_row(
        "SELECT COUNT(*) FROM inbox WHERE update_id = ?1 AND processed_at IS NOT NULL",
        [update_id],
        |r| r.get::<_, i64>(0),
    )
    .unwrap_or_else(|e| panic!("{e}"))
        == 1
}

/// The value of a counter in Prometheus text, 0 when absent.
fn counter(metrics: &str, name_and_labels: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0)
}

/// A short pause to show that nothing more happens.
async fn quiet_for(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Fails if the log shows the secret or the bot token's secret part.
fn assert_no_secrets_logged(bot: &BotProcess, secrets: &[&str]) {
    let log = bot.log_text();
    let token = bot::TOKEN.split_once(':').map_or(bot::TOKEN, |(_, t)| t);
    for secret in secrets.iter().copied().chain([token]) {
        if let Some(line) = log.lines().find(|l| l.contains(secret)) {
            panic!("a secret reached the log:\n{line}");
        }
    }
}

/// POSTs only the headers of a body over the limit (right secret), over a
/// plain TCP connection: a client writing a body the server refuses unread
/// may see a reset instead of the answer. The answer's status.
async fn post_declared_too_large(http: SocketAddr, secret: &str) -> u16 {
    let request = format!(
        "POST /telegram/webhook HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json\r\n\
         X-Telegram-Bot-Api-Secret-Token: {secret}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        BODY_LIMIT + 1
    );
    support::http::status_of(http, request.as_bytes(), WAIT).await
}

// ----- webhook mode ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mode_sets_the_webhook_with_a_random_secret_and_never_polls() {
    let world = World::webhook().await;
    let mut bot = world.process();
    let secret = world.start(&mut bot).await;

    let calls = world.fake.set_webhook_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].url.as_deref(), Some(world.url().as_str()));
    assert_eq!(calls[0].secret_token.as_deref(), Some(secret.as_str()));
    assert!(valid_secret_token(&secret), "{secret}");
    assert!(
        secret.len() >= 32,
        "a short secret: {} characters",
        secret.len()
    );
    assert_eq!(
        calls[0].allowed_updates.as_deref(),
        Some(
            &[
                "message".to_owned(),
                "edited_message".to_owned(),
                "callback_query".to_owned(),
                "my_chat_member".to_owned()
            ][..]
        ),
        "the same update kinds as polling asks for"
    );

    let health = world.health().await;
    assert_eq!(health["telegram_mode"], json!("webhook"), "{health}");
    assert_eq!(health["telegram_poll"], Value::Null, "{health}");
    assert_eq!(health["ok"], json!(true), "{health}");

    quiet_for(Duration::from_millis(1500)).await;
    assert!(world.fake.calls_to("getUpdates").is_empty(), "it polled");
    assert!(world.fake.calls_to("deleteWebhook").is_empty());
    bot.check_running().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        bot.log_text()
            .contains("receiving Telegram updates by webhook"),
        "{}",
        bot.log_tail(40)
    );
    assert_no_secrets_logged(&bot, &[&secret]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_with_the_right_secret_is_stored_and_answered() {
    let world = World::webhook().await;
    let mut bot = world.process();
    let secret = world.start(&mut bot).await;
    let anna = TgUser::anna();

    let (id, update) = world.fake.text_update(&anna, "/start");
    let (status, body) = world.post(Some(&secret), update.to_string()).await;
    assert_eq!(status, 200, "{body}");
    // Durable before the answer: the inbox has it.
    let stored = count(
        &world.db(),
        &format!("SELECT COUNT(*) FROM inbox WHERE update_id = {id}"),
    );
    assert_eq!(stored, 1);

    world.said(anna.id, GREETING, 1).await;
    world.processed(id).await;
    let (_, metrics) = world.get("/metrics").await;
    assert_eq!(
        counter(
            &metrics,
            "flowbot_telegram_webhook_calls_total{result=\"ok\"}"
        ),
        1,
        "{metrics}"
    );
    assert_no_secrets_logged(&bot, &[&secret]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_secret_is_401_and_nothing_is_stored_or_sent() {
    let world = World::webhook().await;
    let mut bot = world.process();
    let secret = world.start(&mut bot).await;
    let anna = TgUser::anna();
    let (id, update) = world.fake.text_update(&anna, "/start");
    let body = update.to_string();

    let mut wrong = secret.clone();
    wrong.replace_range(..1, if secret.starts_with('0') { "1" } else { "0" });
    let attempts = [
        Some(wrong.as_str()),
        Some(&secret[..secret.len() - 1]),
        Some(""),
        Some("x"),
        None,
    ];
    for given in attempts {
        let (status, answer) = world.post(given, body.clone()).await;
        assert_eq!(status, 401, "secret {given:?}: {answer}");
    }
    quiet_for(Duration::from_millis(500)).await;
    assert_eq!(count(&world.db(), "SELECT COUNT(*) FROM inbox"), 0);
    assert!(world.fake.sent_texts(anna.id).is_empty());
    let log = bot.log_text();
    let refusals = log
        .matches("Telegram webhook call refused: wrong or missing secret token")
        .count();
    assert_eq!(refusals, attempts.len(), "{}", bot.log_tail(40));
    let (_, metrics) = world.get("/metrics").await;
    assert_eq!(
        counter(
            &metrics,
            "flowbot_telegram_webhook_calls_total{result=\"unauthorized\"}"
        ),
        attempts.len() as u64,
        "{metrics}"
    );

    // The refused update is not remembered: sent properly, it counts.
    let (status, answer) = world.post(Some(&secret), body).await;
    assert_eq!(status, 200, "{answer}");
    world.said(anna.id, GREETING, 1).await;
    world.processed(id).await;
    assert_no_secrets_logged(&bot, &[&secret, &wrong]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_delivered_twice_is_processed_once() {
    let world = World::webhook().await;
    let mut bot = world.process();
    let secret = world.start(&mut bot).await;

    // The fixture as it is (pretty-printed UTF-8): Telegram sends the same
    // update again when it missed our answer.
    for _ in 0..2 {
        let (status, body) = world.post(Some(&secret), START_FIXTURE).await;
        assert_eq!(status, 200, "{body}");
    }
    world.said(ANNA, GREETING, 1).await;
    world.processed(781_234_501).await;
    // And twice at the same moment, for another update.
    let sergey = TgUser::sergey();
    let (id, update) = world.fake.text_update(&sergey, "/start");
    let body = update.to_string();
    let (a, b) = tokio::join!(
        world.post(Some(&secret), body.clone()),
        world.post(Some(&secret), body)
    );
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    world.said(sergey.id, "Здравствуйте", 1).await;
    world.processed(id).await;

    quiet_for(Duration::from_millis(500)).await;
    assert_eq!(world.fake.texts_with(ANNA, GREETING).len(), 1);
    assert_eq!(world.fake.texts_with(sergey.id, "Здравствуйте").len(), 1);
    assert_eq!(count(&world.db(), "SELECT COUNT(*) FROM inbox"), 2);
    let (_, metrics) = world.get("/metrics").await;
    let calls = |result: &str| {
        counter(
            &metrics,
            &format!("flowbot_telegram_webhook_calls_total{{result=\"{result}\"}}"),
        )
    };
    assert_eq!((calls("ok"), calls("duplicate")), (2, 2), "{metrics}");
    assert_no_secrets_logged(&bot, &[&secret]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_an_update_is_refused_and_the_bot_goes_on() {
    let world = World::webhook().await;
    let mut bot = world.process();
    let secret = world.start(&mut bot).await;

    let bodies: [&[u8]; 7] = [
        b"not json",
        b"",
        b"[]",
        b"{}",
        b"{\"update_id\": \"781234501\"}",
        b"{\"update_id\": 1.5, \"message\": {}}",
        b"\xff\xfe{\"update_id\": 1}",
    ];
    for body in bodies {
        let (status, answer) = world.post(Some(&secret), body.to_vec()).await;
        assert_eq!(status, 400, "{:?}: {answer}", String::from_utf8_lossy(body));
    }
    assert_eq!(post_declared_too_large(world.http, &secret).await, 413);
    assert_eq!(count(&world.db(), "SELECT COUNT(*) FROM inbox"), 0);
    let log = bot.log_text();
    assert_eq!(
        log.matches("Telegram webhook call refused: not an update")
            .count(),
        bodies.len(),
        "{}",
        bot.log_tail(40)
    );

    let (status, body) = world.post(Some(&secret), START_FIXTURE).await;
    assert_eq!(status, 200, "{body}");
    world.said(ANNA, GREETING, 1).await;
    bot.check_running().unwrap_or_else(|e| panic!("{e}"));
    assert_no_secrets_logged(&bot, &[&secret]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_chooses_a_new_secret_and_a_stop_leaves_the_webhook_set() {
    let world = World::webhook().await;
    let mut bot = world.process();
    let first = world.start(&mut bot).await;
    bot.terminate(WAIT).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        world.fake.webhook_url(),
        Some(world.url()),
        "deleted at the stop"
    );
    assert!(world.fake.calls_to("deleteWebhook").is_empty());
    assert!(
        bot.log_text().contains(
            "the Telegram webhook stays set: Telegram keeps new updates for the next start"
        ),
        "{}",
        bot.log_tail(40)
    );

    let second = world.start(&mut bot).await;
    assert_ne!(first, second, "the same secret twice");
    let (_, update) = world.fake.text_update(&TgUser::anna(), "/start");
    let (status, _) = world.post(Some(&first), update.to_string()).await;
    assert_eq!(status, 401, "the old secret still works");
    let (status, _) = world.post(Some(&second), update.to_string()).await;
    assert_eq!(status, 200);
    world.said(ANNA, GREETING, 1).await;
    assert!(world.fake.calls_to("getUpdates").is_empty());
    assert_no_secrets_logged(&bot, &[&first, &second]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_loses_no_answered_update_and_a_stored_one_is_processed_after_the_restart() {
    let world = World::webhook().await;
    let mut bot = world.process();
    let secret = world.start(&mut bot).await;

    // Killed the moment it answered: the update is already durable.
    let (status, body) = world.post(Some(&secret), START_FIXTURE).await;
    assert_eq!(status, 200, "{body}");
    bot.kill().unwrap_or_else(|e| panic!("{e}"));
    let db = world.db();
    let stored = count(
        &db,
        "SELECT COUNT(*) FROM inbox WHERE update_id = 781234501",
    );
    assert_eq!(stored, 1, "answered 200 but not stored");

    // Processing takes milliseconds, so a kill seldom falls between the
    // answer and the processing: this row is what the route stores, left
    // unprocessed as such a kill leaves it.
    let sergey = TgUser::sergey();
    let (id, update) = world.fake.text_update(&sergey, "/start");
    db.execute(
        "INSERT INTO inbox (update_id, raw, received_at) VALUES (?1, ?2, ?3)",
        rusqlite::params![id, update.to_string(), 1_795_158_900_000_i64],
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let secret = world.start(&mut bot).await;
    world.processed(781_234_501).await;
    world.processed(id).await;
    world.said(ANNA, GREETING, 1).await;
    world.said(sergey.id, "Здравствуйте", 1).await;
    // Telegram, not having heard our 200 before the kill, sends it again:
    // nothing happens.
    let (status, _) = world.post(Some(&secret), START_FIXTURE).await;
    assert_eq!(status, 200);
    quiet_for(Duration::from_millis(500)).await;
    for chat in [ANNA, sergey.id] {
        let rows = count(
            &db,
            &format!("SELECT COUNT(*) FROM outbox WHERE queue = 'tg:{chat}'"),
        );
        assert_eq!(rows, 2, "/start's two messages to {chat}, once");
    }
    assert_eq!(world.fake.texts_with(sergey.id, "Здравствуйте").len(), 1);
    assert_no_secrets_logged(&bot, &[&secret]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_refusing_the_url_stops_the_bot_at_once_with_a_clear_error() {
    let world = World::webhook().await;
    world.fake.refuse_set_webhook(Some(
        "Bad Request: bad webhook: HTTPS url must be provided for webhook",
    ));
    let mut bot = world.process();
    bot.start().unwrap_or_else(|e| panic!("{e}"));
    let status = bot.wait_exit(WAIT).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!status.success(), "{status}");
    let log = bot.log_text();
    assert!(
        log.contains("Telegram refuses TELEGRAM_WEBHOOK_URL")
            && log.contains("HTTPS url must be provided for webhook"),
        "{log}"
    );
    assert_eq!(world.fake.set_webhook_calls().len(), 1, "retried");
    assert!(world.fake.calls_to("getUpdates").is_empty());
}

// ----- long polling ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_deletes_a_leftover_webhook_and_says_so() {
    let world = World::polling().await;
    world
        .fake
        .set_webhook_url(Some("https://other.example.com/hook"));
    let mut bot = world.process();
    bot.start().unwrap_or_else(|e| panic!("{e}"));
    world
        .fake
        .wait_until("a successful getUpdates", WAIT, |f| {
            f.calls_to("getUpdates").iter().any(|c| !c.failed)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", bot.log_tail(40)));

    assert_eq!(world.fake.webhook_url(), None);
    let methods: Vec<String> = world
        .fake
        .calls()
        .into_iter()
        .map(|c| c.method)
        .filter(|m| m.contains("webhook") || m == "getupdates")
        .collect();
    assert_eq!(
        methods.get(..3),
        Some(&["getwebhookinfo", "deletewebhook", "getupdates"].map(String::from)[..]),
        "{methods:?}"
    );
    assert!(world.fake.set_webhook_calls().is_empty());
    assert!(
        bot.log_text()
            .contains("a webhook was set for this bot; deleting it to use long polling"),
        "{}",
        bot.log_tail(40)
    );

    let health = world.health().await;
    assert_eq!(health["telegram_mode"], json!("polling"), "{health}");
    assert!(health["telegram_poll"].is_object(), "{health}");
    // Without webhook mode the route refuses every call.
    let (status, _) = world.post(Some("anything"), START_FIXTURE).await;
    assert_eq!(status, 404);
    assert_eq!(count(&world.db(), "SELECT COUNT(*) FROM inbox"), 0);

    world.fake.push_text(&TgUser::anna(), "/start");
    world.said(ANNA, GREETING, 1).await;
    assert_no_secrets_logged(&bot, &[]);
}
