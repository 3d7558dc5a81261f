//! End-to-end benchmark: a real bot process against the fake Telegram Bot
//! API of the integration tests, over 127.0.0.1. By default the bot is the
//! release binary (`flowbot run`) with a real SQLite file in a temporary
//! folder; `E2E_BOT=aiogram` runs the Python comparison bot
//! (`bench/aiogram/bot.py`, see `bench/aiogram/README.md`) instead.
//!
//! U customers (`E2E_CUSTOMERS`, default 500) each go through the whole
//! script (see [`SCRIPT`]), in order: a customer's next message is never
//! pushed before every reply the bot owes for the previous one has arrived,
//! like a person who reads before typing. Two ways to load the bot:
//!
//! - closed loop (the default): all customers start at the same instant and
//!   each pushes its next message as soon as the replies to the previous one
//!   have arrived. At most U updates are in flight; the latency is mostly
//!   the queue, so this measures throughput at saturation.
//! - paced, open loop (`E2E_RATE=<updates per second>`): arrivals are
//!   scheduled by the clock at that total rate, not by the replies. The
//!   arrivals (Poisson by default, `E2E_ARRIVALS=uniform` for evenly spaced)
//!   are dealt round-robin: arrival k is step k / U of customer k mod U, so
//!   customers start staggered and each one's steps are about U / rate
//!   apart. If a step comes due while the customer's previous step still
//!   waits for replies, it is pushed as soon as they have arrived; such late
//!   pushes are counted, and the latency from the scheduled time is reported
//!   too, so a bot that falls behind cannot hide it. This measures latency at
//!   a stated load.
//!
//! Measured in one run:
//! - updates/s: updates pushed ÷ (last reply's arrival − first push); in
//!   paced mode also the achieved arrival rate;
//! - the bot's CPU time (utime + stime from `/proc/<pid>/stat`, after
//!   start-up until the last reply) per 1000 updates;
//! - per update, the latency from `served_at` (when `getUpdates` first
//!   handed it to the bot) to the arrival of the first `sendMessage` to that
//!   chat after it; also from the push, to the step's last reply, and per
//!   step;
//! - peak RSS of the bot (`VmHWM` just before SIGTERM; `VmRSS` then too);
//! - the CPU time the rest of the machine used meanwhile (`/proc/stat`
//!   less the bot and the harness): how noisy a shared machine was;
//! - every expected reply is checked (chat, order, text); any missing or
//!   wrong reply fails the bench.
//!
//! `cargo bench --bench e2e` runs the measurement. Run by `cargo test
//! --benches` / `--all-targets` (no `--bench` argument), it is a smoke run
//! with 3 customers and the debug binary.
//!
//! Environment: `E2E_CUSTOMERS` (default 500), `E2E_RATE` (updates per
//! second: paced mode; unset: closed loop), `E2E_ARRIVALS` (`poisson`, the
//! default, or `uniform`), `E2E_BOT` (`flowbot`, the default, or `aiogram`),
//! `E2E_PYTHON` (the Python for `E2E_BOT=aiogram`, default
//! `bench/aiogram/.venv/bin/python`), `E2E_TIMEOUT_SECS` (default 300, on
//! top of the paced schedule's length), `E2E_RUST_LOG` (the bot's
//! `RUST_LOG`, default `warn`; for aiogram its logging level),
//! `E2E_BOT_LOG` (copy the bot's stderr to this file at the end),
//! `E2E_DB_DIR` (where the temporary folder with the database goes, default
//! the system's temporary folder; `/dev/shm` takes fsync out of the picture).

// The test helpers, included file by file (not through `tests/support/mod.rs`,
// so that helpers the bench does not use are not compiled into it). `bot.rs`
// finds the fake as `super::telegram`.
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
use measure::{Latencies, clock_ticks, cpu_ticks, machine_ticks, rss_kb};

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
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
    harness::run("e2e", run(&settings));
}

fn fail(message: &str) -> ! {
    harness::fail("e2e", message)
}

struct Settings {
    bench: bool,
    customers: usize,
    /// Paced mode: total arrivals per second; `None`: closed loop.
    rate: Option<f64>,
    arrivals: Arrivals,
    bot: BotKind,
    timeout: Duration,
    rust_log: String,
    keep_log: Option<String>,
    db_dir: Option<String>,
}

/// How paced arrivals are spread in time.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrivals {
    /// Exponential gaps (a Poisson process), from a fixed seed.
    Poisson,
    /// Evenly spaced.
    Uniform,
}

/// Which bot runs.
enum BotKind {
    Flowbot,
    /// `bench/aiogram/bot.py` run by this Python.
    Aiogram {
        python: PathBuf,
    },
}

/// `bench/aiogram/bot.py`.
fn aiogram_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/aiogram/bot.py")
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
        let rate = match var("E2E_RATE") {
            None => None,
            Some(v) => Some(
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .ok_or_else(|| format!("E2E_RATE={v:?} is not a positive number"))?,
            ),
        };
        let arrivals = match var("E2E_ARRIVALS").as_deref().map(str::trim) {
            None | Some("poisson") => Arrivals::Poisson,
            Some("uniform") => Arrivals::Uniform,
            Some(other) => {
                return Err(format!(
                    "E2E_ARRIVALS={other:?}: expected \"poisson\" or \"uniform\""
                ));
            }
        };
        let bot = match var("E2E_BOT").as_deref().map(str::trim) {
            None | Some("flowbot") => BotKind::Flowbot,
            Some("aiogram") => BotKind::Aiogram {
                python: var("E2E_PYTHON").map_or_else(
                    || Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/aiogram/.venv/bin/python"),
                    PathBuf::from,
                ),
            },
            Some(other) => {
                return Err(format!(
                    "E2E_BOT={other:?}: expected \"flowbot\" or \"aiogram\""
                ));
            }
        };
        Ok(Settings {
            bench,
            customers,
            rate,
            arrivals,
            bot,
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
    /// The step in flight, or (paced mode) the next one to push once it is
    /// due; `SCRIPT.len()` when done.
    step: usize,
    /// Replies received in the customer's chat so far.
    replies: usize,
    /// Each step pushed so far.
    pushed: Vec<Push>,
    /// Paced mode: when `step` came due while the previous step still
    /// waited for replies (it is pushed as soon as they have arrived).
    overdue: Option<Instant>,
}

/// One update pushed.
#[derive(Clone, Copy)]
struct Push {
    update_id: i64,
    at: Instant,
    /// When it was due: the schedule in paced mode, `at` in the closed loop.
    due: Instant,
}

impl Customer {
    fn new(index: usize) -> Customer {
        Customer {
            user: TgUser::new(FIRST_CUSTOMER + index as i64, format!("Клиент{index}")),
            phone: format!("+7999{index:07}"),
            step: 0,
            replies: 0,
            pushed: Vec::with_capacity(SCRIPT.len()),
            overdue: None,
        }
    }

    fn done(&self) -> bool {
        self.step >= SCRIPT.len()
    }

    /// Whether `step` was pushed and waits for its replies.
    fn in_flight(&self) -> bool {
        !self.done() && self.pushed.len() > self.step
    }

    /// Replies the chat must have once the step in flight is answered.
    fn replies_due(&self) -> usize {
        SCRIPT[..=self.step.min(SCRIPT.len() - 1)]
            .iter()
            .map(|s| s.replies.len())
            .sum()
    }

    /// Pushes `step`, which was due at `due` (`None`: now).
    fn push_step(&mut self, fake: &FakeTelegram, due: Option<Instant>) {
        let at = Instant::now();
        let update_id = match SCRIPT[self.step].action {
            Action::Text(text) => fake.push_text(&self.user, text),
            Action::OwnContact => fake.push_contact(&self.user, &self.phone, Some(self.user.id)),
        };
        self.pushed.push(Push {
            update_id,
            at,
            due: due.unwrap_or(at),
        });
    }
}

/// The command that starts the bot being measured.
fn bot_command(kind: &BotKind) -> Command {
    match kind {
        BotKind::Flowbot => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_flowbot"));
            c.arg("run");
            c
        }
        BotKind::Aiogram { python } => {
            let mut c = Command::new(python);
            c.arg(aiogram_script());
            c
        }
    }
}

/// What the driver loop saw.
struct Drive {
    first_push: Instant,
    finished: bool,
    scans: usize,
    scan_time: Duration,
    max_scan: Duration,
    /// Paced mode: pushes that waited for the previous step's replies.
    overdue_pushes: usize,
}

/// When each paced arrival is due, from the first: arrival `k` is step
/// `k / customers` of customer `k % customers`.
fn schedule(arrivals: usize, rate: f64, kind: Arrivals) -> Vec<Duration> {
    let mut rng = fastrand::Rng::with_seed(0x00e2_e5ee_d000_0001);
    let mut t = 0.0_f64;
    (0..arrivals)
        .map(|k| {
            let at = Duration::from_secs_f64(t);
            t = match kind {
                Arrivals::Uniform => (k + 1) as f64 / rate,
                // Inverse transform of an exponential gap; 1 - u is in (0, 1].
                Arrivals::Poisson => t - (1.0 - rng.f64()).ln() / rate,
            };
            at
        })
        .collect()
}

/// The Python comparison bot's environment (the names flowbot reads).
fn aiogram_env(fake: &FakeTelegram, rust_log: &str) -> HashMap<String, String> {
    let level = match rust_log.trim().to_ascii_lowercase().as_str() {
        "error" => "ERROR",
        "info" => "INFO",
        "debug" | "trace" => "DEBUG",
        _ => "WARNING",
    };
    HashMap::from([
        ("TELEGRAM_BOT_TOKEN".into(), bot::TOKEN.into()),
        ("TELEGRAM_API_URL".into(), fake.url()),
        ("ADMIN_CHAT_IDS".into(), ADMIN_CHAT.to_string()),
        ("TELEGRAM_POLL_TIMEOUT_SECS".into(), "1".into()),
        ("LOG_LEVEL".into(), level.into()),
    ])
}

/// "aiogram 3.x on Python 3.y", asked from the Python that will run the bot.
fn aiogram_version(python: &Path) -> Result<String, String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import platform, aiogram; print(f'aiogram {aiogram.__version__} on Python {platform.python_version()}')",
        ])
        .output()
        .map_err(|e| {
            format!(
                "cannot run {} ({e}); set up the venv as bench/aiogram/README.md says, or set E2E_PYTHON",
                python.display()
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "{} cannot import aiogram ({}): {}; set up the venv as bench/aiogram/README.md says",
            python.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
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
    let (env, bot_name) = match &settings.bot {
        BotKind::Flowbot => {
            let mut env = bot::env(&fake, &dir.path().join("bot.db"));
            for (name, value) in [
                ("TELEGRAM_RATE_GLOBAL", "0"),
                ("TELEGRAM_RATE_PER_CHAT", "0"),
                ("TELEGRAM_POLL_TIMEOUT_SECS", "1"),
                ("RUST_LOG", settings.rust_log.as_str()),
            ] {
                env.insert(name.to_owned(), value.to_owned());
            }
            let build = if settings.bench { "release" } else { "debug" };
            (env, format!("flowbot ({build} binary, SQLite)"))
        }
        BotKind::Aiogram { python } => (
            aiogram_env(&fake, &settings.rust_log),
            format!("{} (MemoryStorage)", aiogram_version(python)?),
        ),
    };
    let mut bot = BotProcess::spawn(bot_command(&settings.bot), &env, dir.path(), "bot.log")?;

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
    let machine_before = machine_ticks();
    let window_start = Instant::now();

    let mut customers: Vec<Customer> = (0..settings.customers).map(Customer::new).collect();
    let plan = settings
        .rate
        .map(|rate| schedule(customers.len() * SCRIPT.len(), rate, settings.arrivals));
    let drive = drive(
        &fake,
        &mut bot,
        &mut customers,
        plan.as_deref(),
        settings.timeout,
    )
    .await?;

    let cpu_after = cpu_ticks(&pid)?;
    let harness_after = cpu_ticks("self")?;
    let machine_after = machine_ticks();
    let window = window_start.elapsed();
    let (peak_kb, rss_now_kb) = rss_kb(bot.pid)?;
    bot.stop(STOP_TIMEOUT).await?;
    if let Some(path) = &settings.keep_log {
        std::fs::copy(bot.log(), path).map_err(|e| format!("{path}: {e}"))?;
    }
    let warnings = std::fs::read_to_string(bot.log()).unwrap_or_default();

    let report = analyse(&fake, &customers);
    let updates: usize = customers.iter().map(|c| c.pushed.len()).sum();
    let cpu_ms = (cpu_after - cpu_before) as f64 * 1000.0 / ticks_per_sec;
    let harness_ms = (harness_after - harness_before) as f64 * 1000.0 / ticks_per_sec;
    // CPU the rest of the machine used meanwhile: on a shared machine, the noise.
    let others = match (machine_before, machine_after) {
        (Some((busy0, _)), Some((busy1, cpus))) => {
            let busy_ms = busy1.saturating_sub(busy0) as f64 * 1000.0 / ticks_per_sec;
            let others_ms = (busy_ms - cpu_ms - harness_ms).max(0.0);
            format!(
                "; other processes {others_ms:.0} ms CPU ({:.0}% of {cpus} cores)",
                100.0 * others_ms / (window.as_secs_f64() * 1000.0 * cpus as f64).max(1e-9)
            )
        }
        _ => String::new(),
    };
    let wall = report.last_reply.map_or(Duration::ZERO, |t| {
        t.saturating_duration_since(drive.first_push)
    });

    let mode = match settings.rate {
        None => "closed loop (all customers at once)".to_owned(),
        Some(rate) => format!(
            "paced (open loop) at {rate} updates/s, {} arrivals",
            match settings.arrivals {
                Arrivals::Poisson => "Poisson",
                Arrivals::Uniform => "evenly spaced",
            }
        ),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\ne2e: {bot_name}; {} customers, {updates} updates; mode: {mode}; rate limits off{}",
        settings.customers,
        if settings.bench {
            ""
        } else {
            " (smoke run: use `cargo bench --bench e2e` to measure)"
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
    if let Some(rate) = settings.rate {
        let pushes: Vec<Instant> = customers
            .iter()
            .flat_map(|c| c.pushed.iter().map(|p| p.at))
            .collect();
        let span = match (pushes.iter().min(), pushes.iter().max()) {
            (Some(first), Some(last)) => last.saturating_duration_since(*first),
            _ => Duration::ZERO,
        };
        row(
            &mut out,
            "arrival rate",
            format!(
                "{:.0} updates/s achieved (target {rate}); {} of {updates} pushes waited for the previous step's replies",
                updates.saturating_sub(1) as f64 / span.as_secs_f64().max(1e-9),
                drive.overdue_pushes
            ),
        );
        row(
            &mut out,
            "  push lag behind schedule",
            report.push_lag.summary(0.95),
        );
    }
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
    row(&mut out, "latency p50/p95/p99", report.first.summary(0.95));
    row(
        &mut out,
        "  to the step's last reply",
        report.last.summary(0.95),
    );
    row(&mut out, "  from the push", report.from_push.summary(0.95));
    if settings.rate.is_some() {
        row(
            &mut out,
            "  from the scheduled time",
            report.from_due.summary(0.95),
        );
    }
    row(
        &mut out,
        "  push → served (polling)",
        report.pickup.summary(0.95),
    );
    row(
        &mut out,
        "  batch served → next poll",
        format!(
            "{}   ({} batches, {:.1} updates each)",
            report.turnaround.summary(0.95),
            report.turnaround.0.len(),
            updates as f64 / report.turnaround.0.len().max(1) as f64
        ),
    );
    row(&mut out, "admin notice latency", report.admin.summary(0.95));
    row(
        &mut out,
        "peak RSS",
        format!(
            "{:.1} MB   (resident at the end {:.1} MB)",
            peak_kb as f64 / 1024.0,
            rss_now_kb as f64 / 1024.0
        ),
    );
    row(&mut out, "missing replies", report.missing.to_string());
    row(&mut out, "wrong replies", report.wrong.len().to_string());
    let _ = writeln!(out, "\nper step (served → first reply / → last reply):");
    for (step, (first, last)) in SCRIPT.iter().zip(&report.per_step) {
        let _ = writeln!(
            out,
            "  {:<14} {}   | {}",
            step.name,
            first.summary(0.95),
            last.summary(0.95)
        );
    }
    let _ = writeln!(
        out,
        "\nharness (fake server + driver) CPU {harness_ms:.0} ms{others}; {} reply scans, {:.0} ms total, longest {:.1} ms; load average at start: {}",
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
            "the bot logged {} line(s) at log level {}; first: {}",
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

/// Pushes every customer's steps, each after the previous one is answered:
/// at once (closed loop, `plan` is `None`) or when due by the `plan` (paced,
/// see [`schedule`]).
async fn drive(
    fake: &FakeTelegram,
    bot: &mut BotProcess,
    customers: &mut [Customer],
    plan: Option<&[Duration]>,
    timeout: Duration,
) -> Result<Drive, String> {
    let first_push = Instant::now();
    let deadline = first_push + plan.and_then(|p| p.last()).copied().unwrap_or_default() + timeout;
    let count = customers.len();
    if plan.is_none() {
        for c in customers.iter_mut() {
            c.push_step(fake, None);
        }
    }
    // Paced: the next arrival of the plan.
    let mut next = 0usize;
    let mut overdue_pushes = 0usize;
    let mut left = count;
    // Notices to the admins' chat due so far, and received.
    let (mut notices_due, mut notices) = (0usize, 0usize);
    // Calls of the fake's record seen so far (the record only grows).
    let mut seen = 0usize;
    let (mut scans, mut scan_time, mut max_scan) = (0usize, Duration::ZERO, Duration::ZERO);
    let mut next_scan = Instant::now();
    loop {
        if let Some(plan) = plan {
            let now = Instant::now();
            while let Some(offset) = plan.get(next) {
                let due = first_push + *offset;
                if due > now {
                    break;
                }
                let c = &mut customers[next % count];
                debug_assert!(c.step <= next / count);
                if c.step == next / count && !c.in_flight() {
                    c.push_step(fake, Some(due));
                } else {
                    // The previous step still waits for its replies.
                    c.overdue = Some(due);
                }
                next += 1;
            }
        }
        if left == 0 && notices >= notices_due {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        bot.alive()?;
        // Wait for a new call to the fake, then for the scan slot; paced,
        // the next arrival interrupts the wait.
        let known = seen;
        let slice = Duration::from_millis(250).min(deadline - now);
        let reply = async {
            if fake
                .wait_until("a call", slice, move |f| f.call_count() > known)
                .await
                .is_err()
            {
                return false;
            }
            // Keep the scans to at most ~10% of the time.
            tokio::time::sleep_until(tokio::time::Instant::from_std(next_scan)).await;
            true
        };
        let arrival = plan
            .and_then(|p| p.get(next))
            .map(|offset| first_push + *offset);
        let scan = match arrival {
            Some(at) => tokio::select! {
                scan = reply => scan,
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => false,
            },
            None => reply.await,
        };
        if !scan {
            continue;
        }
        let scan_started = Instant::now();
        let calls = fake.calls_since(seen);
        seen += calls.len();
        let took = scan_started.elapsed();
        scans += 1;
        scan_time += took;
        max_scan = max_scan.max(took);
        next_scan = Instant::now() + (took * 10).max(Duration::from_millis(1));

        let mut touched = Vec::new();
        for call in &calls {
            if call.failed || call.method != "sendmessage" {
                continue;
            }
            let chat = call.chat_id();
            if chat == Some(ADMIN_CHAT) {
                notices += 1;
            } else if let Some(i) = chat.and_then(|id| customer_index(id, count)) {
                customers[i].replies += 1;
                touched.push(i);
            }
        }
        drop(calls);
        for i in touched {
            let c = &mut customers[i];
            if !c.in_flight() || c.replies < c.replies_due() {
                continue;
            }
            if SCRIPT[c.step].admin_notice {
                notices_due += 1;
            }
            c.step += 1;
            if c.done() {
                left -= 1;
            } else if plan.is_none() {
                c.push_step(fake, None);
            } else if let Some(due) = c.overdue.take() {
                overdue_pushes += 1;
                c.push_step(fake, Some(due));
            }
        }
    }
    Ok(Drive {
        first_push,
        finished: left == 0 && notices >= notices_due,
        scans,
        scan_time,
        max_scan,
        overdue_pushes,
    })
}

fn customer_index(chat_id: i64, count: usize) -> Option<usize> {
    let i = usize::try_from(chat_id.checked_sub(FIRST_CUSTOMER)?).ok()?;
    (i < count).then_some(i)
}

struct Report {
    /// Served → first reply, every update.
    first: Latencies,
    /// Served → the step's last reply in the customer's chat.
    last: Latencies,
    /// Pushed → first reply (includes the time until `getUpdates` serves it).
    from_push: Latencies,
    /// Due (paced: scheduled) → first reply.
    from_due: Latencies,
    /// Due → pushed: how far the pushes lagged behind the schedule.
    push_lag: Latencies,
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
        from_push: Latencies::default(),
        from_due: Latencies::default(),
        push_lag: Latencies::default(),
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
            let Some(&push) = c.pushed.get(s) else {
                continue;
            };
            report
                .push_lag
                .0
                .push(push.at.saturating_duration_since(push.due));
            let Some(served) = fake.served_at(push.update_id) else {
                continue;
            };
            report
                .pickup
                .0
                .push(served.saturating_duration_since(push.at));
            if step.admin_notice {
                question_served.insert(c.user.id, served);
            }
            // The first reply is the first sendMessage to the chat after the
            // update was served; a step is pushed only once the previous one
            // is answered, which makes it this step's own.
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
                report
                    .from_push
                    .0
                    .push(call.at.saturating_duration_since(push.at));
                report
                    .from_due
                    .0
                    .push(call.at.saturating_duration_since(push.due));
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
        .filter_map(|push| fake.served_at(push.update_id))
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
