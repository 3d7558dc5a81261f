//! `flowbot backup` and `flowbot stats` against real database files.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use flowbot::engine::{Customer, Outcome, Session};
use flowbot::outbox::{NewMessage, Payload};
use flowbot::store::Store;
use rusqlite::Connection;

fn flowbot(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowbot"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_PATH")
        .env_remove("FLOW_PATH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run flowbot: {e}"))
}

fn message(i: usize) -> NewMessage {
    NewMessage {
        payload: Payload::TelegramText {
            chat_id: 7,
            text: format!("сообщение {i} ").repeat(20),
            markup: None,
        },
        customer_id: Some(7),
        is_admin_notice: false,
    }
}

#[test]
fn a_backup_taken_during_writes_opens_and_passes_the_integrity_check() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("bot.db");
    drop(Store::open(&db).unwrap_or_else(|e| panic!("{e}")));
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (db, stop, written) = (db.clone(), Arc::clone(&stop), Arc::clone(&written));
        std::thread::spawn(move || {
            let mut store = Store::open(&db).unwrap_or_else(|e| panic!("{e}"));
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<NewMessage> = (i..i + 50).map(message).collect();
                store
                    .enqueue(&batch, Utc::now())
                    .unwrap_or_else(|e| panic!("{e}"));
                i += 50;
                written.store(i, Ordering::Relaxed);
            }
        })
    };
    // Let the writer get going, then copy while it writes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while written.load(Ordering::Relaxed) < 2_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let copy = dir.path().join("copy.db");
    let out = flowbot(
        &[
            "backup",
            "--db",
            &db.display().to_string(),
            &copy.display().to_string(),
        ],
        dir.path(),
    );
    let during = written.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    writer
        .join()
        .unwrap_or_else(|_| panic!("the writer panicked"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("проверка целостности пройдена"));

    let conn = Connection::open(&copy).unwrap_or_else(|e| panic!("{e}"));
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(check, "ok");
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    // A consistent snapshot: whole batches only, taken while writing went on.
    assert!(rows > 0 && rows % 50 == 0, "{rows} rows");
    assert!(
        rows as usize <= during + 50,
        "{rows} rows, {during} written"
    );

    // A second backup never overwrites the first.
    let again = flowbot(
        &[
            "backup",
            "--db",
            &db.display().to_string(),
            &copy.display().to_string(),
        ],
        dir.path(),
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
}

#[test]
fn stats_prints_what_the_admins_see() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("bot.db");
    let mut store = Store::open(&db).unwrap_or_else(|e| panic!("{e}"));
    let customer = Customer {
        telegram_id: 7,
        first_name: "Анна".into(),
        last_name: None,
        username: None,
    };
    let mut session = Session::new(customer, "main");
    session.registered_at = Some(Utc::now());
    store
        .apply(
            &Outcome {
                effects: Vec::new(),
                session,
            },
            Utc::now(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .enqueue(&[message(1)], Utc::now())
        .unwrap_or_else(|e| panic!("{e}"));
    drop(store);
    let flow = concat!(env!("CARGO_MANIFEST_DIR"), "/flows/default.yaml");
    let out = flowbot(
        &["stats", "--db", &db.display().to_string(), "--flow", flow],
        dir.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Клиентов: 1 (новых сегодня: 1"), "{text}");
    assert!(text.contains("Очередь отправки: 1"), "{text}");

    let missing = flowbot(&["stats", "--db", "nope.db", "--flow", flow], dir.path());
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no database"));
}
