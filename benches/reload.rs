//! Reload latency: the time from saving the flow file to the first answer
//! the new flow gives, measured on the real binary against the fake
//! Telegram of the integration tests over 127.0.0.1.
//!
//! Each round rewords the greeting (a marker with the round's number),
//! saves the file — odd rounds as vim and VS Code do (a new file renamed
//! over the old), even rounds as nano does (truncate and write in place) —
//! and at once starts probing: a new customer sends `/start`, the harness
//! waits for the greeting, and again, until a greeting carries the marker.
//! The latency is from just before the save to the arrival of that
//! greeting at the fake; a probe's round trip (a few ms) bounds the error.
//! Also reported: the bot's resident memory after it has idled a while.
//!
//! `cargo bench --bench reload` runs the measurement (40 rounds, the
//! release binary). Run by `cargo test --benches` / `--all-targets` it is a
//! smoke run of 4 rounds. `RELOAD_ROUNDS` overrides the count.

#[allow(dead_code)]
#[path = "../tests/support/bot.rs"]
mod bot;
#[allow(dead_code)]
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

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use child::BotProcess;
use measure::{Latencies, ms, rss_kb};
use telegram::{FakeTelegram, TgUser};

const DEFAULT_FLOW: &str = include_str!("../flows/default.yaml");
const GREETING: &str = "greeting: \"Здравствуйте, ";
/// A round that takes longer than this has failed.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between rounds, so that one save's events never reach the next.
const BETWEEN_ROUNDS: Duration = Duration::from_millis(300);
const FIRST_CUSTOMER: i64 = 6_200_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Save {
    Rename,
    InPlace,
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rounds = std::env::var("RELOAD_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 40 } else { 4 });
    harness::run("reload", run(bench, rounds));
}

async fn run(bench: bool, rounds: usize) -> Result<(), String> {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let flows = dir.path().join("flows");
    std::fs::create_dir(&flows).map_err(|e| e.to_string())?;
    let flow = flows.join("default.yaml");
    std::fs::write(&flow, DEFAULT_FLOW).map_err(|e| e.to_string())?;
    let mut env = bot::env(&fake, &dir.path().join("bot.db"));
    env.insert("FLOW_PATH".into(), flow.display().to_string());
    env.insert("RUST_LOG".into(), "warn".into());
    env.insert("HEARTBEAT_ALERT_SECS".into(), "0".into());
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowbot"));
    command.arg("run");
    let mut bot = BotProcess::spawn(command, &env, dir.path(), "bot.log")?;
    fake.wait_until("the bot polling", Duration::from_secs(30), |f| {
        !f.calls_to("getUpdates").is_empty()
    })
    .await
    .map_err(|e| format!("{e}\n{}", bot.log_tail()))?;

    // Idle: started, polling, nobody writing.
    tokio::time::sleep(Duration::from_secs(if bench { 10 } else { 1 })).await;
    let (_, idle_kb) = rss_kb(bot.pid)?;

    let mut by_save = [
        (Save::Rename, Latencies::default()),
        (Save::InPlace, Latencies::default()),
    ];
    let mut customer = FIRST_CUSTOMER;
    for round in 1..=rounds {
        let save = if round % 2 == 1 {
            Save::Rename
        } else {
            Save::InPlace
        };
        let marker = format!("(правка {round})");
        let text = DEFAULT_FLOW.replace(GREETING, &format!("{GREETING}{marker} "));
        let saved_at = Instant::now();
        write(&flow, &text, save)?;
        let answered_at = probe_until(&fake, &marker, &mut customer, &mut bot).await?;
        let latency = answered_at.saturating_duration_since(saved_at);
        for (kind, l) in &mut by_save {
            if *kind == save {
                l.push(latency);
            }
        }
        tokio::time::sleep(BETWEEN_ROUNDS).await;
    }
    let (peak_kb, _) = rss_kb(bot.pid)?;
    bot.stop(Duration::from_secs(20)).await?;

    let mut all = Latencies::default();
    println!("\nreload latency, save → first answer of the new flow ({rounds} rounds)");
    for (save, l) in &by_save {
        println!("  {save:?}: {}", l.summary(0.90));
        all.0.extend(l.0.iter().copied());
    }
    println!("  all: {}", all.summary(0.90));
    if let Some(max) = all.at(1.0) {
        println!("  slowest: {} ms", ms(max));
    }
    println!(
        "memory: idle {:.1} MB resident; peak {:.1} MB during the rounds",
        idle_kb as f64 / 1024.0,
        peak_kb as f64 / 1024.0
    );
    Ok(())
}

/// Saves `text` as `save` says.
fn write(flow: &Path, text: &str, save: Save) -> Result<(), String> {
    match save {
        Save::Rename => {
            let temp = flow.with_file_name(".default.yaml.new");
            std::fs::write(&temp, text).map_err(|e| e.to_string())?;
            std::fs::rename(&temp, flow).map_err(|e| e.to_string())
        }
        Save::InPlace => {
            let mut file = std::fs::File::create(flow).map_err(|e| e.to_string())?;
            file.write_all(text.as_bytes()).map_err(|e| e.to_string())
        }
    }
}

/// New customers say `/start` one after another until a greeting carries
/// `marker`; returns when that greeting reached the fake.
async fn probe_until(
    fake: &FakeTelegram,
    marker: &str,
    customer: &mut i64,
    bot: &mut BotProcess,
) -> Result<Instant, String> {
    let started = Instant::now();
    loop {
        if started.elapsed() > ROUND_TIMEOUT {
            return Err(format!(
                "no greeting with {marker} within {ROUND_TIMEOUT:?}\n{}",
                bot.log_tail()
            ));
        }
        bot.alive()?;
        *customer += 1;
        let user = TgUser::new(*customer, "Клиент");
        fake.push_text(&user, "/start");
        let chat = user.id;
        fake.wait_until("the greeting", ROUND_TIMEOUT, |f| {
            f.calls_to("sendMessage")
                .iter()
                .any(|c| c.chat_id() == Some(chat))
        })
        .await?;
        let greeting = fake
            .calls_to("sendMessage")
            .into_iter()
            .find(|c| c.chat_id() == Some(chat))
            .ok_or("the greeting vanished")?;
        if greeting.text().is_some_and(|t| t.contains(marker)) {
            return Ok(greeting.at);
        }
    }
}
