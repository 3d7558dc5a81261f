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
    // 2: the live bot: chat ids, the update inbox, the outbox, the message log.
    // Times in these tables are Unix milliseconds (UTC).
    "ALTER TABLE customers ADD COLUMN chat_id INTEGER;
    CREATE TABLE inbox (
        update_id    INTEGER PRIMARY KEY,
        raw          TEXT,
        received_at  INTEGER NOT NULL,
        processed_at INTEGER
    );
    CREATE INDEX inbox_pending ON inbox (update_id) WHERE processed_at IS NULL;
    CREATE INDEX inbox_processed ON inbox (processed_at) WHERE processed_at IS NOT NULL;
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        queue           TEXT NOT NULL,
        destination     TEXT NOT NULL,
        customer_id     INTEGER,
        is_admin_notice INTEGER NOT NULL DEFAULT 0,
        payload         TEXT NOT NULL,
        status          TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error      TEXT,
        created_at      INTEGER NOT NULL,
        finished_at     INTEGER,
        announced       INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX outbox_pending ON outbox (destination, queue, id) WHERE status = 'pending';
    CREATE INDEX outbox_dead ON outbox (announced) WHERE status = 'dead';
    CREATE INDEX outbox_finished ON outbox (finished_at) WHERE status != 'pending';
    CREATE TABLE message_log (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        customer_id INTEGER,
        chat_id     INTEGER,
        direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        kind        TEXT NOT NULL,
        text        TEXT
    );
    CREATE INDEX message_log_at ON message_log (at);",
    // 3: inputs that are not Telegram updates (a customer found gone by a
    // delivery, a manager's reply), stored before they are applied.
    "CREATE TABLE inputs (
        id           INTEGER PRIMARY KEY,
        customer_id  INTEGER NOT NULL,
        input        TEXT NOT NULL,
        origin       TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        processed_at INTEGER
    );
    CREATE INDEX inputs_pending ON inputs (customer_id) WHERE processed_at IS NULL;
    CREATE INDEX inputs_processed ON inputs (processed_at) WHERE processed_at IS NOT NULL;",
    // 4: the CRM bridge: each customer's Wahelp user id, the ids of CRM
    // messages we sent (their echo is ignored) and received (forwarded
    // once), and every webhook call with how it was read.
    "CREATE TABLE crm_users (
        customer_id INTEGER PRIMARY KEY,
        crm_user_id TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE TABLE crm_messages (
        message_id  TEXT PRIMARY KEY,
        origin      TEXT NOT NULL CHECK (origin IN ('sent', 'received')),
        customer_id INTEGER,
        at          INTEGER NOT NULL
    );
    CREATE INDEX crm_messages_at ON crm_messages (at);
    CREATE TABLE webhook_log (
        id          INTEGER PRIMARY KEY,
        received_at INTEGER NOT NULL,
        body        TEXT NOT NULL,
        reading     TEXT NOT NULL,
        outcome     TEXT NOT NULL
    );
    CREATE INDEX webhook_log_at ON webhook_log (received_at);",
    // 5: a webhook's echo check looks at one customer's CRM rows only.
    "CREATE INDEX outbox_crm_customer ON outbox (customer_id, status, finished_at)
        WHERE destination = 'crm';",
];

/// Applies every migration the database has not seen yet, each in its own
/// transaction. A database a newer flowbot has migrated further is refused:
/// this binary does not know what the newer one keeps there.
pub(super) fn migrate(conn: &mut Connection) -> super::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len();
    let applied = usize::try_from(current).unwrap_or(0);
    if applied > known {
        return Err(super::StoreError::NewerSchema {
            found: current,
            known,
        });
    }
    for (version, sql) in (1i64..).zip(MIGRATIONS).skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_of_a_newer_version_is_refused_and_left_alone() {
        let mut conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        migrate(&mut conn).unwrap_or_else(|e| panic!("{e}"));
        let newer = MIGRATIONS.len() as i64 + 1;
        conn.pragma_update(None, "user_version", newer)
            .unwrap_or_else(|e| panic!("{e}"));
        let err = migrate(&mut conn).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("newer flowbot"), "{err}");
        let left: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(left, newer);
    }
}
