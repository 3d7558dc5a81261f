//! The real runtime (`flowbot::app::run`) started in-process against the
//! fake Telegram server, with a real SQLite file in a temporary folder.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::telegram::FakeTelegram;

/// A valid-looking token; the fake accepts any.
pub const TOKEN: &str = "7412583690:AAHtestTOKENfor-fake-telegram_0123456";
/// The admins' group chat in every test.
pub const ADMIN_CHAT: i64 = -1_001_234_567_890;

/// One running bot. Dropping it without `stop` aborts it.
pub struct Bot {
    pub db_path: PathBuf,
    /// Where its HTTP server (webhook, health, metrics) listens.
    pub http: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The environment the bot reads, as a map (tests add or override entries).
pub fn env(fake: &FakeTelegram, db_path: &Path) -> HashMap<String, String> {
    let flow = concat!(env!("CARGO_MANIFEST_DIR"), "/flows/default.yaml");
    HashMap::from([
        ("TELEGRAM_BOT_TOKEN".into(), TOKEN.into()),
        ("TELEGRAM_API_URL".into(), fake.url()),
        ("DATABASE_PATH".into(), db_path.display().to_string()),
        ("FLOW_PATH".into(), flow.into()),
        ("ADMIN_CHAT_IDS".into(), ADMIN_CHAT.to_string()),
        ("TELEGRAM_POLL_TIMEOUT_SECS".into(), "1".into()),
        ("TELEGRAM_SEND_TIMEOUT_SECS".into(), "5".into()),
        ("TELEGRAM_RATE_GLOBAL".into(), "0".into()),
        ("TELEGRAM_RATE_PER_CHAT".into(), "0".into()),
        ("HTTP_LISTEN".into(), free_address().to_string()),
    ])
}

/// A loopback address with a port nobody listens on right now (the bot
/// binds it a moment later; another process taking it in between is
/// possible but unlikely).
pub fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

impl Bot {
    /// Starts the runtime with `env` (see [`env`]).
    pub fn start(env: &HashMap<String, String>) -> Bot {
        let config = flowbot::config::from_lookup(|name| env.get(name).cloned())
            .unwrap_or_else(|e| panic!("test configuration: {e}"));
        let db_path = config.database_path.clone();
        let http = config.http_listen;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(flowbot::app::run(config, shutdown.clone()));
        Bot {
            db_path,
            http,
            shutdown,
            task: Some(task),
        }
    }

    /// Stops it the way SIGTERM does and waits (at most 20 s) for a clean end.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(20), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => panic!("the bot stopped with an error: {e:#}"),
                Ok(Err(e)) => panic!("the bot panicked: {e}"),
                Err(_) => panic!("the bot did not stop within 20 s"),
            }
        }
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
