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
