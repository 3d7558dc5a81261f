//! The live bot: wires the Telegram adapter, the store, the engine and the
//! outbox together, and runs until told to stop.
//!
//! Start-up order: flow, database, Telegram identity, HTTP server,
//! unfinished inbox updates, delivery worker, then polling — or, in webhook
//! mode (`TELEGRAM_WEBHOOK_URL`), `setWebhook` with a new secret, after
//! which Telegram posts updates to the HTTP server. Shutdown: polling stops
//! (or the HTTP server's calls in progress finish), the inputs in hand
//! finish their transactions, deliveries in flight are recorded, and
//! nothing is left half-written.

pub mod admin;
mod core;
mod crm;
mod endpoints;
mod heartbeat;
mod reload;
pub mod route;
pub mod serial;
mod watch;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use chrono::Utc;
use teloxide::prelude::*;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::core::Core;
pub use self::reload::load_flow;
use crate::config::Config;
use crate::liveness::Liveness;
use crate::outbox::backoff::Backoff;
use crate::outbox::ratelimit::Limits;
use crate::outbox::receipts::Receipts;
use crate::outbox::worker::{Event, Settings, Wake, Worker};
use crate::outbox::{Destination, NewMessage};
use crate::store::{Db, DeadRow, Retention};
use crate::telegram::poll::{self, PollHealth};
use crate::telegram::send::TelegramTransport;
use crate::telegram::webhook::{self as telegram_webhook, Secret, WebhookError};
use endpoints::Receiving;

/// Runs the bot until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let hangups = watch::hangups();
    let flow_watch = if config.flow_watch {
        watch::watch(&config.flow_path)
    } else {
        tracing::info!("FLOW_WATCH is off: the flow is reloaded by SIGHUP or /reload only");
        None
    };
    let flow = load_flow(&config.flow_path)
        .map_err(|d| anyhow::anyhow!("the flow {} has errors:\n{d}", config.flow_path.display()))?;
    tracing::info!(flow = %config.flow_path.display(), version = %flow.version, "flow loaded");
    let db = Db::open(&config.database_path).with_context(|| {
        format!(
            "cannot open the database {}",
            config.database_path.display()
        )
    })?;
    let poll_bot = bot(&config, config.poll_timeout + Duration::from_secs(10))?;
    let send_bot = bot(&config, config.send_timeout)?;
    let username = identify(&poll_bot, &shutdown).await?;
    let receiving = match &config.telegram_webhook_url {
        Some(url) => Receiving::Webhook {
            url: url.clone(),
            secret: Secret::random()?,
        },
        None => {
            telegram_webhook::delete_leftover(&poll_bot).await;
            Receiving::Polling(PollHealth::default())
        }
    };

    let core = new_core(&config, flow, db.clone(), username);
    let receipts = open_receipts(&db, &config.database_path).await?;
    endpoints::registry();
    tokio::spawn(endpoints::metrics_upkeep(shutdown.clone()));
    let wahelp_liveness = Liveness::default();
    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("HTTP_LISTEN: cannot listen on {}", config.http_listen))?;
    let http = tokio::spawn(crate::http::serve(
        listener,
        endpoints::Endpoints {
            core: core.clone(),
            reader: webhook_reader(&config),
            telegram: receiving.clone(),
            started: Utc::now(),
            wahelp: config.wahelp.api.is_some().then(|| wahelp_liveness.clone()),
        },
        shutdown.clone(),
    ));
    tracing::info!(listen = %config.http_listen, "HTTP server listening");
    let offset = resume(&core).await?;

    let (worker, crm_worker, events) = start_delivery(
        &config,
        &core,
        send_bot,
        &receipts,
        &wahelp_liveness,
        &shutdown,
    )?;
    let retention = tokio::spawn(prune_regularly(
        db.clone(),
        retention(&config),
        shutdown.clone(),
    ));

    let heartbeat = config.heartbeat_alert.map(|after| {
        let watched = watched_connections(&receiving, crm_worker.is_some(), &wahelp_liveness);
        tokio::spawn(heartbeat::run(
            core.clone(),
            watched,
            after,
            shutdown.clone(),
        ))
    });
    let watcher = flow_watch.map(|w| tokio::spawn(watch::run(core.clone(), w, shutdown.clone())));
    let hangup = tokio::spawn(watch::on_hangup(core.clone(), hangups, shutdown.clone()));

    let received = receive(receiving, poll_bot, &config, offset, &core, &shutdown).await;

    tracing::info!("stopping: finishing the inputs in hand");
    // Calls in progress (Telegram's updates, Wahelp's replies) finish and
    // queue their inputs before the queue is drained.
    if let Ok(Err(e)) = http.await {
        tracing::error!(error = %e, "HTTP server failed");
    }
    core.serial.idle().await;
    let _ = worker.await;
    for task in [crm_worker, heartbeat, watcher]
        .into_iter()
        .flatten()
        .chain([events, retention, hangup])
    {
        let _ = task.await;
    }
    tracing::info!("stopped");
    received
}

/// The state every part of the running bot shares.
fn new_core(config: &Config, flow: crate::flow::model::Flow, db: Db, username: String) -> Core {
    if config.admin_chat_ids.is_empty() {
        tracing::warn!("ADMIN_CHAT_IDS is empty: admin notices and file copies go nowhere");
    }
    Core {
        db,
        flow: Arc::new(ArcSwap::from_pointee(flow)),
        flow_path: config.flow_path.clone(),
        admins: config.admin_chat_ids.clone().into(),
        bot_username: username.into(),
        serial: serial::Serial::default(),
        wake_telegram: Wake::default(),
        wake_crm: Wake::default(),
        reloads: Arc::default(),
    }
}

type Task = tokio::task::JoinHandle<()>;

/// Starts the delivery workers (Telegram; the CRM when the bridge is on)
/// and the task acting on what they report.
fn start_delivery(
    config: &Config,
    core: &Core,
    send_bot: Bot,
    receipts: &Arc<Receipts>,
    wahelp: &Liveness,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Task, Option<Task>, Task)> {
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let worker = Worker {
        db: core.db.clone(),
        transport: Arc::new(TelegramTransport::new(send_bot)),
        settings: telegram_settings(config),
        wake: core.wake_telegram.clone(),
        events: events_tx.clone(),
        receipts: Some(Arc::clone(receipts)),
    };
    let worker = tokio::spawn(worker.run(shutdown.clone()));
    let crm_worker = crm_worker(config, core, receipts, events_tx, wahelp)?
        .map(|w| tokio::spawn(w.run(shutdown.clone())));
    if crm_worker.is_none() {
        tracing::warn!(
            "WAHELP_PROJECT_ID is not set: messages for the managers wait in the outbox until the bridge is configured"
        );
    }
    let events = tokio::spawn(handle_events(core.clone(), events_rx, shutdown.clone()));
    Ok((worker, crm_worker, events))
}

/// Receives Telegram's updates until the stop: long polling from `offset`,
/// or (webhook mode) registering the webhook and waiting.
async fn receive(
    receiving: Receiving,
    poll_bot: Bot,
    config: &Config,
    offset: i32,
    core: &Core,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    match receiving {
        Receiving::Polling(health) => {
            tracing::info!(offset, "polling Telegram");
            let sink_core = core.clone();
            poll::run(
                poll_bot,
                config.poll_timeout,
                offset,
                move |batch| {
                    let core = sink_core.clone();
                    async move { core.accept_batch(batch).await.map(|_| ()) }
                },
                health,
                shutdown.clone(),
            )
            .await;
            Ok(())
        }
        Receiving::Webhook { url, secret } => by_webhook(&poll_bot, &url, &secret, shutdown).await,
    }
}

/// What the heartbeat watches: polling (in polling mode) and Wahelp (when
/// the bridge is on).
fn watched_connections(
    receiving: &Receiving,
    crm_on: bool,
    wahelp: &Liveness,
) -> Vec<heartbeat::Watched> {
    let mut watched = Vec::new();
    if let Receiving::Polling(health) = receiving {
        watched.push(heartbeat::Watched {
            name: "Telegram (получение сообщений)",
            liveness: health.clone(),
        });
    }
    if crm_on {
        watched.push(heartbeat::Watched {
            name: "Wahelp (сообщения менеджерам)",
            liveness: wahelp.clone(),
        });
    }
    watched
}

/// Webhook mode: points Telegram at us, then waits for the stop (the HTTP
/// server receives the updates). Telegram refusing the URL stops the bot
/// with that error. The webhook stays set at the stop: Telegram keeps the
/// updates that come meanwhile for the next start.
async fn by_webhook(
    bot: &Bot,
    url: &reqwest::Url,
    secret: &Secret,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    match telegram_webhook::register(bot, url, secret, shutdown).await {
        Ok(()) => {}
        Err(WebhookError::Stopped) => return Ok(()),
        Err(e) => {
            shutdown.cancel();
            return Err(e.into());
        }
    }
    tracing::info!(
        path = crate::http::telegram::PATH,
        "receiving Telegram updates by webhook"
    );
    shutdown.cancelled().await;
    tracing::info!("the Telegram webhook stays set: Telegram keeps new updates for the next start");
    Ok(())
}

/// How webhook calls are read, when the webhook is configured.
fn webhook_reader(config: &Config) -> Option<Arc<webhook::Reader>> {
    let w = &config.wahelp;
    let Some(secret) = &w.webhook_secret else {
        tracing::warn!(
            "WAHELP_WEBHOOK_SECRET is not set: the webhook refuses every call, managers' replies cannot arrive"
        );
        return None;
    };
    Some(Arc::new(webhook::Reader {
        paths: w.paths.clone(),
        secret: secret.clone(),
        relay: w.relay_url.is_some(),
    }))
}

/// The worker delivering to the CRM, when the bridge is configured.
fn crm_worker(
    config: &Config,
    core: &Core,
    receipts: &Arc<Receipts>,
    events: mpsc::UnboundedSender<Event>,
    liveness: &Liveness,
) -> anyhow::Result<Option<Worker<crm::CrmTransport>>> {
    let Some(api) = config.wahelp.api.clone() else {
        return Ok(None);
    };
    let client = crate::wahelp::client::Client::new(api).context("Wahelp settings")?;
    let transport = crm::CrmTransport::new(
        core.db.clone(),
        client,
        config.wahelp.relay_url.clone(),
        liveness.clone(),
    )?;
    Ok(Some(Worker {
        db: core.db.clone(),
        transport: Arc::new(transport),
        settings: Settings {
            destination: Destination::Crm,
            limits: Limits::unlimited(),
            concurrency: 4,
            // A Wahelp outage of any length only delays the managers'
            // messages: they are never given up for attempts or age (a
            // permanent refusal still ends them).
            max_attempts: u32::MAX,
            max_age: Duration::MAX,
            pause_all_on_retry_after: true,
            ..telegram_settings(config)
        },
        wake: core.wake_crm.clone(),
        events,
        receipts: Some(Arc::clone(receipts)),
    }))
}

/// A bot whose HTTP client has `timeout` and the configured proxy.
fn bot(config: &Config, timeout: Duration) -> anyhow::Result<Bot> {
    let mut builder = teloxide::net::default_reqwest_settings().timeout(timeout);
    if let Some(proxy) = &config.telegram_proxy_url {
        builder = builder
            .proxy(reqwest::Proxy::all(proxy.clone()).context("TELEGRAM_PROXY_URL is not usable")?);
    }
    let client = builder.build().context("cannot build the HTTP client")?;
    Ok(Bot::with_client(config.telegram_token.clone(), client)
        .set_api_url(config.telegram_api_url.clone()))
}

/// Asks Telegram who we are; retries while Telegram cannot be reached,
/// fails at once if it rejects the token.
async fn identify(bot: &Bot, shutdown: &CancellationToken) -> anyhow::Result<String> {
    let backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };
    for attempt in 1u32.. {
        match bot.get_me().await {
            Ok(me) => {
                let name = me.username.clone().unwrap_or_default();
                tracing::info!(bot = %name, "connected to Telegram");
                return Ok(name);
            }
            Err(teloxide::RequestError::Api(e)) if rejects_token(&e) => {
                anyhow::bail!(
                    "Telegram rejects TELEGRAM_BOT_TOKEN ({e}): check the token @BotFather gave you"
                );
            }
            Err(e) => {
                let wait = backoff.delay_random(attempt);
                tracing::warn!(error = %e, attempt, "cannot reach Telegram; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => anyhow::bail!("stopped before Telegram answered"),
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    anyhow::bail!("unreachable")
}

fn rejects_token(e: &teloxide::ApiError) -> bool {
    match e {
        teloxide::ApiError::InvalidToken => true,
        teloxide::ApiError::Unknown(text) => {
            text == "Not Found" || text.starts_with("Unauthorized")
        }
        _ => false,
    }
}

/// Opens the delivery receipts file beside the database and marks
/// delivered what a previous run noted there but did not record (a crash
/// between the two), before anything is delivered again.
async fn open_receipts(db: &Db, database: &Path) -> anyhow::Result<Arc<Receipts>> {
    let mut path = database.as_os_str().to_owned();
    path.push("-receipts");
    let path = PathBuf::from(path);
    let (receipts, left) = Receipts::open(&path)
        .with_context(|| format!("cannot open the receipts file {}", path.display()))?;
    if !left.is_empty() {
        let found: Vec<(i64, Option<String>)> = left
            .iter()
            .map(|r| (r.row_id, r.remote_id.clone()))
            .collect();
        let marked = db
            .run(move |s| s.confirm_receipts(&found, Utc::now()))
            .await?;
        tracing::info!(
            receipts = left.len(),
            marked,
            "deliveries noted before the stop were recorded"
        );
    }
    receipts
        .clear()
        .with_context(|| format!("cannot empty the receipts file {}", path.display()))?;
    Ok(Arc::new(receipts))
}

/// Queues the updates and inputs stored before a stop but not processed;
/// returns the offset to poll from.
async fn resume(core: &Core) -> anyhow::Result<i32> {
    let (pending, inputs, last, crm) = core
        .db
        .run(|s| {
            Ok((
                s.inbox_pending()?,
                s.inputs_pending()?,
                s.inbox_last_id()?,
                s.outbox_depth(Destination::Crm)?,
            ))
        })
        .await?;
    if !pending.is_empty() || !inputs.is_empty() {
        tracing::info!(
            updates = pending.len(),
            inputs = inputs.len(),
            "resuming what was received before the stop"
        );
    }
    for (id, raw) in &pending {
        core.dispatch(*id, raw);
    }
    for input in inputs {
        core.inject(input).await;
    }
    if crm > 0 {
        tracing::info!(count = crm, "messages for the CRM wait in the outbox");
    }
    Ok(last.map_or(0, |id| i32::try_from(id + 1).unwrap_or(i32::MAX)))
}

fn telegram_settings(config: &Config) -> Settings {
    Settings {
        destination: Destination::Telegram,
        max_attempts: config.outbox_max_attempts,
        max_age: config.outbox_max_age,
        backoff: Backoff::default(),
        limits: Limits {
            global_per_sec: config.rate_global_per_sec,
            per_chat_per_sec: config.rate_per_chat_per_sec,
            // Per-chat limits off (0) switches the group limit off too.
            group_per_min: if config.rate_per_chat_per_sec > 0.0 {
                Limits::default().group_per_min
            } else {
                0.0
            },
            ..Limits::default()
        },
        concurrency: 8,
        pause_all_on_retry_after: false,
    }
}

fn retention(config: &Config) -> Retention {
    Retention {
        processed_updates_days: config.processed_updates_days,
        message_log_days: config.message_log_days,
        finished_outbox_days: config.message_log_days,
        webhook_log_days: config.wahelp.webhook_log_days,
    }
}

/// Acts on what the delivery worker reports.
async fn handle_events(
    core: Core,
    mut events: mpsc::UnboundedReceiver<Event>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            e = events.recv() => e,
        };
        match event {
            None => return,
            Some(Event::RecipientGone(input)) => {
                tracing::info!(
                    customer = input.customer_id,
                    "customer unreachable; marking blocked"
                );
                core.inject(input).await;
            }
            Some(Event::Dead) => announce_dead(&core).await,
        }
    }
}

/// Tells the admins, once, about rows given up on.
async fn announce_dead(core: &Core) {
    let admins = Arc::clone(&core.admins);
    let result = core
        .db
        .run(move |s| s.announce_dead(Utc::now(), &|dead| dead_notice(dead, &admins)))
        .await;
    match result {
        Ok(0) => {}
        Ok(n) => {
            tracing::error!(
                count = n,
                "messages could not be delivered and were given up"
            );
            core.wake_telegram.wake();
        }
        Err(e) => tracing::error!(error = %e, "cannot announce undelivered messages"),
    }
}

fn dead_notice(dead: &[DeadRow], admins: &[i64]) -> Vec<NewMessage> {
    // A notice about notices that could not reach the admins would fail the same way.
    let about: Vec<&DeadRow> = dead.iter().filter(|d| !d.is_admin_notice).collect();
    if about.is_empty() {
        return Vec::new();
    }
    let mut text = format!("⚠️ Не удалось доставить сообщений: {}.", about.len());
    for d in about.iter().take(10) {
        text.push_str(&format!("\n• {} — {}", d.summary, d.error));
    }
    if about.len() > 10 {
        text.push_str("\n…");
    }
    admins
        .iter()
        .flat_map(|&chat| route::admin_text(chat, &text))
        .collect()
}

/// Deletes old records every hour.
async fn prune_regularly(db: Db, keep: Retention, shutdown: CancellationToken) {
    loop {
        match db.run(move |s| s.prune(keep, Utc::now())).await {
            Ok(p) => tracing::debug!(
                updates = p.updates,
                log = p.log,
                outbox = p.outbox,
                webhooks = p.webhooks,
                "pruned"
            ),
            Err(e) => tracing::warn!(error = %e, "pruning failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
