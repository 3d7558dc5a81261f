//! `flowbot chat --serve`: the bot's HTTP server (the Wahelp webhook,
//! `/healthz`, `/metrics`) beside the terminal conversation, so a `curl` of
//! a sample payload shows the manager's reply in the conversation.
//!
//! The server only authenticates and parses (the same [`crate::http`]
//! layer as the live bot); each call goes to the conversation's loop as a
//! [`super::chat::Event::Webhook`], which reads, stores and applies it on
//! the conversation's own database, and the HTTP answer waits for that.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::chat::Event;
use super::settings;
use crate::config::ConfigError;
use crate::http::{self, Accepted, Health, Service};
use crate::wahelp::payload::Paths;

/// The sample a `curl` is suggested with, when it is where the repository has it.
const SAMPLE_FILE: &str = "tests/fixtures/wahelp/01-event-data-operator.json";
/// The same sample, sent inline when the file is not at hand.
const SAMPLE: &str = r#"{"event": "channel.message.created", "data": {"id": 90000001, "destination": "from_operator", "channel": {"alias": "clients_tg"}, "user": {"id": 12345, "phone": "79991234567", "name": "Иван"}, "message": {"id": 90000001, "text": "Здравствуйте! Да, завтра в 10:00 мастер сможет приехать."}}}"#;
/// The customer's phone in the sample.
const SAMPLE_PHONE: &str = "+79991234567";

/// How the conversation reads the calls.
#[derive(Debug, Clone)]
pub(super) struct Reader {
    pub paths: Paths,
    pub secret: String,
}

/// What `--serve` needs, read before any thread starts.
pub(super) struct Setup {
    listen: SocketAddr,
    reader: Reader,
    /// Whether the secret was made up for this session.
    generated: bool,
}

impl Setup {
    /// Reads `.env`, `HTTP_LISTEN` (unless `listen` is given) and the
    /// `WAHELP_*` variables; without `WAHELP_WEBHOOK_SECRET`, a random
    /// secret for this session.
    pub(super) fn from_env(listen: Option<SocketAddr>) -> Result<Setup, String> {
        settings::load_env().map_err(|e: ConfigError| e.to_string())?;
        let listen = match listen {
            Some(addr) => addr,
            None => settings::http_listen()?,
        };
        let wahelp = settings::wahelp().map_err(|e| e.to_string())?;
        let (secret, generated) = match wahelp.webhook_secret {
            Some(secret) => (secret, false),
            None => (random_secret(), true),
        };
        Ok(Setup {
            listen,
            reader: Reader {
                paths: wahelp.paths,
                secret,
            },
            generated,
        })
    }

    pub(super) fn reader(&self) -> Reader {
        self.reader.clone()
    }

    /// Binds the address and serves until the returned server is dropped.
    /// Tells on stderr where, and the `curl` that tries it.
    pub(super) fn start(self, events: Sender<Event>) -> anyhow::Result<Server> {
        settings::init_logging("warn");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("flowbot-chat-http")
            .enable_all()
            .build()?;
        let listener = runtime
            .block_on(TcpListener::bind(self.listen))
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", self.listen))?;
        let bound = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let service = ChatService {
            secret: Arc::from(self.reader.secret.as_str()),
            events,
        };
        let stop = shutdown.clone();
        runtime.spawn(async move {
            if let Err(e) = http::serve(listener, service, stop).await {
                eprintln!("flowbot: the HTTP server stopped: {e}");
            }
        });
        eprintln!("{}", self.banner(bound));
        Ok(Server {
            runtime: Some(runtime),
            shutdown,
        })
    }

    fn banner(&self, bound: SocketAddr) -> String {
        let base = format!("http://{}{}", reachable(bound), "/wahelp/webhook");
        let data = if Path::new(SAMPLE_FILE).is_file() {
            format!("@{SAMPLE_FILE}")
        } else {
            format!("'{SAMPLE}'")
        };
        let (secret_line, token) = if self.generated {
            (
                format!(
                    "{} не задан: секрет этого сеанса — {}",
                    settings::WEBHOOK_SECRET,
                    self.reader.secret
                ),
                self.reader.secret.clone(),
            )
        } else {
            (
                format!(
                    "секрет — из {} (в команде ниже подставьте его вместо ***)",
                    settings::WEBHOOK_SECRET
                ),
                "***".to_owned(),
            )
        };
        let curl = format!(
            "curl -X POST '{base}?token={token}' -H 'Content-Type: application/json' -d {data}"
        );
        format!(
            "Вебхук Wahelp слушает {base}; {secret_line}.\n\
             Ответ менеджера клиенту {SAMPLE_PHONE} (сначала /contact {SAMPLE_PHONE}):\n  {curl}",
        )
    }
}

/// The running server; dropping it stops it (calls in progress finish).
pub(super) struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}

/// The address to give `curl`: a wildcard address becomes the loopback one.
fn reachable(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bound.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), bound.port())
        }
        _ => bound,
    }
}

/// 24 random bytes as hex (48 characters: letters and digits, as
/// `WAHELP_WEBHOOK_SECRET` must be).
fn random_secret() -> String {
    let mut bytes = [0u8; 24];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if from_os.is_err() {
        fastrand::fill(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The HTTP server's view of the conversation.
#[derive(Clone)]
struct ChatService {
    secret: Arc<str>,
    events: Sender<Event>,
}

impl Service for ChatService {
    fn webhook_secret(&self) -> Option<&str> {
        Some(&self.secret)
    }

    async fn accept_webhook(&self, body: Value) -> Result<(), String> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.events
            .send(Event::Webhook { body, done })
            .map_err(|_| "the conversation has ended".to_owned())?;
        answer
            .await
            .map_err(|_| "the conversation has ended".to_owned())?
    }

    fn telegram_secret(&self) -> Option<&str> {
        None
    }

    async fn accept_update(&self, _id: i64, _raw: String) -> Result<Accepted, String> {
        Err("the terminal conversation does not receive Telegram updates".to_owned())
    }

    async fn health(&self) -> Health {
        Health {
            healthy: true,
            report: json!({"ok": true, "mode": "chat", "webhook": true}),
        }
    }

    async fn metrics(&self) -> String {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_random_secret_is_a_valid_webhook_secret() {
        let a = random_secret();
        assert_eq!(a.len(), 48);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_secret());
    }

    #[test]
    fn a_wildcard_address_is_reached_on_the_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reachable(any).to_string(), "127.0.0.1:8080");
        let any6: SocketAddr = "[::]:8080".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reachable(any6).to_string(), "[::1]:8080");
    }

    #[test]
    fn the_inline_sample_is_the_fixture() {
        let fixture =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLE_FILE))
                .unwrap_or_else(|e| panic!("{e}"));
        let fixture: Value = serde_json::from_str(&fixture).unwrap_or_else(|e| panic!("{e}"));
        let sample: Value = serde_json::from_str(SAMPLE).unwrap_or_else(|e| panic!("{e}"));
        let read = |v: &Value| crate::wahelp::payload::read(v, &Paths::default());
        let (f, s) = (read(&fixture), read(&sample));
        assert_eq!(f.len(), 1);
        assert_eq!(
            (&f[0].phone, &f[0].text, &f[0].message_id, f[0].decision),
            (&s[0].phone, &s[0].text, &s[0].message_id, s[0].decision)
        );
        assert!(!SAMPLE.contains('\''), "the sample goes in single quotes");
    }
}
