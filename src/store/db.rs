//! The async runtime's handle on the database: one dedicated thread owns
//! the connection, so blocking SQLite work never runs on the async threads.
//!
//! Group commit: the thread takes every call waiting in its queue (up to
//! [`MAX_BATCH`]), runs them inside one `BEGIN IMMEDIATE` transaction (each
//! call's own transaction becomes a savepoint, so one failing call rolls
//! back alone), commits once, and only then answers the callers. A burst of
//! inputs costs one fsync instead of one each, and nobody hears "stored"
//! before it is durable.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::oneshot;

use super::{Result, Store, StoreError};

/// The most calls grouped in one transaction: enough to share an fsync,
/// few enough that an urgent call never waits long behind a batch.
pub const MAX_BATCH: usize = 32;

/// Runs after the batch's commit with its error, if any; answers the caller.
type Reply = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type Call = Box<dyn FnOnce(&mut Store) -> Reply + Send>;

/// A cloneable handle to the database thread. The thread ends when the last
/// handle is dropped.
#[derive(Clone)]
pub struct Db {
    handle: Arc<Handle>,
}

/// Closes the queue when the last [`Db`] goes.
struct Handle {
    queue: Arc<Queue>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// Calls waiting for the thread: urgent ones (recording that a message went
/// out, which shortens the window for a duplicate after a crash) go first.
#[derive(Default)]
struct Queue {
    state: Mutex<Waiting>,
    ready: Condvar,
}

#[derive(Default)]
struct Waiting {
    urgent: VecDeque<Call>,
    normal: VecDeque<Call>,
    closed: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, call: Call, urgent: bool) -> bool {
        let mut w = self.lock();
        if w.closed {
            return false;
        }
        if urgent {
            w.urgent.push_back(call);
        } else {
            w.normal.push_back(call);
        }
        self.ready.notify_one();
        true
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The next batch, urgent calls first; `None` once closed and drained.
    fn take(&self) -> Option<Vec<Call>> {
        let mut w = self.lock();
        while w.urgent.is_empty() && w.normal.is_empty() {
            if w.closed {
                return None;
            }
            w = self
                .ready
                .wait(w)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while batch.len() < MAX_BATCH {
            match w.urgent.pop_front().or_else(|| w.normal.pop_front()) {
                Some(call) => batch.push(call),
                None => break,
            }
        }
        Some(batch)
    }
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        Db::new(Store::open(path)?)
    }

    pub fn new(store: Store) -> Result<Db> {
        let queue = Arc::new(Queue::default());
        let serving = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("flowbot-db".into())
            .spawn(move || serve(store, &serving))
            .map_err(|e| StoreError::Runtime(format!("cannot start the database thread: {e}")))?;
        Ok(Db {
            handle: Arc::new(Handle { queue }),
        })
    }

    /// Runs `f` with the store on the database thread; answers once what it
    /// wrote is committed.
    pub async fn run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store) -> Result<R> + Send + 'static,
    {
        self.call(f, false).await
    }

    /// Like [`Db::run`], ahead of every call that is not urgent.
    pub async fn run_urgent<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store) -> Result<R> + Send + 'static,
    {
        self.call(f, true).await
    }

    async fn call<R, F>(&self, f: F, urgent: bool) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store) -> Result<R> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let call: Call = Box::new(move |store| {
            let result = f(store);
            Box::new(move |commit_error: Option<&StoreError>| {
                let result = match (result, commit_error) {
                    (Ok(_), Some(e)) => Err(StoreError::Runtime(format!("commit failed: {e}"))),
                    (result, _) => result,
                };
                let _ = answer.send(result);
            })
        });
        let stopped = || StoreError::Runtime("the database thread has stopped".into());
        if !self.handle.queue.push(call, urgent) {
            return Err(stopped());
        }
        answered.await.map_err(|_| stopped())?
    }
}

fn serve(mut store: Store, queue: &Queue) {
    while let Some(batch) = queue.take() {
        let grouped = batch.len() > 1 && store.begin_batch().is_ok();
        let replies: Vec<Reply> = batch
            .into_iter()
            // A panicking call answers nobody (its caller sees the thread as
            // stopped for that call); its savepoint rolls back as it unwinds.
            .filter_map(|call| catch_unwind(AssertUnwindSafe(|| call(&mut store))).ok())
            .collect();
        let error = if grouped {
            store.commit_batch().err()
        } else {
            None
        };
        if let Some(e) = &error {
            tracing::error!(error = %e, calls = replies.len(), "database batch not committed");
        }
        for reply in replies {
            reply(error.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::outbox::{NewMessage, Payload};

    fn message(chat_id: i64) -> NewMessage {
        NewMessage {
            payload: Payload::TelegramText {
                chat_id,
                text: "привет".into(),
                markup: None,
            },
            customer_id: Some(chat_id),
            is_admin_notice: false,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_is_grouped_and_a_failing_call_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(&dir.path().join("t.db")).unwrap_or_else(|e| panic!("{e}"));
        let db = Db::new(store).unwrap_or_else(|e| panic!("{e}"));
        let mut calls = tokio::task::JoinSet::new();
        for chat in 1..=200i64 {
            let db = db.clone();
            calls.spawn(async move {
                // The shape of every store method: a transaction that writes,
                // then fails before its commit, must leave nothing behind.
                db.run(move |s| {
                    let tx = s.immediate()?;
                    super::super::outbox::enqueue(&tx, &message(chat), Utc::now())?;
                    if chat == 100 {
                        return Err(StoreError::Corrupt("planted".into()));
                    }
                    tx.commit()?;
                    Ok(chat)
                })
                .await
            });
        }
        let mut ok = 0;
        while let Some(done) = calls.join_next().await {
            match done.unwrap_or_else(|e| panic!("{e}")) {
                Ok(_) => ok += 1,
                Err(e) => assert!(e.to_string().contains("planted"), "{e}"),
            }
        }
        assert_eq!(ok, 199);
        let stats = db
            .run(|s| s.stats(Utc::now()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stats.outbox_pending, 199);
    }
}
