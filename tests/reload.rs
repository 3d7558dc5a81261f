//! Hot reload of the flow while the bot runs: the owner saves
//! `default.yaml` (as vim or VS Code do, by renaming a new file over it,
//! or as nano does, truncating and writing in place) and the next customer
//! is answered by the new flow; a broken save keeps the running flow and
//! the admins hear about each distinct error once; a customer whose state
//! disappeared starts over with the flow's message; `/reload` and `SIGHUP`
//! do the same as a save.
//!
//! The real runtime against the fake Telegram on 127.0.0.1, with the flow
//! copied into a temporary folder the test edits.

mod support;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use rusqlite::Connection;
use support::bot::{self, ADMIN_CHAT, Bot};
use support::process::BotProcess;
use support::telegram::{FakeTelegram, TgUser};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(15);

const DEFAULT_FLOW: &str = include_str!("../flows/default.yaml");
const GREETING_V1: &str = "Здравствуйте, ";
const GREETING_V2: &str = "Добрый день, ";
const ASK_PHONE_V1: &str = "поделитесь, пожалуйста, номером телефона — кнопкой ниже";
const ASK_PHONE_V2: &str = "оставьте, пожалуйста, номер телефона — кнопкой ниже";
const RELOADED: &str = "✅ Сценарий обновлён";
const REFUSED: &str = "⚠️ Сценарий не перечитан";
const STATE_RESET: &str = "Бот обновился, начнём с главного меню.";

/// The default flow with the greeting and the phone request reworded.
fn flow_v2() -> String {
    let v2 = DEFAULT_FLOW
        .replace("greeting: \"Здравствуйте, ", "greeting: \"Добрый день, ")
        .replace(
            "поделитесь, пожалуйста, номером телефона — кнопкой ниже",
            "оставьте, пожалуйста, номер телефона — кнопкой ниже",
        );
    assert_ne!(
        v2, DEFAULT_FLOW,
        "the default flow's texts changed; update the test"
    );
    v2
}

/// A fake Telegram, and a folder with the flow and the database.
struct World {
    fake: FakeTelegram,
    env: HashMap<String, String>,
    flow: PathBuf,
    db_path: PathBuf,
    _dir: TempDir,
}

impl World {
    async fn new() -> World {
        let fake = FakeTelegram::start().await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let flows = dir.path().join("flows");
        std::fs::create_dir(&flows).unwrap_or_else(|e| panic!("{e}"));
        let flow = flows.join("default.yaml");
        std::fs::write(&flow, DEFAULT_FLOW).unwrap_or_else(|e| panic!("{e}"));
        let db_path = dir.path().join("bot.db");
        let mut env = bot::env(&fake, &db_path);
        env.insert("FLOW_PATH".into(), flow.display().to_string());
        World {
            fake,
            env,
            flow,
            db_path,
            _dir: dir,
        }
    }

    /// Starts the bot in-process and waits until it polls (and so watches).
    async fn start(&self) -> Bot {
        let bot = Bot::start(&self.env);
        self.fake
            .wait_until("the bot polling", WAIT, |f| {
                !f.calls_to("getUpdates").is_empty()
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        bot
    }

    /// Saves `text` the way vim and VS Code do: a new file renamed over the old.
    fn save_by_rename(&self, text: &str) {
        let temp = self.flow.with_file_name(".default.yaml.tmp");
        std::fs::write(&temp, text).unwrap_or_else(|e| panic!("{e}"));
        std::fs::rename(&temp, &self.flow).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Saves `text` the way nano does: truncate, then write in place — here
    /// in two writes with a pause between longer than the bot's debounce, so
    /// that it reads the file half-written.
    async fn save_in_place(&self, text: &str) {
        let mut file = std::fs::File::create(&self.flow).unwrap_or_else(|e| panic!("{e}"));
        let half = text
            .char_indices()
            .nth(text.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        file.write_all(&text.as_bytes()[..half])
            .unwrap_or_else(|e| panic!("{e}"));
        file.flush().unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_millis(150)).await;
        file.write_all(&text.as_bytes()[half..])
            .unwrap_or_else(|e| panic!("{e}"));
        file.sync_all().unwrap_or_else(|e| panic!("{e}"));
    }

    fn db(&self) -> Connection {
        let db = Connection::open(&self.db_path).unwrap_or_else(|e| panic!("{e}"));
        db.busy_timeout(WAIT).unwrap_or_else(|e| panic!("{e}"));
        db
    }
}

/// Gives the bot time to do something it must not do.
async fn quiet_for(d: Duration) {
    tokio::time::sleep(d).await;
}

/// The flow version in a reload notice ("работает версия 1a2b3c4d").
fn version_in(notice: &str) -> String {
    let at = notice
        .find("версия ")
        .unwrap_or_else(|| panic!("no version in {notice:?}"));
    notice[at + "версия ".len()..].chars().take(8).collect()
}

// ----- a save is live at the next update ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_save_by_rename_answers_the_next_update_and_the_admins_get_the_version() {
    let world = World::new().await;
    let running = world.start().await;
    let fake = &world.fake;
    let anna = TgUser::anna();

    fake.push_text(&anna, "/start");
    fake.said(anna.id, GREETING_V1, 1).await;

    world.save_by_rename(&flow_v2());
    let notice = fake.said(ADMIN_CHAT, RELOADED, 1).await;
    let expected = flowbot::flow::compile::load(&flow_v2())
        .unwrap_or_else(|e| panic!("{e:?}"))
        .flow
        .version;
    assert_eq!(version_in(&notice), expected, "{notice}");

    fake.push_text(&anna, "/start");
    fake.said(anna.id, GREETING_V2, 1).await;
    fake.said(anna.id, ASK_PHONE_V2, 1).await;
    assert!(fake.texts_with(ADMIN_CHAT, REFUSED).is_empty());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_in_place_is_seen_and_a_half_written_file_is_never_reported() {
    let world = World::new().await;
    let running = world.start().await;
    let fake = &world.fake;
    let anna = TgUser::anna();

    world.save_in_place(&flow_v2()).await;
    fake.said(ADMIN_CHAT, RELOADED, 1).await;
    fake.push_text(&anna, "/start");
    fake.said(anna.id, GREETING_V2, 1).await;

    // And back, the same way: each save is one reload, no error in between.
    world.save_in_place(DEFAULT_FLOW).await;
    fake.said(ADMIN_CHAT, RELOADED, 2).await;
    fake.push_text(&anna, "/start");
    fake.said(anna.id, GREETING_V1, 1).await;
    quiet_for(Duration::from_millis(800)).await;
    assert!(fake.texts_with(ADMIN_CHAT, REFUSED).is_empty());
    assert_eq!(fake.texts_with(ADMIN_CHAT, RELOADED).len(), 2);
    running.stop().await;
}

// ----- a broken save ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_save_keeps_the_flow_and_each_distinct_error_is_told_once() {
    let world = World::new().await;
    let running = world.start().await;
    let fake = &world.fake;
    let anna = TgUser::anna();

    // A state that does not exist: the diagnostics name the file and line.
    let broken_goto = DEFAULT_FLOW.replace("{ goto: waiting_order }", "{ goto: waiting_ordr }");
    world.save_by_rename(&broken_goto);
    let notice = fake.said(ADMIN_CHAT, REFUSED, 1).await;
    let line = DEFAULT_FLOW
        .lines()
        .position(|l| l.contains("{ goto: waiting_order }"))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no goto line"));
    assert!(
        notice.contains(&format!("default.yaml:{line}:")),
        "the notice names the line {line}: {notice}"
    );
    assert!(notice.contains("waiting_ordr"), "{notice}");

    // The customers still get the running flow.
    fake.push_text(&anna, "/start");
    fake.said(anna.id, GREETING_V1, 1).await;

    // Saving the same mistake again (and again) tells nobody anything new.
    world.save_by_rename(&broken_goto);
    world.save_in_place(&broken_goto).await;
    quiet_for(Duration::from_millis(1_500)).await;
    assert_eq!(fake.texts_with(ADMIN_CHAT, REFUSED).len(), 1);

    // Another mistake is news.
    world.save_by_rename("version: 1\nstart_state: [main\n");
    fake.said(ADMIN_CHAT, REFUSED, 2).await;
    quiet_for(Duration::from_millis(1_000)).await;
    assert_eq!(fake.texts_with(ADMIN_CHAT, REFUSED).len(), 2);

    // Fixed: the new flow runs, and the admins hear so.
    world.save_by_rename(&flow_v2());
    fake.said(ADMIN_CHAT, RELOADED, 1).await;
    fake.push_text(&anna, "/start");
    fake.said(anna.id, GREETING_V2, 1).await;
    running.stop().await;
}

// ----- sessions -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_in_a_removed_state_starts_over_and_keeps_the_held_messages() {
    let world = World::new().await;
    let running = world.start().await;
    let fake = &world.fake;
    let anna = TgUser::anna();

    fake.push_text(&anna, "/start");
    fake.said(anna.id, GREETING_V1, 1).await;
    // Held until the phone is known.
    fake.push_text(&anna, "Сколько стоит диван?");
    fake.said(anna.id, "Сначала поделитесь", 1).await;
    fake.push_text(&anna, "Ввести номер вручную");
    fake.said(anna.id, "Напишите номер телефона", 1).await;

    // The new flow has no state for typing the phone by hand.
    let start = DEFAULT_FLOW
        .find("  waiting_phone_manual:")
        .unwrap_or_else(|| panic!("no waiting_phone_manual state"));
    let end = DEFAULT_FLOW
        .find("  waiting_order:")
        .unwrap_or_else(|| panic!("no waiting_order state"));
    let without = format!("{}{}", &DEFAULT_FLOW[..start], &DEFAULT_FLOW[end..]).replace(
        "    - { reply: ask_phone_manual, keyboard: cancel }\n    - { goto: waiting_phone_manual }\n",
        "    - { reply: ask_phone_manual, keyboard: cancel }\n",
    );
    world.save_by_rename(&without);
    fake.said(ADMIN_CHAT, RELOADED, 1).await;

    fake.push_text(&anna, "+7 999 123-45-67");
    fake.said(anna.id, STATE_RESET, 1).await;
    // The main state takes a typed phone: saved, and the held question goes on.
    fake.said(anna.id, "номер +79991234567 сохранён", 1).await;
    let db = world.db();
    let state: String = db
        .query_row(
            "SELECT state FROM sessions WHERE telegram_id = ?1",
            [anna.id],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state, "main");
    let held: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE destination = 'crm' AND payload LIKE '%Сколько стоит диван%'",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        held, 1,
        "the held message went to the manager after the reload"
    );
    running.stop().await;
}

// ----- a reload in the middle of a burst --------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_during_a_burst_loses_none_and_every_answer_is_one_version() {
    const CUSTOMERS: i64 = 10;
    let world = World::new().await;
    let running = world.start().await;
    let fake = world.fake.clone();
    let users: Vec<TgUser> = (0..CUSTOMERS)
        .map(|i| TgUser::new(7_000_000 + i, format!("Клиент{i}")))
        .collect();

    // /start from every customer every 30 ms (about 330 updates a second),
    // before, during and for three rounds after the reload; each answer is
    // two messages (greeting, then the phone request), both reworded in v2.
    let burst = {
        let fake = fake.clone();
        let users = users.clone();
        tokio::spawn(async move {
            let (mut rounds, mut after_reload) = (0usize, 0usize);
            while after_reload < 3 && rounds < 500 {
                for user in &users {
                    fake.push_text(user, "/start");
                }
                rounds += 1;
                if !fake.texts_with(ADMIN_CHAT, RELOADED).is_empty() {
                    after_reload += 1;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            rounds
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    world.save_by_rename(&flow_v2());
    let per_customer = tokio::time::timeout(WAIT * 2, burst)
        .await
        .unwrap_or_else(|_| panic!("the burst did not end"))
        .unwrap_or_else(|e| panic!("{e}"));

    let (mut v1, mut v2) = (0, 0);
    for user in &users {
        let what = format!("{} answers to customer {}", per_customer * 2, user.id);
        fake.wait_until(&what, WAIT * 4, |f| {
            f.sent_texts(user.id).len() >= per_customer * 2
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let texts = fake.sent_texts(user.id);
        assert_eq!(
            texts.len(),
            per_customer * 2,
            "customer {}: none lost, none twice",
            user.id
        );
        let mut seen_v2 = false;
        for pair in texts.chunks(2) {
            let new = pair[0].starts_with(GREETING_V2) && pair[1].contains(ASK_PHONE_V2);
            let old = pair[0].starts_with(GREETING_V1) && pair[1].contains(ASK_PHONE_V1);
            assert!(new || old, "customer {}: a mixed answer {pair:?}", user.id);
            assert!(
                !(seen_v2 && old),
                "customer {}: the old flow after the new",
                user.id
            );
            seen_v2 |= new;
            if new { v2 += 1 } else { v1 += 1 }
        }
    }
    assert!(
        v1 > 0 && v2 > 0,
        "both versions answered ({v1} old, {v2} new)"
    );
    running.stop().await;
}

// ----- /reload and SIGHUP ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reload_answers_with_the_version_whatever_happened() {
    let world = World::new().await;
    let mut env = world.env.clone();
    env.insert("FLOW_WATCH".into(), "false".into());
    let running = Bot::start(&env);
    let fake = &world.fake;
    fake.wait_until("the bot polling", WAIT, |f| {
        !f.calls_to("getUpdates").is_empty()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    fake.push_group_text(ADMIN_CHAT, &TgUser::admin(), "/reload");
    fake.said(ADMIN_CHAT, "Сценарий не изменился: работает версия", 1)
        .await;

    // Not watched: a save changes nothing until /reload.
    world.save_by_rename(&flow_v2());
    quiet_for(Duration::from_millis(500)).await;
    assert!(fake.texts_with(ADMIN_CHAT, RELOADED).is_empty());
    fake.push_group_text(ADMIN_CHAT, &TgUser::admin(), "/reload");
    fake.said(ADMIN_CHAT, RELOADED, 1).await;

    // A broken file: /reload always answers, even with errors told before.
    world.save_by_rename("version: 1\nstart_state: [main\n");
    fake.push_group_text(ADMIN_CHAT, &TgUser::admin(), "/reload");
    fake.said(ADMIN_CHAT, REFUSED, 1).await;
    fake.push_group_text(ADMIN_CHAT, &TgUser::admin(), "/reload");
    fake.said(ADMIN_CHAT, REFUSED, 2).await;
    running.stop().await;
}

/// Also checks `LOG_FORMAT=json`: every line the binary logs is one JSON
/// object, the reload's among them with its fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_flow_of_the_real_binary_which_logs_json() {
    let world = World::new().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut env = world.env.clone();
    env.insert("FLOW_WATCH".into(), "false".into());
    env.insert("LOG_FORMAT".into(), "json".into());
    env.insert("RUST_LOG".into(), "info".into());
    let mut process = BotProcess::new("sighup", env, dir.path());
    process.start().unwrap_or_else(|e| panic!("{e}"));
    let fake = &world.fake;
    fake.wait_until("the bot polling", WAIT, |f| {
        !f.calls_to("getUpdates").is_empty()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    world.save_by_rename(&flow_v2());
    let pid = process.pid().unwrap_or_else(|| panic!("no pid"));
    hangup(pid);
    fake.said(ADMIN_CHAT, RELOADED, 1).await;
    let anna = TgUser::anna();
    fake.push_text(&anna, "/start");
    fake.said(anna.id, GREETING_V2, 1).await;
    process.check_running().unwrap_or_else(|e| panic!("{e}"));

    let log = process.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.starts_with("----- "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let reloaded = lines
        .iter()
        .find(|l| l["message"] == "flow reloaded")
        .unwrap_or_else(|| panic!("no reload line in {log}"));
    assert_eq!(reloaded["level"], "INFO");
    assert_eq!(reloaded["trigger"], "Signal");
    assert!(
        reloaded["to"].as_str().is_some_and(|v| v.len() == 8),
        "{reloaded}"
    );
}

fn hangup(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("kill: {e}"));
    assert!(status.success(), "kill -HUP {pid}: {status}");
}
