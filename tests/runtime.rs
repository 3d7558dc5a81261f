//! The live bot end to end: the real runtime against a fake Telegram Bot API
//! on 127.0.0.1, with a real SQLite file.

mod support;

use std::time::Duration;

use support::bot::{self, Bot};
use support::telegram::{FakeTelegram, TgUser};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_greets_and_asks_for_the_phone() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let env = bot::env(&fake, &dir.path().join("bot.db"));
    let running = Bot::start(&env);
    let anna = TgUser::anna();
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
