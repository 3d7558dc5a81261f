//! The async runtime's handle on the database: blocking SQLite work runs on
//! tokio's blocking pool, never on the async threads, one call at a time.
//! Callers queue on an async lock first, so a burst of inputs waits as
//! cheap futures instead of as hundreds of blocked threads.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::{Result, Store, StoreError};

/// A cloneable handle to one open [`Store`].
#[derive(Clone)]
pub struct Db {
    store: Arc<Mutex<Store>>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        Ok(Db::new(Store::open(path)?))
    }

    pub fn new(store: Store) -> Db {
        Db {
            store: Arc::new(Mutex::new(store)),
        }
    }

    /// Runs `f` with the store on the blocking pool.
    pub async fn run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store) -> Result<R> + Send + 'static,
    {
        let mut guard = Arc::clone(&self.store).lock_owned().await;
        tokio::task::spawn_blocking(move || f(&mut guard))
            .await
            .map_err(|e| StoreError::Runtime(e.to_string()))?
    }
}
