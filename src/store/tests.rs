//! The store keeps what the engine decided, across reopening.

use chrono::{TimeZone, Utc};

use super::Store;
use crate::engine::{Customer, Effect, HeldMessage, Outcome, Session};
use crate::phone::Phone;

fn customer() -> Customer {
    Customer {
        telegram_id: 7,
        first_name: "Олег".into(),
        last_name: None,
        username: Some("oleg".into()),
    }
}

#[test]
fn a_session_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("t.db");
    let now = Utc
        .with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .single()
        .unwrap_or_default();
    let mut session = Session::new(customer(), "main");
    session.phone = Phone::parse("+79991234567").ok();
    session.state = "waiting_order".into();
    session.manager_until = Some(now);
    session.throttle.insert("reply:forwarded".into(), now);
    session.held.push(HeldMessage {
        text: "привет".into(),
        received_at: now,
    });
    let effects = vec![
        Effect::GrantBonus {
            amount: 300,
            expires_at: now,
            reason: "welcome".into(),
        },
        Effect::HoldMessage {
            text: "привет".into(),
        },
    ];
    {
        let mut store = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
        store
            .apply(
                &Outcome {
                    effects,
                    session: session.clone(),
                },
                now,
            )
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let store = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let loaded = store
        .load_session(&customer(), "main")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.phone, session.phone);
    assert_eq!(loaded.state, "waiting_order");
    assert_eq!(loaded.manager_until, Some(now));
    assert_eq!(loaded.throttle, session.throttle);
    assert_eq!(loaded.bonuses.len(), 1);
    assert_eq!(loaded.held.len(), 1);

    let mut store = store;
    let released = Outcome {
        effects: vec![Effect::ReleaseHeld { count: 1 }],
        session: loaded,
    };
    store
        .apply(&released, now)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        store
            .load_session(&customer(), "main")
            .map(|s| s.held.is_empty())
            .unwrap_or(false)
    );
}

#[test]
fn a_new_customer_starts_in_the_start_state() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&dir.path().join("t.db")).unwrap_or_else(|e| panic!("{e}"));
    let s = store
        .load_session(&customer(), "main")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s, Session::new(customer(), "main"));
}

mod live {
    //! The inbox and the outbox: what the runtime relies on across crashes.

    use chrono::{Duration, TimeZone, Utc};

    use crate::engine::{Customer, Input, Outcome, Session};
    use crate::outbox::{Destination, NewMessage, Payload};
    use crate::store::{Commit, Committed, Source, Store};

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(&dir.path().join("t.db")).unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    }

    fn t0() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn text(chat_id: i64, text: &str) -> NewMessage {
        NewMessage {
            payload: Payload::TelegramText {
                chat_id,
                text: text.into(),
                markup: None,
            },
            customer_id: Some(chat_id),
            is_admin_notice: false,
        }
    }

    fn heads(store: &Store, at: chrono::DateTime<Utc>) -> Vec<String> {
        let (rows, _) = store
            .due_heads(Destination::Telegram, at, &|_| false, 100)
            .unwrap_or_else(|e| panic!("{e}"));
        rows.into_iter()
            .map(|r| match r.payload {
                Payload::TelegramText { text, .. } => text,
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn an_update_is_applied_once_even_if_committed_twice() {
        let (_dir, mut store) = open();
        let added = store
            .inbox_add(vec![(10, "{}".into()), (11, "{}".into())], t0())
            .unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<i64> = added.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [10, 11]);
        let customer = Customer {
            telegram_id: 5,
            first_name: "Анна".into(),
            last_name: None,
            username: None,
        };
        let outcome = Outcome {
            effects: Vec::new(),
            session: Session::new(customer, "main"),
        };
        let messages = [text(5, "привет")];
        let commit = Commit {
            outcome: Some(&outcome),
            chat_id: Some(5),
            messages: &messages,
            source: Some(Source::Update(10)),
            log: None,
        };
        let first = store
            .commit(&commit, t0())
            .unwrap_or_else(|e| panic!("{e}"));
        let second = store
            .commit(&commit, t0())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (first, second),
            (Committed::Applied, Committed::AlreadyProcessed)
        );
        assert_eq!(heads(&store, t0()), ["привет"]);
        let pending: Vec<i64> = store
            .inbox_pending()
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(pending, [11]);
        // Telegram sending the same update again does not bring it back.
        let again = store
            .inbox_add(vec![(10, "{}".into())], t0())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(again.is_empty());
    }

    #[test]
    fn a_retrying_message_holds_back_its_chat_but_not_others() {
        let (_dir, mut store) = open();
        store
            .enqueue(&[text(1, "a1"), text(1, "a2"), text(2, "b1")], t0())
            .unwrap_or_else(|e| panic!("{e}"));
        let (rows, _) = store
            .due_heads(Destination::Telegram, t0(), &|_| false, 100)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(heads(&store, t0()), ["a1", "b1"]);
        let a1 = rows[0].id;
        store
            .mark_retry(a1, t0() + Duration::seconds(7), "429")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(heads(&store, t0()), ["b1"], "a2 must wait for a1");
        let (_, next) = store
            .due_heads(Destination::Telegram, t0(), &|_| false, 100)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(next, Some(t0() + Duration::seconds(7)));
        assert_eq!(heads(&store, t0() + Duration::seconds(7)), ["a1", "b1"]);
        store
            .mark_delivered(&rows[0], None, t0())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(heads(&store, t0() + Duration::seconds(7)), ["a2", "b1"]);
    }

    #[test]
    fn dead_rows_are_announced_once() {
        let (_dir, mut store) = open();
        store
            .enqueue(&[text(1, "a"), text(2, "b")], t0())
            .unwrap_or_else(|e| panic!("{e}"));
        let (rows, _) = store
            .due_heads(Destination::Telegram, t0(), &|_| false, 100)
            .unwrap_or_else(|e| panic!("{e}"));
        for r in &rows {
            store
                .mark_dead(r.id, "timeout", t0())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let notice =
            |dead: &[crate::store::DeadRow]| vec![text(-100, &format!("{} dead", dead.len()))];
        let first = store
            .announce_dead(t0(), &notice)
            .unwrap_or_else(|e| panic!("{e}"));
        let second = store
            .announce_dead(t0(), &notice)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((first, second), (2, 0));
        assert_eq!(heads(&store, t0()), ["2 dead"]);
        let stats = store.stats(t0()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((stats.outbox_dead, stats.outbox_pending), (2, 1));
    }

    #[test]
    fn a_recipient_gone_queues_one_blocked_input_that_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("t.db");
        let mut store = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
        store
            .enqueue(&[text(1, "a1"), text(1, "a2")], t0())
            .unwrap_or_else(|e| panic!("{e}"));
        let (rows, _) = store
            .due_heads(Destination::Telegram, t0(), &|_| false, 100)
            .unwrap_or_else(|e| panic!("{e}"));
        let first = store
            .mark_recipient_gone(rows[0].id, 1, "403", t0())
            .unwrap_or_else(|e| panic!("{e}"));
        let (next, _) = store
            .due_heads(Destination::Telegram, t0(), &|_| false, 100)
            .unwrap_or_else(|e| panic!("{e}"));
        let second = store
            .mark_recipient_gone(next[0].id, 1, "403", t0())
            .unwrap_or_else(|e| panic!("{e}"));
        let Some(queued) = first else {
            panic!("no Blocked input queued")
        };
        assert_eq!((queued.customer_id, &queued.input), (1, &Input::Blocked));
        assert_eq!(second, None, "one Blocked input waits already");
        drop(store);

        // A stop before the input ran: it is still there at the next start.
        let mut store = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let pending = store.inputs_pending().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pending, std::slice::from_ref(&queued));
        let commit = Commit {
            source: Some(Source::Input(queued.id)),
            ..Commit::default()
        };
        let applied = store
            .commit(&commit, t0())
            .unwrap_or_else(|e| panic!("{e}"));
        let again = store
            .commit(&commit, t0())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (applied, again),
            (Committed::Applied, Committed::AlreadyProcessed)
        );
        assert!(
            store
                .inputs_pending()
                .unwrap_or_else(|e| panic!("{e}"))
                .is_empty()
        );
        let stats = store.stats(t0()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stats.outbox_failed, 2);
    }
}

mod bridge {
    //! The CRM bridge's records: echoes, duplicates, unknown phones.

    use chrono::{TimeZone, Utc};

    use crate::engine::{Customer, Input, Outcome, Session};
    use crate::outbox::{Destination, NewMessage, Payload};
    use crate::phone::Phone;
    use crate::store::{Fate, ManagerMessage, Store, WebhookCall};

    fn t0() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn phone(p: &str) -> Phone {
        Phone::parse(p).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A store with customer 5 whose phone is +79991234567.
    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store = Store::open(&dir.path().join("t.db")).unwrap_or_else(|e| panic!("{e}"));
        let customer = Customer {
            telegram_id: 5,
            first_name: "Анна".into(),
            last_name: Some("Петрова".into()),
            username: None,
        };
        let mut session = Session::new(customer, "main");
        session.phone = Some(phone("+79991234567"));
        let outcome = Outcome {
            effects: Vec::new(),
            session,
        };
        store
            .apply(&outcome, t0())
            .unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    }

    fn message(id: &str, p: &str) -> ManagerMessage {
        ManagerMessage {
            event: 0,
            message_id: Some(id.into()),
            phone: phone(p),
            text: "Здравствуйте".into(),
            file: None,
        }
    }

    fn accept(store: &mut Store, m: ManagerMessage) -> Fate {
        let call = WebhookCall {
            body: "{}".into(),
            reading: vec![serde_json::json!({"decision": "forward"})],
            messages: vec![m],
            extra: Vec::new(),
        };
        let notice = |p: &Phone| {
            vec![NewMessage {
                payload: Payload::TelegramText {
                    chat_id: -100,
                    text: format!("unknown {}", p.masked()),
                    markup: None,
                },
                customer_id: None,
                is_admin_notice: true,
            }]
        };
        let mut fates = store
            .accept_webhook(call, t0(), &notice)
            .unwrap_or_else(|e| panic!("{e}"));
        fates.pop().unwrap_or_else(|| panic!("no fate"))
    }

    #[test]
    fn a_manager_message_is_forwarded_once() {
        let (_dir, mut store) = store();
        let Fate::Forwarded(input) = accept(&mut store, message("m-1", "89991234567")) else {
            panic!("not forwarded");
        };
        assert_eq!(input.customer_id, 5);
        assert_eq!(input.input, Input::manager("Здравствуйте"));
        assert_eq!(
            accept(&mut store, message("m-1", "+79991234567")),
            Fate::Duplicate
        );
        let pending = store.inputs_pending().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pending.len(), 1);
        let log = store.webhook_log(10).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].reading[0]["fate"], "duplicate");
        assert_eq!(log[1].outcome, "1 events: forwarded 1");
    }

    #[test]
    fn our_own_message_coming_back_is_an_echo() {
        let (_dir, mut store) = store();
        store
            .enqueue(
                &[NewMessage {
                    payload: Payload::CrmText {
                        customer_id: 5,
                        target: "manager".into(),
                        channel: "clients_tg".into(),
                        text: "вопрос".into(),
                    },
                    customer_id: Some(5),
                    is_admin_notice: false,
                }],
                t0(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let (rows, _) = store
            .due_heads(Destination::Crm, t0(), &|_| false, 10)
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .mark_delivered(&rows[0], Some("90000001"), t0())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            accept(&mut store, message("90000001", "+79991234567")),
            Fate::Echo
        );
        assert!(
            store
                .inputs_pending()
                .unwrap_or_else(|e| panic!("{e}"))
                .is_empty()
        );
    }

    #[test]
    fn an_unknown_phone_is_told_to_the_admins() {
        let (_dir, mut store) = store();
        let fate = accept(&mut store, message("m-2", "+79990000000"));
        assert_eq!(fate, Fate::UnknownPhone(phone("+79990000000")));
        let (rows, _) = store
            .due_heads(Destination::Telegram, t0(), &|_| false, 10)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(&rows[0].payload, Payload::TelegramText { text, .. } if text == "unknown +7999***0000")
        );
    }

    #[test]
    fn the_crm_contact_carries_name_phone_and_the_crm_id_once_known() {
        let (_dir, mut store) = store();
        let contact = store.crm_contact(5).unwrap_or_else(|e| panic!("{e}"));
        let contact = contact.unwrap_or_else(|| panic!("customer 5"));
        assert_eq!(contact.name, "Анна Петрова");
        assert_eq!(contact.phone, Some(phone("+79991234567")));
        assert_eq!(contact.crm_user_id, None);
        store
            .set_crm_user(5, "12345", t0())
            .unwrap_or_else(|e| panic!("{e}"));
        let again = store.crm_contact(5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.and_then(|c| c.crm_user_id).as_deref(), Some("12345"));
        assert_eq!(store.crm_contact(6).unwrap_or_else(|e| panic!("{e}")), None);
    }

    #[test]
    fn our_own_text_coming_back_before_its_id_is_known_is_an_echo() {
        let (_dir, mut store) = store();
        store
            .enqueue(
                &[NewMessage {
                    payload: Payload::CrmText {
                        customer_id: 5,
                        target: "manager".into(),
                        channel: "clients_tg".into(),
                        text: "Здравствуйте".into(),
                    },
                    customer_id: Some(5),
                    is_admin_notice: false,
                }],
                t0(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        // The send is in flight: Wahelp calls back with an id we do not know yet.
        assert_eq!(
            accept(&mut store, message("m-9", "+79991234567")),
            Fate::Echo
        );
        // The same call again is a duplicate, not a second echo check.
        assert_eq!(
            accept(&mut store, message("m-9", "+79991234567")),
            Fate::Duplicate
        );
        // Someone else's words are forwarded.
        let mut other = message("m-10", "+79991234567");
        other.text = "Мастер будет в 10".into();
        assert!(matches!(accept(&mut store, other), Fate::Forwarded(_)));
    }

    #[test]
    fn a_message_to_an_unknown_phone_goes_through_when_sent_again_later() {
        let (_dir, mut store) = store();
        let first = accept(&mut store, message("m-3", "+79990000000"));
        assert!(matches!(first, Fate::UnknownPhone(_)));
        let again = accept(&mut store, message("m-3", "+79991234567"));
        assert!(matches!(again, Fate::Forwarded(_)), "{again:?}");
    }
}
