//! End-to-end benchmark: the real release binary (`flowbot run`) against the
//! fake Telegram Bot API of the integration tests, over 127.0.0.1, with a
//! real SQLite file in a temporary folder.
//!
//! U customers (`E2E_CUSTOMERS`, default 500) all start at about the same
//! time and each goes through the whole script (see [`SCRIPT`]). The load is
//! a closed loop: a customer's next message is pushed only once every reply
//! the bot owes for the previous one has arrived, like a person who reads
//! before typing. So at most U updates are in flight at any time.
//!
//! Measured in one run:
//! - updates/s: updates pushed ÷ (last reply's arrival − first push);
//! - the bot's CPU time (utime + stime from `/proc/<pid>/stat`, after
//!   start-up until the last reply) per 1000 updates;
//! - per update, the latency from `served_at` (when `getUpdates` first
//!   handed it to the bot) to the arrival of the first `sendMessage` to that
//!   chat after it; also the latency to the step's last reply, per step;
//! - peak RSS of the bot (`VmHWM` just before SIGTERM);
//! - every expected reply is checked (chat, order, text); any missing or
//!   wrong reply fails the bench.
//!
//! `cargo bench --bench e2e` runs the measurement. Run by `cargo test
//! --benches` / `--all-targets` (no `--bench` argument), it is a smoke run
//! with 3 customers and the debug binary.
//!
//! Environment: `E2E_CUSTOMERS` (default 500), `E2E_TIMEOUT_SECS` (default
//! 300), `E2E_RUST_LOG` (the bot's `RUST_LOG`, default `warn`),
//! `E2E_BOT_LOG` (copy the bot's stderr to this file at the end),
//! `E2E_DB_DIR` (where the temporary folder with the database goes, default
//! the system's temporary folder; `/dev/shm` takes fsync out of the picture).

// The test helpers, included file by file (not through `tests/support/mod.rs`,
// so that helpers the bench does not use are not compiled into it). `bot.rs`
// finds the fake as `super::telegram`.
#[allow(dead_code)]
#[path = "../tests/support/bot.rs"]
mod bot;
#[path = "../tests/support/telegram.rs"]
mod telegram;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bot::ADMIN_CHAT;
use telegram::{Call, FakeTelegram, TgUser};

/// Telegram ids of the customers: `FIRST_CUSTOMER + i`.
const FIRST_CUSTOMER: i64 = 6_100_000_000;

/// Customers in the smoke run (`cargo test --benches`).
const SMOKE_CUSTOMERS: usize = 3;

/// How long to wait for the bot to start polling and to stop.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// What a customer sends.
#[derive(Clone, Copy, Debug)]
enum Action {
    Text(&'static str),
    /// Their own contact (the "share my number" button), with a distinct phone.
    OwnContact,
}

/// One step of the script and the replies it must get in the customer's
/// chat, in order (each reply must contain its fragment).
struct Step {
    name: &'static str,
    action: Action,
    replies: &'static [&'static str],
    /// Whether the step also sends a notice to the admins' chat.
    admin_notice: bool,
}

const SCRIPT: &[Step] = &[
    Step {
        name: "/start",
        action: Action::Text("/start"),
        replies: &["Здравствуйте, ", "поделитесь, пожалуйста, номером телефона"],
        admin_notice: false,
    },
    Step {
        name: "contact",
        action: Action::OwnContact,
        replies: &[
            "Спасибо, номер +7999",
            "Вам начислено 300 приветственных бонусов",
        ],
        admin_notice: false,
    },
    Step {
        name: "💰 Прайс",
        action: Action::Text("💰 Прайс"),
        replies: &["Цены на основные услуги"],
        admin_notice: false,
    },
    Step {
        name: "Мои бонусы",
        action: Action::Text("Мои бонусы"),
        replies: &["На вашем счёте 300 бонусов"],
        admin_notice: false,
    },
    Step {
        name: "free text",
        action: Action::Text("Добрый день! Можно ли почистить шторы прямо на карнизе?"),
        replies: &["Сообщение передано менеджеру"],
        admin_notice: false,
    },
    Step {
        name: "Задать вопрос",
        action: Action::Text("Задать вопрос"),
        replies: &["Напишите ваш вопрос одним сообщением"],
        admin_notice: false,
    },
    Step {
        name: "question",
        action: Action::Text("Вы работаете в воскресенье?"),
        replies: &["Спасибо! Вопрос передан"],
        admin_notice: true,
    },
];

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let settings = match Settings::read(bench) {
        Ok(s) => s,
        Err(e) => fail(&e),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot build the tokio runtime: {e}")));
    if let Err(e) = runtime.block_on(run(&settings)) {
        fail(&e);
    }
}

fn fail(message: &str) -> ! {
    eprintln!("\ne2e: FAILED: {message}");
    std::process::exit(1);
}

struct Settings {
    bench: bool,
    customers: usize,
    timeout: Duration,
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
        let customers = if bench {
            usize::try_from(number("E2E_CUSTOMERS", 500)?).map_err(|e| e.to_string())?
        } else {
            SMOKE_CUSTOMERS
        };
        Ok(Settings {
            bench,
            customers,
            timeout: Duration::from_secs(number("E2E_TIMEOUT_SECS", 300)?),
            rust_log: var("E2E_RUST_LOG").unwrap_or_else(|| "warn".to_owned()),
            keep_log: var("E2E_BOT_LOG"),
            db_dir: var("E2E_DB_DIR"),
        })
    }
}

/// One simulated customer.
struct Customer {
    user: TgUser,
    phone: String,
    /// The step in flight; `SCRIPT.len()` when done.
    step: usize,
    /// Replies received in the customer's chat so far.
    replies: usize,
    /// `(update_id, pushed at)` of each step pushed so far.
    pushed: Vec<(i64, Instant)>,
}

impl Customer {
    fn new(index: usize) -> Customer {
        Customer {
            user: TgUser::new(FIRST_CUSTOMER + index as i64, format!("Клиент{index}")),
            phone: format!("+7999{index:07}"),
            step: 0,
            replies: 0,
            pushed: Vec::with_capacity(SCRIPT.len()),
        }
    }

    fn done(&self) -> bool {
        self.step >= SCRIPT.len()
    }

    /// Replies the chat must have once the step in flight is answered.
    fn replies_due(&self) -> usize {
        SCRIPT[..=self.step.min(SCRIPT.len() - 1)]
            .iter()
            .map(|s| s.replies.len())
            .sum()
    }

    fn push_step(&mut self, fake: &FakeTelegram) {
        let at = Instant::now();
        let id = match SCRIPT[self.step].action {
            Action::Text(text) => fake.push_text(&self.user, text),
            Action::OwnContact => fake.push_contact(&self.user, &self.phone, Some(self.user.id)),
        };
        self.pushed.push((id, at));
    }
}

/// The bot as a child process; killed if dropped while running.
struct BotProcess {
    child: Child,
    pid: u32,
    log: std::path::PathBuf,
}

impl BotProcess {
    fn spawn(env: &HashMap<String, String>, dir: &Path) -> Result<BotProcess, String> {
        let log = dir.join("bot.log");
        let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let stdout = stderr.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(env!("CARGO_BIN_EXE_flowbot"))
            .arg("run")
            .env_clear()
            .envs(env)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", env!("CARGO_BIN_EXE_flowbot")))?;
        let pid = child.id();
        Ok(BotProcess { child, pid, log })
    }

    /// An error if the bot has exited.
    fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "the bot exited early ({status}); its log:\n{}",
                self.log_tail()
            )),
            Err(e) => Err(format!("cannot check the bot process: {e}")),
        }
    }

    /// SIGTERM, then waits for a clean exit.
    async fn stop(&mut self) -> Result<(), String> {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM {} failed: {sent}", self.pid));
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(format!(
                        "the bot stopped with {status}; its log:\n{}",
                        self.log_tail()
                    ));
                }
                Ok(None) if Instant::now() >= deadline => {
                    return Err(format!(
                        "the bot did not stop within {STOP_TIMEOUT:?} of SIGTERM"
                    ));
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => return Err(format!("cannot wait for the bot: {e}")),
            }
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        if tail.is_empty() {
            "(empty)".to_owned()
        } else {
            tail
        }
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// utime + stime of a process, in clock ticks (`/proc/<pid>/stat`).
fn cpu_ticks(pid: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name is in parentheses and may contain spaces: count after the last ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("{path}: unexpected format"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are the 12th and 13th after the name.
    let field = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("{path}: no field {}", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// Clock ticks per second (`getconf CLK_TCK`); 100 if that fails.
fn clock_ticks() -> (f64, bool) {
    let asked = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0);
    match asked {
        Some(t) => (t, true),
        None => (100.0, false),
    }
}

/// `VmHWM` (peak resident set) of a process, in kB.
fn peak_rss_kb(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no VmHWM"))
}

/// What the driver loop saw.
struct Drive {
    first_push: Instant,
    finished: bool,
    scans: usize,
    scan_time: Duration,
    max_scan: Duration,
}

async fn run(settings: &Settings) -> Result<(), String> {
    let (ticks_per_sec, ticks_known) = clock_ticks();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let fake = FakeTelegram::start().await;
    let dir = match &settings.db_dir {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;
    let mut env = bot::env(&fake, &dir.path().join("bot.db"));
    for (name, value) in [
        ("TELEGRAM_RATE_GLOBAL", "0"),
        ("TELEGRAM_RATE_PER_CHAT", "0"),
        ("TELEGRAM_POLL_TIMEOUT_SECS", "1"),
        ("RUST_LOG", settings.rust_log.as_str()),
    ] {
        env.insert(name.to_owned(), value.to_owned());
    }
    let mut bot = BotProcess::spawn(&env, dir.path())?;

    // Started: it polls.
    let started = Instant::now();
    loop {
        bot.alive()?;
        let polled = fake
            .wait_until("the first getUpdates", Duration::from_millis(200), |f| {
                f.calls().iter().any(|c| c.method == "getupdates")
            })
            .await;
        if polled.is_ok() {
            break;
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!(
                "the bot did not poll within {START_TIMEOUT:?}; its log:\n{}",
                bot.log_tail()
            ));
        }
    }
    let pid = bot.pid.to_string();
    let cpu_before = cpu_ticks(&pid)?;
    let harness_before = cpu_ticks("self")?;

    let mut customers: Vec<Customer> = (0..settings.customers).map(Customer::new).collect();
    let drive = drive(&fake, &mut bot, &mut customers, settings.timeout).await?;

    let cpu_after = cpu_ticks(&pid)?;
    let harness_after = cpu_ticks("self")?;
    let peak_kb = peak_rss_kb(bot.pid)?;
    bot.stop().await?;
    if let Some(path) = &settings.keep_log {
        std::fs::copy(&bot.log, path).map_err(|e| format!("{path}: {e}"))?;
    }
    let warnings = std::fs::read_to_string(&bot.log).unwrap_or_default();

    let report = analyse(&fake, &customers);
    let updates: usize = customers.iter().map(|c| c.pushed.len()).sum();
    let cpu_ms = (cpu_after - cpu_before) as f64 * 1000.0 / ticks_per_sec;
    let harness_ms = (harness_after - harness_before) as f64 * 1000.0 / ticks_per_sec;
    let wall = report.last_reply.map_or(Duration::ZERO, |t| {
        t.saturating_duration_since(drive.first_push)
    });

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\ne2e: {} customers, {updates} updates, closed loop, rate limits off{}",
        settings.customers,
        if settings.bench {
            ""
        } else {
            " (smoke run: debug binary; use `cargo bench --bench e2e` to measure)"
        }
    );
    let row = |out: &mut String, name: &str, value: String| {
        let _ = writeln!(out, "{name:<28} {value}");
    };
    row(
        &mut out,
        "updates/s",
        format!("{:.0}", updates as f64 / wall.as_secs_f64().max(1e-9)),
    );
    row(
        &mut out,
        "wall time",
        format!("{:.2} s", wall.as_secs_f64()),
    );
    row(
        &mut out,
        "CPU ms / 1000 upd",
        format!(
            "{:.1}   (bot {cpu_ms:.0} ms CPU{})",
            cpu_ms * 1000.0 / updates.max(1) as f64,
            if ticks_known {
                String::new()
            } else {
                "; CLK_TCK unknown, assumed 100".to_owned()
            }
        ),
    );
    row(&mut out, "latency p50/p95/p99", report.first.summary());
    row(
        &mut out,
        "  to the step's last reply",
        report.last.summary(),
    );
    row(
        &mut out,
        "  push → served (polling)",
        report.pickup.summary(),
    );
    row(
        &mut out,
        "  batch served → next poll",
        format!(
            "{}   ({} batches, {:.1} updates each)",
            report.turnaround.summary(),
            report.turnaround.0.len(),
            updates as f64 / report.turnaround.0.len().max(1) as f64
        ),
    );
    row(&mut out, "admin notice latency", report.admin.summary());
    row(
        &mut out,
        "peak RSS",
        format!("{:.1} MB", peak_kb as f64 / 1024.0),
    );
    row(&mut out, "missing replies", report.missing.to_string());
    row(&mut out, "wrong replies", report.wrong.len().to_string());
    let _ = writeln!(out, "\nper step (served → first reply / → last reply):");
    for (step, (first, last)) in SCRIPT.iter().zip(&report.per_step) {
        let _ = writeln!(
            out,
            "  {:<14} {}   | {}",
            step.name,
            first.summary(),
            last.summary()
        );
    }
    let _ = writeln!(
        out,
        "\nharness (fake server + driver) CPU {harness_ms:.0} ms; {} reply scans, {:.0} ms total, longest {:.1} ms; load average at start: {}",
        drive.scans,
        drive.scan_time.as_secs_f64() * 1000.0,
        drive.max_scan.as_secs_f64() * 1000.0,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let noisy: Vec<&str> = warnings.lines().filter(|l| !l.trim().is_empty()).collect();
    if !noisy.is_empty() {
        let _ = writeln!(
            out,
            "the bot logged {} line(s) at RUST_LOG={}; first: {}",
            noisy.len(),
            settings.rust_log,
            noisy[0]
        );
    }
    println!("{out}");

    for w in report.wrong.iter().take(10) {
        eprintln!("  wrong: {w}");
    }
    if !drive.finished {
        return Err(format!(
            "not every customer finished within {:?}",
            settings.timeout
        ));
    }
    if report.missing > 0 || !report.wrong.is_empty() {
        return Err(format!(
            "{} missing and {} wrong replies",
            report.missing,
            report.wrong.len()
        ));
    }
    Ok(())
}

/// Pushes every customer's steps, each after the previous one is answered.
async fn drive(
    fake: &FakeTelegram,
    bot: &mut BotProcess,
    customers: &mut [Customer],
    timeout: Duration,
) -> Result<Drive, String> {
    let first_push = Instant::now();
    let deadline = first_push + timeout;
    for c in customers.iter_mut() {
        c.push_step(fake);
    }
    let mut left = customers.len();
    // Notices to the admins' chat due so far, and received.
    let (mut notices_due, mut notices) = (0usize, 0usize);
    let mut scanned = 0usize;
    let mut known_sends = 0usize;
    let (mut scans, mut scan_time, mut max_scan) = (0usize, Duration::ZERO, Duration::ZERO);
    let mut next_scan = Instant::now();
    while left > 0 || notices < notices_due {
        if Instant::now() >= deadline {
            break;
        }
        bot.alive()?;
        let known = known_sends;
        let slice = Duration::from_millis(250).min(deadline - Instant::now());
        if fake
            .wait_until("a reply", slice, move |f| f.successful_sends() > known)
            .await
            .is_err()
        {
            continue;
        }
        // Each scan copies every recorded sendMessage under the fake's lock:
        // keep the scans to at most ~10% of the time.
        tokio::time::sleep_until(tokio::time::Instant::from_std(next_scan)).await;
        let scan_started = Instant::now();
        known_sends = fake.successful_sends();
        let sends = fake.calls_to("sendmessage");
        let took = scan_started.elapsed();
        scans += 1;
        scan_time += took;
        max_scan = max_scan.max(took);
        next_scan = Instant::now() + (took * 10).max(Duration::from_millis(1));

        let mut touched = Vec::new();
        for call in &sends[scanned.min(sends.len())..] {
            if call.failed {
                continue;
            }
            let chat = call.chat_id();
            if chat == Some(ADMIN_CHAT) {
                notices += 1;
            } else if let Some(i) = chat.and_then(|id| customer_index(id, customers.len())) {
                customers[i].replies += 1;
                touched.push(i);
            }
        }
        scanned = sends.len();
        drop(sends);
        for i in touched {
            let c = &mut customers[i];
            if !c.done() && c.replies >= c.replies_due() {
                if SCRIPT[c.step].admin_notice {
                    notices_due += 1;
                }
                c.step += 1;
                if c.done() {
                    left -= 1;
                } else {
                    c.push_step(fake);
                }
            }
        }
    }
    Ok(Drive {
        first_push,
        finished: left == 0 && notices >= notices_due,
        scans,
        scan_time,
        max_scan,
    })
}

fn customer_index(chat_id: i64, count: usize) -> Option<usize> {
    let i = usize::try_from(chat_id.checked_sub(FIRST_CUSTOMER)?).ok()?;
    (i < count).then_some(i)
}

/// A set of latencies.
#[derive(Default)]
struct Latencies(Vec<Duration>);

impl Latencies {
    fn summary(&self) -> String {
        if self.0.is_empty() {
            return "-".to_owned();
        }
        let mut v = self.0.clone();
        v.sort();
        let at = |p: f64| {
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            ms(v[rank - 1])
        };
        format!(
            "{} / {} / {} ms (max {}, n={})",
            at(0.50),
            at(0.95),
            at(0.99),
            ms(v[v.len() - 1]),
            v.len()
        )
    }
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

struct Report {
    /// Served → first reply, every update.
    first: Latencies,
    /// Served → the step's last reply in the customer's chat.
    last: Latencies,
    /// Pushed → served: how long an update waited for `getUpdates`.
    pickup: Latencies,
    /// A batch served by `getUpdates` → the bot's next `getUpdates`: the
    /// polling loop's own time (storing the batch in the inbox).
    turnaround: Latencies,
    /// Served (the question) → its notice in the admins' chat.
    admin: Latencies,
    per_step: Vec<(Latencies, Latencies)>,
    missing: usize,
    wrong: Vec<String>,
    last_reply: Option<Instant>,
}

/// Checks every reply and computes the latencies from the fake's records.
fn analyse(fake: &FakeTelegram, customers: &[Customer]) -> Report {
    let sends: Vec<Call> = fake
        .calls_to("sendmessage")
        .into_iter()
        .filter(|c| !c.failed)
        .collect();
    let mut by_chat: HashMap<i64, Vec<&Call>> = HashMap::new();
    for call in &sends {
        if let Some(chat) = call.chat_id() {
            by_chat.entry(chat).or_default().push(call);
        }
    }
    for calls in by_chat.values_mut() {
        calls.sort_by_key(|c| c.at);
    }
    let mut report = Report {
        first: Latencies::default(),
        last: Latencies::default(),
        pickup: Latencies::default(),
        turnaround: Latencies::default(),
        admin: Latencies::default(),
        per_step: SCRIPT.iter().map(|_| Default::default()).collect(),
        missing: 0,
        wrong: Vec::new(),
        last_reply: sends.iter().map(|c| c.at).max(),
    };
    let none = Vec::new();
    let mut question_served: HashMap<i64, Instant> = HashMap::new();
    for c in customers {
        let chat = by_chat.get(&c.user.id).unwrap_or(&none);
        let expected: Vec<&str> = SCRIPT
            .iter()
            .flat_map(|s| s.replies.iter().copied())
            .collect();
        report.missing += expected.len().saturating_sub(chat.len());
        if chat.len() > expected.len() {
            report.wrong.push(format!(
                "chat {}: {} replies, expected {}",
                c.user.id,
                chat.len(),
                expected.len()
            ));
        }
        for (k, (call, fragment)) in chat.iter().zip(&expected).enumerate() {
            if !call.text().unwrap_or_default().contains(fragment) {
                report.wrong.push(format!(
                    "chat {} reply {k}: {:?} does not contain {fragment:?}",
                    c.user.id,
                    call.text().unwrap_or_default()
                ));
            }
        }
        let mut offset = 0;
        for (s, step) in SCRIPT.iter().enumerate() {
            let range = offset..offset + step.replies.len();
            offset = range.end;
            let Some(&(update_id, pushed)) = c.pushed.get(s) else {
                continue;
            };
            let Some(served) = fake.served_at(update_id) else {
                continue;
            };
            report
                .pickup
                .0
                .push(served.saturating_duration_since(pushed));
            if step.admin_notice {
                question_served.insert(c.user.id, served);
            }
            // The first reply is the first sendMessage to the chat after the
            // update was served; the closed loop makes it this step's own.
            let first = chat.iter().position(|call| call.at >= served);
            if first != Some(range.start) && chat.len() >= range.end {
                report.wrong.push(format!(
                    "chat {} step {}: the first reply after it was served is #{first:?}, expected #{}",
                    c.user.id, step.name, range.start
                ));
            }
            if let Some(call) = chat.get(range.start) {
                let d = call.at.saturating_duration_since(served);
                report.first.0.push(d);
                report.per_step[s].0.0.push(d);
            }
            if let Some(call) = chat.get(range.end - 1) {
                let d = call.at.saturating_duration_since(served);
                report.last.0.push(d);
                report.per_step[s].1.0.push(d);
            }
        }
    }
    // Every update of a batch has the same `served_at`.
    let mut batches: Vec<Instant> = customers
        .iter()
        .flat_map(|c| c.pushed.iter())
        .filter_map(|&(id, _)| fake.served_at(id))
        .collect();
    batches.sort();
    batches.dedup();
    let mut polls: Vec<Instant> = fake.calls_to("getupdates").iter().map(|c| c.at).collect();
    polls.sort();
    for served in batches {
        let next = polls.partition_point(|at| *at <= served);
        if let Some(at) = polls.get(next) {
            report
                .turnaround
                .0
                .push(at.saturating_duration_since(served));
        }
    }
    // Admin notices name the customer's id.
    let admin = by_chat.get(&ADMIN_CHAT).unwrap_or(&none);
    let notices_due = customers
        .iter()
        .flat_map(|c| SCRIPT.iter().take(c.pushed.len()))
        .filter(|s| s.admin_notice)
        .count();
    report.missing += notices_due.saturating_sub(admin.len());
    for call in admin {
        let text = call.text().unwrap_or_default();
        let id = text
            .split("id ")
            .nth(1)
            .map(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|digits| digits.parse::<i64>().ok());
        match id.and_then(|id| question_served.get(&id)) {
            Some(served) => report
                .admin
                .0
                .push(call.at.saturating_duration_since(*served)),
            None => report
                .wrong
                .push(format!("admin notice about no question: {text:?}")),
        }
    }
    report
}
