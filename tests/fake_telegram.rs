//! Self-test of the fake Telegram server (`tests/support/telegram.rs`)
//! against the real teloxide client, so other tests can trust the fake.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::telegram::{BOT_ID, FIRST_UPDATE_ID, Failure, FakeTelegram, TgUser};
use teloxide::prelude::*;
use teloxide::types::{
    CallbackQueryId, ChatMemberKind, FileId, InputFile, MessageKind, Seconds, UntilDate, UpdateKind,
};
use teloxide::{ApiError, RequestError};

const TOKEN: &str = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz";
const ANNA: i64 = 5_213_874_096;

/// Generous bound for anything that should be immediate.
const PROMPT: Duration = Duration::from_secs(2);

fn bot_for(fake: &FakeTelegram) -> Bot {
    let url = reqwest::Url::parse(&fake.url())
        .unwrap_or_else(|e| panic!("fake url {} does not parse: {e}", fake.url()));
    Bot::new(TOKEN).set_api_url(url)
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 10 s"))
}

fn parse_update(value: &Value) -> Update {
    let text = serde_json::to_string(value).unwrap_or_else(|e| panic!("serialize: {e}"));
    serde_json::from_str::<Update>(&text)
        .unwrap_or_else(|e| panic!("update does not parse: {e}\n{text}"))
}

fn message_of(update: &Update) -> &Message {
    match &update.kind {
        UpdateKind::Message(message) => message,
        other => panic!("expected UpdateKind::Message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_me_and_webhook_info_parse() {
    let fake = FakeTelegram::start().await;
    let bot = bot_for(&fake);

    let me = within("get_me", bot.get_me().send())
        .await
        .unwrap_or_else(|e| panic!("get_me failed: {e}"));
    assert_eq!(me.user.id, UserId(7_412_583_690));
    assert_eq!(me.username(), "cleaning_bot");
    assert!(me.can_join_groups);
    assert!(!me.can_read_all_group_messages);

    let info = within("get_webhook_info", bot.get_webhook_info().send())
        .await
        .unwrap_or_else(|e| panic!("get_webhook_info failed: {e}"));
    assert_eq!(info.url, None);

    fake.set_webhook_url(Some("https://example.com/hook"));
    let info = within("get_webhook_info", bot.get_webhook_info().send())
        .await
        .unwrap_or_else(|e| panic!("get_webhook_info failed: {e}"));
    assert_eq!(
        info.url.map(|u| u.to_string()),
        Some("https://example.com/hook".to_owned())
    );
    // Telegram refuses getUpdates while a webhook is set. teloxide's
    // `ApiError::CantGetUpdates` expects a shorter text than Telegram's, so
    // the real description arrives as `Unknown`.
    let err = within("get_updates", bot.get_updates().send())
        .await
        .err()
        .unwrap_or_else(|| panic!("get_updates with a webhook should fail"));
    assert!(
        matches!(&err, RequestError::Api(ApiError::Unknown(text)) if text.contains("webhook is active")),
        "{err:?}"
    );

    within("delete_webhook", bot.delete_webhook().send())
        .await
        .unwrap_or_else(|e| panic!("delete_webhook failed: {e}"));
    assert_eq!(fake.webhook_url(), None);
    within("set_my_commands", bot.set_my_commands(Vec::new()).send())
        .await
        .unwrap_or_else(|e| panic!("set_my_commands failed: {e}"));

    // teloxide capitalises method names; the fake records them lower-case.
    let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(
        methods,
        [
            "getme",
            "getwebhookinfo",
            "getwebhookinfo",
            "getupdates",
            "deletewebhook",
            "setmycommands"
        ]
    );
    assert_eq!(fake.tokens(), [TOKEN]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_updates_honours_offset_and_redelivers_unconfirmed() {
    let fake = FakeTelegram::start().await;
    let bot = bot_for(&fake);
    let anna = TgUser::anna();

    let first = fake.push_text(&anna, "Здравствуйте");
    let second = fake.push_text(&anna, "/start");
    assert_eq!(first, FIRST_UPDATE_ID);
    assert_eq!(second, FIRST_UPDATE_ID + 1);
    assert_eq!(fake.pending_updates(), 2);

    let updates = within("get_updates", bot.get_updates().send())
        .await
        .unwrap_or_else(|e| panic!("get_updates failed: {e}"));
    assert_eq!(updates.len(), 2);
    assert_eq!(i64::from(updates[0].id.0), first);
    assert_eq!(message_of(&updates[0]).text(), Some("Здравствуйте"));
    assert!(fake.served_at(first).is_some());

    // Not confirmed yet: returned again, and `limit` is honoured.
    let updates = within("get_updates", bot.get_updates().limit(1).send())
        .await
        .unwrap_or_else(|e| panic!("get_updates failed: {e}"));
    assert_eq!(updates.len(), 1);
    assert_eq!(i64::from(updates[0].id.0), first);

    // Confirm the first one.
    let offset = i32::try_from(first + 1).unwrap_or_else(|e| panic!("offset: {e}"));
    let updates = within("get_updates", bot.get_updates().offset(offset).send())
        .await
        .unwrap_or_else(|e| panic!("get_updates failed: {e}"));
    assert_eq!(updates.len(), 1);
    assert_eq!(i64::from(updates[0].id.0), second);
    assert_eq!(fake.confirmed_offset(), first + 1);
    assert_eq!(fake.pending_updates(), 1);

    // Confirm everything: nothing left, and a zero timeout answers at once.
    let offset = i32::try_from(second + 1).unwrap_or_else(|e| panic!("offset: {e}"));
    let updates = within("get_updates", bot.get_updates().offset(offset).send())
        .await
        .unwrap_or_else(|e| panic!("get_updates failed: {e}"));
    assert!(updates.is_empty());
    assert_eq!(fake.pending_updates(), 0);
    assert_eq!(fake.confirmed_offset(), second + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_wakes_up_on_push_and_times_out_when_idle() {
    let fake = FakeTelegram::start().await;
    let bot = bot_for(&fake);

    // Idle: held until the timeout (1 s), then an empty result.
    let started = Instant::now();
    let updates = within("idle long poll", bot.get_updates().timeout(1).send())
        .await
        .unwrap_or_else(|e| panic!("get_updates failed: {e}"));
    assert!(updates.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "returned after {:?}",
        started.elapsed()
    );

    // A push from another task wakes the held request.
    let pusher = fake.clone();
    let push = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        pusher.push_text(&TgUser::new(42, "Ivan"), "hello")
    });
    let started = Instant::now();
    let updates = within("long poll", bot.get_updates().timeout(5).send())
        .await
        .unwrap_or_else(|e| panic!("get_updates failed: {e}"));
    let elapsed = started.elapsed();
    let pushed = push.await.unwrap_or_else(|e| panic!("push task: {e}"));
    assert_eq!(updates.len(), 1);
    assert_eq!(i64::from(updates[0].id.0), pushed);
    assert!(elapsed < PROMPT, "long poll returned after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_methods_are_recorded_and_parse() {
    let fake = FakeTelegram::start().await;
    let bot = bot_for(&fake);
    let anna = TgUser::anna();
    fake.push_text(&anna, "hi"); // makes Анна's names known for `chat`

    let first = within(
        "send_message",
        bot.send_message(ChatId(ANNA), "Привет, Анна!").send(),
    )
    .await
    .unwrap_or_else(|e| panic!("send_message failed: {e}"));
    let second = within(
        "send_message",
        bot.send_message(ChatId(ANNA), "Второе").send(),
    )
    .await
    .unwrap_or_else(|e| panic!("send_message failed: {e}"));
    assert_eq!(first.text(), Some("Привет, Анна!"));
    assert!(first.chat.is_private());
    assert_eq!(first.chat.id, ChatId(ANNA));
    assert_eq!(
        first.from.as_ref().map(|u| u.id),
        Some(UserId(7_412_583_690))
    );
    assert!(second.id.0 > first.id.0);
    assert_eq!(fake.sent_texts(ANNA), ["Привет, Анна!", "Второе"]);

    let group = within(
        "send_message",
        bot.send_message(ChatId(-4_518_273_645), "всем").send(),
    )
    .await
    .unwrap_or_else(|e| panic!("send_message failed: {e}"));
    assert!(group.chat.is_group());

    let copied = within(
        "copy_message",
        bot.copy_message(ChatId(ANNA), ChatId(ANNA), first.id)
            .send(),
    )
    .await
    .unwrap_or_else(|e| panic!("copy_message failed: {e}"));
    assert!(copied.0 > second.id.0);

    within(
        "answer_callback_query",
        bot.answer_callback_query(CallbackQueryId::from("12345"))
            .send(),
    )
    .await
    .unwrap_or_else(|e| panic!("answer_callback_query failed: {e}"));

    let edited = within(
        "edit_message_text",
        bot.edit_message_text(ChatId(ANNA), first.id, "Исправлено")
            .send(),
    )
    .await
    .unwrap_or_else(|e| panic!("edit_message_text failed: {e}"));
    assert_eq!(edited.id, first.id);
    assert_eq!(edited.text(), Some("Исправлено"));

    // sendPhoto/sendDocument always go as multipart/form-data.
    let photo = within(
        "send_photo",
        bot.send_photo(ChatId(ANNA), InputFile::file_id(FileId::from("AgACphoto")))
            .caption("Фото")
            .send(),
    )
    .await
    .unwrap_or_else(|e| panic!("send_photo failed: {e}"));
    assert_eq!(photo.caption(), Some("Фото"));
    assert_eq!(
        photo
            .photo()
            .and_then(|sizes| sizes.last())
            .map(|p| p.file.id.0.clone()),
        Some("AgACphoto".to_owned())
    );
    let document = within(
        "send_document",
        bot.send_document(
            ChatId(ANNA),
            InputFile::memory(b"%PDF-1.4 fake".to_vec()).file_name("smeta.pdf"),
        )
        .send(),
    )
    .await
    .unwrap_or_else(|e| panic!("send_document failed: {e}"));
    assert_eq!(
        document.document().and_then(|d| d.file_name.clone()),
        Some("smeta.pdf".to_owned())
    );

    let photo_call = fake
        .calls_to("sendPhoto")
        .pop()
        .unwrap_or_else(|| panic!("no sendphoto call"));
    assert_eq!(photo_call.chat_id(), Some(ANNA));
    assert_eq!(photo_call.body["photo"], json!("AgACphoto"));
    assert_eq!(photo_call.body["caption"], json!("Фото"));

    assert_eq!(fake.calls_to("answerCallbackQuery").len(), 1);
    // 3 sendMessage + copy + edit + photo + document
    assert_eq!(fake.successful_sends(), 7);
    let send = &fake.calls_to("sendmessage")[0];
    assert_eq!(send.text(), Some("Привет, Анна!"));
    assert!(!send.failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_failures_map_to_teloxide_errors() {
    let fake = FakeTelegram::start().await;
    let bot = bot_for(&fake);
    let send = |text: &'static str| {
        let bot = bot.clone();
        async move { within("send_message", bot.send_message(ChatId(ANNA), text).send()).await }
    };

    fake.fail_chat(ANNA, Failure::RetryAfter(7), 1);
    fake.fail_chat(ANNA, Failure::Blocked, 1);
    fake.fail_chat(ANNA, Failure::Deactivated, 1);
    fake.fail_chat(ANNA, Failure::ChatNotFound, 1);
    fake.fail_chat(ANNA, Failure::MessageTooLong, 1);

    let err = send("1").await.err();
    assert!(
        matches!(err, Some(RequestError::RetryAfter(s)) if s == Seconds::from_seconds(7)),
        "{err:?}"
    );
    let err = send("2").await.err();
    assert!(
        matches!(err, Some(RequestError::Api(ApiError::BotBlocked))),
        "{err:?}"
    );
    let err = send("3").await.err();
    assert!(
        matches!(err, Some(RequestError::Api(ApiError::UserDeactivated))),
        "{err:?}"
    );
    let err = send("4").await.err();
    assert!(
        matches!(err, Some(RequestError::Api(ApiError::ChatNotFound))),
        "{err:?}"
    );
    let err = send("5").await.err();
    assert!(
        matches!(err, Some(RequestError::Api(ApiError::MessageIsTooLong))),
        "{err:?}"
    );
    send("6")
        .await
        .unwrap_or_else(|e| panic!("rules used up, send should succeed: {e}"));

    let calls = fake.calls_to("sendmessage");
    assert_eq!(calls.len(), 6);
    assert_eq!(calls.iter().filter(|c| c.failed).count(), 5);
    assert_eq!(calls[0].status, 429);
    assert_eq!(fake.sent_texts(ANNA), ["6"]);
    assert_eq!(fake.successful_sends(), 1);

    // Other chats are unaffected; "always" lasts until cleared.
    fake.fail_chat_always(ANNA, Failure::Blocked);
    for text in ["7", "8"] {
        let err = send(text).await.err();
        assert!(
            matches!(err, Some(RequestError::Api(ApiError::BotBlocked))),
            "{err:?}"
        );
    }
    within("send_message", bot.send_message(ChatId(42), "other").send())
        .await
        .unwrap_or_else(|e| panic!("other chat should work: {e}"));
    fake.clear_failures();
    send("9")
        .await
        .unwrap_or_else(|e| panic!("after clear_failures: {e}"));

    // Delay answers normally, later.
    fake.fail_chat(ANNA, Failure::Delay(Duration::from_millis(300)), 1);
    let started = Instant::now();
    send("10")
        .await
        .unwrap_or_else(|e| panic!("delayed send should succeed: {e}"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(fake.sent_texts(ANNA), ["6", "9", "10"]);

    // getUpdates conflict, once.
    fake.fail_get_updates_once(Failure::Conflict);
    let err = within("get_updates", bot.get_updates().send()).await.err();
    assert!(
        matches!(
            err,
            Some(RequestError::Api(ApiError::TerminatedByOtherGetUpdates))
        ),
        "{err:?}"
    );
    within("get_updates", bot.get_updates().send())
        .await
        .unwrap_or_else(|e| panic!("second get_updates should work: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_builder_parses_into_the_intended_kind() {
    let fake = FakeTelegram::start().await;
    let anna = TgUser::anna();
    let sergey = TgUser::sergey();

    fake.push_text(&anna, "Здравствуйте! 💰 Прайс");
    fake.push_text(&sergey, "/start promo2026");
    fake.push_contact(&anna, "79035551234", Some(anna.id));
    fake.push_contact(&anna, "+79167778899", Some(6_029_384_751));
    fake.push_contact(&anna, "8 (926) 123-45-67", None);
    fake.push_photo(&sergey, Some("кухня"));
    fake.push_photo(&sergey, None);
    fake.push_document(&anna, Some("смета"));
    fake.push_kicked(&anna);
    fake.push_unkicked(&anna);
    fake.push_callback(&anna, "order:confirm:1042");
    fake.push_group_text(
        -4_518_273_645,
        &TgUser::new(408_215_736, "Ольга"),
        "💰 Прайс",
    );
    fake.push(
        json!({"update_id": 1, "message": {"message_id": 1, "date": 1795158900,
        "chat": {"id": ANNA, "type": "private", "first_name": "Анна"},
        "from": {"id": ANNA, "is_bot": false, "first_name": "Анна"}, "text": "raw"}}),
    );
    fake.push_fixture("07-contact-own")
        .unwrap_or_else(|e| panic!("fixture: {e}"));

    let values = fake.pending_update_json();
    assert_eq!(values.len(), 14);
    let updates: Vec<Update> = values.iter().map(parse_update).collect();
    for (i, update) in updates.iter().enumerate() {
        assert_eq!(i64::from(update.id.0), FIRST_UPDATE_ID + i as i64);
    }

    let text = message_of(&updates[0]);
    assert_eq!(text.text(), Some("Здравствуйте! 💰 Прайс"));
    assert!(text.chat.is_private());
    assert_eq!(text.chat.username(), Some("anna_smirnova"));
    let from = text.from.as_ref().unwrap_or_else(|| panic!("no from"));
    assert!(!from.is_bot);
    assert_eq!(from.id, UserId(ANNA as u64));
    assert_eq!(from.last_name.as_deref(), Some("Смирнова"));

    let command = message_of(&updates[1]);
    assert_eq!(command.text(), Some("/start promo2026"));
    assert_eq!(
        command
            .from
            .as_ref()
            .map(|u| (u.last_name.clone(), u.username.clone())),
        Some((None, None))
    );
    assert_eq!(command.entities().map(<[_]>::len), Some(1));
    // Per-chat message ids increase.
    assert!(message_of(&updates[2]).id.0 > text.id.0);

    let own = message_of(&updates[2])
        .contact()
        .unwrap_or_else(|| panic!("no contact"));
    assert_eq!(own.phone_number, "79035551234");
    assert_eq!(own.user_id, Some(UserId(ANNA as u64)));
    let other = message_of(&updates[3])
        .contact()
        .unwrap_or_else(|| panic!("no contact"));
    assert_eq!(other.user_id, Some(UserId(6_029_384_751)));
    let card = message_of(&updates[4])
        .contact()
        .unwrap_or_else(|| panic!("no contact"));
    assert_eq!(card.user_id, None);

    let photo = message_of(&updates[5]);
    assert_eq!(photo.photo().map(<[_]>::len), Some(2));
    assert_eq!(photo.caption(), Some("кухня"));
    let largest = photo
        .photo()
        .and_then(|sizes| sizes.last())
        .unwrap_or_else(|| panic!("no photo sizes"));
    assert_eq!((largest.width, largest.height), (1280, 960));
    let bare_photo = message_of(&updates[6]);
    assert!(bare_photo.photo().is_some());
    assert_eq!(bare_photo.caption(), None);

    let document = message_of(&updates[7]);
    let doc = document.document().unwrap_or_else(|| panic!("no document"));
    assert_eq!(
        doc.mime_type.as_ref().map(|m| m.essence_str().to_owned()),
        Some("application/pdf".to_owned())
    );
    assert_eq!(document.caption(), Some("смета"));

    for (update, blocked) in [(&updates[8], true), (&updates[9], false)] {
        let UpdateKind::MyChatMember(member) = &update.kind else {
            panic!("expected MyChatMember, got {:?}", update.kind);
        };
        assert_eq!(member.chat.id, ChatId(ANNA));
        assert_eq!(member.new_chat_member.user.id, UserId(BOT_ID as u64));
        let (old, new) = (&member.old_chat_member.kind, &member.new_chat_member.kind);
        let banned = |kind: &ChatMemberKind| matches!(kind, ChatMemberKind::Banned(b) if b.until_date == UntilDate::Forever);
        let member_kind = |kind: &ChatMemberKind| matches!(kind, ChatMemberKind::Member(_));
        if blocked {
            assert!(member_kind(old) && banned(new), "{old:?} -> {new:?}");
        } else {
            assert!(banned(old) && member_kind(new), "{old:?} -> {new:?}");
        }
    }

    let UpdateKind::CallbackQuery(query) = &updates[10].kind else {
        panic!("expected CallbackQuery, got {:?}", updates[10].kind);
    };
    assert_eq!(query.data.as_deref(), Some("order:confirm:1042"));
    assert_eq!(query.from.id, UserId(ANNA as u64));
    assert!(query.regular_message().is_some(), "message is inaccessible");

    let group = message_of(&updates[11]);
    assert!(group.chat.is_group());
    assert_eq!(group.text(), Some("💰 Прайс"));

    assert_eq!(message_of(&updates[12]).text(), Some("raw"));
    assert!(message_of(&updates[13]).contact().is_some());

    for update in &updates {
        if let UpdateKind::Message(message) = &update.kind {
            assert!(
                !matches!(message.kind, MessageKind::Empty {}),
                "content lost: {update:?}"
            );
        }
    }

    // And the same updates through teloxide's own getUpdates parsing.
    let bot = bot_for(&fake);
    let served = within("get_updates", bot.get_updates().send())
        .await
        .unwrap_or_else(|e| panic!("get_updates failed: {e}"));
    assert_eq!(served.len(), 14);
    assert!(
        served
            .iter()
            .all(|u| !matches!(u.kind, UpdateKind::Error(_))),
        "{served:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teloxide_dispatcher_runs_against_the_fake() {
    let fake = FakeTelegram::start().await;
    let bot = bot_for(&fake);
    let handler = Update::filter_message().endpoint(|bot: Bot, message: Message| async move {
        let reply = format!("echo: {}", message.text().unwrap_or_default());
        bot.send_message(message.chat.id, reply).await?;
        Ok::<(), RequestError>(())
    });
    let mut dispatcher = Dispatcher::builder(bot, handler).build();
    let task = tokio::spawn(async move { dispatcher.dispatch().await });

    let id = fake.push_text(&TgUser::anna(), "Сколько стоит уборка?");
    let result = fake
        .wait_until(
            "the echo and the confirmed update",
            Duration::from_secs(10),
            |f| f.sent_texts(ANNA).len() == 1 && f.confirmed_offset() > id,
        )
        .await;
    task.abort();
    result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fake.sent_texts(ANNA), ["echo: Сколько стоит уборка?"]);
    assert_eq!(fake.pending_updates(), 0);
    // getMe and getWebhookInfo (in either order) come before polling starts.
    let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
    let mut startup = methods[..2].to_vec();
    startup.sort();
    assert_eq!(startup, ["getme", "getwebhookinfo"], "{methods:?}");

    let served = fake
        .served_at(id)
        .unwrap_or_else(|| panic!("update never served"));
    let sent = fake.calls_to("sendmessage")[0].at;
    assert!(sent >= served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_get_requests_and_unknown_paths() {
    let fake = FakeTelegram::start().await;
    let client = reqwest::Client::new();
    let base = fake.url();

    let response = within(
        "form post",
        client
            .post(format!("{base}/bot{TOKEN}/sendMessage"))
            .form(&[("chat_id", "5213874096"), ("text", "form text")])
            .send(),
    )
    .await
    .unwrap_or_else(|e| panic!("form post: {e}"));
    assert_eq!(response.status(), 200);
    assert_eq!(fake.sent_texts(ANNA), ["form text"]);

    let body: Value = within(
        "get",
        client
            .get(format!("{base}/bot{TOKEN}/getme?x=1"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("get: {e}"))
            .json(),
    )
    .await
    .unwrap_or_else(|e| panic!("get body: {e}"));
    assert_eq!(body["result"]["username"], json!("cleaning_bot"));
    assert_eq!(body["result"]["has_main_web_app"], json!(false));

    let response = within(
        "unknown path",
        client.post(format!("{base}/nothing")).send(),
    )
    .await
    .unwrap_or_else(|e| panic!("unknown path: {e}"));
    assert_eq!(response.status(), 404);

    fake.fail_chat(ANNA, Failure::ServerError, 1);
    let response = within(
        "server error",
        client
            .post(format!("{base}/bot{TOKEN}/SendMessage"))
            .json(&json!({"chat_id": ANNA, "text": "x"}))
            .send(),
    )
    .await
    .unwrap_or_else(|e| panic!("server error: {e}"));
    assert_eq!(response.status(), 500);
    assert_eq!(fake.sent_texts(ANNA), ["form text"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_until_explains_a_timeout() {
    let fake = FakeTelegram::start().await;
    let bot = bot_for(&fake);
    within("send_message", bot.send_message(ChatId(ANNA), "one").send())
        .await
        .unwrap_or_else(|e| panic!("send_message failed: {e}"));

    let err = fake
        .wait_until("a second message", Duration::from_millis(100), |f| {
            f.sent_texts(ANNA).len() >= 2
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("wait_until should time out"));
    assert!(err.contains("a second message"), "{err}");
    assert!(err.contains("sendmessage"), "{err}");
    assert!(err.contains("\"one\""), "{err}");

    fake.wait_until("one message", Duration::from_secs(1), |f| {
        f.sent_texts(ANNA).len() == 1
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stops_when_the_last_handle_goes() {
    let fake = FakeTelegram::start().await;
    let bot = bot_for(&fake);
    let addr = fake.addr();

    // A held long poll returns at once on shutdown.
    let poller = bot.clone();
    let poll = tokio::spawn(async move { poller.get_updates().timeout(10).send().await });
    fake.wait_until("the long poll to arrive", PROMPT, |f| {
        !f.calls_to("getupdates").is_empty()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let copy = fake.clone();
    drop(fake);
    let started = Instant::now();
    copy.shutdown();
    let polled = within("held poll", poll)
        .await
        .unwrap_or_else(|e| panic!("poll task: {e}"));
    assert!(polled.is_ok_and(|u| u.is_empty()));
    assert!(started.elapsed() < PROMPT);
    drop(copy);

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Err(_) => break,
            Ok(_) if Instant::now() > deadline => panic!("server still accepts connections"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
