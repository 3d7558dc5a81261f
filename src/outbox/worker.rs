//! The delivery loop for one destination: takes the head of every queue that
//! is due, sends it within the rate limits, and records what happened.
//!
//! It wakes at once when a row is inserted (through [`Wake`]) and on a timer
//! for retries. Rows of one queue (one chat) go one at a time, in order, so
//! a message that is retrying holds back the ones after it; other queues go
//! on. A failed database write after a successful send leaves the row
//! pending: it may be sent again (a rare duplicate), never lost.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::ratelimit::{Limits, RateLimiter};
use super::receipts::{Receipt, Receipts};
use super::{Delivered, DeliveryError, Destination, Transport};
use crate::store::{Db, OutboxRow, PendingInput};

/// Tells a worker that rows were inserted.
#[derive(Debug, Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    async fn woken(&self) {
        self.0.notified().await;
    }
}

/// How a worker delivers.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub destination: Destination,
    /// After this many attempts a row is dead.
    pub max_attempts: u32,
    /// A row older than this is dead at its next failure.
    pub max_age: Duration,
    pub backoff: Backoff,
    pub limits: Limits,
    /// Deliveries in flight at once (each to a different queue).
    pub concurrency: usize,
    /// A "retry after" pauses every queue of the destination, not only the
    /// refused one (the CRM's rate limit is per account; Telegram's 429 is
    /// per chat).
    pub pause_all_on_retry_after: bool,
}

/// What the rest of the bot must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A customer's chat refused a message for good (blocked the bot,
    /// deactivated): the `Blocked` input stored for them, to apply now.
    /// (Already stored: if the event is lost to a stop, it runs at the next start.)
    RecipientGone(PendingInput),
    /// Rows were given up on; the admins are to be told.
    Dead,
}

pub struct Worker<T> {
    pub db: Db,
    pub transport: Arc<T>,
    pub settings: Settings,
    pub wake: Wake,
    pub events: mpsc::UnboundedSender<Event>,
    /// Where successful deliveries are noted before the database hears of
    /// them (fewer duplicates after a crash); `None` in tests that do not care.
    pub receipts: Option<Arc<Receipts>>,
}

/// What the loop keeps between turns.
struct Flight {
    limiter: RateLimiter,
    /// Queues with a delivery in flight (one at a time per queue).
    in_flight: HashSet<String>,
    tasks: JoinSet<Finished>,
    /// A "retry after" for the whole destination.
    paused_until: Option<Instant>,
    /// Something may have become due: scan every queue at the next turn.
    dirty: bool,
    /// Rows each queue has sent in a row without a scan; at [`STREAK`] the
    /// queue gives way, so that a long queue cannot keep the others waiting.
    streaks: HashMap<String, u32>,
}

/// Rows one queue may send in a row before the others get a look in.
const STREAK: u32 = 4;

impl<T: Transport> Worker<T> {
    /// Delivers until `shutdown`; deliveries in flight then finish and are recorded.
    ///
    /// A full scan of the queue heads happens when woken (new rows), when
    /// a retry comes due, and when a queue runs dry; a delivered row's
    /// queue goes on with its next row, fetched in the call that recorded
    /// the delivery, without a scan.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut f = Flight {
            limiter: RateLimiter::new(self.settings.limits),
            in_flight: HashSet::new(),
            tasks: JoinSet::new(),
            paused_until: None,
            dirty: true,
            streaks: HashMap::new(),
        };
        let mut scan_at = Instant::now();
        while !shutdown.is_cancelled() {
            // Reap every finished delivery first: its chat is free again.
            while let Some(done) = f.tasks.try_join_next() {
                self.reap(done, &mut f);
            }
            let pause = f
                .paused_until
                .and_then(|p| p.checked_duration_since(Instant::now()));
            if pause.is_none() && (f.dirty || Instant::now() >= scan_at) {
                f.dirty = false;
                let nap = self.start_due(&mut f).await;
                scan_at = Instant::now() + nap;
            }
            let sleep = pause.unwrap_or_else(|| scan_at.saturating_duration_since(Instant::now()));
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.woken(), if pause.is_none() => f.dirty = true,
                Some(done) = f.tasks.join_next(), if !f.tasks.is_empty() => self.reap(done, &mut f),
                () = tokio::time::sleep(sleep) => {}
            }
        }
        while f.tasks.join_next().await.is_some() {}
    }

    /// A delivery ended: its queue goes on with its next row, or is free
    /// again; a "retry after" may pause the whole destination.
    fn reap(&self, done: Result<Finished, tokio::task::JoinError>, f: &mut Flight) {
        let Ok(done) = done else {
            // A delivery task panicked. Its queue is unknown and stays busy
            // (until a restart) rather than risk two sends in one queue.
            tracing::error!("outbox: a delivery task failed; its queue waits for a restart");
            return;
        };
        if let (Some(wait), true) = (done.wait, self.settings.pause_all_on_retry_after) {
            let until = Instant::now() + wait;
            f.paused_until = Some(f.paused_until.map_or(until, |p| p.max(until)));
            f.dirty = true;
            tracing::warn!(
                wait_secs = wait.as_secs(),
                destination = self.settings.destination.as_str(),
                "rate limited: every queue of the destination waits"
            );
        }
        let paused = f.paused_until.is_some_and(|p| p > Instant::now());
        let streak = f.streaks.remove(&done.queue).unwrap_or(0) + 1;
        match done.next {
            Some(row)
                if !paused
                    && streak < STREAK
                    && f.limiter
                        .acquire(row.payload.chat_id(), Instant::now())
                        .is_ok() =>
            {
                f.streaks.insert(done.queue, streak);
                self.spawn(row, f);
            }
            _ => {
                f.in_flight.remove(&done.queue);
                f.dirty = true;
            }
        }
    }

    fn spawn(&self, row: OutboxRow, f: &mut Flight) {
        f.in_flight.insert(row.queue.clone());
        f.tasks.spawn(deliver(
            self.db.clone(),
            Arc::clone(&self.transport),
            row,
            self.settings,
            self.events.clone(),
            self.receipts.clone(),
        ));
    }

    /// Starts every due head it may; returns how long to sleep at most.
    async fn start_due(&self, f: &mut Flight) -> Duration {
        const IDLE: Duration = Duration::from_secs(30);
        let free = self.settings.concurrency.saturating_sub(f.in_flight.len());
        if free == 0 {
            return IDLE;
        }
        let busy = f.in_flight.clone();
        let destination = self.settings.destination;
        let heads = self
            .db
            .run(move |s| s.due_heads(destination, Utc::now(), &|q| busy.contains(q), free))
            .await;
        let (rows, next) = match heads {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot read due rows");
                return Duration::from_secs(1);
            }
        };
        let mut nap = next.map_or(IDLE, |at| {
            (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
        });
        for row in rows {
            match f.limiter.acquire(row.payload.chat_id(), Instant::now()) {
                Ok(()) => self.spawn(row, f),
                Err(wait) => nap = nap.min(wait),
            }
        }
        nap.min(IDLE)
    }
}

/// Sends one row and records the result; returns its queue.
async fn deliver<T: Transport>(
    db: Db,
    transport: Arc<T>,
    row: OutboxRow,
    settings: Settings,
    events: mpsc::UnboundedSender<Event>,
    receipts: Option<Arc<Receipts>>,
) -> Finished {
    let started = Instant::now();
    let result = transport.deliver(&row.payload).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let queue = row.queue.clone();
    let (id, attempt) = (row.id, row.attempts + 1);
    let verdict = Verdict::of(&result, &row, &settings);
    record_metrics(settings.destination, &verdict, started.elapsed());
    match &result {
        Ok(_) => tracing::info!(row = id, %queue, latency_ms, "delivered"),
        Err(e) => {
            tracing::warn!(row = id, %queue, attempt, latency_ms, error = %e, ?verdict, "delivery failed")
        }
    }
    let now = Utc::now();
    let error = result
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    let wait = match (&verdict, &result) {
        (Verdict::Retry(w), Err(DeliveryError::RetryAfter(_))) => Some(*w),
        _ => None,
    };
    let mut next = None;
    let stored = match verdict {
        Verdict::Delivered => {
            let remote_id = result.ok().and_then(|d| d.remote_id);
            let noted = receipts.filter(|r| note(r, id, remote_id.as_deref()));
            let marked = db
                .run_urgent(move |s| s.mark_delivered_next(&row, remote_id.as_deref(), now))
                .await;
            if let (Some(r), Ok(_)) = (noted, &marked) {
                r.confirmed();
            }
            marked.map(|n| next = n)
        }
        Verdict::Retry(wait) => {
            let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            db.run_urgent(move |s| s.mark_retry(id, next, &error)).await
        }
        Verdict::Gone(customer) => db
            .run_urgent(move |s| s.mark_recipient_gone(id, customer, &error, now))
            .await
            .map(|queued| {
                if let Some(input) = queued {
                    let _ = events.send(Event::RecipientGone(input));
                }
            }),
        Verdict::Dead => {
            let r = db.run_urgent(move |s| s.mark_dead(id, &error, now)).await;
            let _ = events.send(Event::Dead);
            r
        }
    };
    if let Err(e) = stored {
        tracing::error!(row = id, error = %e, "outbox: cannot record a delivery result; the row stays pending");
    }
    Finished { queue, wait, next }
}

fn record_metrics(destination: Destination, verdict: &Verdict, took: Duration) {
    let destination = destination.as_str();
    let result = match verdict {
        Verdict::Delivered => "delivered",
        Verdict::Retry(_) => "retry",
        Verdict::Gone(_) => "recipient_gone",
        Verdict::Dead => "dead",
    };
    metrics::counter!("flowbot_deliveries_total", "destination" => destination, "result" => result)
        .increment(1);
    if matches!(verdict, Verdict::Delivered) {
        metrics::histogram!("flowbot_delivery_seconds", "destination" => destination)
            .record(took.as_secs_f64());
    }
}

/// Notes a delivery in the receipts file; says whether it was written.
fn note(receipts: &Receipts, row_id: i64, remote_id: Option<&str>) -> bool {
    let receipt = Receipt {
        row_id,
        remote_id: remote_id.map(str::to_owned),
    };
    match receipts.record(&receipt) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(row = row_id, error = %e, "cannot write a delivery receipt");
            false
        }
    }
}

/// A delivery task's end: its queue is free again; `wait` when the
/// service asked to wait before the next try.
struct Finished {
    queue: String,
    wait: Option<Duration>,
    /// The queue's next row, due now, when this one was delivered.
    next: Option<OutboxRow>,
}

/// What to do with a row after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Delivered,
    Retry(Duration),
    /// The customer's chat refused it for good: the customer is blocked.
    Gone(i64),
    /// Given up (refused, too many attempts, too old): kept and announced.
    Dead,
}

impl Verdict {
    fn of(result: &Result<Delivered, DeliveryError>, row: &OutboxRow, s: &Settings) -> Verdict {
        let error = match result {
            Ok(_) => return Verdict::Delivered,
            Err(e) => e,
        };
        // Only a customer's own chat refusing us means the customer is gone.
        let customer = row.customer_id.filter(|_| {
            row.payload.destination() == Destination::Telegram
                && !row.is_admin_notice
                && row.payload.chat_id().is_some()
        });
        let attempt = row.attempts.saturating_add(1);
        let age = (Utc::now() - row.created_at)
            .to_std()
            .unwrap_or(Duration::ZERO);
        let exhausted = attempt >= s.max_attempts || age >= s.max_age;
        match (error, customer) {
            (DeliveryError::RecipientGone(_), Some(customer)) => Verdict::Gone(customer),
            (DeliveryError::RecipientGone(_) | DeliveryError::Permanent(_), _) => Verdict::Dead,
            _ if exhausted => Verdict::Dead,
            // Telegram's wait is honoured exactly, without jitter.
            (DeliveryError::RetryAfter(wait), _) => Verdict::Retry(*wait),
            (DeliveryError::Transient(_), _) => Verdict::Retry(s.backoff.delay_random(attempt)),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The worker against an in-memory transport that plays Telegram's answers.

    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::outbox::{NewMessage, Payload};
    use crate::store::Store;

    /// Records what was delivered; answers each chat from a script, then Ok.
    #[derive(Default)]
    struct Script {
        answers: Mutex<HashMap<i64, Vec<DeliveryError>>>,
        sent: Mutex<Vec<(i64, String, Instant)>>,
    }

    impl Transport for Script {
        async fn deliver(&self, payload: &Payload) -> Result<Delivered, DeliveryError> {
            let Payload::TelegramText { chat_id, text, .. } = payload else {
                return Err(DeliveryError::Permanent("not a text".into()));
            };
            let scripted = {
                let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
                answers
                    .get_mut(chat_id)
                    .and_then(|a| (!a.is_empty()).then(|| a.remove(0)))
            };
            if let Some(e) = scripted {
                return Err(e);
            }
            let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            sent.push((*chat_id, text.clone(), Instant::now()));
            Ok(Delivered::default())
        }
    }

    struct Running {
        db: Db,
        script: Arc<Script>,
        wake: Wake,
        events: mpsc::UnboundedReceiver<Event>,
        shutdown: CancellationToken,
        _dir: tempfile::TempDir,
    }

    fn start(answers: HashMap<i64, Vec<DeliveryError>>, max_attempts: u32) -> Running {
        start_with(answers, max_attempts, false, 8)
    }

    fn start_with(
        answers: HashMap<i64, Vec<DeliveryError>>,
        max_attempts: u32,
        pause_all_on_retry_after: bool,
        concurrency: usize,
    ) -> Running {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(&dir.path().join("t.db")).unwrap_or_else(|e| panic!("{e}"));
        let db = Db::new(store).unwrap_or_else(|e| panic!("{e}"));
        let script = Arc::new(Script {
            answers: Mutex::new(answers),
            ..Script::default()
        });
        let (tx, events) = mpsc::unbounded_channel();
        let wake = Wake::default();
        let shutdown = CancellationToken::new();
        let worker = Worker {
            db: db.clone(),
            transport: Arc::clone(&script),
            settings: Settings {
                destination: Destination::Telegram,
                max_attempts,
                max_age: Duration::from_secs(3600),
                backoff: Backoff {
                    base: Duration::from_millis(50),
                    max: Duration::from_millis(100),
                },
                limits: Limits::unlimited(),
                concurrency,
                pause_all_on_retry_after,
            },
            wake: wake.clone(),
            events: tx,
            receipts: None,
        };
        tokio::spawn(worker.run(shutdown.clone()));
        Running {
            db,
            script,
            wake,
            events,
            shutdown,
            _dir: dir,
        }
    }

    impl Running {
        async fn send(&self, chat_id: i64, texts: &[&str]) {
            let messages: Vec<NewMessage> = texts
                .iter()
                .map(|t| NewMessage {
                    payload: Payload::TelegramText {
                        chat_id,
                        text: (*t).to_owned(),
                        markup: None,
                    },
                    customer_id: Some(chat_id),
                    is_admin_notice: false,
                })
                .collect();
            self.db
                .run(move |s| s.enqueue(&messages, Utc::now()))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            self.wake.wake();
        }

        /// Everything sent, over all chats, in order.
        fn all_sent(&self) -> Vec<String> {
            let sent = self.script.sent.lock().unwrap_or_else(|e| e.into_inner());
            sent.iter().map(|(_, t, _)| t.clone()).collect()
        }

        fn sent(&self, chat_id: i64) -> Vec<(String, Instant)> {
            let sent = self.script.sent.lock().unwrap_or_else(|e| e.into_inner());
            sent.iter()
                .filter(|(c, _, _)| *c == chat_id)
                .map(|(_, t, at)| (t.clone(), *at))
                .collect()
        }

        async fn until(&self, what: &str, cond: impl Fn(&Running) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !cond(self) {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    fn texts(sent: &[(String, Instant)]) -> Vec<&str> {
        sent.iter().map(|(t, _)| t.as_str()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chats_messages_go_in_order_as_soon_as_they_are_queued() {
        let w = start(HashMap::new(), 5);
        w.send(1, &["раз", "два", "три"]).await;
        w.until("three sends", |w| w.sent(1).len() == 3).await;
        assert_eq!(texts(&w.sent(1)), ["раз", "два", "три"]);
        w.shutdown.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retry_after_delays_that_chat_exactly_and_no_other() {
        let answers = HashMap::from([(1, vec![DeliveryError::RetryAfter(Duration::from_secs(1))])]);
        let w = start(answers, 5);
        let queued = Instant::now();
        w.send(1, &["a1", "a2"]).await;
        w.send(2, &["b1"]).await;
        w.until("chat 2", |w| w.sent(2).len() == 1).await;
        w.until("chat 1", |w| w.sent(1).len() == 2).await;
        let (a, b) = (w.sent(1), w.sent(2));
        assert_eq!(texts(&a), ["a1", "a2"]);
        assert!(
            a[0].1 - queued >= Duration::from_secs(1),
            "retry_after not honoured"
        );
        assert!(b[0].1 < a[0].1, "chat 2 was held up by chat 1");
        w.shutdown.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_queue_gives_way_to_older_rows_of_other_queues() {
        let w = start_with(HashMap::new(), 5, false, 1);
        // One transaction, so the ids interleave exactly: b1 is older than a4..a8.
        let row = |chat_id: i64, text: &str| NewMessage {
            payload: Payload::TelegramText {
                chat_id,
                text: text.to_owned(),
                markup: None,
            },
            customer_id: Some(chat_id),
            is_admin_notice: false,
        };
        let mut rows = vec![row(1, "a1"), row(1, "a2"), row(1, "a3"), row(2, "b1")];
        rows.extend((4..=8).map(|i| row(1, &format!("a{i}"))));
        w.db.run(move |s| s.enqueue(&rows, Utc::now()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        w.wake.wake();
        w.until("nine sends", |w| w.all_sent().len() == 9).await;
        assert_eq!(
            w.all_sent(),
            ["a1", "a2", "a3", "a4", "b1", "a5", "a6", "a7", "a8"]
        );
        w.shutdown.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_destination_wide_retry_after_holds_every_queue() {
        let answers = HashMap::from([(1, vec![DeliveryError::RetryAfter(Duration::from_secs(1))])]);
        let w = start_with(answers, 5, true, 8);
        let refused = Instant::now();
        w.send(1, &["a1"]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        w.send(2, &["b1"]).await;
        w.until("chat 2", |w| w.sent(2).len() == 1).await;
        w.until("chat 1", |w| w.sent(1).len() == 1).await;
        let b = w.sent(2);
        assert!(
            b[0].1 - refused >= Duration::from_secs(1),
            "chat 2 went during the pause"
        );
        w.shutdown.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recipient_gone_is_reported_and_not_retried() {
        let answers = HashMap::from([(1, vec![DeliveryError::RecipientGone("blocked".into())])]);
        let mut w = start(answers, 5);
        w.send(1, &["a1", "a2"]).await;
        let event = tokio::time::timeout(Duration::from_secs(10), w.events.recv()).await;
        assert!(matches!(
            event,
            Ok(Some(Event::RecipientGone(PendingInput {
                customer_id: 1,
                ..
            })))
        ));
        w.until("the next message", |w| w.sent(1).len() == 1).await;
        assert_eq!(texts(&w.sent(1)), ["a2"]);
        let stats =
            w.db.run(|s| s.stats(Utc::now()))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((stats.outbox_failed, stats.outbox_dead), (1, 0));
        w.shutdown.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_that_keeps_failing_dies_and_is_reported() {
        let flaky = || DeliveryError::Transient("connection reset".into());
        let answers = HashMap::from([(1, vec![flaky(), flaky(), flaky()])]);
        let mut w = start(answers, 2);
        w.send(1, &["a1", "a2"]).await;
        let event = tokio::time::timeout(Duration::from_secs(10), w.events.recv()).await;
        assert!(matches!(event, Ok(Some(Event::Dead))), "{event:?}");
        // a1 died after two attempts; a2's first attempt fails, its second goes through.
        w.until("a2", |w| w.sent(1).len() == 1).await;
        assert_eq!(texts(&w.sent(1)), ["a2"]);
        let stats =
            w.db.run(|s| s.stats(Utc::now()))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stats.outbox_dead, 1);
        w.shutdown.cancel();
    }
}
