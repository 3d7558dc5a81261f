//! The database schema, versioned in code and applied at start.

use rusqlite::Connection;

/// Each entry moves the schema one version up; never edit a released one, add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: customers, sessions, bonus ledger, held messages.
    "CREATE TABLE customers (
        telegram_id     INTEGER PRIMARY KEY,
        first_name      TEXT NOT NULL,
        last_name       TEXT,
        username        TEXT,
        phone           TEXT,
        registered_at   TEXT,
        blocked_since   TEXT,
        welcome_granted INTEGER NOT NULL DEFAULT 0,
        created_at      TEXT NOT NULL
    );
    CREATE INDEX customers_phone ON customers (phone);
    CREATE TABLE sessions (
        telegram_id   INTEGER PRIMARY KEY REFERENCES customers (telegram_id),
        state         TEXT NOT NULL,
        manager_until TEXT,
        throttle      TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE bonus_ledger (
        id          INTEGER PRIMARY KEY,
        telegram_id INTEGER NOT NULL REFERENCES customers (telegram_id),
        delta       INTEGER NOT NULL,
        reason      TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        expires_at  TEXT
    );
    CREATE INDEX bonus_ledger_customer ON bonus_ledger (telegram_id);
    CREATE TABLE held_messages (
        id          INTEGER PRIMARY KEY,
        telegram_id INTEGER NOT NULL REFERENCES customers (telegram_id),
        text        TEXT NOT NULL,
        received_at TEXT NOT NULL
    );
    CREATE INDEX held_messages_customer ON held_messages (telegram_id);",
];

/// Applies every migration the database has not seen yet, each in its own transaction.
pub(super) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let applied = usize::try_from(current).unwrap_or(0);
    for (version, sql) in (1i64..).zip(MIGRATIONS).skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}
