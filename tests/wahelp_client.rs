//! The Wahelp REST client against the fake Wahelp server
//! (`tests/support/wahelp.rs`) over real HTTP on 127.0.0.1: logins in both
//! answer shapes, refreshes, 401 retries, single-flight token renewal under
//! concurrency, request bodies, message ids, error classes, timeouts, an
//! unreachable server, the webhook, and what reaches the logs.

mod support;

use std::time::{Duration, Instant};

use flowbot::outbox::DeliveryError;
use flowbot::phone::Phone;
use flowbot::wahelp::client::{Auth, Client, Error, Hook, Settings, UserId};
use serde_json::json;
use support::logs::Captured;
use support::wahelp::{
    CHANNEL_UUID, Down, Endpoint, FIRST_MESSAGE_ID, FIRST_USER_ID, Failure, FakeWahelp, HookGet,
    LOGIN, MessageIdPlace, PASSWORD, PROJECT_ID, TokenShape,
};

/// Bound for anything that should be immediate.
const PROMPT: Duration = Duration::from_secs(10);

const ANNA: &str = "+79991234567";
const IVAN: &str = "+79161112233";

fn settings(fake: &FakeWahelp) -> Settings {
    let mut s = Settings::new(
        PROJECT_ID,
        CHANNEL_UUID,
        Auth::Login {
            login: LOGIN.into(),
            password: PASSWORD.into(),
        },
    );
    s.api_url = fake.url();
    s.timeout = Duration::from_secs(3);
    s.connect_timeout = Duration::from_secs(1);
    s
}

fn client(settings: Settings) -> Client {
    Client::new(settings).unwrap_or_else(|e| panic!("client settings refused: {e}"))
}

fn phone(text: &str) -> Phone {
    Phone::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PROMPT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {PROMPT:?}"))
}

async fn user(fake: &FakeWahelp, client: &Client, number: &str) -> UserId {
    within(
        "find_or_create_user",
        client.find_or_create_user(&phone(number), "Иван"),
    )
    .await
    .unwrap_or_else(|e| panic!("{}", fake.report(&format!("find_or_create_user: {e}"))))
}

async fn send(fake: &FakeWahelp, client: &Client, user: &UserId, text: &str) -> Option<String> {
    within("send_text", client.send_text(user, text))
        .await
        .unwrap_or_else(|e| panic!("{}", fake.report(&format!("send_text: {e}"))))
        .message_id
}

async fn send_err(client: &Client, user: &UserId, text: &str) -> Error {
    match within("send_text", client.send_text(user, text)).await {
        Ok(sent) => panic!("send_text should fail, got {sent:?}"),
        Err(e) => e,
    }
}

fn bearers(fake: &FakeWahelp, endpoint: Endpoint) -> Vec<String> {
    fake.calls_to(endpoint)
        .iter()
        .map(|c| c.bearer().unwrap_or("-").to_owned())
        .collect()
}

// ----- login -----------------------------------------------------------------

async fn login_and_use(shape: TokenShape) {
    let fake = FakeWahelp::start().await;
    fake.set_login_shape(shape);
    let client = client(settings(&fake));

    let anna = user(&fake, &client, ANNA).await;
    assert_eq!(anna.as_str(), FIRST_USER_ID.to_string());

    let logins = fake.calls_to(Endpoint::Login);
    assert_eq!(logins.len(), 1, "{}", fake.report("one login"));
    assert_eq!(
        logins[0].body,
        json!({"login": LOGIN, "password": PASSWORD})
    );
    assert_eq!(logins[0].authorization, None);
    assert_eq!(logins[0].project, None);
    assert_eq!(logins[0].path, "/api/app/user/login");
    assert_eq!(logins[0].content_type.as_deref(), Some("application/json"));

    let token = fake.issued_tokens().remove(0);
    let users = fake.calls_to(Endpoint::Users);
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].bearer(), Some(token.as_str()));
    assert_eq!(users[0].project.as_deref(), Some(PROJECT_ID));
    assert_eq!(
        users[0].path,
        format!("/api/app/projects/{PROJECT_ID}/channels/{CHANNEL_UUID}/users")
    );
    assert_eq!(
        users[0].body,
        json!({"phone": ANNA, "name": "Иван", "need_create": true})
    );

    // The token is kept: more calls, no more logins.
    let message_id = send(&fake, &client, &anna, "Здравствуйте").await;
    assert_eq!(message_id, Some(FIRST_MESSAGE_ID.to_string()));
    assert_eq!(fake.count(Endpoint::Login), 1);
    assert_eq!(bearers(&fake, Endpoint::SendMessage), vec![token]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_the_access_token_shape() {
    login_and_use(TokenShape::AccessToken).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_the_nested_token_shape() {
    login_and_use(TokenShape::Nested).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_token_never_logs_in() {
    let fake = FakeWahelp::start().await;
    fake.add_fixed_token("fixed-token-0123456789");
    let mut s = settings(&fake);
    s.auth = Auth::Token("fixed-token-0123456789".into());
    let client = client(s);

    let anna = user(&fake, &client, ANNA).await;
    send(&fake, &client, &anna, "Добрый день").await;
    assert_eq!(fake.count(Endpoint::Login), 0);
    assert_eq!(fake.count(Endpoint::Refresh), 0);
    for call in fake.calls() {
        assert_eq!(call.bearer(), Some("fixed-token-0123456789"), "{call:?}");
    }

    // A refused fixed token is an Auth error at once: no login, no retry.
    fake.fail_send(Failure::Unauthorized, 1);
    let e = send_err(&client, &anna, "ещё").await;
    assert!(
        matches!(
            e,
            Error::Auth {
                status: Some(401),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(matches!(e.to_delivery_error(), DeliveryError::Transient(_)));
    assert_eq!(fake.count(Endpoint::Login), 0);
    assert_eq!(fake.count(Endpoint::Refresh), 0);
    assert_eq!(fake.count(Endpoint::SendMessage), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_an_auth_error() {
    let fake = FakeWahelp::start().await;
    let mut s = settings(&fake);
    s.auth = Auth::Login {
        login: LOGIN.into(),
        password: "wrong-password".into(),
    };
    let client = client(s);
    let e = match within("find", client.find_or_create_user(&phone(ANNA), "Анна")).await {
        Ok(id) => panic!("should fail, got {id:?}"),
        Err(e) => e,
    };
    assert!(
        matches!(
            e,
            Error::Auth {
                status: Some(401),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.message().contains("Неверный логин или пароль"), "{e}");
    assert_eq!(fake.count(Endpoint::Login), 1);
    assert_eq!(fake.count(Endpoint::Users), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_login_is_held_for_ten_minutes() {
    let fake = FakeWahelp::start().await;
    fake.fail(Endpoint::Login, Failure::TooManyRequests, 1);
    let client = client(settings(&fake));
    for _ in 0..3 {
        let e = match within("find", client.find_or_create_user(&phone(ANNA), "Анна")).await {
            Ok(id) => panic!("should fail, got {id:?}"),
            Err(e) => e,
        };
        assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(600)));
    }
    // Only the first call tried: the others were told to wait without asking.
    assert_eq!(fake.count(Endpoint::Login), 1);
}

// ----- refresh ---------------------------------------------------------------

fn short_lived(fake: &FakeWahelp, expires_in: u64, margin: Duration) -> Client {
    fake.set_expires_in(expires_in);
    let mut s = settings(fake);
    s.refresh_margin = margin;
    client(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_refreshed_a_margin_before_expiry() {
    let fake = FakeWahelp::start().await;
    let client = short_lived(&fake, 2, Duration::from_secs(1));
    let anna = user(&fake, &client, ANNA).await;
    send(&fake, &client, &anna, "сразу").await;
    assert_eq!(fake.count(Endpoint::Refresh), 0);

    // 1.3 s in: inside the margin (refresh due at 1 s), not yet expired (2 s).
    tokio::time::sleep(Duration::from_millis(1300)).await;
    send(&fake, &client, &anna, "через секунду").await;
    assert_eq!(fake.refreshes(), 1, "{}", fake.report("one refresh"));
    assert_eq!(fake.logins(), 1);
    let tokens = fake.issued_tokens();
    let refresh = &fake.calls_to(Endpoint::Refresh)[0];
    assert_eq!(refresh.bearer(), Some(tokens[0].as_str()));
    assert_eq!(refresh.path, "/api/app/user/refresh-token");
    assert_eq!(refresh.method, "GET");
    assert_eq!(
        bearers(&fake, Endpoint::SendMessage),
        vec![tokens[0].clone(), tokens[1].clone()]
    );
    assert_eq!(fake.sent_texts().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_falls_back_to_a_login() {
    let fake = FakeWahelp::start().await;
    let client = short_lived(&fake, 2, Duration::from_secs(1));
    let anna = user(&fake, &client, ANNA).await;
    fake.fail(Endpoint::Refresh, Failure::ServerError, 1);

    tokio::time::sleep(Duration::from_millis(1300)).await;
    send(&fake, &client, &anna, "после входа").await;
    assert_eq!(fake.count(Endpoint::Refresh), 1);
    assert_eq!(fake.refreshes(), 0);
    assert_eq!(fake.logins(), 2, "{}", fake.report("a second login"));
    let tokens = fake.issued_tokens();
    assert_eq!(
        bearers(&fake, Endpoint::SendMessage),
        vec![tokens[1].clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_means_a_new_login() {
    let fake = FakeWahelp::start().await;
    let client = short_lived(&fake, 1, Duration::ZERO);
    let anna = user(&fake, &client, ANNA).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&fake, &client, &anna, "после паузы").await;
    assert_eq!(fake.logins(), 2);
    assert_eq!(fake.count(Endpoint::Refresh), 0);
    // The client never used the expired token.
    assert!(
        fake.calls().iter().all(|c| c.ok()),
        "{}",
        fake.report("no 401")
    );
}

// ----- 401 -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_gets_one_new_token_and_one_retry() {
    let fake = FakeWahelp::start().await;
    let client = client(settings(&fake));
    let anna = user(&fake, &client, ANNA).await;
    fake.fail_send(Failure::Unauthorized, 1);

    let id = send(&fake, &client, &anna, "повтор").await;
    assert!(id.is_some());
    assert_eq!(fake.count(Endpoint::SendMessage), 2);
    assert_eq!(fake.refreshes(), 1);
    assert_eq!(fake.logins(), 1);
    let tokens = fake.issued_tokens();
    assert_eq!(
        bearers(&fake, Endpoint::SendMessage),
        vec![tokens[0].clone(), tokens[1].clone()]
    );
    assert_eq!(fake.sent_texts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_401_is_an_auth_error() {
    let fake = FakeWahelp::start().await;
    let client = client(settings(&fake));
    let anna = user(&fake, &client, ANNA).await;
    fake.fail_send(Failure::Unauthorized, 2);

    let e = send_err(&client, &anna, "не пройдёт").await;
    assert!(
        matches!(
            e,
            Error::Auth {
                status: Some(401),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(matches!(
        DeliveryError::from(&e),
        DeliveryError::Transient(_)
    ));
    assert_eq!(fake.count(Endpoint::SendMessage), 2, "exactly one retry");
    assert_eq!(
        fake.count(Endpoint::Refresh) + fake.count(Endpoint::Login),
        2
    );

    // The new token is fine: the next send needs no renewal.
    send(&fake, &client, &anna, "теперь да").await;
    assert_eq!(
        fake.count(Endpoint::Refresh) + fake.count(Endpoint::Login),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_replaced_by_a_login() {
    let fake = FakeWahelp::start().await;
    let client = client(settings(&fake));
    let anna = user(&fake, &client, ANNA).await;
    fake.revoke_tokens();

    send(&fake, &client, &anna, "после смены пароля").await;
    // 401 → refresh refused (401) → login → retry.
    assert_eq!(fake.count(Endpoint::Refresh), 1);
    assert_eq!(fake.refreshes(), 0);
    assert_eq!(fake.logins(), 2);
    assert_eq!(fake.count(Endpoint::SendMessage), 2);
}

// ----- concurrency -----------------------------------------------------------

async fn fifty_sends(fake: &FakeWahelp, client: &Client, user: &UserId) {
    let mut tasks = Vec::new();
    for i in 0..50 {
        let client = client.clone();
        let user = user.clone();
        tasks.push(tokio::spawn(async move {
            client.send_text(&user, &format!("сообщение {i}")).await
        }));
    }
    for task in tasks {
        let result = within("concurrent send", task)
            .await
            .unwrap_or_else(|e| panic!("send task panicked: {e}"));
        if let Err(e) = result {
            panic!("{}", fake.report(&format!("concurrent send failed: {e}")));
        }
    }
    assert_eq!(fake.sent_texts().len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_first_sends_log_in_once() {
    let fake = FakeWahelp::start().await;
    let anna = user(&fake, &client(settings(&fake)), ANNA).await;
    assert_eq!(fake.logins(), 1);

    let fresh = client(settings(&fake));
    fifty_sends(&fake, &fresh, &anna).await;
    assert_eq!(
        fake.logins(),
        2,
        "{}",
        fake.report("one login for 50 sends")
    );
    let token = fake.issued_tokens()[1].clone();
    assert!(
        bearers(&fake, Endpoint::SendMessage)
            .iter()
            .all(|b| *b == token)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_sends_with_an_expired_token_log_in_once() {
    let fake = FakeWahelp::start().await;
    let client = short_lived(&fake, 1, Duration::ZERO);
    let anna = user(&fake, &client, ANNA).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    fifty_sends(&fake, &client, &anna).await;
    assert_eq!(
        fake.logins(),
        2,
        "{}",
        fake.report("one new login for 50 sends")
    );
    assert_eq!(fake.count(Endpoint::Refresh), 0);
    assert_eq!(fake.count(Endpoint::SendMessage), 50, "no 401 and no retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_401s_renew_the_token_once() {
    let fake = FakeWahelp::start().await;
    let client = client(settings(&fake));
    let anna = user(&fake, &client, ANNA).await;
    fake.revoke_tokens();

    fifty_sends(&fake, &client, &anna).await;
    // One renewal: a refresh (refused: revoked) then one login.
    assert_eq!(
        fake.count(Endpoint::Refresh),
        1,
        "{}",
        fake.report("one refresh")
    );
    assert_eq!(fake.logins(), 2);
    // Sends that started after the renewal used the new token at once; the
    // others got a 401 with the old one and retried once with the new one.
    let calls = fake.calls_to(Endpoint::SendMessage);
    let refused: Vec<_> = calls.iter().filter(|c| c.status == 401).collect();
    let new_token = fake.issued_tokens()[1].clone();
    assert!(
        !refused.is_empty() && refused.len() <= 50,
        "{}",
        refused.len()
    );
    assert_eq!(calls.len(), 50 + refused.len());
    assert!(
        calls
            .iter()
            .filter(|c| c.ok())
            .all(|c| c.bearer() == Some(new_token.as_str()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_share_a_hanging_login() {
    let fake = FakeWahelp::start().await;
    fake.fail(Endpoint::Login, Failure::Hang(Duration::from_secs(3)), 1);
    let mut s = settings(&fake);
    s.timeout = Duration::from_millis(500);
    let client = client(s);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.find_or_create_user(&phone(ANNA), "Анна").await
        }));
    }
    for task in tasks {
        let result = within("concurrent find", task)
            .await
            .unwrap_or_else(|e| panic!("task panicked: {e}"));
        assert!(
            matches!(result, Err(Error::Transient { status: None, .. })),
            "{result:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        fake.count(Endpoint::Login),
        1,
        "the waiters shared the failed login"
    );

    // The next call tries again and succeeds.
    user(&fake, &client, ANNA).await;
    assert_eq!(fake.logins(), 1);
    assert_eq!(fake.count(Endpoint::Login), 2);
}

// ----- users and texts -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_found_or_created_with_stable_ids() {
    let fake = FakeWahelp::start().await;
    let client = client(settings(&fake));
    let anna = user(&fake, &client, "8 (999) 123-45-67").await;
    let ivan = within(
        "find",
        client.find_or_create_user(&phone(IVAN), "Иван Петров"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let again = user(&fake, &client, ANNA).await;
    assert_eq!(anna, again);
    assert_eq!(anna.as_str(), "12345");
    assert_eq!(ivan.as_str(), "12346");
    let bodies: Vec<_> = fake
        .calls_to(Endpoint::Users)
        .into_iter()
        .map(|c| c.body)
        .collect();
    assert_eq!(
        bodies,
        vec![
            json!({"phone": ANNA, "name": "Иван", "need_create": true}),
            json!({"phone": IVAN, "name": "Иван Петров", "need_create": true}),
            json!({"phone": ANNA, "name": "Иван", "need_create": true}),
        ]
    );
    assert_eq!(fake.users().len(), 2);

    fake.set_user_ids_as_strings(true);
    assert_eq!(user(&fake, &client, IVAN).await.as_str(), "12346");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_are_sent_and_message_ids_read_from_each_place() {
    let fake = FakeWahelp::start().await;
    let client = client(settings(&fake));
    let anna = user(&fake, &client, ANNA).await;
    let places = [
        MessageIdPlace::DataId,
        MessageIdPlace::DataMessageId,
        MessageIdPlace::DataMessageNestedId,
        MessageIdPlace::TopMessageId,
        MessageIdPlace::Msgid,
    ];
    let mut expected = FIRST_MESSAGE_ID;
    for as_strings in [false, true] {
        fake.set_message_ids_as_strings(as_strings);
        for place in places {
            fake.set_message_id_place(place);
            let text = format!("*не markdown* {place:?} {as_strings}\nвторая строка");
            let id = send(&fake, &client, &anna, &text).await;
            assert_eq!(
                id,
                Some(expected.to_string()),
                "{place:?} strings={as_strings}"
            );
            expected += 1;
            let call = fake.calls_to(Endpoint::SendMessage).pop();
            let call = call.unwrap_or_else(|| panic!("no send call"));
            assert_eq!(call.body, json!({ "text": text }));
            assert_eq!(
                call.path,
                format!(
                    "/api/app/projects/{PROJECT_ID}/channels/{CHANNEL_UUID}/send_message/{anna}"
                )
            );
            assert_eq!(call.project.as_deref(), Some(PROJECT_ID));
        }
    }
    fake.set_message_id_place(MessageIdPlace::Nowhere);
    assert_eq!(send(&fake, &client, &anna, "без id").await, None);

    let sent = fake.sent_texts();
    assert_eq!(sent.len(), 11);
    assert_eq!(
        sent[10],
        (anna.to_string(), ANNA.to_owned(), "без id".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_is_rejected() {
    let fake = FakeWahelp::start().await;
    let client = client(settings(&fake));
    user(&fake, &client, ANNA).await;
    let e = send_err(&client, &UserId::new("999999"), "кому?").await;
    assert!(
        matches!(
            e,
            Error::Rejected {
                status: Some(404),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(matches!(e.to_delivery_error(), DeliveryError::Permanent(_)));
}

// ----- error classes ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_class_from_its_texts_and_statuses() {
    let fake = FakeWahelp::start().await;
    let client = client(settings(&fake));
    let anna = user(&fake, &client, ANNA).await;
    let ten_minutes = Duration::from_secs(600);
    let text = |s: &str| s.to_owned();
    let cases: Vec<(Failure, &str, Option<u16>)> = vec![
        (Failure::ServerError, "transient", Some(500)),
        (Failure::Unavailable, "transient", Some(503)),
        (
            Failure::Raw(502, text("<html>Bad Gateway</html>")),
            "transient",
            Some(502),
        ),
        (
            Failure::Raw(200, text("<html>login page</html>")),
            "transient",
            Some(200),
        ),
        (Failure::TooManyRequests, "rate_limited", Some(429)),
        (
            Failure::Refused(text("Слишком много попыток. Попробуйте позже")),
            "rate_limited",
            Some(200),
        ),
        (
            Failure::Status(400, text("Too Many Requests")),
            "rate_limited",
            Some(400),
        ),
        (
            Failure::Refused(text("Мессенджер не подключен")),
            "not_reachable",
            Some(200),
        ),
        (
            Failure::Refused(text("Номер не подключен к WhatsApp")),
            "not_reachable",
            Some(200),
        ),
        (
            Failure::Refused(format!("Номер {ANNA} не подключён")),
            "not_reachable",
            Some(200),
        ),
        (
            Failure::Status(422, text("Номер не зарегистрирован в Telegram")),
            "not_reachable",
            Some(422),
        ),
        (
            Failure::Status(400, text("Messenger is not connected")),
            "not_reachable",
            Some(400),
        ),
        (
            Failure::Status(400, text("Текст слишком длинный")),
            "rejected",
            Some(400),
        ),
        (
            Failure::Status(403, text("Forbidden")),
            "rejected",
            Some(403),
        ),
        (
            Failure::Refused(text("Что-то пошло не так")),
            "rejected",
            Some(200),
        ),
    ];
    for (failure, class, status) in cases {
        let before = fake.count(Endpoint::SendMessage);
        fake.fail_send(failure.clone(), 1);
        let e = send_err(&client, &anna, "текст").await;
        assert_eq!(e.class(), class, "{failure:?}: {e:?}");
        assert_eq!(e.status(), status, "{failure:?}: {e:?}");
        assert_eq!(
            fake.count(Endpoint::SendMessage),
            before + 1,
            "{failure:?}: no retry"
        );
        let delivery = e.to_delivery_error();
        match class {
            "rate_limited" => {
                assert_eq!(e.retry_after(), Some(ten_minutes));
                assert_eq!(delivery, DeliveryError::RetryAfter(ten_minutes));
            }
            "not_reachable" => assert!(matches!(delivery, DeliveryError::RecipientGone(_))),
            "transient" => assert!(matches!(delivery, DeliveryError::Transient(_))),
            _ => assert!(
                matches!(delivery, DeliveryError::Permanent(_)),
                "{delivery:?}"
            ),
        }
        if class != "rate_limited" {
            assert_eq!(e.retry_after(), None);
        }
    }
    assert_eq!(fake.logins(), 1);
    assert!(fake.sent_texts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_server_is_transient_within_the_timeout() {
    let fake = FakeWahelp::start().await;
    let mut s = settings(&fake);
    s.timeout = Duration::from_millis(400);
    let client = client(s);
    let anna = user(&fake, &client, ANNA).await;
    fake.fail_send(Failure::Hang(Duration::from_secs(5)), 1);

    let started = Instant::now();
    let e = send_err(&client, &anna, "алло").await;
    let elapsed = started.elapsed();
    assert!(matches!(e, Error::Transient { status: None, .. }), "{e:?}");
    assert!(e.message().contains("no answer within"), "{e}");
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    // The server is fine again.
    send(&fake, &client, &anna, "снова").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_transient_and_comes_back() {
    let fake = FakeWahelp::start().await;
    let client = client(settings(&fake));
    let anna = user(&fake, &client, ANNA).await;

    fake.go_down(Down::Refused).await;
    let started = Instant::now();
    let e = send_err(&client, &anna, "никого").await;
    assert!(matches!(e, Error::Transient { status: None, .. }), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    fake.come_up().await;
    send(&fake, &client, &anna, "вернулся").await;

    fake.go_down(Down::Unavailable).await;
    let e = send_err(&client, &anna, "503").await;
    assert!(
        matches!(
            e,
            Error::Transient {
                status: Some(503),
                ..
            }
        ),
        "{e:?}"
    );
    fake.come_up().await;
    send(&fake, &client, &anna, "снова работает").await;
    assert_eq!(fake.sent_texts().len(), 2);
    assert_eq!(fake.logins(), 1);
}

// ----- webhook ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_is_set_and_read() {
    let fake = FakeWahelp::start().await;
    let client = client(settings(&fake));
    let url = "https://bot.example.com/wahelp/webhook?token=HOOK-SECRET-42";

    let hook = within("get_hook", client.get_hook()).await;
    assert_eq!(hook, Ok(Hook::NotSet));
    within("set_hook", client.set_hook(url))
        .await
        .unwrap_or_else(|e| panic!("set_hook: {e}"));
    assert_eq!(fake.hook().as_deref(), Some(url));
    let put = &fake.calls_to(Endpoint::SetHook)[0];
    assert_eq!(put.method, "PUT");
    assert_eq!(put.path, format!("/api/app/projects/{PROJECT_ID}/hook"));
    assert_eq!(put.body, json!({ "url": url }));
    assert_eq!(put.project.as_deref(), Some(PROJECT_ID));
    assert!(put.bearer().is_some());
    assert_eq!(
        within("get_hook", client.get_hook()).await,
        Ok(Hook::Set(url.to_owned()))
    );

    fake.set_hook_get(HookGet::NotFound);
    assert_eq!(
        within("get_hook", client.get_hook()).await,
        Ok(Hook::Unknown)
    );
    fake.set_hook_get(HookGet::MethodNotAllowed);
    assert_eq!(
        within("get_hook", client.get_hook()).await,
        Ok(Hook::Unknown)
    );

    // Other failures are still failures.
    fake.fail(Endpoint::GetHook, Failure::ServerError, 1);
    let hook = within("get_hook", client.get_hook()).await;
    assert!(matches!(hook, Err(Error::Transient { .. })), "{hook:?}");
    fake.fail(
        Endpoint::SetHook,
        Failure::Status(422, "The url format is invalid.".into()),
        1,
    );
    let set = within("set_hook", client.set_hook("not a url")).await;
    assert!(
        matches!(
            set,
            Err(Error::Rejected {
                status: Some(422),
                ..
            })
        ),
        "{set:?}"
    );
}

// ----- logs ------------------------------------------------------------------

/// Runs on the current thread, so the thread's log subscriber sees the
/// client's events.
#[tokio::test]
async fn logs_mask_phones_and_never_show_secrets() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber("flowbot=trace"));

    let fake = FakeWahelp::start().await;
    let client = client(settings(&fake));

    // A login error that echoes the password.
    fake.fail(
        Endpoint::Login,
        Failure::Raw(
            422,
            json!({"success": false, "message": format!("password {PASSWORD} is wrong")})
                .to_string(),
        ),
        1,
    );
    let e = within("find", client.find_or_create_user(&phone(ANNA), "Анна")).await;
    assert!(matches!(e, Err(Error::Auth { .. })), "{e:?}");

    // An error that names the customer's number.
    fake.fail(
        Endpoint::Users,
        Failure::Refused(format!("Номер {ANNA} не зарегистрирован в WhatsApp")),
        1,
    );
    let e = within("find", client.find_or_create_user(&phone(ANNA), "Анна")).await;
    let e = match e {
        Err(e @ Error::NotReachable { .. }) => e,
        other => panic!("expected NotReachable, got {other:?}"),
    };
    assert!(e.to_string().contains("+7999***4567"), "{e}");
    assert!(!e.to_string().contains(ANNA), "{e}");

    // An error that echoes our token.
    let anna = user(&fake, &client, ANNA).await;
    let token = fake.issued_tokens().pop().unwrap_or_default();
    assert!(!token.is_empty());
    fake.fail_send(Failure::Status(400, format!("token {token} is odd")), 1);
    send_err(&client, &anna, "текст").await;

    // An error that echoes the webhook URL with its secret.
    let hook = "https://bot.example.com/wahelp/webhook?token=HOOK-SECRET-42";
    fake.fail(
        Endpoint::SetHook,
        Failure::Status(422, format!("bad url {hook}")),
        1,
    );
    let set = within("set_hook", client.set_hook(hook)).await;
    assert!(set.is_err());
    within("set_hook", client.set_hook(hook))
        .await
        .unwrap_or_else(|e| panic!("set_hook: {e}"));

    let logs = captured.text();
    assert!(logs.contains("Wahelp answered with an error"), "{logs}");
    assert!(logs.contains("+7999***4567"), "{logs}");
    assert!(logs.contains("Wahelp webhook registered"), "{logs}");
    for secret in [ANNA, PASSWORD, token.as_str(), "HOOK-SECRET-42"] {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
    }
}
