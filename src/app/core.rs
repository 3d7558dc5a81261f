//! The running bot's shared state and how one input is handled: parse,
//! decide with the engine, and store everything it changed in one
//! transaction. Every input source comes through here.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::Utc;
use teloxide::types::Update;

use super::admin::{self, Command};
use super::route::{self, Addressing};
use super::serial::Serial;
use crate::engine::{Customer, Input, step};
use crate::flow::model::Flow;
use crate::outbox::worker::Wake;
use crate::outbox::{Destination, NewMessage};
use crate::store::{
    BonusAdjustment, BonusChange, Commit, Committed, Db, LogEntry, PendingInput, Source,
};
use crate::telegram::poll::RawUpdate;
use crate::telegram::update::{Incoming, chat_message, classify};

/// Inputs waiting in memory above which polling pauses.
const MAX_BACKLOG: usize = 5_000;

/// What every part of the running bot shares.
#[derive(Clone)]
pub struct Core {
    pub db: Db,
    pub flow: Arc<ArcSwap<Flow>>,
    pub flow_path: PathBuf,
    pub admins: Arc<[i64]>,
    /// Our username (from `getMe`), to tell our commands from other bots'.
    pub bot_username: Arc<str>,
    pub serial: Serial,
    pub wake_telegram: Wake,
    pub wake_crm: Wake,
    /// What flow reloads remember (see [`super::reload`]).
    pub reloads: Arc<super::reload::Reloads>,
}

impl Core {
    /// Stores a batch from Telegram (polled, or one update from the webhook)
    /// in the inbox, then queues each new update; answers how many were new
    /// (ids stored before are left alone). Returns only when the batch is
    /// durable (so its offset may be confirmed, or the webhook call answered).
    pub async fn accept_batch(&self, batch: Vec<RawUpdate>) -> anyhow::Result<usize> {
        metrics::counter!("flowbot_updates_total").increment(batch.len() as u64);
        let rows: Vec<(i64, String)> = batch.into_iter().map(|u| (u.id, u.raw)).collect();
        let added = self.db.run(move |s| s.inbox_add(rows, Utc::now())).await?;
        for (id, raw) in &added {
            self.dispatch(*id, raw);
        }
        // Back-pressure: while too much waits, stop asking Telegram for more
        // (the stored updates are safe; memory is what this protects).
        while self.serial.backlog() > MAX_BACKLOG {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(added.len())
    }

    /// Queues a stored update behind the earlier inputs of the same customer.
    pub fn dispatch(&self, update_id: i64, raw: &str) {
        // `from_str`, never `from_value`: teloxide's updates need borrowed keys.
        let update: Update = match serde_json::from_str(raw) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(update_id, error = %e, "update is not valid JSON; skipped");
                return self.skip(update_id);
            }
        };
        // In an admin chat the customer flow never runs: admins get no customer keyboard.
        if let Some((chat_id, text)) = chat_message(&update, &self.bot_username)
            && self.admins.contains(&chat_id)
        {
            let core = self.clone();
            return self.serial.submit(chat_id, async move {
                core.admin(update_id, chat_id, text.as_deref().unwrap_or_default())
                    .await;
            });
        }
        match classify(&update, &self.bot_username) {
            Incoming::Customer {
                chat_id,
                message_id,
                customer,
                input,
            } => {
                let core = self.clone();
                let key = customer.telegram_id;
                let job = Job {
                    source: Some(Source::Update(update_id)),
                    chat_id: Some(chat_id),
                    message_id,
                    customer,
                    input,
                };
                self.serial
                    .submit(key, async move { core.handle(job).await });
            }
            Incoming::CallbackQuery { id } => {
                let messages = vec![NewMessage {
                    payload: crate::outbox::Payload::TelegramAnswerCallback { callback_id: id },
                    customer_id: None,
                    is_admin_notice: false,
                }];
                let core = self.clone();
                self.serial.submit(update_id, async move {
                    core.store_plain(Source::Update(update_id), messages).await;
                });
            }
            Incoming::Ignored(reason) => {
                tracing::debug!(update_id, reason, "update ignored");
                self.skip(update_id);
            }
        }
    }

    fn skip(&self, update_id: i64) {
        let core = self.clone();
        self.serial.submit(update_id, async move {
            core.store_plain(Source::Update(update_id), Vec::new())
                .await;
        });
    }

    /// Applies a stored input that did not come from a Telegram update (a
    /// delivery that found the customer gone, a manager's reply), behind
    /// the customer's earlier inputs.
    pub async fn inject(&self, pending: PendingInput) {
        let PendingInput {
            id,
            customer_id,
            input,
        } = pending;
        let known = self.db.run(move |s| s.customer(customer_id)).await;
        let (customer, chat_id) = match known {
            Ok(Some(c)) => c,
            Ok(None) => {
                tracing::warn!(
                    input = id,
                    customer = customer_id,
                    "input for an unknown customer; marked processed"
                );
                return self.store_plain(Source::Input(id), Vec::new()).await;
            }
            Err(e) => {
                // It stays in the queue and runs at the next start.
                tracing::error!(input = id, customer = customer_id, error = %e, "cannot load customer");
                return;
            }
        };
        let core = self.clone();
        let job = Job {
            source: Some(Source::Input(id)),
            chat_id,
            message_id: None,
            customer,
            input,
        };
        self.serial
            .submit(customer_id, async move { core.handle(job).await });
    }

    /// One input of one customer: the engine decides, one transaction stores
    /// it all. A database failure is retried a few times (the customer's
    /// later inputs wait behind it); after that the update stays unprocessed
    /// in the inbox and runs again at the next start.
    async fn handle(&self, job: Job) {
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            match self.try_handle(job.clone()).await {
                Ok(()) => return,
                Err(e) => tracing::error!(
                    source = ?job.source,
                    customer = job.customer.telegram_id,
                    attempt,
                    error = %e,
                    "input not stored"
                ),
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
        }
    }

    async fn try_handle(&self, job: Job) -> Result<(), crate::store::StoreError> {
        let started = std::time::Instant::now();
        let flow = self.flow.load_full();
        let admins = Arc::clone(&self.admins);
        let (source, customer_id) = (job.source, job.customer.telegram_id);
        let kind = input_kind(&job.input);
        let (done, (telegram, crm)) = self
            .db
            .run(move |s| {
                let now = Utc::now();
                let session = s.load_session(&job.customer, &flow.start_state().name)?;
                let outcome = step(&flow, &session, &job.input, now);
                let messages = route::messages(
                    &outcome.effects,
                    Addressing {
                        customer_id: job.customer.telegram_id,
                        chat_id: job.chat_id,
                        message_id: job.message_id,
                        admins: &admins,
                    },
                );
                let commit = Commit {
                    outcome: Some(&outcome),
                    chat_id: job.chat_id,
                    messages: &messages,
                    source: job.source,
                    log: log_entry(&job),
                };
                let done = s.commit(&commit, now)?;
                Ok((done, wakes(&messages)))
            })
            .await?;
        let latency_us = started.elapsed().as_micros() as u64;
        match done {
            Committed::Applied => {
                metrics::counter!("flowbot_inputs_total", "kind" => kind).increment(1);
                metrics::histogram!("flowbot_input_seconds")
                    .record(started.elapsed().as_secs_f64());
                tracing::info!(
                    source = ?source,
                    customer = customer_id,
                    kind,
                    latency_us,
                    "input handled"
                );
                self.wake(telegram, crm);
            }
            Committed::AlreadyProcessed => {
                tracing::info!(source = ?source, "input was processed before; skipped");
            }
        }
        Ok(())
    }

    /// Marks an input processed with the messages it needs and nothing else.
    async fn store_plain(&self, source: Source, messages: Vec<NewMessage>) {
        self.commit_messages(Some(source), messages).await;
    }

    /// Queues messages that answer no stored input (notices to the admins).
    pub(super) async fn send_now(&self, messages: Vec<NewMessage>) {
        if !messages.is_empty() {
            self.commit_messages(None, messages).await;
        }
    }

    async fn commit_messages(&self, source: Option<Source>, messages: Vec<NewMessage>) {
        let (telegram, crm) = wakes(&messages);
        let result = self
            .db
            .run(move |s| {
                let commit = Commit {
                    messages: &messages,
                    source,
                    ..Commit::default()
                };
                s.commit(&commit, Utc::now())
            })
            .await;
        match result {
            Ok(_) => self.wake(telegram, crm),
            Err(e) => tracing::error!(source = ?source, error = %e, "messages not stored"),
        }
    }

    fn wake(&self, telegram: bool, crm: bool) {
        if telegram {
            self.wake_telegram.wake();
        }
        if crm {
            self.wake_crm.wake();
        }
    }

    /// A message in an admin chat.
    async fn admin(&self, update_id: i64, chat_id: i64, text: &str) {
        let Some(command) = admin::parse(text) else {
            // Admins talk among themselves in their chat; only a private chat gets the help.
            let help = if chat_id > 0 {
                route::admin_text(chat_id, admin::HELP)
            } else {
                Vec::new()
            };
            return self.store_plain(Source::Update(update_id), help).await;
        };
        tracing::info!(update_id, admin_chat = chat_id, command = ?command_name(&command), "admin command");
        let answer = match command {
            Command::Help => admin::HELP.to_owned(),
            Command::Invalid(usage) => usage,
            Command::Stats => self.stats_text().await,
            Command::Reload => {
                let trigger = super::reload::Trigger::Admin(chat_id);
                let (_, notices) = self.reload_with_notices(trigger, true).await;
                return self.store_plain(Source::Update(update_id), notices).await;
            }
            Command::Bonus {
                phone,
                delta,
                reason,
            } => return self.bonus(update_id, chat_id, phone, delta, reason).await,
        };
        self.store_plain(
            Source::Update(update_id),
            route::admin_text(chat_id, &answer),
        )
        .await;
    }

    async fn bonus(
        &self,
        update_id: i64,
        chat_id: i64,
        phone: crate::phone::Phone,
        delta: i64,
        reason: String,
    ) {
        let adjustment = BonusAdjustment {
            phone: phone.clone(),
            delta,
            reason: format!("admin: {reason}"),
            update_id: Some(update_id),
        };
        let result = self
            .db
            .run(move |s| {
                s.adjust_bonus(&adjustment, Utc::now(), &|change| {
                    route::admin_text(chat_id, &admin::bonus_text(change, &phone, delta))
                })
            })
            .await;
        match result {
            Ok(Some(change)) => {
                let customer = match &change {
                    BonusChange::Done { customer, .. }
                    | BonusChange::NotEnough { customer, .. } => Some(customer.telegram_id),
                    BonusChange::NoSuchCustomer => None,
                };
                tracing::info!(
                    admin_chat = chat_id,
                    delta,
                    ?customer,
                    applied = matches!(change, BonusChange::Done { .. }),
                    "bonus command"
                );
                self.wake_telegram.wake();
            }
            Ok(None) => tracing::info!(update_id, "bonus command was processed before; skipped"),
            Err(e) => tracing::error!(update_id, error = %e, "bonus not stored"),
        }
    }

    /// The `/stats` text; "today" is the flow's local day.
    pub async fn stats_text(&self) -> String {
        let since = admin::start_of_today(&self.flow.load());
        let result = self
            .db
            .run(move |s| Ok((s.stats(since)?, s.outbox_depth(Destination::Crm)?)))
            .await;
        match result {
            Ok((stats, crm)) => admin::stats_text(&stats, crm),
            Err(e) => {
                tracing::error!(error = %e, "stats failed");
                "Не удалось прочитать статистику: ошибка базы данных (подробности в журнале)."
                    .to_owned()
            }
        }
    }
}

/// One input for one customer.
#[derive(Clone)]
struct Job {
    source: Option<Source>,
    chat_id: Option<i64>,
    message_id: Option<i32>,
    customer: Customer,
    input: Input,
}

fn wakes(messages: &[NewMessage]) -> (bool, bool) {
    let has = |d| messages.iter().any(|m| m.payload.destination() == d);
    (has(Destination::Telegram), has(Destination::Crm))
}

fn input_kind(input: &Input) -> &'static str {
    match input {
        Input::Text { .. } => "text",
        Input::Contact { .. } => "contact",
        Input::Media { media, .. } => media.as_str(),
        Input::ManagerReply { .. } => "manager",
        Input::Blocked => "blocked",
        Input::Unblocked => "unblocked",
    }
}

/// The incoming message as the message log keeps it (status changes are not messages).
fn log_entry(job: &Job) -> Option<LogEntry> {
    let text = match &job.input {
        Input::Text { text } | Input::ManagerReply { text, .. } => Some(text.clone()),
        Input::Contact { phone, .. } => Some(phone.clone()),
        Input::Media { caption, .. } => caption.clone(),
        Input::Blocked | Input::Unblocked => return None,
    };
    Some(LogEntry {
        customer_id: Some(job.customer.telegram_id),
        chat_id: job.chat_id,
        kind: input_kind(&job.input).to_owned(),
        text,
    })
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Stats => "stats",
        Command::Bonus { .. } => "bonus",
        Command::Reload => "reload",
        Command::Help => "help",
        Command::Invalid(_) => "invalid",
    }
}
