//! The async runtime's handle on the database: blocking SQLite work runs on
//! tokio's blocking pool, never on the async threads, one call at a time.

use std::path::Path;
use std::sync::{Arc, Mutex};

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
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            // A panic inside an earlier call leaves the store usable: SQLite
            // rolled the transaction back when it was dropped.
            let mut guard = store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Runtime(e.to_string()))?
    }
}
