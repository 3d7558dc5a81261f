//! Reloading the flow while the bot runs: read and compile the file off the
//! hot path, swap the compiled flow in one atomic store (an input in flight
//! keeps the whole flow it started with), and tell the admins the new
//! version — or, once per distinct set of errors, why the file was refused
//! and the running flow kept.
//!
//! Every way to ask for a reload ends here: a change of the file
//! ([`super::watch`]), `SIGHUP` and the admins' `/reload`.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::core::Core;
use super::route;
use crate::flow::model::Flow;
use crate::outbox::NewMessage;

/// Longest diagnostics text sent to a chat; the rest is in the log and in
/// `flowbot check`.
const NOTICE_CHARS: usize = 3_000;

/// Who asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The file changed and the editor has finished writing it.
    File,
    /// `SIGHUP`.
    Signal,
    /// `/reload` in this admin chat (which gets the answer in any case).
    Admin(i64),
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The new flow runs.
    Reloaded { from: String, to: String },
    /// The file holds the flow already running.
    Unchanged { version: String },
    /// The file has errors (or cannot be read); the running flow stays.
    Refused {
        running: String,
        diagnostics: String,
    },
}

/// What reloads remember between calls.
#[derive(Debug, Default)]
pub struct Reloads {
    /// One reload at a time (two editors' saves must not race to the swap).
    turn: tokio::sync::Mutex<()>,
    /// Diagnostics already told to the admins since the last good flow.
    announced: Mutex<HashSet<String>>,
}

/// Reads and compiles a flow file: the flow, or the Russian diagnostics
/// `flowbot check` would print. Warnings are logged.
pub fn load_flow(path: &Path) -> Result<Flow, String> {
    let source = std::fs::read_to_string(path).map_err(|e| unreadable(path, &e))?;
    let name = path.display().to_string();
    let (flow, warnings) = crate::flow::compile::load_rendered(&name, &source)?;
    if let Some(warnings) = warnings {
        tracing::warn!(flow = %name, "the flow has warnings:\n{warnings}");
    }
    Ok(flow)
}

fn unreadable(path: &Path, e: &std::io::Error) -> String {
    let why = match e.kind() {
        ErrorKind::NotFound => "файла нет".to_owned(),
        ErrorKind::PermissionDenied => "нет прав на чтение файла".to_owned(),
        ErrorKind::InvalidData => "файл не в кодировке UTF-8: сохраните его как UTF-8".to_owned(),
        _ => e.to_string(),
    };
    format!("{}: не удалось прочитать сценарий: {why}", path.display())
}

impl Core {
    /// Reloads the flow file and tells the admins what they should hear.
    pub async fn reload(&self, trigger: Trigger) -> Outcome {
        let (outcome, messages) = self.reload_with_notices(trigger, true).await;
        self.send_now(messages).await;
        outcome
    }

    /// Reloads when the file is valid; a refusal is neither logged loudly
    /// nor told (the watcher's first look, while an editor may still be
    /// writing).
    pub(super) async fn reload_if_valid(&self) -> Outcome {
        let (outcome, messages) = self.reload_with_notices(Trigger::File, false).await;
        self.send_now(messages).await;
        outcome
    }

    /// Reloads and returns the notices to send: a new version to every
    /// admin chat, a refusal once per distinct diagnostics, and to the
    /// admin who typed `/reload` the answer whatever it is.
    pub(super) async fn reload_with_notices(
        &self,
        trigger: Trigger,
        tell_refusal: bool,
    ) -> (Outcome, Vec<NewMessage>) {
        let _turn = self.reloads.turn.lock().await;
        let path = self.flow_path.clone();
        let loaded = tokio::task::spawn_blocking(move || load_flow(&path))
            .await
            .unwrap_or_else(|e| Err(format!("сценарий не прочитан: {e}")));
        let running = self.flow.load().version.clone();
        let outcome = match loaded {
            Ok(flow) if flow.version == running => Outcome::Unchanged { version: running },
            Ok(flow) => {
                let to = flow.version.clone();
                self.flow.store(Arc::new(flow));
                forget_announced(&self.reloads);
                Outcome::Reloaded { from: running, to }
            }
            Err(diagnostics) => Outcome::Refused {
                running,
                diagnostics,
            },
        };
        if !tell_refusal && matches!(outcome, Outcome::Refused { .. }) {
            tracing::debug!("flow file does not compile yet; looking again shortly");
            return (outcome, Vec::new());
        }
        let broadcast = log(trigger, &outcome, &self.reloads);
        let messages = self.notices(trigger, &outcome, broadcast);
        (outcome, messages)
    }

    fn notices(&self, trigger: Trigger, outcome: &Outcome, broadcast: bool) -> Vec<NewMessage> {
        let text = notice(outcome);
        let asker = match trigger {
            Trigger::Admin(chat) => Some(chat),
            Trigger::File | Trigger::Signal => None,
        };
        let mut messages: Vec<NewMessage> = asker
            .map(|chat| route::admin_text(chat, &text))
            .unwrap_or_default();
        if broadcast {
            for &chat in self.admins.iter().filter(|&&c| Some(c) != asker) {
                messages.extend(route::admin_text(chat, &text));
            }
        }
        messages
    }
}

/// Logs the outcome; true when every admin chat should hear of it (a new
/// version, or diagnostics not told since the last good flow).
fn log(trigger: Trigger, outcome: &Outcome, reloads: &Reloads) -> bool {
    match outcome {
        Outcome::Reloaded { from, to } => {
            tracing::info!(%from, %to, ?trigger, "flow reloaded");
            true
        }
        Outcome::Unchanged { version } if trigger == Trigger::File => {
            tracing::debug!(%version, "flow file saved unchanged; nothing to reload");
            false
        }
        Outcome::Unchanged { version } => {
            tracing::info!(%version, ?trigger, "flow file unchanged; nothing to reload");
            false
        }
        Outcome::Refused { diagnostics, .. } => {
            let new = remember_announced(reloads, diagnostics);
            if new {
                tracing::warn!(
                    ?trigger,
                    "flow reload refused; the running flow stays:\n{diagnostics}"
                );
            } else {
                tracing::info!(?trigger, "flow reload refused again for the same errors");
            }
            new
        }
    }
}

/// True when these diagnostics were not told since the last good flow.
fn remember_announced(reloads: &Reloads, diagnostics: &str) -> bool {
    let mut told = reloads
        .announced
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    told.insert(diagnostics.to_owned())
}

fn forget_announced(reloads: &Reloads) {
    reloads
        .announced
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
}

/// The admins' text for an outcome.
pub fn notice(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Reloaded { from, to } => {
            format!("✅ Сценарий обновлён: работает версия {to} (была {from}).")
        }
        Outcome::Unchanged { version } => {
            format!("Сценарий не изменился: работает версия {version}.")
        }
        Outcome::Refused {
            running,
            diagnostics,
        } => format!(
            "⚠️ Сценарий не перечитан: в файле ошибки. Клиентам отвечает прежняя версия {running}.\n\
             Исправьте и сохраните файл снова (проверка: flowbot check).\n\n{}",
            shorten(diagnostics)
        ),
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= NOTICE_CHARS {
        return text.to_owned();
    }
    let head: String = text.chars().take(NOTICE_CHARS).collect();
    format!("{head}\n… (полный список — в журнале бота и в выводе flowbot check)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_diagnostics_are_announced_once_each_until_a_good_flow() {
        let reloads = Reloads::default();
        assert!(remember_announced(&reloads, "a"));
        assert!(!remember_announced(&reloads, "a"));
        assert!(remember_announced(&reloads, "b"));
        assert!(!remember_announced(&reloads, "a"));
        forget_announced(&reloads);
        assert!(remember_announced(&reloads, "a"));
    }

    #[test]
    fn a_long_error_list_is_cut_for_the_chat() {
        let long = "ошибка\n".repeat(2_000);
        let text = notice(&Outcome::Refused {
            running: "abcd1234".into(),
            diagnostics: long,
        });
        assert!(text.chars().count() < NOTICE_CHARS + 400);
        assert!(text.contains("abcd1234"));
        assert!(text.ends_with("в выводе flowbot check)"), "{text}");
    }

    #[test]
    fn a_missing_file_is_said_in_russian_with_its_path() {
        let text = load_flow(Path::new("/nonexistent/flow.yaml")).unwrap_err();
        assert_eq!(
            text,
            "/nonexistent/flow.yaml: не удалось прочитать сценарий: файла нет"
        );
    }
}
