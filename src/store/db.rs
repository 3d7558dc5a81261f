//! The async runtime's handle on the database: one dedicated thread owns
//! the connection, so blocking SQLite work never runs on the async threads.
//!
//! Group commit: the thread takes every call waiting in its queue (up to
//! [`MAX_BATCH`]), runs them inside one `BEGIN IMMEDIATE` transaction (each
//! call's own transaction becomes a savepoint, so one failing call rolls
//! back alone), commits once, and only then answers the callers. A burst of
//! inputs costs one fsync instead of one each, and nobody hears "stored"
//! before it is durable.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::{Result, Store, StoreError};

/// The most calls grouped in one transaction.
pub const MAX_BATCH: usize = 256;

/// Runs after the batch's commit with its error, if any; answers the caller.
type Reply = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type Call = Box<dyn FnOnce(&mut Store) -> Reply + Send>;

/// A cloneable handle to the database thread. The thread ends when the last
/// handle is dropped.
#[derive(Clone)]
pub struct Db {
    calls: mpsc::Sender<Call>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        Db::new(Store::open(path)?)
    }

    pub fn new(store: Store) -> Result<Db> {
        let (calls, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("flowbot-db".into())
            .spawn(move || serve(store, &queue))
            .map_err(|e| StoreError::Runtime(format!("cannot start the database thread: {e}")))?;
        Ok(Db { calls })
    }

    /// Runs `f` with the store on the database thread; answers once what it
    /// wrote is committed.
    pub async fn run<R, F>(&self, f: F) -> Result<R>
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
        self.calls.send(call).map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

fn serve(mut store: Store, queue: &mpsc::Receiver<Call>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(call) => batch.push(call),
                Err(_) => break,
            }
        }
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
