//! `flowbot chat`: a terminal conversation with the flow, on the real engine and store.
//!
//! A plain line is the customer's message. Special lines stand for what a
//! terminal cannot send: `/contact +7…`, `/contact-other +7…`, `/photo [caption]`
//! (and `/video`, `/document`, `/voice`, `/sticker`, `/location`),
//! `@manager <text>`, `@blocked`, `@unblocked`, `@time 2026-11-23T21:00`.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::serve::{self, Reader};
use super::wahelp::{explain, explain_fate, hints, webhook_call};
use crate::engine::{Customer, Input, MediaKind, step};
use crate::flow::model::Flow;
use crate::flowtest::local_time;
use crate::show;
use crate::store::{Commit, Committed, Fate, PendingInput, Source, Store};
use crate::wahelp::payload;
use crate::wahelp::secret::strip_token;

/// The customer the terminal plays.
fn customer() -> Customer {
    Customer {
        telegram_id: 5_213_874_096,
        first_name: "Анна".to_owned(),
        last_name: Some("Смирнова".to_owned()),
        username: Some("anna_smirnova".to_owned()),
    }
}

/// What one terminal line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Input(Input),
    Time(String),
    Quit,
    Empty,
}

fn parse_line(line: &str, own_id: i64) -> Line {
    let line = line.trim();
    let (word, rest) = line
        .split_once(char::is_whitespace)
        .map_or((line, ""), |(w, r)| (w, r.trim()));
    let media = |kind| {
        Line::Input(Input::Media {
            media: kind,
            caption: (!rest.is_empty()).then(|| rest.to_owned()),
        })
    };
    match word {
        "" => Line::Empty,
        "/contact" => Line::Input(Input::Contact {
            phone: rest.to_owned(),
            user_id: Some(own_id),
        }),
        "/contact-other" => Line::Input(Input::Contact {
            phone: rest.to_owned(),
            user_id: Some(6_029_384_751),
        }),
        "/photo" => media(MediaKind::Photo),
        "/video" => media(MediaKind::Video),
        "/document" => media(MediaKind::Document),
        "/voice" => media(MediaKind::Voice),
        "/sticker" => media(MediaKind::Sticker),
        "/location" => media(MediaKind::Location),
        "@manager" => Line::Input(Input::manager(rest)),
        "@blocked" => Line::Input(Input::Blocked),
        "@unblocked" => Line::Input(Input::Unblocked),
        "@time" => Line::Time(rest.to_owned()),
        "@quit" | "@exit" => Line::Quit,
        _ => Line::Input(Input::text(line)),
    }
}

const HELP: &str = "Вы — клиент Анна. Пишите сообщения как в Telegram; кнопки — их надписью.
  /contact +79991234567        поделиться своим номером
  /contact-other +79161234567  поделиться чужим контактом
  /photo [подпись]             отправить фото (и /video, /document, /voice, /sticker, /location)
  @manager текст               ответ менеджера из CRM
  @blocked, @unblocked         клиент заблокировал / разблокировал бота
  @time 2026-11-23T21:00       перевести часы (время сценария)
  @quit или Ctrl+D             выйти";

/// What the conversation's loop waits for: the terminal's lines and, with
/// `--serve`, webhook calls from the HTTP server.
pub(super) enum Event {
    Line(String),
    /// End of input.
    Eof,
    /// Reading the terminal failed.
    Failed(std::io::Error),
    /// An authenticated, well-formed webhook call; `done` gets the answer
    /// once it is stored and applied.
    Webhook {
        body: Value,
        done: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
}

/// `--serve`: where the webhook server listens (`None`: `HTTP_LISTEN`).
pub(super) struct ServeOptions {
    pub listen: Option<SocketAddr>,
}

pub(super) fn run(
    flow_path: &Path,
    db: Option<&Path>,
    json: bool,
    serve: Option<ServeOptions>,
) -> anyhow::Result<ExitCode> {
    let Some(flow) = super::load_flow(flow_path)? else {
        return Ok(ExitCode::FAILURE);
    };
    let setup = match serve {
        Some(options) => match serve::Setup::from_env(options.listen) {
            Ok(setup) => Some(setup),
            Err(e) => {
                eprintln!("flowbot: {e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };
    let temp = match db {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("flowbot-chat-")
                .suffix(".db")
                .tempfile()?,
        ),
    };
    let db_path = db
        .or(temp.as_ref().map(|t| t.path()))
        .context("no database path")?;
    let mut store =
        Store::open(db_path).with_context(|| format!("cannot open {}", db_path.display()))?;
    let interactive = std::io::stdin().is_terminal();
    if interactive && !json {
        println!(
            "flowbot chat — сценарий {} (версия {}), база {}\n{HELP}\n",
            flow_path.display(),
            flow.version,
            db_path.display()
        );
    }
    let (events, inbox) = mpsc::channel();
    let reader = setup.as_ref().map(serve::Setup::reader);
    let _server = match setup {
        Some(setup) => Some(setup.start(events.clone())?),
        None => None,
    };
    read_lines(events);
    let mut chat = Chat {
        flow: &flow,
        store: &mut store,
        offset: chrono::Duration::zero(),
        json,
    };
    let prompt = interactive && !json;
    let mut prompted = false;
    loop {
        if prompt && !prompted {
            print!("вы> ");
            std::io::stdout().flush()?;
            prompted = true;
        }
        let Ok(event) = inbox.recv() else { break };
        match event {
            Event::Line(line) => {
                prompted = false;
                match parse_line(&line, customer().telegram_id) {
                    Line::Quit => break,
                    Line::Empty => {}
                    Line::Time(t) => chat.set_time(&t),
                    Line::Input(input) => chat.send(&input)?,
                }
            }
            Event::Eof => break,
            Event::Failed(e) => return Err(e.into()),
            Event::Webhook { body, done } => {
                if prompted {
                    println!();
                    prompted = false;
                }
                let answer = match &reader {
                    Some(reader) => chat.webhook(body, reader),
                    None => Err("no webhook here".to_owned()),
                };
                let _ = done.send(answer);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the terminal on its own thread, line by line, into the loop.
fn read_lines(events: mpsc::Sender<Event>) {
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let event = match line {
                Ok(line) => Event::Line(line),
                Err(e) => Event::Failed(e),
            };
            let failed = matches!(event, Event::Failed(_));
            if events.send(event).is_err() || failed {
                return;
            }
        }
        let _ = events.send(Event::Eof);
    });
}

struct Chat<'a> {
    flow: &'a Flow,
    store: &'a mut Store,
    /// How far `@time` moved the clock from the real one.
    offset: chrono::Duration,
    json: bool,
}

impl Chat<'_> {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }

    fn set_time(&mut self, text: &str) {
        match local_time(text, self.flow) {
            Ok(t) => {
                self.offset = t - Utc::now();
                if !self.json {
                    println!("· часы: {text}");
                }
            }
            Err(e) => eprintln!("{e}"),
        }
    }

    fn send(&mut self, input: &Input) -> anyhow::Result<()> {
        self.play(&customer(), input, None)
    }

    /// One input of one customer: the engine decides, the store keeps it
    /// (marking `source` processed), the effects are printed.
    fn play(
        &mut self,
        customer: &Customer,
        input: &Input,
        source: Option<Source>,
    ) -> anyhow::Result<()> {
        let now = self.now();
        let session = self
            .store
            .load_session(customer, &self.flow.start_state().name)?;
        let outcome = step(self.flow, &session, input, now);
        let commit = Commit {
            outcome: Some(&outcome),
            source,
            ..Commit::default()
        };
        if self.store.commit(&commit, now)? == Committed::AlreadyProcessed {
            return Ok(());
        }
        for effect in &outcome.effects {
            if self.json {
                println!("{}", show::json(effect));
            } else {
                println!("{}", show::line(effect));
            }
        }
        Ok(())
    }

    /// A webhook call: read as the live bot reads it, logged with its
    /// reading (for `flowbot wahelp inspect --db`), and each manager message
    /// for a phone a customer has applied as that customer's
    /// `Input::ManagerReply`. One note line per event says what happened.
    fn webhook(&mut self, mut body: Value, reader: &Reader) -> Result<(), String> {
        let events = payload::read(&body, &reader.paths);
        strip_token(&mut body, &reader.secret);
        let call = webhook_call(&events, body.to_string());
        let messages = call.messages.clone();
        let readings = call.reading.clone();
        let fates = self
            .store
            .accept_webhook(call, self.now(), &|_| Vec::new())
            .map_err(|e| e.to_string())?;
        if events.is_empty() {
            self.note("· Wahelp: вызов без событий".to_owned());
        }
        for (i, reading) in readings.iter().enumerate() {
            let fate = messages
                .iter()
                .position(|m| m.event == i)
                .and_then(|k| fates.get(k));
            let decision = reading["decision"].as_str().unwrap_or_default();
            match fate {
                Some(Fate::Forwarded(pending)) => {
                    let whose = if pending.customer_id == customer().telegram_id {
                        String::new()
                    } else {
                        format!(" (клиенту {}, не Анне)", pending.customer_id)
                    };
                    let phone = reading["phone"].as_str().unwrap_or("?");
                    self.note(format!(
                        "· Wahelp: ответ менеджера для {phone}{whose} — {decision}, {}",
                        explain_fate("forwarded")
                    ));
                    if let Err(e) = self.apply_pending(pending) {
                        eprintln!("flowbot: {e:#}");
                    }
                }
                Some(Fate::UnknownPhone(phone)) => self.note(format!(
                    "· Wahelp: не передано — unknown_phone: {}; сначала поделитесь номером: /contact {phone}",
                    explain_fate("unknown_phone")
                )),
                Some(other) => self.note(format!(
                    "· Wahelp: не передано — {}: {}",
                    other.as_str(),
                    explain_fate(other.as_str())
                )),
                None => {
                    let mut line = format!(
                        "· Wahelp: не передано — {decision}: {}",
                        explain(decision)
                    );
                    if let Some(problem) = reading["problem"].as_str() {
                        line.push_str(&format!(" ({problem})"));
                    }
                    for hint in hints(reading, &reader.paths) {
                        line.push_str(&format!("\n  → {hint}"));
                    }
                    self.note(line);
                }
            }
        }
        Ok(())
    }

    fn apply_pending(&mut self, pending: &PendingInput) -> anyhow::Result<()> {
        let customer = match self.store.customer(pending.customer_id)? {
            Some((customer, _)) => customer,
            None => customer(),
        };
        self.play(&customer, &pending.input, Some(Source::Input(pending.id)))
    }

    /// A line about the conversation that is not an effect: on stdout, or
    /// on stderr with `--json` (stdout holds only effects there).
    fn note(&self, line: String) {
        if self.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_lines() {
        assert_eq!(parse_line("привет", 1), Line::Input(Input::text("привет")));
        assert_eq!(
            parse_line("/contact +79991234567", 1),
            Line::Input(Input::Contact {
                phone: "+79991234567".into(),
                user_id: Some(1)
            })
        );
        assert_eq!(
            parse_line("/photo диван", 1),
            Line::Input(Input::Media {
                media: MediaKind::Photo,
                caption: Some("диван".into())
            })
        );
        assert_eq!(
            parse_line("/photo", 1),
            Line::Input(Input::Media {
                media: MediaKind::Photo,
                caption: None
            })
        );
        assert_eq!(
            parse_line("@manager Здравствуйте!", 1),
            Line::Input(Input::manager("Здравствуйте!"))
        );
        assert_eq!(
            parse_line("@time 2026-11-23T21:00", 1),
            Line::Time("2026-11-23T21:00".into())
        );
        assert_eq!(parse_line("   ", 1), Line::Empty);
        assert_eq!(parse_line("/start", 1), Line::Input(Input::text("/start")));
    }
}
