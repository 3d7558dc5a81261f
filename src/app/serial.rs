//! Per-customer order: jobs with the same key run one after another, in the
//! order they were submitted; jobs with different keys run in parallel.
//!
//! Every input source (Telegram updates, delivery failures, and the CRM's
//! replies) submits here, so an update and a manager's reply for the same
//! customer never run at the same time.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A keyed serial executor. Cloning shares it.
#[derive(Clone, Default)]
pub struct Serial {
    /// A key is present while a runner drains its queue.
    queues: Arc<Mutex<HashMap<i64, VecDeque<Job>>>>,
    runners: Arc<Mutex<JoinSet<()>>>,
}

impl Serial {
    /// Queues `job` behind every earlier job of `key`.
    pub fn submit(&self, key: i64, job: impl Future<Output = ()> + Send + 'static) {
        let job: Job = Box::pin(job);
        let mut queues = lock(&self.queues);
        if let Some(queue) = queues.get_mut(&key) {
            queue.push_back(job);
            return;
        }
        queues.insert(key, VecDeque::from([job]));
        drop(queues);
        let this = self.clone();
        let mut runners = lock(&self.runners);
        // Reap finished runners so the set does not grow.
        while runners.try_join_next().is_some() {}
        runners.spawn(async move { this.drain(key).await });
    }

    async fn drain(&self, key: i64) {
        loop {
            let job = {
                let mut queues = lock(&self.queues);
                let Some(queue) = queues.get_mut(&key) else {
                    return;
                };
                match queue.pop_front() {
                    Some(job) => job,
                    None => {
                        queues.remove(&key);
                        return;
                    }
                }
            };
            job.await;
        }
    }

    /// Jobs waiting or running, over all keys.
    pub fn backlog(&self) -> usize {
        lock(&self.queues).values().map(|q| q.len() + 1).sum()
    }

    /// Waits until every submitted job has finished (for shutdown).
    pub async fn idle(&self) {
        loop {
            let next = {
                let mut runners = lock(&self.runners);
                if runners.is_empty() {
                    return;
                }
                // Take the set out so the lock is not held across the await.
                std::mem::take(&mut *runners)
            };
            let mut next = next;
            while next.join_next().await.is_some() {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_key_runs_in_order_and_keys_run_side_by_side() {
        let serial = Serial::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        for i in 0..5 {
            let log = Arc::clone(&log);
            serial.submit(1, async move {
                // Later jobs are quicker: only the queue keeps them in order.
                tokio::time::sleep(Duration::from_millis(10 * (5 - i))).await;
                lock(&log).push(("a", i));
            });
        }
        let log2 = Arc::clone(&log);
        serial.submit(2, async move { lock(&log2).push(("b", 0)) });
        tokio::time::timeout(Duration::from_secs(5), serial.idle())
            .await
            .unwrap_or_else(|_| panic!("jobs did not finish"));
        let log = lock(&log).clone();
        let a: Vec<_> = log
            .iter()
            .filter(|(k, _)| *k == "a")
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(a, [0, 1, 2, 3, 4]);
        assert_eq!(log.first(), Some(&("b", 0)), "key 2 did not wait for key 1");
        assert_eq!(serial.backlog(), 0);
    }
}
