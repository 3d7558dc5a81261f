//! `flowbot chat`: a terminal conversation with the flow, on the real engine and store.
//!
//! A plain line is the customer's message. Special lines stand for what a
//! terminal cannot send: `/contact +7…`, `/contact-other +7…`, `/photo [caption]`
//! (and `/video`, `/document`, `/voice`, `/sticker`, `/location`),
//! `@manager <text>`, `@blocked`, `@unblocked`, `@time 2026-11-23T21:00`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::engine::{Customer, Input, MediaKind, step};
use crate::flow::model::Flow;
use crate::flowtest::local_time;
use crate::show;
use crate::store::Store;

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

pub(super) fn run(flow_path: &Path, db: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let Some(flow) = super::load_flow(flow_path)? else {
        return Ok(ExitCode::FAILURE);
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
    let mut chat = Chat {
        flow: &flow,
        store: &mut store,
        offset: chrono::Duration::zero(),
        json,
    };
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive && !json {
            print!("вы> ");
            std::io::stdout().flush()?;
        }
        let Some(line) = lines.next() else { break };
        match parse_line(&line?, customer().telegram_id) {
            Line::Quit => break,
            Line::Empty => {}
            Line::Time(t) => chat.set_time(&t),
            Line::Input(input) => chat.send(&input)?,
        }
    }
    Ok(ExitCode::SUCCESS)
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
        let now = self.now();
        let session = self
            .store
            .load_session(&customer(), &self.flow.start_state().name)?;
        let outcome = step(self.flow, &session, input, now);
        self.store.apply(&outcome, now)?;
        for effect in &outcome.effects {
            if self.json {
                println!("{}", show::json(effect));
            } else {
                println!("{}", show::line(effect));
            }
        }
        Ok(())
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
