//! The live bot end to end: the real runtime against a fake Telegram Bot API
//! on 127.0.0.1, with a real SQLite file.
//!
//! Each test is one behaviour of the default flow (`flows/default.yaml`) as a
//! customer, an admin or the operator sees it: what Telegram receives, and
//! what the database keeps.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{Value, json};
use support::bot::{self, ADMIN_CHAT, Bot};
use support::telegram::{Call, Failure, FakeTelegram, TgUser};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(15);

// Fragments of the default flow's texts, enough to tell them apart.
const ASK_PHONE: &str = "кнопкой ниже или введите его вручную";
const ASK_PHONE_FIRST: &str = "Сначала поделитесь, пожалуйста, номером телефона";
const ASK_PHONE_MANUAL: &str = "Напишите номер телефона, например";
const WELCOME_BONUS: &str = "🎁 Вам начислено 300 приветственных бонусов";
const NOT_OWN_CONTACT: &str = "Это не ваш контакт";
const FORWARDED: &str = "Сообщение передано менеджеру";
const UNKNOWN_COMMAND: &str = "Такой команды нет";
const BLOCKED_NOTICE: &str = "заблокировал бота";

/// The main menu as the flow defines it.
const MAIN_MENU: [[&str; 2]; 3] = [
    ["Мои бонусы", "Сделать заказ"],
    ["Задать вопрос", "Отправить фото/видео"],
    ["💰 Прайс", "🕐 Режим работы"],
];

// ----- the world a test runs in ------------------------------------------------

/// A fake Telegram, a temporary folder with the bot's database, and the
/// environment every bot of the test starts with (so a restart finds the
/// same database).
struct World {
    fake: FakeTelegram,
    env: HashMap<String, String>,
    db_path: PathBuf,
    _dir: TempDir,
}

impl World {
    async fn new() -> World {
        let fake = FakeTelegram::start().await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db_path = dir.path().join("bot.db");
        let env = bot::env(&fake, &db_path);
        World {
            fake,
            env,
            db_path,
            _dir: dir,
        }
    }

    /// Starts a bot (the first, or a new one after a `stop`) and waits until
    /// it polls: its database is then migrated and its leftovers resumed.
    async fn start(&self) -> Bot {
        let polls = self.fake.calls_to("getUpdates").len();
        let bot = Bot::start(&self.env);
        self.fake
            .wait_until("the bot polling", WAIT, |f| {
                f.calls_to("getUpdates").len() > polls
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        bot
    }

    /// A connection of our own to the bot's database (WAL: reads never block it).
    fn db(&self) -> Connection {
        let db = Connection::open(&self.db_path).unwrap_or_else(|e| panic!("{e}"));
        db.busy_timeout(WAIT).unwrap_or_else(|e| panic!("{e}"));
        db
    }

    /// Waits until `cond` holds for the database.
    async fn db_until(&self, what: &str, cond: impl Fn(&Connection) -> bool) {
        let db = self.db();
        self.fake
            .wait_until(what, WAIT, |_| cond(&db))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

// ----- what the bot said --------------------------------------------------------

/// Every call of `method` to `chat`, failed or not, in order.
fn calls_to_chat(fake: &FakeTelegram, method: &str, chat: i64) -> Vec<Call> {
    fake.calls_to(method)
        .into_iter()
        .filter(|c| c.chat_id() == Some(chat))
        .collect()
}

/// The first successful `sendMessage` to `chat` whose text contains `needle`.
fn sent_call(fake: &FakeTelegram, chat: i64, needle: &str) -> Call {
    calls_to_chat(fake, "sendMessage", chat)
        .into_iter()
        .find(|c| !c.failed && c.text().is_some_and(|t| t.contains(needle)))
        .unwrap_or_else(|| panic!("no message containing «{needle}» to {chat}"))
}

/// The `reply_markup` a call carried (JSON, or a JSON string in a form).
fn markup(call: &Call) -> Value {
    match call.body.get("reply_markup") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}")),
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

/// The button labels of a reply keyboard, row by row.
fn labels(markup: &Value) -> Vec<Vec<String>> {
    let rows = markup["keyboard"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .map(|row| {
            let buttons = row.as_array().cloned().unwrap_or_default();
            buttons
                .iter()
                .map(|b| b["text"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .collect()
}

/// A short pause to show that nothing more happens.
async fn quiet_for(d: Duration) {
    tokio::time::sleep(d).await;
}

// ----- what the database keeps --------------------------------------------------

/// One value from one row.
fn one<T: rusqlite::types::FromSql>(db: &Connection, sql: &str, p: impl rusqlite::Params) -> T {
    db.query_row(sql, p, |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The customer's saved phone.
fn phone_of(db: &Connection, customer: i64) -> Option<String> {
    one(
        db,
        "SELECT phone FROM customers WHERE telegram_id = ?1",
        [customer],
    )
}

/// When the customer was marked as having blocked the bot.
fn blocked_since(db: &Connection, customer: i64) -> Option<String> {
    one(
        db,
        "SELECT blocked_since FROM customers WHERE telegram_id = ?1",
        [customer],
    )
}

/// An outbox row for the CRM: its status and its payload.
#[derive(Debug)]
struct CrmRow {
    status: String,
    payload: Value,
}

impl CrmRow {
    fn text(&self) -> &str {
        self.payload["text"].as_str().unwrap_or_default()
    }
}

/// Every CRM row, oldest first.
fn crm_rows(db: &Connection) -> Vec<CrmRow> {
    let sql = "SELECT status, payload FROM outbox WHERE destination = 'crm' ORDER BY id";
    let mut stmt = db.prepare(sql).unwrap_or_else(|e| panic!("{e}"));
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap_or_else(|e| panic!("{e}"));
    rows.map(|r| {
        let (status, payload) = r.unwrap_or_else(|e| panic!("{e}"));
        CrmRow {
            status,
            payload: serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{e}")),
        }
    })
    .collect()
}

/// The texts of the CRM rows, oldest first.
fn crm_texts(db: &Connection) -> Vec<String> {
    crm_rows(db).iter().map(|r| r.text().to_owned()).collect()
}

/// Status and attempts of every outbox row to a Telegram chat, oldest first.
fn outbox_to(db: &Connection, chat: i64) -> Vec<(String, i64)> {
    let sql = "SELECT status, attempts FROM outbox WHERE queue = ?1 ORDER BY id";
    let mut stmt = db.prepare(sql).unwrap_or_else(|e| panic!("{e}"));
    let rows = stmt
        .query_map([format!("tg:{chat}")], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap_or_else(|e| panic!("{e}"));
    rows.map(|r| r.unwrap_or_else(|e| panic!("{e}"))).collect()
}

/// Whether the update is in the inbox and marked processed.
fn processed(db: &Connection, update_id: i64) -> bool {
    let n: i64 = one(
        db,
        "SELECT COUNT(*) FROM inbox WHERE update_id = ?1 AND processed_at IS NOT NULL",
        [update_id],
    );
    n == 1
}

/// The conversation's state.
fn state_of(db: &Connection, customer: i64) -> String {
    one(
        db,
        "SELECT state FROM sessions WHERE telegram_id = ?1",
        [customer],
    )
}

// ----- conversations ------------------------------------------------------------

/// The customer starts the bot and gets the greeting and the phone request.
async fn start(fake: &FakeTelegram, user: &TgUser) {
    fake.push_text(user, "/start");
    fake.said(user.id, ASK_PHONE, 1).await;
}

/// The customer starts the bot and shares their own number: main menu.
async fn register(fake: &FakeTelegram, user: &TgUser, phone: &str) {
    start(fake, user).await;
    fake.push_contact(user, phone, Some(user.id));
    fake.said(user.id, WELCOME_BONUS, 1).await;
}

/// A photo message with a known `message_id` (the fake numbers pushed
/// messages itself; this one the test must know to check the copy).
fn photo_message(user: &TgUser, message_id: i64, caption: &str) -> Value {
    json!({
        "message": {
            "message_id": message_id,
            "from": user.user_json(),
            "chat": user.private_chat_json(),
            "date": 1_767_000_000,
            "photo": [
                {"file_id": "AgACAgIAAxkBAAIBTestPhotoSmall", "file_unique_id": "AQADTestSmall",
                 "file_size": 1402, "width": 90, "height": 68},
                {"file_id": "AgACAgIAAxkBAAIBTestPhotoLarge", "file_unique_id": "AQADTestLarge",
                 "file_size": 134_877, "width": 1280, "height": 960},
            ],
            "caption": caption,
        }
    })
}

// ----- the tests ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_greets_and_asks_for_the_phone() {
    let world = World::new().await;
    let running = world.start().await;
    let (fake, anna) = (&world.fake, TgUser::anna());
    fake.push_text(&anna, "/start");
    fake.wait_until("greeting and phone request", WAIT, |f| {
        f.sent_texts(anna.id).len() >= 2
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let texts = fake.sent_texts(anna.id);
    assert!(texts[0].starts_with("Здравствуйте, Анна!"), "{texts:?}");
    assert!(texts[1].contains("номером телефона"), "{texts:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_customer_goes_through_the_whole_default_flow() {
    let world = World::new().await;
    let running = world.start().await;
    let (fake, anna, db) = (&world.fake, TgUser::anna(), world.db());

    // /start: a greeting, then the phone request with a contact button.
    fake.push_text(&anna, "/start");
    fake.said(anna.id, ASK_PHONE, 1).await;
    assert!(
        fake.sent_texts(anna.id)[0].starts_with("Здравствуйте, Анна! Я бот химчистки «Чистый дом»")
    );
    let keyboard = markup(&sent_call(fake, anna.id, ASK_PHONE));
    assert_eq!(
        keyboard["keyboard"][0][0]["request_contact"],
        json!(true),
        "{keyboard}"
    );
    assert_eq!(keyboard["resize_keyboard"], json!(true), "{keyboard}");
    assert_eq!(keyboard["is_persistent"], json!(true), "{keyboard}");
    assert_eq!(
        labels(&keyboard),
        [["📱 Поделиться номером"], ["Ввести номер вручную"]]
    );

    // A question before the phone is held: she is asked for the phone first,
    // and nothing goes to the CRM or the admins yet.
    let early = "Сколько стоит почистить ковёр?";
    fake.push_text(&anna, early);
    fake.said(anna.id, ASK_PHONE_FIRST, 1).await;
    assert!(crm_rows(&db).is_empty(), "{:?}", crm_rows(&db));
    assert!(outbox_to(&db, ADMIN_CHAT).is_empty());

    // Her own contact: the number is saved, the welcome bonus granted, the
    // main menu shown, and the held question queued for the CRM.
    fake.push_contact(&anna, "+79035551234", Some(anna.id));
    fake.said(anna.id, "Спасибо, номер +79035551234 сохранён!", 1)
        .await;
    fake.said(anna.id, WELCOME_BONUS, 1).await;
    let menu = markup(&sent_call(fake, anna.id, "сохранён!"));
    assert_eq!(labels(&menu), MAIN_MENU);
    let crm = crm_rows(&db);
    assert_eq!(crm.len(), 1, "{crm:?}");
    assert_eq!(crm[0].text(), early);
    assert_eq!(crm[0].payload["customer_id"], json!(anna.id));
    // Delivery to the CRM is not wired yet: the row waits.
    assert_eq!(crm[0].status, "pending");

    // «Мои бонусы»: the welcome bonus.
    fake.push_text(&anna, "Мои бонусы");
    fake.said(anna.id, "На вашем счёте 300 бонусов", 1).await;

    // «💰 Прайс»: the prices, with a link to the site under the message.
    fake.push_text(&anna, "💰 Прайс");
    fake.said(anna.id, "Цены на основные услуги", 1).await;
    let link = markup(&sent_call(fake, anna.id, "Цены на основные услуги"));
    assert_eq!(
        link["inline_keyboard"][0][0]["url"],
        json!("https://example.com/price"),
        "{link}"
    );

    // «🕐 Режим работы»: open or closed, with the schedule.
    fake.push_text(&anna, "🕐 Режим работы");
    let hours = fake.said(anna.id, "Часы работы:", 1).await;
    assert!(hours.starts_with("🕐 Сейчас мы"), "{hours}");

    // «Задать вопрос»: the question goes to the admins, she is thanked.
    fake.push_text(&anna, "Задать вопрос");
    fake.said(anna.id, "Напишите ваш вопрос одним сообщением", 1)
        .await;
    let question = "Можно ли почистить кожаный диван?";
    fake.push_text(&anna, question);
    let notice = fake.said(ADMIN_CHAT, "❓ Вопрос", 1).await;
    assert!(notice.contains(question), "{notice}");
    assert!(notice.contains("Анна Смирнова"), "{notice}");
    assert!(notice.contains("+79035551234"), "{notice}");
    fake.said(anna.id, "Вопрос передан", 1).await;

    // «Сделать заказ»: the order goes to the admins, she is thanked.
    fake.push_text(&anna, "Сделать заказ");
    fake.said(anna.id, "Опишите, что нужно почистить", 1).await;
    let order = "Диван и два кресла, в субботу к 12:00";
    fake.push_text(&anna, order);
    let notice = fake.said(ADMIN_CHAT, "🧾 Новый заказ", 1).await;
    assert!(notice.contains(order), "{notice}");
    fake.said(anna.id, "Заказ принят", 1).await;

    // «Отправить фото/видео»: her photo is copied to the admins with a caption.
    fake.push_text(&anna, "Отправить фото/видео");
    fake.said(anna.id, "Пришлите фото или видео", 1).await;
    fake.push(photo_message(&anna, 4_242, "пятно на подлокотнике"));
    fake.said(anna.id, "Получил, спасибо!", 1).await;
    // The copy goes through the admin chat's own queue: it may come second.
    fake.wait_until("the photo copied to the admins", WAIT, |f| {
        !f.calls_to("copyMessage").is_empty()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let copies = fake.calls_to("copyMessage");
    assert_eq!(copies.len(), 1, "{copies:?}");
    let copy = &copies[0].body;
    assert_eq!(copies[0].chat_id(), Some(ADMIN_CHAT), "{copy}");
    assert_eq!(copy["from_chat_id"], json!(anna.id), "{copy}");
    assert_eq!(copy["message_id"], json!(4_242), "{copy}");
    let caption = copy["caption"].as_str().unwrap_or_default();
    assert!(caption.starts_with("📎 "), "{copy}");
    assert!(caption.contains("пятно на подлокотнике"), "{copy}");

    // «Закрыть»: back to the main menu.
    fake.push_text(&anna, "Закрыть");
    fake.said(anna.id, "Готово, файлы переданы", 1).await;
    let menu = markup(&sent_call(fake, anna.id, "Готово, файлы переданы"));
    assert_eq!(labels(&menu), MAIN_MENU);

    // /info: what the bot can do.
    fake.push_text(&anna, "/info");
    fake.said(anna.id, "Я умею:", 1).await;

    // /cancel in the middle of an order: back in the main menu.
    fake.push_text(&anna, "Сделать заказ");
    fake.said(anna.id, "Опишите, что нужно почистить", 2).await;
    assert_eq!(state_of(&db, anna.id), "waiting_order");
    fake.push_text(&anna, "/cancel");
    fake.said(anna.id, "Хорошо, отменил. Вы в главном меню.", 1)
        .await;
    assert_eq!(state_of(&db, anna.id), "main");

    // Nothing but the held question went to the CRM: every other text had its step.
    assert_eq!(crm_texts(&db), [early]);
    assert!(
        fake.sent_texts(anna.id)
            .iter()
            .all(|t| !t.contains(FORWARDED))
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_typed_by_hand_is_saved_in_normal_form() {
    let world = World::new().await;
    let running = world.start().await;
    let (fake, anna) = (&world.fake, TgUser::anna());
    start(fake, &anna).await;

    fake.push_text(&anna, "Ввести номер вручную");
    fake.said(anna.id, ASK_PHONE_MANUAL, 1).await;
    fake.push_text(&anna, "8 (999) 123-45-67");

    fake.said(anna.id, "Спасибо, номер +79991234567 сохранён!", 1)
        .await;
    assert_eq!(
        phone_of(&world.db(), anna.id).as_deref(),
        Some("+79991234567")
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_held_before_the_phone_are_released_in_order() {
    let world = World::new().await;
    let running = world.start().await;
    let (fake, anna) = (&world.fake, TgUser::anna());
    start(fake, &anna).await;

    fake.push_text(&anna, "Первое: нужен ковёр");
    fake.said(anna.id, ASK_PHONE_FIRST, 1).await;
    fake.push_text(&anna, "Второе: и диван тоже");
    fake.said(anna.id, ASK_PHONE_FIRST, 2).await;
    assert!(crm_rows(&world.db()).is_empty());

    fake.push_contact(&anna, "+79035551234", Some(anna.id));
    fake.said(anna.id, WELCOME_BONUS, 1).await;

    assert_eq!(
        crm_texts(&world.db()),
        ["Первое: нужен ковёр", "Второе: и диван тоже"]
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_contact_is_refused() {
    let world = World::new().await;
    let running = world.start().await;
    let (fake, anna) = (&world.fake, TgUser::anna());
    start(fake, &anna).await;

    fake.push_contact(&anna, "+79167778899", Some(6_029_384_751));

    fake.said(anna.id, NOT_OWN_CONTACT, 1).await;
    assert_eq!(phone_of(&world.db(), anna.id), None);
    assert!(fake.texts_with(anna.id, "сохранён").is_empty());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_step_and_the_held_messages() {
    let world = World::new().await;
    let (fake, anna) = (&world.fake, TgUser::anna());
    let first = world.start().await;
    start(fake, &anna).await;
    fake.push_text(&anna, "вопрос до номера");
    fake.said(anna.id, ASK_PHONE_FIRST, 1).await;
    fake.push_text(&anna, "Ввести номер вручную");
    fake.said(anna.id, ASK_PHONE_MANUAL, 1).await;
    first.stop().await;

    let second = world.start().await;
    fake.push_text(&anna, "8 999 123 45 67");

    // Still waiting for the number: the text is taken as one, not forwarded.
    fake.said(anna.id, "Спасибо, номер +79991234567 сохранён!", 1)
        .await;
    let db = world.db();
    assert_eq!(phone_of(&db, anna.id).as_deref(), Some("+79991234567"));
    assert!(fake.texts_with(anna.id, FORWARDED).is_empty());
    // The message held before the restart is released, and only it.
    assert_eq!(crm_texts(&db), ["вопрос до номера"]);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_delays_only_that_chat_by_retry_after_and_loses_nothing() {
    let world = World::new().await;
    let running = world.start().await;
    let (fake, anna, sergey) = (&world.fake, TgUser::anna(), TgUser::sergey());
    fake.fail_chat(anna.id, Failure::RetryAfter(2), 1);

    fake.push_text(&anna, "/start");
    fake.push_text(&sergey, "/start");
    fake.said(sergey.id, ASK_PHONE, 1).await;
    fake.said(anna.id, ASK_PHONE, 1).await;

    let to_anna = calls_to_chat(fake, "sendMessage", anna.id);
    let failed: Vec<&Call> = to_anna.iter().filter(|c| c.failed).collect();
    assert_eq!(
        failed.len(),
        1,
        "exactly one attempt was refused: {to_anna:?}"
    );
    let first_ok = to_anna
        .iter()
        .find(|c| !c.failed)
        .unwrap_or_else(|| panic!("no successful send to Anna"));
    let waited = first_ok.at.saturating_duration_since(failed[0].at);
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
    // Sergey's chat did not wait for Anna's.
    let to_sergey = calls_to_chat(fake, "sendMessage", sergey.id);
    assert_eq!(to_sergey.len(), 2, "{to_sergey:?}");
    assert!(
        to_sergey.iter().all(|c| c.at < first_ok.at),
        "{to_sergey:?}"
    );
    // Anna gets both replies, once each, in order.
    let texts = fake.sent_texts(anna.id);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].starts_with("Здравствуйте, Анна!"), "{texts:?}");
    assert!(texts[1].contains(ASK_PHONE), "{texts:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_marks_the_customer_blocked_tells_the_admins_once_and_stops_trying() {
    let world = World::new().await;
    let running = world.start().await;
    let (fake, anna) = (&world.fake, TgUser::anna());
    fake.fail_chat_always(anna.id, Failure::Blocked);

    fake.push_text(&anna, "/start");
    let notice = fake.said(ADMIN_CHAT, BLOCKED_NOTICE, 1).await;
    assert!(notice.starts_with("⛔ Клиент Анна Смирнова"), "{notice}");
    world
        .db_until("both replies to Anna finished", |db| {
            let rows = outbox_to(db, anna.id);
            rows.len() == 2 && rows.iter().all(|(status, _)| status != "pending")
        })
        .await;
    quiet_for(Duration::from_millis(1500)).await;

    let db = world.db();
    assert!(blocked_since(&db, anna.id).is_some());
    assert_eq!(
        outbox_to(&db, anna.id),
        [("failed".to_owned(), 1), ("failed".to_owned(), 1)]
    );
    let attempts = calls_to_chat(fake, "sendMessage", anna.id);
    assert!(attempts.len() <= 2, "a retry storm: {attempts:?}");
    assert_eq!(fake.texts_with(ADMIN_CHAT, BLOCKED_NOTICE).len(), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_the_bot_in_telegram_marks_the_customer_and_tells_the_admins() {
    let world = World::new().await;
    let running = world.start().await;
    let (fake, sergey) = (&world.fake, TgUser::sergey());
    start(fake, &sergey).await;
    assert_eq!(blocked_since(&world.db(), sergey.id), None);

    fake.push_kicked(&sergey);

    let notice = fake.said(ADMIN_CHAT, BLOCKED_NOTICE, 1).await;
    assert!(notice.starts_with("⛔ Клиент Сергей"), "{notice}");
    assert!(blocked_since(&world.db(), sergey.id).is_some());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unblocking_the_bot_clears_the_mark() {
    let world = World::new().await;
    let running = world.start().await;
    let (fake, sergey) = (&world.fake, TgUser::sergey());
    start(fake, &sergey).await;
    fake.push_kicked(&sergey);
    fake.said(ADMIN_CHAT, BLOCKED_NOTICE, 1).await;

    let back = fake.push_unkicked(&sergey);

    world
        .db_until("the unblock processed", |db| processed(db, back))
        .await;
    assert_eq!(blocked_since(&world.db(), sergey.id), None);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_stats_answers_with_the_figures() {
    let world = World::new().await;
    let running = world.start().await;
    let fake = &world.fake;
    register(fake, &TgUser::anna(), "+79991234567").await;

    fake.push_group_text(ADMIN_CHAT, &TgUser::admin(), "/stats");

    let stats = fake.said(ADMIN_CHAT, "Статистика", 1).await;
    assert!(stats.contains("Клиентов: 1 (новых сегодня: 1"), "{stats}");
    assert!(
        stats.contains("Сообщений сегодня: от клиентов 2"),
        "{stats}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_bonus_credits_a_registered_customer() {
    let world = World::new().await;
    let running = world.start().await;
    let (fake, anna) = (&world.fake, TgUser::anna());
    register(fake, &anna, "+79991234567").await;

    fake.push_group_text(
        ADMIN_CHAT,
        &TgUser::admin(),
        "/bonus +79991234567 +500 отзыв",
    );

    let answer = fake.said(ADMIN_CHAT, "Начислено 500", 1).await;
    assert!(answer.contains("Анна Смирнова"), "{answer}");
    assert!(answer.contains("Баланс: 800"), "{answer}");
    let db = world.db();
    let ledger: i64 = one(
        &db,
        "SELECT COUNT(*) FROM bonus_ledger
         WHERE telegram_id = ?1 AND delta = 500 AND reason = 'admin: отзыв'",
        [anna.id],
    );
    assert_eq!(ledger, 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_bonus_written_wrong_gets_the_usage() {
    let world = World::new().await;
    let running = world.start().await;
    let fake = &world.fake;

    fake.push_group_text(ADMIN_CHAT, &TgUser::admin(), "/bonus 500 Анне");

    let usage = fake.said(ADMIN_CHAT, "Формат: /bonus", 1).await;
    assert!(usage.contains("/bonus +79991234567 +500 отзыв"), "{usage}");
    let ledger: i64 = one(&world.db(), "SELECT COUNT(*) FROM bonus_ledger", []);
    assert_eq!(ledger, 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_from_a_customer_are_unknown_commands() {
    let world = World::new().await;
    let running = world.start().await;
    let (fake, anna) = (&world.fake, TgUser::anna());

    fake.push_text(&anna, "/stats");

    fake.said(anna.id, UNKNOWN_COMMAND, 1).await;
    // Her reply and anything for the admins are stored in one transaction.
    assert!(outbox_to(&world.db(), ADMIN_CHAT).is_empty());
    assert!(fake.sent_texts(ADMIN_CHAT).is_empty());
    assert!(fake.texts_with(anna.id, "Статистика").is_empty());
    running.stop().await;
}

/// The heartbeat: polling that keeps failing (here Telegram refuses
/// getUpdates because a webhook was set behind the bot's back) is told to
/// the admins once, and told again when polling works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_that_keeps_failing_is_told_to_the_admins_once_and_so_is_its_end() {
    const DOWN: &str = "Telegram (получение сообщений): нет связи уже";
    const UP: &str = "Telegram (получение сообщений): связь восстановлена";
    let mut world = World::new().await;
    world.env.insert("HEARTBEAT_ALERT_SECS".into(), "1".into());
    let running = world.start().await;
    let fake = &world.fake;

    fake.set_webhook_url(Some("https://elsewhere.example/hook"));
    let notice = fake.said(ADMIN_CHAT, DOWN, 1).await;
    assert!(notice.contains("Последняя ошибка:"), "{notice}");
    quiet_for(Duration::from_millis(2_000)).await;
    assert_eq!(fake.texts_with(ADMIN_CHAT, DOWN).len(), 1);

    fake.set_webhook_url(None);
    fake.said(ADMIN_CHAT, UP, 1).await;
    let anna = TgUser::anna();
    start(fake, &anna).await;
    assert_eq!(fake.texts_with(ADMIN_CHAT, DOWN).len(), 1);
    assert_eq!(fake.texts_with(ADMIN_CHAT, UP).len(), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatter_in_the_admin_chat_gets_no_answer() {
    let world = World::new().await;
    let running = world.start().await;
    let fake = &world.fake;

    let chatter = fake.push_group_text(
        ADMIN_CHAT,
        &TgUser::admin(),
        "Коллеги, кто сегодня на смене?",
    );

    world
        .db_until("the chatter processed", |db| processed(db, chatter))
        .await;
    assert!(outbox_to(&world.db(), ADMIN_CHAT).is_empty());
    assert!(fake.sent_texts(ADMIN_CHAT).is_empty());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_customer_text_reaches_the_crm_whole() {
    let world = World::new().await;
    let running = world.start().await;
    let (fake, anna) = (&world.fake, TgUser::anna());
    register(fake, &anna, "+79035551234").await;
    let long: String = "Пятно от кофе на светлом диване. "
        .chars()
        .cycle()
        .take(5000)
        .collect();

    fake.push_text(&anna, &long);

    fake.said(anna.id, FORWARDED, 1).await;
    let crm = crm_texts(&world.db());
    assert_eq!(crm.len(), 1, "one row, not split: {} rows", crm.len());
    assert_eq!(crm[0].chars().count(), 5000);
    assert!(crm[0] == long, "the text was changed on the way");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_right_after_an_update_is_stored_neither_loses_nor_repeats_it() {
    let world = World::new().await;
    let (fake, anna) = (&world.fake, TgUser::anna());
    let first = world.start().await;
    let start_id = fake.push_text(&anna, "/start");
    world
        .db_until("/start stored in the inbox", |db| {
            let n: i64 = one(
                db,
                "SELECT COUNT(*) FROM inbox WHERE update_id = ?1",
                [start_id],
            );
            n == 1
        })
        .await;
    first.stop().await;

    // A clean stop finishes every input it stored.
    let pending: i64 = one(
        &world.db(),
        "SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL",
        [],
    );
    assert_eq!(pending, 0, "stored updates left unprocessed at the stop");
    let sent_before = fake.calls_to("sendMessage").len();

    let second = world.start().await;
    let text_id = fake.push_text(&anna, "А можно побыстрее?");
    fake.said(anna.id, ASK_PHONE_FIRST, 1).await;
    world
        .db_until("every reply delivered", |db| {
            let rows = outbox_to(db, anna.id);
            rows.len() == 3 && rows.iter().all(|(status, _)| status == "delivered")
        })
        .await;
    quiet_for(Duration::from_millis(300)).await;
    second.stop().await;

    let db = world.db();
    assert!(processed(&db, start_id) && processed(&db, text_id));
    let texts = fake.sent_texts(anna.id);
    assert_eq!(
        texts.len(),
        3,
        "{sent_before} sent before the restart; all: {texts:?}"
    );
    assert!(texts[0].starts_with("Здравствуйте, Анна!"), "{texts:?}");
    assert!(texts[1].contains(ASK_PHONE), "{texts:?}");
    assert!(texts[2].contains(ASK_PHONE_FIRST), "{texts:?}");
    assert_eq!(fake.calls_to("sendMessage").len(), 3);
}
