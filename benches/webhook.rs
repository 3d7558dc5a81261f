//! Webhook throughput: `wrk` POSTs authenticated operator messages to a real
//! bot process over 127.0.0.1 while the fake Telegram Bot API of the
//! integration tests receives what the bot forwards.
//!
//! 1. The fake Telegram starts; the bot (the release binary, `flowbot run`,
//!    with a SQLite file in a temporary folder, Telegram rate limits off,
//!    `WAHELP_WEBHOOK_SECRET` set, no `WAHELP_PROJECT_ID`: CRM sends are not
//!    part of this) starts against it with its HTTP server on a free
//!    loopback port.
//! 2. K customers register through the fake Telegram (`/start`, then their
//!    own contact with a distinct phone `+7999` + index on 7 digits); the
//!    bench waits for the 4 replies each.
//! 3. `wrk` runs `bench/webhook/operator.lua` against
//!    `/wahelp/webhook?token=SECRET`: every request is one operator message
//!    (a `channel.message.created` event, `destination: from_operator`) with
//!    a message id of its own, rotating over the K phones. The Lua script's
//!    `done()` prints the responses by status and exact latency percentiles.
//! 4. After wrk stops, the bench waits (at most `WEBHOOK_TIMEOUT_SECS`) until
//!    every manager message the bot stored (its `crm_messages` table, read
//!    read-only) reached its customer as a `sendMessage`: each message's
//!    text ends with `#<id>/<customer index>`, so every delivery is matched
//!    to its request; none may be missing, doubled or in the wrong chat.
//!    It stops waiting early when nothing was forwarded for 5 s and the
//!    outbox holds nothing for Telegram (messages stuck as unprocessed
//!    inputs); the bot is then started again on the same database to see
//!    whether a restart sends them (reported, the bench still fails).
//!
//! Reported: requests/s and latency p50/p90/p99 (wrk's), non-2xx responses
//! and socket errors, messages stored (more than wrk's 200s when requests in
//! flight at the end were stored but their answers cut off), forwards
//! delivered, the backlog when wrk stopped and how long the outbox took to
//! drain after that, the forwarding rate during and after wrk, the time
//! from storing a message to its `sendMessage`, the bot's CPU time per 1000
//! requests (utime + stime from `/proc/<pid>/stat`, from wrk's start to the
//! drain's end) and by thread (`flowbot-db` is the database thread), wrk's
//! own CPU,
//! the bot's peak RSS (`VmHWM`), what was left in the database (inputs not
//! processed, outbox rows by status) and the bot's webhook counters from
//! `/metrics`. wrk, the bot and this harness (the fake Telegram) share the
//! machine's cores.
//!
//! wrk is a closed loop: each connection sends its next request when the
//! previous answer arrives, so the latency is mostly queueing at
//! saturation, and wrk 4 does not correct for coordinated omission.
//!
//! `cargo bench --bench webhook` runs the measurement and fails when wrk is
//! missing (`apt-get install wrk`). Run by `cargo test --benches` (no
//! `--bench` argument) it is a smoke run: 4 customers, 1 thread, 4
//! connections, 2 seconds, the debug binary; skipped with a note when wrk is
//! missing.
//!
//! Environment (the first four are ignored by the smoke run):
//! `WEBHOOK_CUSTOMERS` (default 200), `WEBHOOK_CONNECTIONS` (wrk `-c`,
//! default 32), `WEBHOOK_THREADS` (wrk `-t`, default 2, at most the
//! connections), `WEBHOOK_SECS` (wrk `-d`, default 10), `WEBHOOK_TIMEOUT_SECS`
//! (registration and drain, each; default 120), `WEBHOOK_WRK` (the wrk
//! program, default `wrk`), `WEBHOOK_RUST_LOG` (the bot's `RUST_LOG`,
//! default `warn`), `WEBHOOK_BOT_LOG` (copy the bot's log to this file at the
//! end), `WEBHOOK_DB_DIR` (where the temporary folder with the database
//! goes; `/dev/shm` takes fsync out of the picture).

// The test helpers, included file by file like benches/e2e.rs does.
#[allow(dead_code)]
#[path = "../tests/support/bot.rs"]
mod bot;
#[path = "support/child.rs"]
mod child;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/measure.rs"]
mod measure;
#[path = "../tests/support/telegram.rs"]
mod telegram;
#[path = "../tests/support/wait.rs"]
mod wait;

use child::BotProcess;
use measure::{Latencies, children_ticks, clock_ticks, cpu_ticks, machine_ticks, ms, rss_kb};

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};
use telegram::{FakeTelegram, TgUser};

/// Telegram ids of the customers: `FIRST_CUSTOMER + i`, phone `+7999` + `i`
/// on 7 digits (what `bench/webhook/operator.lua` sends).
const FIRST_CUSTOMER: i64 = 6_200_000_000;

/// The wrk script.
const LUA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/webhook/operator.lua");

/// The smoke run (`cargo test --benches`).
const SMOKE_CUSTOMERS: usize = 4;
const SMOKE_THREADS: usize = 1;
const SMOKE_CONNECTIONS: usize = 4;
const SMOKE_SECS: u64 = 2;

/// How long to wait for the bot to start polling and to stop.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// How long after wrk exits requests it cut off may still be stored.
const SETTLE: Duration = Duration::from_millis(500);

/// The drain gives up when nothing was forwarded for this long and the
/// outbox holds nothing for Telegram.
const STALL: Duration = Duration::from_secs(5);

/// Messages waiting in the outbox for Telegram.
const TELEGRAM_PENDING: &str =
    "SELECT count(*) FROM outbox WHERE destination = 'telegram' AND status = 'pending'";

/// Manager messages stored as inputs and not processed yet.
const CRM_INPUTS_PENDING: &str =
    "SELECT count(*) FROM inputs WHERE origin = 'crm' AND processed_at IS NULL";

/// How the wait for the forwards ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Drained {
    Yes,
    /// Nothing forwarded for [`STALL`] with nothing pending in the outbox.
    Stalled,
    TimedOut,
}

/// How often the drain looks at what the fake received.
const DRAIN_POLL: Duration = Duration::from_millis(25);

/// How long a restarted bot gets to send the messages stuck before.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(15);

/// Replies a customer gets for `/start` (greeting, ask for the phone) and
/// for their contact (phone saved, welcome bonus).
const START_REPLIES: usize = 2;
const CONTACT_REPLIES: usize = 2;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let settings = match Settings::read(bench) {
        Ok(s) => s,
        Err(e) => fail(&e),
    };
    let wrk = match wrk_version(&settings.wrk) {
        Ok(v) => v,
        Err(e) if bench => fail(&format!("{e}; install it: apt-get install wrk")),
        Err(e) => {
            println!(
                "\nwebhook: smoke run skipped: {e} (apt-get install wrk to run it; `cargo bench --bench webhook` measures)"
            );
            return;
        }
    };
    harness::run("webhook", run(&settings, &wrk));
}

fn fail(message: &str) -> ! {
    harness::fail("webhook", message)
}

struct Settings {
    bench: bool,
    customers: usize,
    threads: usize,
    connections: usize,
    secs: u64,
    timeout: Duration,
    wrk: String,
    rust_log: String,
    keep_log: Option<String>,
    db_dir: Option<String>,
}

impl Settings {
    fn read(bench: bool) -> Result<Settings, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &str, default: u64| -> Result<u64, String> {
            var(name).map_or(Ok(default), |v| {
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name}={v:?} is not a positive integer"))
            })
        };
        let size = |name: &str, default: u64| -> Result<usize, String> {
            usize::try_from(number(name, default)?).map_err(|e| format!("{name}: {e}"))
        };
        let (customers, threads, connections, secs) = if bench {
            let connections = size("WEBHOOK_CONNECTIONS", 32)?;
            (
                size("WEBHOOK_CUSTOMERS", 200)?,
                size("WEBHOOK_THREADS", 2)?.min(connections),
                connections,
                number("WEBHOOK_SECS", 10)?,
            )
        } else {
            (
                SMOKE_CUSTOMERS,
                SMOKE_THREADS,
                SMOKE_CONNECTIONS,
                SMOKE_SECS,
            )
        };
        if customers > 9_999_999 {
            return Err("WEBHOOK_CUSTOMERS: at most 9999999 (7-digit phone suffixes)".into());
        }
        Ok(Settings {
            bench,
            customers,
            threads,
            connections,
            secs,
            timeout: Duration::from_secs(number("WEBHOOK_TIMEOUT_SECS", 120)?),
            wrk: var("WEBHOOK_WRK").unwrap_or_else(|| "wrk".to_owned()),
            rust_log: var("WEBHOOK_RUST_LOG").unwrap_or_else(|| "warn".to_owned()),
            keep_log: var("WEBHOOK_BOT_LOG"),
            db_dir: var("WEBHOOK_DB_DIR"),
        })
    }
}

/// wrk's version line (`wrk -v` prints it, then the usage, and exits 1).
fn wrk_version(program: &str) -> Result<String, String> {
    let out = Command::new(program)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program:?} ({e}): wrk is not installed"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find(|l| l.trim_start().starts_with("wrk "))
        .map(|l| l.trim().to_owned())
        .ok_or_else(|| format!("{program:?} -v does not look like wrk: {}", text.trim()))
}

/// `flowbot run`, the binary cargo built for this bench.
fn flowbot_run() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowbot"));
    c.arg("run");
    c
}

/// CPU ticks of each thread of a process, by thread name (threads of one
/// name summed), most first.
fn thread_ticks(pid: u32) -> Vec<(String, u64, usize)> {
    let mut by_name: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        let name = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        if let Ok(ticks) = cpu_ticks(&format!("{pid}/task/{tid}")) {
            let entry = by_name.entry(name).or_default();
            entry.0 += ticks;
            entry.1 += 1;
        }
    }
    let mut list: Vec<(String, u64, usize)> = by_name
        .into_iter()
        .map(|(name, (ticks, n))| (name, ticks, n))
        .collect();
    list.sort_by_key(|t| std::cmp::Reverse(t.1));
    list
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn customer_index(chat_id: i64, count: usize) -> Option<usize> {
    let i = usize::try_from(chat_id.checked_sub(FIRST_CUSTOMER)?).ok()?;
    (i < count).then_some(i)
}

/// A GET on the bot's HTTP server: (status, body).
async fn get(http: &str, path: &str) -> Result<(u16, String), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(format!("http://{http}{path}"))
        .send()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    Ok((status, body))
}

/// Waits until the bot polls Telegram and its HTTP server answers.
async fn wait_started(fake: &FakeTelegram, bot: &mut BotProcess, http: &str) -> Result<(), String> {
    let started = Instant::now();
    loop {
        bot.alive()?;
        let polled = fake
            .wait_until("the first getUpdates", Duration::from_millis(100), |f| {
                f.calls().iter().any(|c| c.method == "getupdates")
            })
            .await
            .is_ok();
        if polled && matches!(get(http, "/healthz").await, Ok((200, _))) {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!(
                "the bot did not start (poll and answer /healthz) within {START_TIMEOUT:?}; its log:\n{}",
                bot.log_tail()
            ));
        }
    }
}

/// Successful `sendMessage` calls per customer chat, counted from the
/// fake's record as it grows.
struct ChatCounter {
    seen: usize,
    per_chat: Vec<usize>,
    texts: Vec<Vec<String>>,
}

impl ChatCounter {
    fn new(customers: usize) -> ChatCounter {
        ChatCounter {
            seen: 0,
            per_chat: vec![0; customers],
            texts: vec![Vec::new(); customers],
        }
    }

    fn scan(&mut self, fake: &FakeTelegram) {
        let calls = fake.calls_since(self.seen);
        self.seen += calls.len();
        for call in calls {
            if call.failed || call.method != "sendmessage" {
                continue;
            }
            if let Some(i) = call
                .chat_id()
                .and_then(|c| customer_index(c, self.per_chat.len()))
            {
                self.per_chat[i] += 1;
                self.texts[i].push(call.text().unwrap_or_default().to_owned());
            }
        }
    }

    /// Waits until every customer chat has at least `n` messages.
    async fn wait_for(
        &mut self,
        fake: &FakeTelegram,
        bot: &mut BotProcess,
        n: usize,
        timeout: Duration,
        what: &str,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.scan(fake);
            if self.per_chat.iter().all(|c| *c >= n) {
                return Ok(());
            }
            bot.alive()?;
            let now = Instant::now();
            if now >= deadline {
                let short = self.per_chat.iter().filter(|c| **c < n).count();
                return Err(format!(
                    "{what}: {short} customers did not get {n} replies within {timeout:?}; the bot's log:\n{}",
                    bot.log_tail()
                ));
            }
            let known = self.seen;
            let _ = fake
                .wait_until(
                    "a call",
                    Duration::from_millis(250).min(deadline - now),
                    move |f| f.call_count() > known,
                )
                .await;
        }
    }
}

/// Registers every customer: `/start`, then their own contact.
async fn register(
    fake: &FakeTelegram,
    bot: &mut BotProcess,
    customers: &[TgUser],
    timeout: Duration,
) -> Result<(), String> {
    let mut counter = ChatCounter::new(customers.len());
    for user in customers {
        fake.push_text(user, "/start");
    }
    counter
        .wait_for(fake, bot, START_REPLIES, timeout, "/start")
        .await?;
    for (i, user) in customers.iter().enumerate() {
        fake.push_contact(user, &format!("+7999{i:07}"), Some(user.id));
    }
    counter
        .wait_for(
            fake,
            bot,
            START_REPLIES + CONTACT_REPLIES,
            timeout,
            "contact",
        )
        .await?;
    for (i, texts) in counter.texts.iter().enumerate() {
        let saved = texts.get(START_REPLIES).map(String::as_str).unwrap_or("");
        if !saved.contains("Спасибо, номер") {
            return Err(format!(
                "customer {i}: expected the phone to be saved, got {saved:?}"
            ));
        }
        if texts.len() != START_REPLIES + CONTACT_REPLIES {
            return Err(format!(
                "customer {i}: {} replies while registering, expected {}: {texts:?}",
                texts.len(),
                START_REPLIES + CONTACT_REPLIES
            ));
        }
    }
    Ok(())
}

/// What wrk reported.
#[derive(Debug, Default)]
struct WrkResult {
    /// `Requests/sec:` of wrk's own summary.
    rps: f64,
    duration: Duration,
    /// Responses wrk counted.
    requests: u64,
    /// Requests the script wrote (ids handed out), over all threads.
    written: u64,
    /// Responses by HTTP status.
    statuses: BTreeMap<u16, u64>,
    errors_connect: u64,
    errors_read: u64,
    errors_write: u64,
    errors_timeout: u64,
    /// Non-2xx or 3xx responses.
    errors_status: u64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
}

impl WrkResult {
    fn ok(&self) -> u64 {
        self.statuses.get(&200).copied().unwrap_or(0)
    }

    fn socket_errors(&self) -> u64 {
        self.errors_connect + self.errors_read + self.errors_write + self.errors_timeout
    }
}

/// `key=value` pairs of a `webhook-lua` line.
fn pairs(line: &str) -> HashMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect()
}

fn parse_wrk(output: &str) -> Result<WrkResult, String> {
    let mut r = WrkResult::default();
    let mut seen = (false, false, false, false);
    for line in output.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().map_err(|e| format!("Requests/sec: {e}"))?;
            seen.0 = true;
        } else if let Some(rest) = line.strip_prefix("webhook-lua total ") {
            let p = pairs(rest);
            let num = |k: &str| p.get(k).and_then(|v| v.parse::<u64>().ok());
            r.written = num("written").ok_or("no written")?;
            for part in p.get("statuses").unwrap_or(&"").split(',') {
                if let Some((code, n)) = part.split_once('=') {
                    let code = code.parse().map_err(|e| format!("status {code}: {e}"))?;
                    let n = n.parse().map_err(|e| format!("status count {n}: {e}"))?;
                    r.statuses.insert(code, n);
                }
            }
            seen.1 = true;
        } else if let Some(rest) = line.strip_prefix("webhook-lua summary ") {
            let p = pairs(rest);
            let num = |k: &str| {
                p.get(k)
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| format!("summary: no {k}"))
            };
            r.duration = Duration::from_micros(num("duration_us")?);
            r.requests = num("requests")?;
            r.errors_connect = num("connect")?;
            r.errors_read = num("read")?;
            r.errors_write = num("write")?;
            r.errors_status = num("status")?;
            r.errors_timeout = num("timeout")?;
            seen.2 = true;
        } else if let Some(rest) = line.strip_prefix("webhook-lua latency_us ") {
            let p = pairs(rest);
            let us = |k: &str| {
                p.get(k)
                    .and_then(|v| v.parse::<f64>().ok())
                    .map(|v| Duration::from_secs_f64(v.max(0.0) / 1e6))
                    .ok_or_else(|| format!("latency: no {k}"))
            };
            r.p50 = us("p50")?;
            r.p90 = us("p90")?;
            r.p99 = us("p99")?;
            r.p999 = us("p999")?;
            r.max = us("max")?;
            seen.3 = true;
        }
    }
    match seen {
        (true, true, true, true) => Ok(r),
        _ => Err(format!(
            "wrk's output lacks Requests/sec or a webhook-lua line (found {seen:?})"
        )),
    }
}

/// One forwarded message the fake Telegram received.
struct Delivery {
    chat: i64,
    /// The customer index in the text.
    index: usize,
    at: Instant,
}

/// The forwards seen so far, by message id.
struct Deliveries {
    seen: usize,
    customers: usize,
    by_id: HashMap<String, Vec<Delivery>>,
    /// `sendMessage`s to customers without a `#id/index` (not a forward).
    unparsed: Vec<String>,
    /// Send calls of other kinds or to other chats.
    other: usize,
    last_at: Option<Instant>,
}

impl Deliveries {
    fn new(seen: usize, customers: usize) -> Deliveries {
        Deliveries {
            seen,
            customers,
            by_id: HashMap::new(),
            unparsed: Vec::new(),
            other: 0,
            last_at: None,
        }
    }

    fn scan(&mut self, fake: &FakeTelegram) {
        let calls = fake.calls_since(self.seen);
        self.seen += calls.len();
        for call in calls {
            if call.failed || !telegram::is_send_method(&call.method) {
                continue;
            }
            let chat = call.chat_id();
            let to_customer = chat.and_then(|c| customer_index(c, self.customers));
            if call.method != "sendmessage" || to_customer.is_none() {
                self.other += 1;
                continue;
            }
            let text = call.text().unwrap_or_default();
            let tag = text.rsplit_once('#').and_then(|(_, tag)| {
                let (id, index) = tag.trim().split_once('/')?;
                Some((id.to_owned(), index.parse::<usize>().ok()?))
            });
            match (tag, chat) {
                (Some((id, index)), Some(chat)) => {
                    self.by_id.entry(id).or_default().push(Delivery {
                        chat,
                        index,
                        at: call.at,
                    });
                    self.last_at = Some(self.last_at.map_or(call.at, |t| t.max(call.at)));
                }
                _ => self.unparsed.push(text.chars().take(120).collect()),
            }
        }
    }

    fn distinct(&self) -> usize {
        self.by_id.len()
    }
}

/// The bot's database, read-only while it runs.
struct Database(Connection);

/// A stored manager message: (customer, when it was stored, Unix ms).
type Stored = HashMap<String, (i64, i64)>;

impl Database {
    fn open(path: &Path) -> Result<Database, String> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        Ok(Database(conn))
    }

    fn count(&self, sql: &str) -> Result<u64, String> {
        self.0
            .query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| format!("{sql}: {e}"))
    }

    /// Manager messages stored (received from the webhook and not
    /// duplicates).
    fn stored_count(&self) -> Result<u64, String> {
        self.count("SELECT count(*) FROM crm_messages WHERE origin = 'received'")
    }

    fn stored(&self) -> Result<Stored, String> {
        let sql = "SELECT message_id, customer_id, at FROM crm_messages WHERE origin = 'received'";
        let mut stmt = self.0.prepare(sql).map_err(|e| format!("{sql}: {e}"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    (
                        r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                        r.get::<_, i64>(2)?,
                    ),
                ))
            })
            .map_err(|e| format!("{sql}: {e}"))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| format!("{sql}: {e}"))
    }

    /// The `#id` of every manager message stored as an input and not
    /// processed yet (read from the input's JSON).
    fn pending_crm_ids(&self) -> Result<Vec<String>, String> {
        let sql = "SELECT input FROM inputs WHERE origin = 'crm' AND processed_at IS NULL";
        let mut stmt = self.0.prepare(sql).map_err(|e| format!("{sql}: {e}"))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| format!("{sql}: {e}"))?;
        let mut ids = Vec::new();
        for input in rows {
            let input = input.map_err(|e| format!("{sql}: {e}"))?;
            let id = input.rsplit_once('#').map(|(_, tag)| {
                tag.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            });
            ids.push(id.unwrap_or_default());
        }
        Ok(ids)
    }

    /// Rows by (destination, status) in the outbox.
    fn outbox(&self) -> Result<Vec<(String, String, u64)>, String> {
        let sql = "SELECT destination, status, count(*) FROM outbox GROUP BY 1, 2 ORDER BY 1, 2";
        let mut stmt = self.0.prepare(sql).map_err(|e| format!("{sql}: {e}"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                ))
            })
            .map_err(|e| format!("{sql}: {e}"))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| format!("{sql}: {e}"))
    }
}

/// `line` without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The bot's webhook and forward counters from `/metrics`.
fn metric_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            l.starts_with("flowbot_webhook_calls_total")
                || l.starts_with("flowbot_forwards_total")
                || l.starts_with("flowbot_outbox_depth")
                || l.starts_with("flowbot_outbox_dead")
        })
        .map(str::to_owned)
        .collect()
}

async fn run(settings: &Settings, wrk_name: &str) -> Result<(), String> {
    let ticks_per_sec = clock_ticks().0;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let fake = FakeTelegram::start().await;
    let dir = match &settings.db_dir {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;
    let db_path = dir.path().join("bot.db");
    let mut rng = fastrand::Rng::new();
    let secret: String = (0..32).map(|_| rng.alphanumeric()).collect();
    let mut env = bot::env(&fake, &db_path);
    for (name, value) in [
        ("TELEGRAM_RATE_GLOBAL", "0"),
        ("TELEGRAM_RATE_PER_CHAT", "0"),
        ("TELEGRAM_POLL_TIMEOUT_SECS", "1"),
        ("RUST_LOG", settings.rust_log.as_str()),
        ("WAHELP_WEBHOOK_SECRET", secret.as_str()),
    ] {
        env.insert(name.to_owned(), value.to_owned());
    }
    let http = env
        .get("HTTP_LISTEN")
        .cloned()
        .ok_or("bot::env sets no HTTP_LISTEN")?;
    let build = if settings.bench { "release" } else { "debug" };
    let mut bot = BotProcess::spawn(flowbot_run(), &env, dir.path(), "bot.log")?;
    wait_started(&fake, &mut bot, &http).await?;

    let users: Vec<TgUser> = (0..settings.customers)
        .map(|i| TgUser::new(FIRST_CUSTOMER + i as i64, format!("Клиент{i}")))
        .collect();
    let registering = Instant::now();
    register(&fake, &mut bot, &users, settings.timeout).await?;
    let registration = registering.elapsed();
    let db = Database::open(&db_path)?;
    let stored_before = db.stored_count()?;
    if stored_before != 0 {
        return Err(format!(
            "{stored_before} manager messages stored before wrk started"
        ));
    }

    // The measured window starts.
    let pid = bot.pid.to_string();
    let anchor = (Instant::now(), unix_ms());
    let cpu_before = cpu_ticks(&pid)?;
    let harness_before = cpu_ticks("self")?;
    let children_before = children_ticks()?;
    let machine_before = machine_ticks();
    let mut deliveries = Deliveries::new(fake.call_count(), settings.customers);

    let url = format!("http://{http}/wahelp/webhook?token={secret}");
    let args: Vec<String> = vec![
        format!("-t{}", settings.threads),
        format!("-c{}", settings.connections),
        format!("-d{}s", settings.secs),
        "--latency".into(),
        "-s".into(),
        LUA.into(),
        url,
        "--".into(),
        settings.customers.to_string(),
        settings.threads.to_string(),
    ];
    let shown = format!(
        "{} -t{} -c{} -d{}s --latency -s bench/webhook/operator.lua 'http://{http}/wahelp/webhook?token=***' -- {} {}",
        settings.wrk,
        settings.threads,
        settings.connections,
        settings.secs,
        settings.customers,
        settings.threads
    );
    let program = settings.wrk.clone();
    let wrk_started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(program)
            .args(&args)
            .stdin(Stdio::null())
            .output()
    })
    .await
    .map_err(|e| format!("wrk task: {e}"))?
    .map_err(|e| format!("cannot run wrk: {e}"))?;
    let wrk_end = Instant::now();
    let cpu_wrk_end = cpu_ticks(&pid)?;
    let children_after = children_ticks()?;
    let wrk_text = String::from_utf8_lossy(&output.stdout).replace(&secret, "***");
    let wrk_err = String::from_utf8_lossy(&output.stderr).replace(&secret, "***");
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}):\n{wrk_text}\n{wrk_err}",
            output.status
        ));
    }
    let wrk = parse_wrk(&wrk_text).map_err(|e| format!("{e}; wrk said:\n{wrk_text}\n{wrk_err}"))?;
    bot.alive()?;

    // Drain: every stored message must reach its chat.
    deliveries.scan(&fake);
    let stored_at_end = db.stored_count()?;
    let backlog_at_end = stored_at_end.saturating_sub(deliveries.distinct() as u64);
    let drain_deadline = wrk_end + settings.timeout;
    let mut progress = (Instant::now(), deliveries.distinct());
    let mut stored_known = stored_at_end;
    let drained = loop {
        // Polled, not woken by every call: the harness shares the cores
        // with the bot, and the forwards' times come from the fake anyway.
        deliveries.scan(&fake);
        let settled = wrk_end.elapsed() >= SETTLE;
        if settled && deliveries.distinct() as u64 >= stored_known {
            stored_known = db.stored_count()?;
            if deliveries.distinct() as u64 >= stored_known {
                break Drained::Yes;
            }
        }
        bot.alive()?;
        let now = Instant::now();
        if deliveries.distinct() != progress.1 {
            progress = (now, deliveries.distinct());
        } else if now.saturating_duration_since(progress.0) >= STALL
            && db.count(TELEGRAM_PENDING)? == 0
        {
            // Nothing sent for a while and nothing left to send.
            break Drained::Stalled;
        }
        if now >= drain_deadline {
            break Drained::TimedOut;
        }
        tokio::time::sleep(DRAIN_POLL.min(drain_deadline - now)).await;
    };
    let drain_end = Instant::now();
    let cpu_after = cpu_ticks(&pid)?;
    let harness_after = cpu_ticks("self")?;
    let machine_after = machine_ticks();
    let window = drain_end.saturating_duration_since(wrk_started);
    let (peak_kb, rss_now_kb) = rss_kb(bot.pid)?;
    let threads = thread_ticks(bot.pid);

    // What the database holds now.
    let stored = db.stored()?;
    let pending_inputs = db.count(CRM_INPUTS_PENDING)?;
    let stuck_ids = db.pending_crm_ids()?;
    let stored_now = stored.len() as u64;
    let outbox = db.outbox()?;
    let webhook_log = db.count("SELECT count(*) FROM webhook_log")?;
    let metrics = match get(&http, "/metrics").await {
        Ok((200, text)) => metric_lines(&text),
        Ok((status, _)) => vec![format!("(/metrics answered {status})")],
        Err(e) => vec![format!("(/metrics: {e})")],
    };
    drop(db);
    bot.stop(STOP_TIMEOUT).await?;
    if let Some(path) = &settings.keep_log {
        std::fs::copy(bot.log(), path).map_err(|e| format!("{path}: {e}"))?;
    }
    let log = std::fs::read_to_string(bot.log()).unwrap_or_default();

    // Every delivery against what was stored.
    let mut doubled = Vec::new();
    let mut wrong_chat = Vec::new();
    let mut not_stored = Vec::new();
    let mut store_to_send = Latencies::default();
    let mut per_chat_delivered: HashMap<i64, u64> = HashMap::new();
    for (id, sends) in &deliveries.by_id {
        if sends.len() > 1 {
            doubled.push(format!("{id} ×{}", sends.len()));
        }
        for d in sends {
            *per_chat_delivered.entry(d.chat).or_default() += 1;
            if d.chat != FIRST_CUSTOMER + d.index as i64 {
                wrong_chat.push(format!(
                    "{id} (customer {}) went to chat {}",
                    d.index, d.chat
                ));
            }
        }
        match stored.get(id) {
            None => not_stored.push(id.clone()),
            Some((customer, at_ms)) => {
                if sends.iter().any(|d| d.chat != *customer) {
                    wrong_chat.push(format!("{id} stored for {customer}"));
                }
                let stored_at = if *at_ms >= anchor.1 {
                    anchor.0 + Duration::from_millis((at_ms - anchor.1).unsigned_abs())
                } else {
                    anchor
                        .0
                        .checked_sub(Duration::from_millis((anchor.1 - at_ms).unsigned_abs()))
                        .unwrap_or(anchor.0)
                };
                store_to_send
                    .0
                    .push(sends[0].at.saturating_duration_since(stored_at));
            }
        }
    }
    let missing: Vec<&String> = stored
        .keys()
        .filter(|id| !deliveries.by_id.contains_key(*id))
        .collect();
    let mut per_chat_stored: HashMap<i64, u64> = HashMap::new();
    // Stored and not missing: what each chat must have received.
    for (id, (customer, _)) in &stored {
        if deliveries.by_id.contains_key(id) {
            *per_chat_stored.entry(*customer).or_default() += 1;
        }
    }
    let chat_mismatches = per_chat_stored
        .iter()
        .filter(|(chat, n)| per_chat_delivered.get(chat).copied().unwrap_or(0) != **n)
        .count()
        + per_chat_delivered
            .keys()
            .filter(|chat| !per_chat_stored.contains_key(chat))
            .count();
    let stored_total = stored.len() as u64;
    let accepted = wrk.ok();

    // Stored messages that never went out: does a restart send them?
    let restart = if missing.is_empty() {
        None
    } else {
        let mut again = BotProcess::spawn(flowbot_run(), &env, dir.path(), "bot-restart.log")?;
        let mut replay = Deliveries::new(fake.call_count(), settings.customers);
        let started = Instant::now();
        wait_started(&fake, &mut again, &http).await?;
        let deadline = Instant::now() + REPLAY_TIMEOUT;
        while Instant::now() < deadline && !missing.iter().all(|id| replay.by_id.contains_key(*id))
        {
            again.alive()?;
            let known = replay.seen;
            let _ = fake
                .wait_until("a call", Duration::from_millis(100), move |f| {
                    f.call_count() > known
                })
                .await;
            replay.scan(&fake);
        }
        let took = started.elapsed();
        again.stop(STOP_TIMEOUT).await?;
        let recovered = missing
            .iter()
            .filter(|id| replay.by_id.contains_key(**id))
            .count();
        let again_sent = replay
            .by_id
            .keys()
            .filter(|id| deliveries.by_id.contains_key(*id))
            .count();
        Some((recovered, again_sent, took))
    };

    // CPU.
    let to_ms = |ticks: u64| ticks as f64 * 1000.0 / ticks_per_sec;
    let bot_ms = to_ms(cpu_after - cpu_before);
    let bot_wrk_ms = to_ms(cpu_wrk_end - cpu_before);
    let wrk_cpu_ms = to_ms(children_after - children_before);
    let harness_ms = to_ms(harness_after - harness_before);
    let wrk_wall = wrk_end.saturating_duration_since(wrk_started);
    let others = match (machine_before, machine_after) {
        (Some((busy0, _)), Some((busy1, cpus))) => {
            let busy_ms = to_ms(busy1.saturating_sub(busy0));
            let others_ms = (busy_ms - bot_ms - harness_ms - wrk_cpu_ms).max(0.0);
            format!(
                "other processes {others_ms:.0} ms CPU ({:.0}% of {cpus} cores)",
                100.0 * others_ms / (window.as_secs_f64() * 1000.0 * cpus as f64).max(1e-9)
            )
        }
        _ => "other processes: /proc/stat unreadable".to_owned(),
    };
    let drain = deliveries
        .last_at
        .map_or(Duration::ZERO, |t| t.saturating_duration_since(wrk_end));
    let per_1000 = |cpu_ms: f64| cpu_ms * 1000.0 / stored_total.max(1) as f64;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nwebhook: flowbot ({build} binary, SQLite in {}); {wrk_name}; {} customers; rate limits off{}",
        dir.path()
            .parent()
            .map_or_else(String::new, |p| p.display().to_string()),
        settings.customers,
        if settings.bench {
            ""
        } else {
            " (smoke run: use `cargo bench --bench webhook` to measure)"
        }
    );
    let _ = writeln!(out, "{shown}");
    let row = |out: &mut String, name: &str, value: String| {
        let _ = writeln!(out, "{name:<26} {value}");
    };
    row(
        &mut out,
        "requests/s",
        format!(
            "{:.0}   ({} responses in {:.2} s; {} requests written)",
            wrk.rps,
            wrk.requests,
            wrk.duration.as_secs_f64(),
            wrk.written
        ),
    );
    row(
        &mut out,
        "latency p50/p90/p99",
        format!(
            "{} / {} / {} ms (p99.9 {}, max {})",
            ms(wrk.p50),
            ms(wrk.p90),
            ms(wrk.p99),
            ms(wrk.p999),
            ms(wrk.max)
        ),
    );
    row(
        &mut out,
        "responses by status",
        wrk.statuses
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    row(
        &mut out,
        "errors",
        format!(
            "non-2xx/3xx {}; socket: connect {}, read {}, write {}, timeout {}",
            wrk.errors_status,
            wrk.errors_connect,
            wrk.errors_read,
            wrk.errors_write,
            wrk.errors_timeout
        ),
    );
    row(
        &mut out,
        "stored by the bot",
        format!(
            "{stored_total} messages ({accepted} answered 200 to wrk; {} stored with the answer cut off when wrk stopped); {webhook_log} webhook_log rows",
            stored_total.saturating_sub(accepted)
        ),
    );
    row(
        &mut out,
        "forwards delivered",
        format!(
            "{} of {stored_total}; missing {}, doubled {}, wrong chat {}, not stored {}, chats with a count off (besides the missing) {chat_mismatches} (of {} chats)",
            deliveries.distinct(),
            missing.len(),
            doubled.len(),
            wrong_chat.len(),
            not_stored.len(),
            per_chat_stored.len()
        ),
    );
    row(
        &mut out,
        "backlog when wrk stopped",
        format!(
            "{backlog_at_end} stored, not yet sent (of {stored_at_end}; {stored_now} after the drain)"
        ),
    );
    row(
        &mut out,
        "outbox drain after wrk",
        match drained {
            Drained::Yes => format!("{} ms (last forward after wrk exited)", ms(drain)),
            Drained::Stalled => format!(
                "NOT drained: nothing forwarded for {STALL:?} and the outbox empty; last forward {} ms after wrk exited",
                ms(drain)
            ),
            Drained::TimedOut => format!(
                "NOT drained within {:?}; last forward {} ms after wrk exited",
                settings.timeout,
                ms(drain)
            ),
        },
    );
    if let Some((recovered, again_sent, took)) = restart {
        row(
            &mut out,
            "after a restart",
            format!(
                "{recovered} of the {} missing messages delivered within {:.2} s of starting the bot again; {again_sent} already delivered messages sent again",
                missing.len(),
                took.as_secs_f64()
            ),
        );
    }
    let sent_during_wrk = stored_at_end.saturating_sub(backlog_at_end);
    row(
        &mut out,
        "forwarding rate",
        format!(
            "{:.0} msg/s while wrk ran ({sent_during_wrk} sent), {:.0} msg/s in the drain after it",
            sent_during_wrk as f64 / wrk_wall.as_secs_f64().max(1e-9),
            backlog_at_end as f64 / drain.as_secs_f64().max(1e-9)
        ),
    );
    row(&mut out, "store → sendMessage", store_to_send.summary(0.90));
    row(
        &mut out,
        "bot CPU / 1000 requests",
        format!(
            "{:.1} ms   (bot {bot_ms:.0} ms CPU in {:.2} s; during wrk {bot_wrk_ms:.0} ms = {:.0}% of a core)",
            per_1000(bot_ms),
            window.as_secs_f64(),
            100.0 * bot_wrk_ms / (wrk_wall.as_secs_f64() * 1000.0).max(1e-9)
        ),
    );
    row(
        &mut out,
        "bot CPU by thread",
        format!(
            "{} (since the start)",
            threads
                .iter()
                .take(4)
                .map(|(name, ticks, n)| if *n > 1 {
                    format!("{name} ×{n} {:.0} ms", to_ms(*ticks))
                } else {
                    format!("{name} {:.0} ms", to_ms(*ticks))
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    row(
        &mut out,
        "wrk / harness CPU",
        format!(
            "wrk {wrk_cpu_ms:.0} ms ({:.0}% of a core); fake Telegram + bench {harness_ms:.0} ms; {others}",
            100.0 * wrk_cpu_ms / (wrk_wall.as_secs_f64() * 1000.0).max(1e-9)
        ),
    );
    row(
        &mut out,
        "peak RSS",
        format!(
            "{:.1} MB   (resident after the drain {:.1} MB)",
            peak_kb as f64 / 1024.0,
            rss_now_kb as f64 / 1024.0
        ),
    );
    row(
        &mut out,
        "left in the database",
        format!(
            "crm inputs not processed {pending_inputs}{}; outbox {}",
            if stuck_ids.is_empty() {
                String::new()
            } else {
                format!(" (ids {})", stuck_ids.join(", "))
            },
            outbox
                .iter()
                .map(|(dest, status, n)| format!("{dest}/{status} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    row(&mut out, "/metrics", metrics.join("; "));
    row(
        &mut out,
        "registration",
        format!(
            "{} customers in {:.2} s; load average at start: {}",
            settings.customers,
            registration.as_secs_f64(),
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    if deliveries.other > 0 || !deliveries.unparsed.is_empty() {
        row(
            &mut out,
            "other sends",
            format!(
                "{} other send calls; {} sendMessages to customers that are not forwards{}",
                deliveries.other,
                deliveries.unparsed.len(),
                deliveries
                    .unparsed
                    .first()
                    .map_or_else(String::new, |t| format!(", first: {t:?}"))
            ),
        );
    }
    let noisy: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    if !noisy.is_empty() {
        let _ = writeln!(
            out,
            "the bot logged {} line(s) at log level {}; first: {}",
            noisy.len(),
            settings.rust_log,
            strip_ansi(noisy[0])
        );
    }
    let _ = writeln!(
        out,
        "webhook-row c={} t={} customers={} rps={:.0} p50_ms={} p90_ms={} p99_ms={} non2xx={} socket_errors={} stored={stored_total} delivered={} missing={} doubled={} backlog={backlog_at_end} drain_ms={} fwd_during={:.0} fwd_drain={:.0} cpu_ms_per_1000={:.1} peak_rss_mb={:.1}",
        settings.connections,
        settings.threads,
        settings.customers,
        wrk.rps,
        ms(wrk.p50),
        ms(wrk.p90),
        ms(wrk.p99),
        wrk.errors_status,
        wrk.socket_errors(),
        deliveries.distinct(),
        missing.len(),
        doubled.len(),
        ms(drain),
        sent_during_wrk as f64 / wrk_wall.as_secs_f64().max(1e-9),
        backlog_at_end as f64 / drain.as_secs_f64().max(1e-9),
        per_1000(bot_ms),
        peak_kb as f64 / 1024.0
    );
    println!("{out}");

    for (what, list) in [
        ("doubled", &doubled),
        ("wrong chat", &wrong_chat),
        ("not stored", &not_stored),
    ] {
        for item in list.iter().take(10) {
            eprintln!("  {what}: {item}");
        }
    }
    for id in missing.iter().take(10) {
        eprintln!("  missing: {id}");
    }
    let mut problems = Vec::new();
    // Missing messages that are exactly the stored but unprocessed inputs,
    // all from requests whose answer wrk cut off when it stopped.
    let stuck_at_cutoff = !missing.is_empty()
        && missing.len() as u64 <= stored_total.saturating_sub(accepted)
        && missing.iter().all(|id| stuck_ids.contains(id));
    if stuck_at_cutoff {
        eprintln!(
            "\nwebhook: {} manager message(s) stored but never processed, all from requests in flight when wrk closed its connections (their answers reached nobody); they stayed unprocessed inputs (see \"after a restart\")",
            missing.len()
        );
    }
    if drained != Drained::Yes || !missing.is_empty() {
        problems.push(format!(
            "{} stored messages never reached their chat",
            missing.len()
        ));
    }
    if !doubled.is_empty() {
        problems.push(format!(
            "{} messages delivered more than once",
            doubled.len()
        ));
    }
    if !wrong_chat.is_empty() || !not_stored.is_empty() || chat_mismatches > 0 {
        problems.push(format!(
            "{} deliveries to the wrong chat, {} of messages not stored, {chat_mismatches} chats off count",
            wrong_chat.len(),
            not_stored.len()
        ));
    }
    if accepted > stored_total {
        problems.push(format!(
            "wrk got {accepted} answers 200 but only {stored_total} messages are stored"
        ));
    }
    if stored_total > wrk.written {
        problems.push(format!(
            "{stored_total} messages stored but wrk wrote only {}",
            wrk.written
        ));
    }
    if wrk.requests == 0 {
        problems.push("wrk completed no request".to_owned());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
