//! Crash test of the real binary: `flowbot run` is SIGKILLed again and again
//! while it works through a burst of customers' messages, and restarted on
//! the same SQLite file. At the end nothing may be lost (every update
//! processed, every reply delivered), nothing applied twice (one welcome
//! bonus, the same outbox rows as a run without kills), and the replies
//! Telegram got twice (a kill between Telegram accepting a message and the
//! commit that marks it delivered) are counted and bounded.
//!
//! Each customer's script: `/start`, their own contact, «💰 Прайс», «Мои
//! бонусы», a free text; all customers' scripts are pushed at once. Kills
//! come by turns a random 20–300 ms after a start, after k more replies,
//! right when `getUpdates` hands out updates never served before, and right
//! when an offset is confirmed. The same script is pushed again (a new
//! burst, same customers) whenever the bot has finished everything, so the
//! kills keep hitting a busy bot.
//!
//! The expected replies come from a reference bot (the same binary, its own
//! fake Telegram and database) that gets the very same updates at the same
//! moments and is never killed.
//!
//! Knobs (environment of `cargo test`):
//! - `CRASH_KILLS`: kills (default 10, a few seconds; 100 take about 40 s);
//! - `CRASH_CUSTOMERS`: customers per burst (default 40);
//! - `CRASH_SEED`: seed of the random kill delays (printed at the start);
//! - `CRASH_KEEP`: keep the temporary folder (databases, bot logs);
//! - `CRASH_RUST_LOG`: the bots' log filter (default `warn`).
//!
//! Run with `cargo test --test crash -- --nocapture` to see the summary.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use support::bot;
use support::process::BotProcess;
use support::telegram::{FakeTelegram, TgUser};

const DEFAULT_KILLS: usize = 10;
const DEFAULT_CUSTOMERS: usize = 40;
/// Deliveries the bot has in flight at once (`concurrency` in
/// `app::telegram_settings`): one kill can double at most these.
const WORKER_CONCURRENCY: usize = 32;
/// A kill trigger that has not fired by then kills anyway.
const TRIGGER_LIMIT: Duration = Duration::from_secs(3);
/// Reply counts after which a "replies" trigger kills, in turn.
const REPLY_TRIGGERS: [usize; 6] = [1, 5, 20, 60, 150, 2];
/// First customer's Telegram id; the others follow.
const FIRST_CUSTOMER: i64 = 6_100_000_000;
/// Every wait for the bots to finish gets this plus [`FINAL_WAIT_PER_BURST`] per burst.
const FINAL_WAIT: Duration = Duration::from_secs(30);
const FINAL_WAIT_PER_BURST: Duration = Duration::from_secs(5);
/// After a kill, the fake records the requests that reached it until its
/// count stays the same for this long.
const SETTLE: Duration = Duration::from_millis(10);
/// Bots with nothing to do for this long while updates are missing have lost them.
const STUCK_FOR: Duration = Duration::from_secs(2);

/// One customer of the script.
struct Customer {
    user: TgUser,
    /// As Telegram sends a shared contact: digits, no plus.
    phone: String,
}

fn customers(n: usize) -> Vec<Customer> {
    (0..n)
        .map(|i| {
            let i = i64::try_from(i).unwrap_or_else(|e| panic!("{e}"));
            Customer {
                user: TgUser::new(FIRST_CUSTOMER + i, format!("Клиент{i}")),
                phone: format!("7999{:07}", 1_000_000 + i),
            }
        })
        .collect()
}

/// Steps of every customer's script.
const STEPS: usize = 5;

fn push_step(fake: &FakeTelegram, c: &Customer, step: usize) -> i64 {
    match step {
        0 => fake.push_text(&c.user, "/start"),
        1 => fake.push_contact(&c.user, &c.phone, Some(c.user.id)),
        2 => fake.push_text(&c.user, "💰 Прайс"),
        3 => fake.push_text(&c.user, "Мои бонусы"),
        _ => fake.push_text(
            &c.user,
            &format!(
                "Добрый день! Можно почистить диван в субботу? ({})",
                c.user.first_name
            ),
        ),
    }
}

/// Every customer runs the script once, all pushed at once (step by step,
/// so each `getUpdates` batch mixes many customers), to both fakes alike.
/// Returns the update ids (the same in both fakes).
fn push_burst(fakes: &[&FakeTelegram], customers: &[Customer]) -> Vec<i64> {
    let mut ids = Vec::with_capacity(customers.len() * STEPS);
    for step in 0..STEPS {
        for c in customers {
            let got: Vec<i64> = fakes.iter().map(|f| push_step(f, c, step)).collect();
            assert!(
                got.windows(2).all(|w| w[0] == w[1]),
                "the fakes gave different update ids: {got:?}"
            );
            ids.extend(got.first());
        }
    }
    ids
}

// ----- the database, read by the test --------------------------------------

fn open_db(path: &Path) -> rusqlite::Result<Connection> {
    // Read-write without create: the file must be the bot's; only SELECTs run.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// How far a bot got, from its database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    processed: i64,
    unprocessed: i64,
    telegram_pending: i64,
    telegram_delivered: i64,
    /// Pending rows whose delivery the bot noted in its receipts file (the
    /// next start marks them delivered without sending them again).
    telegram_receipted: i64,
}

fn read_progress(path: &Path) -> rusqlite::Result<Progress> {
    let conn = open_db(path)?;
    let (processed, unprocessed) = conn.query_row(
        "SELECT COUNT(processed_at), COUNT(*) - COUNT(processed_at) FROM inbox",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (telegram_pending, telegram_delivered) = conn.query_row(
        "SELECT COUNT(*) FILTER (WHERE status = 'pending'),
                COUNT(*) FILTER (WHERE status = 'delivered')
         FROM outbox WHERE destination = 'telegram'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let receipted = receipts(path);
    let mut telegram_receipted = 0;
    let mut stmt = conn
        .prepare("SELECT id FROM outbox WHERE destination = 'telegram' AND status = 'pending'")?;
    for id in stmt.query_map([], |r| r.get::<_, i64>(0))? {
        telegram_receipted += i64::from(receipted.contains(&id?));
    }
    Ok(Progress {
        processed,
        unprocessed,
        telegram_pending,
        telegram_delivered,
        telegram_receipted,
    })
}

/// Row ids in the bot's receipts file beside the database (complete lines only).
fn receipts(db: &Path) -> std::collections::HashSet<i64> {
    let mut path = db.as_os_str().to_owned();
    path.push("-receipts");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter_map(|l| l.split('\t').next()?.parse().ok())
        .collect()
}

/// Telegram rows marked delivered, in the database or in the receipts
/// file (0 before the database exists).
async fn delivered(path: &Path) -> usize {
    progress(path).await.map_or(0, |p| {
        usize::try_from(p.telegram_delivered + p.telegram_receipted).unwrap_or(0)
    })
}

/// `None` while the database or its tables do not exist yet.
async fn progress(path: &Path) -> Option<Progress> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || read_progress(&path).ok())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// How far a bot is from done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Everything pushed is processed and delivered, and Telegram has
    /// nothing unconfirmed.
    Finished,
    /// Nothing left to do, yet updates are missing: Telegram forgot them
    /// (offset confirmed) but the inbox never got them. The checks name them.
    Stuck,
    Working,
}

async fn state(fake: &FakeTelegram, db: &Path, pushed: usize) -> State {
    if fake.pending_updates() != 0 {
        return State::Working;
    }
    let pushed = i64::try_from(pushed).unwrap_or(i64::MAX);
    match progress(db).await {
        Some(p) if p.unprocessed == 0 && p.telegram_pending == 0 => {
            if p.processed == pushed {
                State::Finished
            } else {
                State::Stuck
            }
        }
        _ => State::Working,
    }
}

async fn finished(fake: &FakeTelegram, db: &Path, pushed: usize) -> bool {
    state(fake, db, pushed).await == State::Finished
}

/// What the checks compare, from one database (read after the bot stopped).
#[derive(Debug, Default)]
struct Snapshot {
    /// update id → processed_at.
    inbox: HashMap<i64, Option<i64>>,
    /// chat → texts of its `telegram_text` rows, in row order.
    telegram_texts: BTreeMap<i64, Vec<String>>,
    /// Telegram rows by status.
    telegram_status: BTreeMap<String, i64>,
    /// (customer, destination) → outbox rows.
    rows: BTreeMap<(i64, String), i64>,
    /// customer → (delta, reason) of its bonus ledger lines.
    ledger: BTreeMap<i64, Vec<(i64, String)>>,
    held: i64,
    /// (customer, direction) → message log lines.
    log: BTreeMap<(i64, String), i64>,
    /// customer → (phone, welcome granted, session state).
    customers: BTreeMap<i64, (Option<String>, bool, Option<String>)>,
}

fn read_snapshot(path: &Path) -> rusqlite::Result<Snapshot> {
    let conn = open_db(path)?;
    let mut s = Snapshot::default();
    let mut stmt = conn.prepare("SELECT update_id, processed_at FROM inbox")?;
    for r in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (id, at) = r?;
        s.inbox.insert(id, at);
    }
    let mut stmt =
        conn.prepare("SELECT destination, customer_id, payload, status FROM outbox ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for r in rows {
        let (destination, customer, payload, status) = r?;
        *s.rows
            .entry((customer.unwrap_or(-1), destination.clone()))
            .or_default() += 1;
        if destination != "telegram" {
            continue;
        }
        *s.telegram_status.entry(status).or_default() += 1;
        let payload: Value = serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{e}"));
        if payload.get("kind").and_then(Value::as_str) == Some("telegram_text") {
            let chat = payload.get("chat_id").and_then(Value::as_i64).unwrap_or(0);
            let text = payload.get("text").and_then(Value::as_str).unwrap_or("");
            s.telegram_texts
                .entry(chat)
                .or_default()
                .push(text.to_owned());
        }
    }
    let mut stmt =
        conn.prepare("SELECT telegram_id, delta, reason FROM bonus_ledger ORDER BY id")?;
    for r in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
        let (id, delta, reason): (i64, i64, String) = r?;
        s.ledger.entry(id).or_default().push((delta, reason));
    }
    s.held = conn.query_row("SELECT COUNT(*) FROM held_messages", [], |r| r.get(0))?;
    let mut stmt = conn.prepare(
        "SELECT COALESCE(customer_id, -1), direction, COUNT(*) FROM message_log
         GROUP BY 1, 2",
    )?;
    for r in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
        let (customer, direction, n): (i64, String, i64) = r?;
        s.log.insert((customer, direction), n);
    }
    let mut stmt = conn.prepare(
        "SELECT c.telegram_id, c.phone, c.welcome_granted, s.state
         FROM customers c LEFT JOIN sessions s ON s.telegram_id = c.telegram_id",
    )?;
    for r in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))? {
        let (id, phone, welcome, state) = r?;
        s.customers.insert(id, (phone, welcome, state));
    }
    Ok(s)
}

async fn snapshot(path: &Path) -> Snapshot {
    let path: PathBuf = path.to_owned();
    tokio::task::spawn_blocking(move || {
        read_snapshot(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

// ----- kills ------------------------------------------------------------------

/// When a started bot is killed.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    /// This long after the start.
    Delay(Duration),
    /// Once the fake recorded this many more successful sends.
    Replies(usize),
    /// As soon as `getUpdates` handed out updates it never served before
    /// (the bot is storing the batch, its offset not yet confirmed).
    Served,
    /// As soon as a `getUpdates` confirmed a higher offset (the bot is
    /// resuming and processing what it stored).
    Confirmed,
}

impl Trigger {
    fn kind(self) -> &'static str {
        match self {
            Trigger::Delay(_) => "delay",
            Trigger::Replies(_) => "replies",
            Trigger::Served => "served",
            Trigger::Confirmed => "confirmed",
        }
    }
}

fn trigger(kill: usize, rng: &mut fastrand::Rng) -> Trigger {
    let random_delay = Duration::from_millis(rng.u64(20..=300));
    match kill % 5 {
        1 => Trigger::Replies(REPLY_TRIGGERS[(kill / 5) % REPLY_TRIGGERS.len()]),
        2 => Trigger::Served,
        4 => Trigger::Confirmed,
        _ => Trigger::Delay(random_delay),
    }
}

/// Waits for `trigger` in a bot just started; says what happened. `Err` if
/// the bot exited on its own.
async fn await_trigger(
    trigger: Trigger,
    bot: &mut BotProcess,
    fake: &FakeTelegram,
    fresh: &[i64],
) -> Result<String, String> {
    let started = Instant::now();
    let sends = fake.successful_sends();
    let offset = fake.confirmed_offset();
    loop {
        bot.check_running()?;
        let fired = match trigger {
            Trigger::Delay(d) => started.elapsed() >= d,
            Trigger::Replies(k) => fake.successful_sends() >= sends + k,
            Trigger::Served => fresh
                .iter()
                .any(|id| fake.served_at(*id).is_some_and(|at| at >= started)),
            Trigger::Confirmed => fake.confirmed_offset() > offset,
        };
        let late = started.elapsed() >= TRIGGER_LIMIT;
        if fired || late {
            return Ok(format!(
                "{trigger:?}{} at +{} ms",
                if fired { "" } else { " (not reached)" },
                started.elapsed().as_millis(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Lets the fake record the requests that reached it just before a kill.
async fn settle(fake: &FakeTelegram) {
    let mut last = fake.successful_sends();
    for _ in 0..20 {
        tokio::time::sleep(SETTLE).await;
        let now = fake.successful_sends();
        if now == last {
            return;
        }
        last = now;
    }
}

/// Waits until the bots finished everything pushed, or have had nothing to
/// do for [`STUCK_FOR`] with updates missing (the checks then report them);
/// checks that they keep running.
async fn await_finished(
    bots: &mut [(&mut BotProcess, &FakeTelegram, &Path)],
    pushed: usize,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut stuck_since: Option<Instant> = None;
    loop {
        let (mut all_finished, mut all_idle) = (true, true);
        for (bot, fake, db) in bots.iter_mut() {
            bot.check_running()?;
            let state = state(fake, db, pushed).await;
            all_finished &= state == State::Finished;
            all_idle &= state != State::Working;
        }
        if all_finished {
            return Ok(());
        }
        stuck_since = if all_idle {
            stuck_since.or(Some(Instant::now()))
        } else {
            None
        };
        if stuck_since.is_some_and(|at| at.elapsed() >= STUCK_FOR) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let mut report = format!("timed out after {timeout:?} waiting for the bots to finish");
            for (_, fake, db) in bots.iter() {
                report.push_str(&format!(
                    "\n  {}: {:?} of {pushed} updates, {} unconfirmed in the fake",
                    db.display(),
                    progress(db).await,
                    fake.pending_updates()
                ));
            }
            return Err(report);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ----- comparisons ------------------------------------------------------------

fn counts(texts: &[String]) -> BTreeMap<&str, usize> {
    let mut m = BTreeMap::new();
    for t in texts {
        *m.entry(t.as_str()).or_default() += 1;
    }
    m
}

fn first_occurrences(texts: &[String]) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    texts
        .iter()
        .map(String::as_str)
        .filter(|t| seen.insert(*t))
        .collect()
}

/// Whether `received` is `expected` with some messages repeated right after
/// themselves (a row re-sent after a kill is the head of its chat's queue,
/// so its second copy comes next).
fn is_expected_with_repeats(expected: &[String], received: &[String]) -> bool {
    let mut next = 0;
    for text in received {
        if expected.get(next) == Some(text) {
            next += 1;
        } else if next == 0 || expected[next - 1] != *text {
            return false;
        }
    }
    next == expected.len()
}

fn short(text: &str) -> String {
    let line: String = text.chars().take(40).collect();
    line.replace('\n', " ")
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v:?}: {e}")),
        Err(_) => default,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_and_applies_nothing_twice() {
    let began = Instant::now();
    let kills = env_number("CRASH_KILLS", DEFAULT_KILLS);
    let n = env_number("CRASH_CUSTOMERS", DEFAULT_CUSTOMERS);
    let seed = env_number(
        "CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    println!("crash test: CRASH_KILLS={kills} CRASH_CUSTOMERS={n} CRASH_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);

    // Dropped last: the bots (killed on drop) go before their folder.
    let mut dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("CRASH_KEEP").is_some() {
        dir.disable_cleanup(true);
        println!("crash test: keeping {}", dir.path().display());
    }
    let crash_fake = FakeTelegram::start().await;
    let reference_fake = FakeTelegram::start().await;
    let crash_db = dir.path().join("crash.db");
    let reference_db = dir.path().join("reference.db");
    let bot_env = |fake: &FakeTelegram, db: &Path| {
        let mut env = bot::env(fake, db);
        if let Ok(filter) = std::env::var("CRASH_RUST_LOG") {
            env.insert("RUST_LOG".into(), filter);
        }
        env
    };
    let mut crash = BotProcess::new("crash", bot_env(&crash_fake, &crash_db), dir.path());
    let mut reference = BotProcess::new(
        "reference",
        bot_env(&reference_fake, &reference_db),
        dir.path(),
    );
    let fakes = [&crash_fake, &reference_fake];

    let customers = customers(n);
    let mut pushed = push_burst(&fakes, &customers);
    let mut bursts = 1;
    reference.start().unwrap_or_else(|e| panic!("{e}"));

    let mut kill_log = Vec::with_capacity(kills);
    let mut most_unrecorded = 0;
    // Kills and replies left to send again, per kind of trigger.
    let mut by_trigger: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for kill in 0..kills {
        let trigger = trigger(kill, &mut rng);
        // Keep the bot busy: a new burst when it has finished everything, and
        // one for the `Served` trigger when every update was served before.
        let mut fresh: Vec<i64> = pushed
            .iter()
            .copied()
            .filter(|id| crash_fake.served_at(*id).is_none())
            .collect();
        let idle = kill > 0 && finished(&crash_fake, &crash_db, pushed.len()).await;
        if idle || (matches!(trigger, Trigger::Served) && fresh.is_empty()) {
            fresh = push_burst(&fakes, &customers);
            pushed.extend(&fresh);
            bursts += 1;
        }
        let before = (crash_fake.successful_sends(), delivered(&crash_db).await);
        crash.start().unwrap_or_else(|e| panic!("{e}"));
        let what = await_trigger(trigger, &mut crash, &crash_fake, &fresh)
            .await
            .unwrap_or_else(|e| panic!("before kill {}: {e}", kill + 1));
        let killed = crash.kill().unwrap_or_else(|e| panic!("{e}"));
        assert!(killed, "kill {}: the bot was not running", kill + 1);
        settle(&crash_fake).await;
        let sent = crash_fake.successful_sends() - before.0;
        let recorded = delivered(&crash_db).await - before.1;
        // Sent but not marked delivered: these go out again after the restart.
        let unrecorded = sent.saturating_sub(recorded);
        most_unrecorded = most_unrecorded.max(unrecorded);
        let by = by_trigger.entry(trigger.kind()).or_insert((0, 0));
        *by = (by.0 + 1, by.1 + unrecorded);
        kill_log.push(format!(
            "kill {:>3}: {what}; {sent} sent, {recorded} marked delivered, {unrecorded} to send again",
            kill + 1
        ));
    }

    // The last start: it must finish everything.
    crash.start().unwrap_or_else(|e| panic!("{e}"));
    let timeout = FINAL_WAIT + FINAL_WAIT_PER_BURST * bursts;
    await_finished(
        &mut [
            (&mut crash, &crash_fake, &crash_db),
            (&mut reference, &reference_fake, &reference_db),
        ],
        pushed.len(),
        timeout,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // Both are idle: nothing is in flight, a kill changes nothing.
    crash.kill().unwrap_or_else(|e| panic!("{e}"));
    reference.kill().unwrap_or_else(|e| panic!("{e}"));
    let kills_done = crash.kills() - 1;

    let got = snapshot(&crash_db).await;
    let want = snapshot(&reference_db).await;

    // The reference must be clean itself: every row delivered exactly once.
    for c in &customers {
        let chat = c.user.id;
        let sent = reference_fake.sent_texts(chat);
        let rows = want.telegram_texts.get(&chat).cloned().unwrap_or_default();
        assert_eq!(
            sent, rows,
            "reference bot: chat {chat} got other texts than its outbox"
        );
        assert!(!sent.is_empty(), "reference bot: chat {chat} got no reply");
        let welcome = want.ledger.get(&chat).map_or(0, |l| l.len());
        assert_eq!(
            welcome, 1,
            "reference bot: customer {chat} has {welcome} bonus rows"
        );
    }

    let f = compare(
        &customers,
        &pushed,
        (&crash_fake, &got),
        (&reference_fake, &want),
    );

    if kill_log.len() <= 20 {
        for line in &kill_log {
            println!("  {line}");
        }
    }
    let by: Vec<String> = by_trigger
        .iter()
        .map(|(kind, (kills, again))| format!("{kind}: {kills} kills, {again} to send again"))
        .collect();
    println!("crash test: by trigger: {}", by.join("; "));
    println!(
        "crash test: {kills_done} kills, {} updates ({bursts} bursts of {n} customers), \
         {} sends for {} Telegram rows, one reply sent at most {} times, \
         at most {most_unrecorded} sent and not marked delivered at a kill, wall time {:.1} s",
        pushed.len(),
        crash_fake.successful_sends(),
        got.telegram_status.values().sum::<i64>(),
        f.most_copies,
        began.elapsed().as_secs_f64()
    );
    println!(
        "crash test: {kills_done} kills, {} updates, {} lost, {} applied twice, {} doubled replies",
        pushed.len(),
        f.lost_updates + f.lost_replies,
        f.applied_twice,
        f.doubles
    );
    let list = |items: &[String]| {
        let mut text: String = items.iter().take(30).map(|s| format!("\n  {s}")).collect();
        if items.len() > 30 {
            text.push_str(&format!("\n  … {} more", items.len() - 30));
        }
        text
    };
    assert!(
        f.lost.is_empty() && f.twice.is_empty() && f.order.is_empty(),
        "{} updates and {} replies lost, {} inputs or bonuses applied twice\n\
         lost:{}\napplied twice or changed:{}\nout of order:{}\nkills:{}",
        f.lost_updates,
        f.lost_replies,
        f.applied_twice,
        list(&f.lost),
        list(&f.twice),
        list(&f.order),
        list(&kill_log)
    );
    assert!(
        most_unrecorded <= WORKER_CONCURRENCY,
        "a kill left {most_unrecorded} replies sent but not marked delivered \
         (at most {WORKER_CONCURRENCY} deliveries are in flight)"
    );
    assert!(
        f.doubles <= kills_done * WORKER_CONCURRENCY,
        "{} doubled replies for {kills_done} kills (at most {WORKER_CONCURRENCY} per kill)",
        f.doubles
    );
    assert_eq!(kills_done, kills, "not every kill hit a running bot");
}

/// What the crash run got wrong against the reference.
#[derive(Debug, Default)]
struct Findings {
    /// Problems where something is missing.
    lost: Vec<String>,
    /// Problems where something is there too often or differs.
    twice: Vec<String>,
    /// Chats whose replies came out of order.
    order: Vec<String>,
    /// Pushed updates not processed.
    lost_updates: usize,
    /// Replies the reference sent and the crash run did not.
    lost_replies: usize,
    /// Inputs handled once more than in the reference (message log) plus
    /// welcome bonuses beyond the first.
    applied_twice: usize,
    /// Sends beyond the expected ones, per chat and text.
    doubles: usize,
    /// The most times one reply reached its chat (1: never doubled).
    most_copies: usize,
}

fn compare(
    customers: &[Customer],
    pushed: &[i64],
    (fake, got): (&FakeTelegram, &Snapshot),
    (reference_fake, want): (&FakeTelegram, &Snapshot),
) -> Findings {
    let mut f = Findings {
        most_copies: 1,
        ..Findings::default()
    };

    // None lost: every update processed, every row delivered.
    for id in pushed {
        match got.inbox.get(id) {
            Some(Some(_)) => continue,
            Some(None) => f.lost.push(format!("update {id} stored, never processed")),
            None => f.lost.push(format!("update {id} never stored")),
        }
        f.lost_updates += 1;
    }
    if got.inbox.len() > pushed.len() {
        f.twice.push(format!(
            "{} inbox rows, {} updates pushed",
            got.inbox.len(),
            pushed.len()
        ));
    }
    for (status, count) in &got.telegram_status {
        if status != "delivered" {
            f.lost
                .push(format!("{count} Telegram outbox rows are {status}"));
        }
    }

    // Replies: what each chat received against what the reference's got.
    for c in customers {
        let chat = c.user.id;
        let expected = reference_fake.sent_texts(chat);
        let received = fake.sent_texts(chat);
        let (want_n, got_n) = (counts(&expected), counts(&received));
        let mut missing = 0;
        for (text, n) in &want_n {
            let have = got_n.get(text).copied().unwrap_or(0);
            if have < *n {
                missing += n - have;
                f.lost
                    .push(format!("chat {chat}: {have} of {n} «{}»", short(text)));
            }
        }
        f.lost_replies += missing;
        for (text, n) in &got_n {
            let allowed = want_n.get(text).copied().unwrap_or(0);
            if *n > allowed {
                f.doubles += n - allowed;
                f.most_copies = f.most_copies.max(n - allowed + 1);
                if allowed == 0 {
                    f.twice
                        .push(format!("chat {chat}: unexpected «{}» ×{n}", short(text)));
                }
            }
        }
        if missing > 0 {
            continue;
        }
        if first_occurrences(&expected) != first_occurrences(&received) {
            let show = |texts: &[String]| -> Vec<String> {
                first_occurrences(texts).iter().map(|t| short(t)).collect()
            };
            f.order.push(format!(
                "chat {chat}: first occurrences {:?}, expected {:?}",
                show(&received),
                show(&expected)
            ));
        } else if !is_expected_with_repeats(&expected, &received) {
            f.order.push(format!(
                "chat {chat}: its {} texts are not the {} expected with repeats in place",
                received.len(),
                expected.len()
            ));
        }
    }
    let chats: std::collections::HashSet<i64> = customers.iter().map(|c| c.user.id).collect();
    let stray = fake
        .successful_send_calls()
        .iter()
        .filter(|call| !call.chat_id().is_some_and(|id| chats.contains(&id)))
        .count();
    if stray > 0 {
        f.twice
            .push(format!("{stray} sends to chats that are not customers'"));
    }

    // None applied twice: the same rows and lines as the reference.
    for c in customers {
        let chat = c.user.id;
        let rows = got.telegram_texts.get(&chat).cloned().unwrap_or_default();
        let want_rows = want.telegram_texts.get(&chat).cloned().unwrap_or_default();
        if rows != want_rows {
            let at = rows
                .iter()
                .zip(&want_rows)
                .take_while(|(a, b)| a == b)
                .count();
            f.twice.push(format!(
                "chat {chat}: {} Telegram rows, the reference has {}; from #{at}: {:?} vs {:?}",
                rows.len(),
                want_rows.len(),
                rows.get(at).map(|t| short(t)),
                want_rows.get(at).map(|t| short(t)),
            ));
        }
        let ledger = got.ledger.get(&chat).cloned().unwrap_or_default();
        let welcome = ledger.iter().filter(|(_, r)| r == "welcome").count();
        if welcome != 1 {
            f.applied_twice += welcome.saturating_sub(1);
            let list = if welcome > 1 {
                &mut f.twice
            } else {
                &mut f.lost
            };
            list.push(format!("customer {chat}: {welcome} welcome bonus rows"));
        }
        if Some(&ledger) != want.ledger.get(&chat) {
            f.twice.push(format!(
                "customer {chat}: ledger {ledger:?}, the reference's {:?}",
                want.ledger.get(&chat)
            ));
        }
        if got.customers.get(&chat) != want.customers.get(&chat) {
            f.twice.push(format!(
                "customer {chat}: (phone, welcome, state) {:?}, the reference's {:?}",
                got.customers.get(&chat),
                want.customers.get(&chat)
            ));
        }
        let inputs = |s: &Snapshot| s.log.get(&(chat, "in".to_owned())).copied().unwrap_or(0);
        let extra = inputs(got) - inputs(want);
        f.applied_twice += usize::try_from(extra).unwrap_or(0);
    }
    for (what, got_rows, want_rows) in [
        ("outbox rows", &got.rows, &want.rows),
        ("message log lines", &got.log, &want.log),
    ] {
        let keys: std::collections::BTreeSet<&(i64, String)> =
            got_rows.keys().chain(want_rows.keys()).collect();
        for key in keys {
            let have = got_rows.get(key).copied().unwrap_or(0);
            let should = want_rows.get(key).copied().unwrap_or(0);
            if have != should {
                let list = if have > should {
                    &mut f.twice
                } else {
                    &mut f.lost
                };
                list.push(format!(
                    "customer {} {}: {have} {what}, the reference has {should}",
                    key.0, key.1
                ));
            }
        }
    }
    if got.held != 0 {
        f.twice.push(format!("{} held messages left", got.held));
    }
    if got.customers.len() != customers.len() {
        f.twice.push(format!(
            "{} customers stored, {} pushed",
            got.customers.len(),
            customers.len()
        ));
    }
    f
}
