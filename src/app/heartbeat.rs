//! The heartbeat: when Telegram polling or Wahelp has been failing for
//! longer than `HEARTBEAT_ALERT_SECS`, the admins are told once, and told
//! again when it works again. Deciding is pure ([`decide`]); the loop only
//! reads the adapters' [`Liveness`] and queues the notices.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::core::Core;
use super::route;
use crate::liveness::{Liveness, Snapshot};

/// One connection the heartbeat watches.
pub struct Watched {
    /// How the admins' notice names it, like "Telegram (получение сообщений)".
    pub name: &'static str,
    pub liveness: Liveness,
}

/// What to tell the admins about one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Down { since: DateTime<Utc>, error: String },
    Recovered { since: DateTime<Utc> },
}

/// `alerted`: when the outage the admins were told about began.
pub fn decide(
    alerted: Option<DateTime<Utc>>,
    now: Snapshot,
    at: DateTime<Utc>,
    after: Duration,
) -> Option<Notice> {
    match (alerted, now.failing_since) {
        (None, Some(since)) => {
            let failing = (at - since).to_std().unwrap_or_default();
            (failing >= after).then_some(Notice::Down {
                since,
                error: now.last_error,
            })
        }
        (Some(since), None) => Some(Notice::Recovered { since }),
        _ => None,
    }
}

/// Watches until `shutdown`.
pub async fn run(core: Core, watched: Vec<Watched>, after: Duration, shutdown: CancellationToken) {
    let tick = (after / 4).clamp(Duration::from_secs(1), Duration::from_secs(15));
    let mut alerted: Vec<Option<DateTime<Utc>>> = vec![None; watched.len()];
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(tick) => {}
        }
        let at = Utc::now();
        for (w, told) in watched.iter().zip(alerted.iter_mut()) {
            let Some(notice) = decide(*told, w.liveness.snapshot(), at, after) else {
                continue;
            };
            *told = match &notice {
                Notice::Down { since, error } => {
                    tracing::error!(service = w.name, %since, error = %error, "a connection keeps failing; telling the admins");
                    Some(*since)
                }
                Notice::Recovered { since } => {
                    tracing::info!(service = w.name, %since, "the connection works again; telling the admins");
                    None
                }
            };
            let text = text(w.name, &notice, at);
            let messages = core
                .admins
                .iter()
                .flat_map(|&chat| route::admin_text(chat, &text))
                .collect();
            core.send_now(messages).await;
        }
    }
}

/// The admins' text.
pub fn text(name: &str, notice: &Notice, at: DateTime<Utc>) -> String {
    match notice {
        Notice::Down { since, error } => format!(
            "⚠️ {name}: нет связи уже {}. Сообщения не теряются: бот повторяет попытки и доставит их, когда связь вернётся.\nПоследняя ошибка: {error}",
            minutes(at - *since)
        ),
        Notice::Recovered { since } => {
            format!(
                "✅ {name}: связь восстановлена, сбой длился {}.",
                minutes(at - *since)
            )
        }
    }
}

fn minutes(d: chrono::TimeDelta) -> String {
    let m = d.num_minutes().max(1);
    if m < 60 {
        format!("{m} мин")
    } else {
        format!("{} ч {} мин", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(300);

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
    }

    fn failing(since: i64) -> Snapshot {
        Snapshot {
            last_ok: None,
            failing_since: Some(at(since)),
            last_error: "connection refused".into(),
        }
    }

    fn working() -> Snapshot {
        Snapshot {
            last_ok: Some(at(0)),
            failing_since: None,
            last_error: String::new(),
        }
    }

    #[test]
    fn a_short_failure_is_not_told() {
        assert_eq!(decide(None, failing(0), at(299), AFTER), None);
        assert_eq!(decide(None, working(), at(299), AFTER), None);
    }

    #[test]
    fn a_long_failure_is_told_once_then_its_end() {
        let down = decide(None, failing(0), at(300), AFTER);
        assert_eq!(
            down,
            Some(Notice::Down {
                since: at(0),
                error: "connection refused".into()
            })
        );
        // Already told: nothing more while it lasts.
        assert_eq!(decide(Some(at(0)), failing(0), at(3_000), AFTER), None);
        assert_eq!(
            decide(Some(at(0)), working(), at(3_600), AFTER),
            Some(Notice::Recovered { since: at(0) })
        );
    }

    #[test]
    fn the_texts_say_how_long() {
        let down = text(
            "Wahelp",
            &Notice::Down {
                since: at(0),
                error: "timeout".into(),
            },
            at(360),
        );
        assert!(
            down.starts_with("⚠️ Wahelp: нет связи уже 6 мин."),
            "{down}"
        );
        assert!(down.ends_with("Последняя ошибка: timeout"), "{down}");
        let up = text("Wahelp", &Notice::Recovered { since: at(0) }, at(3_900));
        assert_eq!(up, "✅ Wahelp: связь восстановлена, сбой длился 1 ч 5 мин.");
    }
}
