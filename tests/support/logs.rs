//! Log lines captured in memory, so that tests can read what was logged
//! (no secret, no full phone number, the lines they expect).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// A shared buffer a `tracing` subscriber writes into.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// A subscriber writing every event `filter` lets through into this buffer.
    pub fn subscriber(&self, filter: &str) -> impl tracing::Subscriber + Send + Sync + use<> {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged in this test binary: installed once as the global
/// subscriber (a per-test or per-thread one would miss the runtime's
/// spawned tasks), every `flowbot` event down to `trace` and warnings of
/// every other crate.
pub fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        if tracing::subscriber::set_global_default(captured.subscriber("warn,flowbot=trace"))
            .is_err()
        {
            panic!("another global log subscriber was installed first");
        }
        captured
    })
}
