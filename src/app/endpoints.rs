//! The app's side of the HTTP server: Wahelp's webhook calls go to the
//! bridge, Telegram's (webhook mode) to the inbox like polled updates,
//! `/healthz` reads the store and the poller, `/metrics` renders the
//! Prometheus registry with the outbox gauges read fresh.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::Utc;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};

use super::core::Core;
use super::webhook::{self, Reader};
use crate::http::{Accepted, Health, Service};
use crate::store::QueueHealth;
use crate::telegram::poll::{PollHealth, RawUpdate};
use crate::telegram::webhook::Secret;

/// Polling that has not succeeded for this long makes the bot unhealthy.
const POLL_STALE: Duration = Duration::from_secs(180);

#[derive(Clone)]
pub struct Endpoints {
    pub core: Core,
    /// `None` when `WAHELP_WEBHOOK_SECRET` is unset.
    pub reader: Option<Arc<Reader>>,
    /// How updates arrive from Telegram.
    pub telegram: Receiving,
    pub started: chrono::DateTime<Utc>,
    /// How Wahelp answers the sends; `None` when the bridge is off.
    pub wahelp: Option<crate::liveness::Liveness>,
}

/// How updates arrive from Telegram.
#[derive(Clone, Debug)]
pub enum Receiving {
    /// Long polling, and when it last succeeded.
    Polling(PollHealth),
    /// Telegram posts them to `/telegram/webhook` (mapped from the public
    /// `url`) with this secret.
    Webhook { url: reqwest::Url, secret: Secret },
}

impl Receiving {
    fn mode(&self) -> &'static str {
        match self {
            Receiving::Polling(_) => "polling",
            Receiving::Webhook { .. } => "webhook",
        }
    }
}

/// The process-wide Prometheus registry (installed once; every bot in a
/// process, as in the tests, shares it).
pub fn registry() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed before ours; /metrics will be empty");
        }
        handle
    })
}

/// Folds the histograms' recorded samples into their buckets every few
/// seconds, so that memory stays flat whether or not `/metrics` is scraped.
pub async fn metrics_upkeep(shutdown: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => registry().run_upkeep(),
        }
    }
}

impl Service for Endpoints {
    fn webhook_secret(&self) -> Option<&str> {
        self.reader.as_deref().map(|r| r.secret.as_str())
    }

    async fn accept_webhook(&self, body: Value) -> Result<(), String> {
        let Some(reader) = self.reader.clone() else {
            return Err("webhook not configured".into());
        };
        // In a task of its own: a client that hangs up after the call was
        // stored must not cancel handing its messages to their customers.
        let core = self.core.clone();
        tokio::spawn(async move { webhook::accept(&core, &reader, body).await })
            .await
            .map_err(|e| format!("webhook task failed: {e}"))?
            .map_err(|e| e.to_string())
    }

    fn telegram_secret(&self) -> Option<&str> {
        match &self.telegram {
            Receiving::Webhook { secret, .. } => Some(secret.as_str()),
            Receiving::Polling(_) => None,
        }
    }

    async fn accept_update(&self, id: i64, raw: String) -> Result<Accepted, String> {
        // The same path as a polled batch. In a task of its own: Telegram
        // hanging up after the update was stored must not keep it from
        // being queued.
        let core = self.core.clone();
        let added =
            tokio::spawn(async move { core.accept_batch(vec![RawUpdate { id, raw }]).await })
                .await
                .map_err(|e| format!("update task failed: {e}"))?
                .map_err(|e| format!("{e:#}"))?;
        Ok(if added == 0 {
            Accepted::Duplicate
        } else {
            Accepted::New
        })
    }

    async fn health(&self) -> Health {
        let queues = self.core.db.run(|s| s.outbox_health()).await;
        let flow = self.core.flow.load();
        let now = Utc::now();
        let mut healthy = true;
        let database = match &queues {
            Ok(_) => json!("ok"),
            Err(e) => {
                healthy = false;
                json!(format!("error: {e}"))
            }
        };
        let outbox: serde_json::Map<String, Value> = queues
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|q| (q.destination.as_str().to_owned(), queue_json(q, now)))
            .collect();
        let poll = match &self.telegram {
            Receiving::Polling(p) => Some(p),
            Receiving::Webhook { .. } => None,
        };
        let poll = poll.map(|p| {
            let last = chrono::DateTime::from_timestamp_millis(p.last_ok_ms())
                .filter(|_| p.last_ok_ms() > 0);
            let since = last.unwrap_or(self.started);
            let stale = (now - since).to_std().unwrap_or_default() > POLL_STALE;
            healthy &= !stale;
            json!({
                "last_ok": last.map(|t| t.to_rfc3339()),
                "seconds_ago": last.map(|t| (now - t).num_seconds()),
                "ok": !stale,
            })
        });
        Health {
            healthy,
            report: json!({
                "ok": healthy,
                "database": database,
                "flow": {"version": flow.version},
                "outbox": outbox,
                "telegram_mode": self.telegram.mode(),
                "telegram_poll": poll,
                "webhook": self.reader.is_some(),
                "wahelp": self.wahelp.as_ref().map(|w| liveness_json(&w.snapshot(), now)),
            }),
        }
    }

    async fn metrics(&self) -> String {
        if let Ok(queues) = self.core.db.run(|s| s.outbox_health()).await {
            for destination in ["telegram", "crm"] {
                let q = queues
                    .iter()
                    .find(|q| q.destination.as_str() == destination);
                let (pending, dead) = q.map_or((0, 0), |q| (q.pending, q.dead));
                metrics::gauge!("flowbot_outbox_depth", "destination" => destination)
                    .set(pending as f64);
                metrics::gauge!("flowbot_outbox_dead", "destination" => destination)
                    .set(dead as f64);
            }
        }
        registry().render()
    }
}

/// A connection's state: when it last worked, and since when (and why) it
/// has been failing. Informative only: an outage delays the managers'
/// messages but does not make the bot unhealthy.
fn liveness_json(l: &crate::liveness::Snapshot, now: chrono::DateTime<Utc>) -> Value {
    json!({
        "last_ok": l.last_ok.map(|t| t.to_rfc3339()),
        "failing_seconds": l.failing_since.map(|t| (now - t).num_seconds().max(0)),
        "last_error": l.failing_since.map(|_| l.last_error.clone()),
    })
}

fn queue_json(q: &QueueHealth, now: chrono::DateTime<Utc>) -> Value {
    json!({
        "pending": q.pending,
        "oldest_pending_seconds": q.oldest_pending.map(|t| (now - t).num_seconds().max(0)),
        "dead": q.dead,
    })
}
